#include "policy/serve_function.h"

#include <algorithm>

#include "policy/batch_costs.h"
#include "policy/stage_costs.h"

namespace fluidfaas::policy {

Result<ServedFunction> ServeFunction(FunctionId id, std::shared_ptr<const model::FunctionSpec> spec,
                                     const model::BlockTimes& times, const model::LatencyModel& latency,
                                     const gpu::MpsShares& shares, double slo_scale) {
  if (!(slo_scale > 0)) return Status::InvalidArgument("slo scale must be positive");
  if (spec->blocks.empty()) return Status::InvalidArgument("function '" + spec->name + "' has no blocks");
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  std::vector<SliceKind> kinds;
  for (const gpu::MigProfile& prof : a100.profiles) kinds.push_back(SliceKind{&a100, &prof});
  // The tabulated batch sizes, up to the function's own largest batch.
  std::vector<int> sizes;
  for (int b : DefaultBatchSizes()) {
    if (b <= std::max(1, spec->max_batch)) sizes.push_back(b);
  }
  if (spec->max_batch > sizes.back() && spec->max_batch < DefaultBatchSizes().back()) {
    sizes.push_back(spec->max_batch);
  }
  auto costs = std::make_shared<const StageCostTable>(StageCostTable::Build(*spec, times, latency, 1, kinds));
  auto batched = std::make_shared<const BatchCosts>(BatchCosts::Build(*spec, times, latency, sizes, kinds));
  auto mps = std::make_shared<const BatchCosts>(BatchCosts::Build(*spec, times, latency, sizes, MpsKinds(shares)));
  const int full = static_cast<int>(kinds.size()) - 1;  // 7g.80gb, the last profile
  const double slo = slo_scale * costs->ComputeMs(full, 0, spec->blocks.size() - 1);
  return ServedFunction{id, std::move(spec), std::move(costs), slo, std::move(batched), std::move(mps)};
}

Result<ServedFunction> ServeZooModel(FunctionId id, std::shared_ptr<const model::FunctionSpec> spec,
                                     const model::LatencyModel& latency, const gpu::MpsShares& shares,
                                     double slo_scale) {
  const model::ModelledBlockTimes times(*spec, latency);  // read while the tables are built, not kept
  return ServeFunction(id, std::move(spec), times, latency, shares, slo_scale);
}

}  // namespace fluidfaas::policy
