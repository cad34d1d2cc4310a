#include "policy/batch_costs.h"

#include <algorithm>

namespace fluidfaas::policy {

BatchCosts BatchCosts::Build(const model::FunctionSpec& f, const model::BlockTimes& times,
                             const model::LatencyModel& memory, const std::vector<int>& batches,
                             const std::vector<SliceKind>& kinds) {
  BatchCosts c;
  c.batches_ = batches;
  for (int b : batches) c.tables_.push_back(StageCostTable::Build(f, times, memory, b, kinds));
  return c;
}

size_t BatchCosts::Upper(int batch) const {
  const auto it = std::lower_bound(batches_.begin(), batches_.end(), batch);
  return std::min(static_cast<size_t>(it - batches_.begin()), batches_.size() - 1);
}

double BatchCosts::ComputeMs(int k, size_t first, size_t last, int batch) const {
  const size_t hi = Upper(batch);
  const double t_hi = tables_[hi].ComputeMs(k, first, last);
  if (batches_[hi] == batch || hi == 0) return t_hi;
  const double t_lo = tables_[hi - 1].ComputeMs(k, first, last);
  const double w = static_cast<double>(batch - batches_[hi - 1]) / (batches_[hi] - batches_[hi - 1]);
  return t_lo + w * (t_hi - t_lo);
}

int64_t BatchCosts::MemoryMib(int k, size_t first, size_t last, int batch) const {
  return tables_[Upper(batch)].MemoryMib(k, first, last);
}

std::vector<int> DefaultBatchSizes() {
  return {1, 2, 4, 8, 16, 32};
}

std::vector<SliceKind> MpsKinds(const gpu::MpsShares& shares) {
  std::vector<SliceKind> kinds;
  for (size_t i = 0; i < shares.size(); ++i) kinds.push_back(SliceKind{&shares.gpu(), &shares.profile(i)});
  return kinds;
}

}  // namespace fluidfaas::policy
