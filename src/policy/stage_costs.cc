#include "policy/stage_costs.h"

#include <algorithm>
#include <bit>

namespace fluidfaas::policy {

StageCostTable StageCostTable::Build(const model::FunctionSpec& f, const model::BlockTimes& times,
                                     const model::LatencyModel& memory, int batch,
                                     const std::vector<SliceKind>& kinds) {
  StageCostTable t;
  t.n_ = f.blocks.size();
  t.batch_ = batch;
  t.elem_bytes_ = model::BytesPerElement(f.dtype);
  t.kinds_ = kinds;
  const size_t n = t.n_;
  t.prefix_ms_.assign(kinds.size() * (n + 1), 0.0);
  for (size_t k = 0; k < kinds.size(); ++k) {
    double* p = &t.prefix_ms_[k * (n + 1)];
    for (size_t i = 0; i < n; ++i) p[i + 1] = p[i] + times.BlockMs(i, *kinds[k].gpu, *kinds[k].profile, batch);
    t.reserve_bytes_.push_back(memory.ReserveBytes(*kinds[k].profile));
  }
  // Each block at its fastest kind: a pipeline may run every stage on another kind, so the fastest single kind
  // for the whole suffix is no lower bound (it pruned plans within the SLO). Shaved by one part in 10^12, so that
  // rounding never lifts it above the same blocks' times summed by stages.
  t.min_suffix_ms_.assign(n + 1, 0.0);
  for (size_t i = n; i-- > 0;) {
    double best = kinds.empty() ? 0.0 : 1e300;
    for (size_t k = 0; k < kinds.size(); ++k) best = std::min(best, t.ComputeMs(static_cast<int>(k), i, i));
    t.min_suffix_ms_[i] = t.min_suffix_ms_[i + 1] + best;
  }
  for (double& floor : t.min_suffix_ms_) floor *= 1 - 1e-12;
  t.prefix_weights_.assign(n + 1, 0);
  t.prefix_state_.assign(n + 1, 0);
  std::vector<int64_t> peaks(n);
  for (size_t i = 0; i < n; ++i) {
    const model::Block& b = f.blocks[i];
    t.prefix_weights_[i + 1] = t.prefix_weights_[i] + b.params;
    t.prefix_state_[i + 1] = t.prefix_state_[i] + b.state_elems;
    t.tied_params_.push_back(b.tied_params);
    t.tied_to_.push_back(b.tied_to);
    if (b.tied_to >= 0) t.tied_blocks_.push_back(i);
    t.out_elems_.push_back(b.out_elems);
    t.out_bytes_.push_back(b.out_elems * t.elem_bytes_ * batch);
    peaks[i] = b.peak_act_elems;
  }
  t.peak_table_.push_back(std::move(peaks));
  for (size_t w = 1; (size_t{1} << w) <= n; ++w) {
    const std::vector<int64_t>& prev = t.peak_table_.back();
    std::vector<int64_t> next(n - (size_t{1} << w) + 1);
    for (size_t i = 0; i < next.size(); ++i) next[i] = std::max(prev[i], prev[i + (size_t{1} << (w - 1))]);
    t.peak_table_.push_back(std::move(next));
  }
  return t;
}

int StageCostTable::KindIndex(const SliceKind& kind) const {
  for (size_t k = 0; k < kinds_.size(); ++k) {
    if (kinds_[k] == kind) return static_cast<int>(k);
  }
  return -1;
}

int64_t StageCostTable::PeakElems(size_t first, size_t last) const {
  const size_t w = static_cast<size_t>(std::bit_width(last - first + 1) - 1);
  return std::max(peak_table_[w][first], peak_table_[w][last + 1 - (size_t{1} << w)]);
}

int64_t StageCostTable::MemoryMib(int k, size_t first, size_t last) const {
  // The same accounting as LatencyModel::StageBytes, from prefix sums.
  int64_t weights = prefix_weights_[last + 1] - prefix_weights_[first];
  for (size_t i : tied_blocks_) {
    const bool inside = i >= first && i <= last;
    const bool owner_inside = tied_to_[i] >= static_cast<int>(first) && tied_to_[i] <= static_cast<int>(last);
    if (inside && !owner_inside) weights += tied_params_[i];
  }
  const int64_t in = first == 0 ? 0 : out_elems_[first - 1];
  const int64_t acts = PeakElems(first, last) + in + out_elems_[last] + prefix_state_[last + 1] - prefix_state_[first];
  const int64_t bytes = reserve_bytes_[static_cast<size_t>(k)] + (weights + acts * batch_) * elem_bytes_;
  return (bytes + (1 << 20) - 1) >> 20;
}

}  // namespace fluidfaas::policy
