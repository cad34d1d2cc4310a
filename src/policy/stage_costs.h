// StageCostTable: what a stage of one function costs on each kind of slice, in O(1) per question.
//
// Built once per (function, batch) from its block times and memory figures; the planner then asks, many times
// per plan, how long blocks [first, last] take on a slice kind and how much memory they need. Prefix sums give
// the times and weights, a sparse table gives the largest activation peak of a block range.
//
// Thread safety: immutable after Build; const methods may be called from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "gpu/gpu_type.h"
#include "model/latency_model.h"
#include "model/profile.h"

namespace fluidfaas::policy {

// A (GPU type, slice profile) pair.
struct SliceKind {
  const gpu::GpuType* gpu = nullptr;
  const gpu::MigProfile* profile = nullptr;
  friend bool operator==(const SliceKind&, const SliceKind&) = default;
};

class StageCostTable {
 public:
  // `kinds` lists the slice kinds the planner may see; REQUIRES: batch >= 1, f has at least one block.
  static StageCostTable Build(const model::FunctionSpec& f, const model::BlockTimes& times,
                              const model::LatencyModel& memory, int batch, const std::vector<SliceKind>& kinds);

  size_t blocks() const { return n_; }
  int batch() const { return batch_; }
  const std::vector<SliceKind>& kinds() const { return kinds_; }
  // Index of `kind` in kinds(), or -1.
  int KindIndex(const SliceKind& kind) const;

  // Milliseconds of blocks [first, last] on slice kind `k`.
  double ComputeMs(int k, size_t first, size_t last) const {
    const double* p = &prefix_ms_[static_cast<size_t>(k) * (n_ + 1)];
    return p[last + 1] - p[first];
  }
  // A lower bound on the time of blocks [first, n) however they are split over kinds: each block's fastest.
  double MinSuffixMs(size_t first) const { return min_suffix_ms_[first]; }

  // Memory of blocks [first, last] on kind `k` for the table's batch, MiB, process reserve included.
  int64_t MemoryMib(int k, size_t first, size_t last) const;

  // The per-process reserve on kind `k`, MiB (part of every MemoryMib answer).
  int64_t ReserveMib(int k) const { return (reserve_bytes_[static_cast<size_t>(k)] + (1 << 20) - 1) >> 20; }

  // Whether the whole function on one slice of kind `k` (-1: an unknown kind) fits `memory_mib` and runs
  // within `slo_ms`: the test for "a single slice that fits and serves".
  bool ServesAlone(int k, int64_t memory_mib, double slo_ms) const {
    return k >= 0 && MemoryMib(k, 0, n_ - 1) <= memory_mib && ComputeMs(k, 0, n_ - 1) <= slo_ms;
  }

  // Activation bytes leaving block `last` for the next stage, for the table's batch.
  int64_t OutBytes(size_t last) const { return out_bytes_[last]; }

 private:
  int64_t PeakElems(size_t first, size_t last) const;  // sparse-table range maximum

  size_t n_ = 0;
  int batch_ = 1;
  int64_t elem_bytes_ = 4;
  std::vector<SliceKind> kinds_;
  std::vector<double> prefix_ms_;                 // kinds x (n + 1)
  std::vector<double> min_suffix_ms_;             // n + 1
  std::vector<int64_t> prefix_weights_;           // n + 1, parameters (tied ones owned by their owner)
  std::vector<int64_t> prefix_state_;             // n + 1
  std::vector<size_t> tied_blocks_;               // blocks that read another block's weights (rare: GPT-2's head)
  std::vector<int64_t> tied_params_;              // per block
  std::vector<int> tied_to_;                      // per block
  std::vector<int64_t> out_elems_;                // per block
  std::vector<int64_t> out_bytes_;                // per block, x batch
  std::vector<int64_t> reserve_bytes_;            // per kind
  std::vector<std::vector<int64_t>> peak_table_;  // sparse table over peak_act_elems
};

}  // namespace fluidfaas::policy
