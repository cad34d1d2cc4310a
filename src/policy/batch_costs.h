// BatchCosts: one function's stage costs at several batch sizes, one StageCostTable per tabulated size.
//
// The batching baselines (ESG, INFless) search over (slice, batch) configurations and the simulator runs batches
// of any size up to the largest tabulated one. Between two tabulated sizes the time is interpolated linearly
// (latency grows close to linearly in the batch between powers of two); memory is that of the next tabulated
// size up, which never understates it.
//
// Thread safety: immutable after Build; const methods may be called from any thread.
#pragma once

#include <vector>

#include "gpu/mps.h"
#include "policy/stage_costs.h"

namespace fluidfaas::policy {

class BatchCosts {
 public:
  // REQUIRES: `batches` ascending, starting at 1.
  static BatchCosts Build(const model::FunctionSpec& f, const model::BlockTimes& times,
                          const model::LatencyModel& memory, const std::vector<int>& batches,
                          const std::vector<SliceKind>& kinds);

  const std::vector<int>& batches() const { return batches_; }
  int max_batch() const { return batches_.back(); }
  const StageCostTable& table(size_t i) const { return tables_[i]; }
  const StageCostTable& one() const { return tables_.front(); }
  size_t blocks() const { return one().blocks(); }
  int KindIndex(const SliceKind& kind) const { return one().KindIndex(kind); }

  // Milliseconds of blocks [first, last] on kind `k` for `batch` samples. REQUIRES: 1 <= batch <= max_batch().
  double ComputeMs(int k, size_t first, size_t last, int batch) const;
  double WholeMs(int k, int batch) const { return ComputeMs(k, 0, blocks() - 1, batch); }
  // MiB of blocks [first, last] on kind `k` for `batch` samples, reserve included.
  int64_t MemoryMib(int k, size_t first, size_t last, int batch) const;
  int64_t WholeMib(int k, int batch) const { return MemoryMib(k, 0, blocks() - 1, batch); }

 private:
  size_t Upper(int batch) const;  // the first tabulated size >= batch

  std::vector<int> batches_;
  std::vector<StageCostTable> tables_;
};

// Batch sizes the presets tabulate: 1, 2, 4, 8, 16, 32.
std::vector<int> DefaultBatchSizes();

// Cost-table kinds of MPS shares: kind i is share i of the GPU, alone.
std::vector<SliceKind> MpsKinds(const gpu::MpsShares& shares);

}  // namespace fluidfaas::policy
