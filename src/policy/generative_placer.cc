#include "policy/generative_placer.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "model/profile.h"

namespace fluidfaas::policy {

Result<GenerativePlacer> GenerativePlacer::Build(const model::GenerationCosts& costs, GenerativeTarget target,
                                                 const std::vector<SliceKind>& kinds, PlannerOptions planner) {
  if (target.design_batch < 1 || target.max_prompt < 1 || !(target.tpot_slo_ms > 0)) {
    return Status::InvalidArgument(
        "generative target: design batch and max prompt must be >= 1, the TPOT objective > 0");
  }
  if (target.design_context < 0 || target.design_context >= costs.max_positions()) {
    return Status::InvalidArgument("generative target: design context " + std::to_string(target.design_context) +
                                   " is not in 0.." + std::to_string(costs.max_positions() - 1));
  }
  GenerativePlacer p(costs, target, planner);
  FF_ASSIGN_OR_RETURN(const model::FunctionSpec step, costs.DecodeStep(target.design_context));
  const model::ModelledBlockTimes times(step, costs.latency());
  p.table_ = std::make_shared<const StageCostTable>(
      StageCostTable::Build(step, times, costs.latency(), target.design_batch, kinds));
  return p;
}

Result<GenerativePlacement> GenerativePlacer::Place(std::span<const FreeSlice> free, int max_stages) const {
  // 1. The smallest single slice that holds the instance and meets the objective.
  Result<GenerativePlacement> alone = PlaceAlone(free);
  if (alone.ok() || max_stages <= 1) return alone;
  const StageCostTable& t = *table_;
  // 2. A pipeline over the free slices, of as few stages as serve it: the planner's best of two stages, else of
  // three, and so on (left to itself it would spread one function over every free slice for the lowest bottleneck,
  // and leave nothing to the others).
  Status why = Status::ResourceExhausted("no pipeline");
  for (int stages = 2; stages <= std::min(planner_options_.max_stages, max_stages); ++stages) {
    PlannerOptions o = planner_options_;
    o.max_stages = stages;
    Result<Plan> plan = PipelinePlanner(o).Best(t, target_.tpot_slo_ms, free);
    if (plan.ok()) return Finish(free, std::move(plan->stages));
    why = plan.status();
  }
  return why;
}

Result<GenerativePlacement> GenerativePlacer::PlaceAlone(std::span<const FreeSlice> free,
                                                         const std::function<bool(const FreeSlice&)>& allowed) const {
  const StageCostTable& t = *table_;
  const size_t last = t.blocks() - 1;
  std::optional<size_t> best;
  for (size_t i = 0; i < free.size(); ++i) {
    const int k = t.KindIndex(free[i].kind);
    if (!t.ServesAlone(k, free[i].free_mib, target_.tpot_slo_ms)) continue;
    const gpu::MigProfile& p = *free[i].kind.profile;
    if (costs_->KvCapacityTokens(0, last, p, target_.max_prompt) <= 0) continue;
    auto smaller = [&](size_t a, size_t b) {
      const gpu::MigProfile& pa = *free[a].kind.profile;
      const gpu::MigProfile& pb = *free[b].kind.profile;
      return std::pair(pa.sms, free[a].free_mib) < std::pair(pb.sms, free[b].free_mib);
    };
    if (best && !smaller(i, *best)) continue;
    if (allowed && !allowed(free[i])) continue;
    best = i;
  }
  if (!best) {
    return Status::ResourceExhausted("no single free slice holds " + costs_->spec().name + " with a cache of " +
                                     std::to_string(target_.design_batch) + " sequences within its TPOT objective");
  }
  const int k = t.KindIndex(free[*best].kind);
  return Finish(free, {PlanStage{.slice = *best,
                                 .slice_id = free[*best].id,
                                 .gpu = free[*best].gpu,
                                 .first_block = 0,
                                 .last_block = last,
                                 .compute_ms = t.ComputeMs(k, 0, last),
                                 .memory_mib = t.MemoryMib(k, 0, last)}});
}

Result<GenerativePlacement> GenerativePlacer::Finish(std::span<const FreeSlice> free,
                                                     std::vector<PlanStage> stages) const {
  GenerativePlacement g;
  g.kv_tokens = std::numeric_limits<int64_t>::max();
  for (const PlanStage& s : stages) {
    const gpu::MigProfile& p = *free[s.slice].kind.profile;
    g.kv_tokens = std::min(g.kv_tokens, costs_->KvCapacityTokens(s.first_block, s.last_block, p, target_.max_prompt));
    g.step_ms += s.compute_ms + s.transfer_ms;
  }
  if (g.kv_tokens <= 0) return Status::ResourceExhausted(costs_->spec().name + ": a stage has no room for a cache");
  g.stages = std::move(stages);
  return g;
}

}  // namespace fluidfaas::policy
