// GenerativePlacer: where a new instance of a generating function goes, given the slices free now.
//
// An instance must hold the weights and a working KV cache: the cache of `design_batch` sequences at
// `design_context` tokens, and the activations of a decode step of that batch. Its decode step at that batch and
// context must meet the function's time per output token (TPOT) objective. The rule, for every policy alike:
//
//   1. the smallest single free slice that fits and meets the TPOT objective (fewest SMs, then least memory), as
//      an operator running one engine per slice picks it;
//   2. only when pipelines are allowed (max_stages > 1) and no single slice does: a pipeline of as few stages as
//      serve it, the pipeline planner's best of that many over the free slices (pipeline_planner.h), priced on the
//      decode step at the design batch and context.
//
// The instance's cache then holds, per stage, what its slice has left (GenerationCosts::KvCapacityTokens); the
// instance's pool is the smallest stage's, since every token has keys and values in every stage.
//
// Pure: no I/O, no clock.
//
// Thread safety: immutable after Build; const methods may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "model/generation.h"
#include "policy/pipeline_planner.h"

namespace fluidfaas::policy {

struct GenerativeTarget {
  int design_batch = 8;      // sequences an instance must be able to hold and step together. REQUIRES: >= 1
  int design_context = 640;  // their context, tokens. REQUIRES: 0 <= design_context < max_positions
  int max_prompt = 1024;     // the longest prompt it admits (activations of its prefill). REQUIRES: >= 1
  double tpot_slo_ms = 0;    // the step at the design batch and context must take no longer. REQUIRES: > 0
};

struct GenerativePlacement {
  std::vector<PlanStage> stages;  // slices are indices into the free slices given
  int64_t kv_tokens = 0;          // tokens of cache the instance holds (the smallest stage's)
  double step_ms = 0;             // a decode step at the design batch and context, hops included
};

class GenerativePlacer {
 public:
  // `kinds`: the slice kinds placements may see. The costs must outlive the placer.
  static Result<GenerativePlacer> Build(const model::GenerationCosts& costs, GenerativeTarget target,
                                        const std::vector<SliceKind>& kinds, PlannerOptions planner = {});

  // The placement on `free`, or why there is none (the planner's codes: FailedPrecondition, ResourceExhausted,
  // DeadlineExceeded). max_stages 1: single slices only.
  Result<GenerativePlacement> Place(std::span<const FreeSlice> free, int max_stages) const;
  // Place's first rule alone: the smallest single free slice that serves, of those `allowed` accepts (none: any);
  // ResourceExhausted when there is none.
  Result<GenerativePlacement> PlaceAlone(std::span<const FreeSlice> free,
                                         const std::function<bool(const FreeSlice&)>& allowed = nullptr) const;

  // Whether the function could be placed at all on `slices` if they were all free.
  bool FitsSomewhere(std::span<const FreeSlice> slices, int max_stages) const { return Place(slices, max_stages).ok(); }

  const GenerativeTarget& target() const { return target_; }

 private:
  GenerativePlacer(const model::GenerationCosts& costs, GenerativeTarget target, PlannerOptions planner)
      : costs_(&costs), target_(target), planner_options_(planner) {}
  Result<GenerativePlacement> Finish(std::span<const FreeSlice> free, std::vector<PlanStage> stages) const;

  const model::GenerationCosts* costs_;
  GenerativeTarget target_;
  PlannerOptions planner_options_;
  std::shared_ptr<const StageCostTable> table_;  // the decode step at the design batch and context
};

}  // namespace fluidfaas::policy
