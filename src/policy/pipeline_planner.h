// PipelinePlanner: the best way to serve a function on the slices free now, as one stage or as a pipeline of
// up to `max_stages` stages on distinct slices (ARCHITECTURE.md, design point 1).
//
// A plan maps contiguous block ranges, in order, to distinct slices. It is feasible when every stage fits its
// slice's free memory (weights + activations for the batch + the process reserve) and the end-to-end latency
// (stage times plus hops) fits the SLO. A single slice that fits and meets the SLO is never split (the design:
// pipelines are for functions that no single free slice fits or serves), so one-stage plans come first. Among
// plans of the same kind the best has, in this order: the lowest bottleneck (the slowest stage or hop:
// 1 / throughput; copies run on copy engines, beside compute), the lowest CV of stage times, the fewest stages,
// the fewest GPUs, the least memory left stranded on its slices. The same call thus answers "which single
// slice" (the fastest one that fits; the scaler picks the smallest adequate one itself).
//
// Exact: a depth-first branch and bound over (stage, slice class, block range), where interchangeable slices
// (same GPU type, profile and free memory) are one choice, bounded by a dynamic program over (block suffix,
// stages left) that gives the lowest bottleneck the rest could reach. Pure: no I/O, no clock; the per-call
// scratch is a few small vectors.
//
// Thread safety: const methods may run concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "policy/stage_costs.h"

namespace fluidfaas::policy {

// Cost of moving activations between stages: device to host, shared memory, host to device.
struct TransferModel {
  // Fixed cost of one hop, ms: two copy launches and the shared-memory hand-off. Default 0.03.
  double hop_fixed_ms = 0.03;
  // Bandwidth of each PCIe crossing, GB/s. Default 25 (PCIe 4.0 x16 in practice). A hop crosses twice
  // (device to host, host to device), on one GPU's link or on two GPUs' links alike.
  double pcie_gbs = 25;

  double HopMs(int64_t bytes) const { return hop_fixed_ms + 2.0 * static_cast<double>(bytes) / (pcie_gbs * 1e6); }
};

struct PlannerOptions {
  int max_stages = 4;  // REQUIRES: 1..8
  TransferModel transfer;
};

struct FreeSlice {
  std::string id;  // "0:2g.20gb@4"
  int gpu = 0;     // GPU index (on the node, or cluster-wide)
  SliceKind kind;
  int64_t free_mib = 0;  // memory a new process may use
};

struct PlanStage {
  size_t slice = 0;  // index into the free slices given
  std::string slice_id;
  int gpu = 0;
  size_t first_block = 0;
  size_t last_block = 0;
  double compute_ms = 0;
  double transfer_ms = 0;  // hop to the next stage; 0 for the last
  int64_t memory_mib = 0;
};

struct Plan {
  std::vector<PlanStage> stages;
  double bottleneck_ms = 0;  // max of stage compute and hop times
  double latency_ms = 0;     // sum of stage compute and hop times
  double cv = 0;             // std / mean of stage compute times (0 for one stage)
  int gpus = 0;              // distinct GPUs
  int64_t stranded_mib = 0;  // free memory of the plan's slices that its stages do not use
};

// True when `a` is strictly better than `b` under the planner's objective: one stage before several, then
// bottleneck, CV, stages, GPUs, stranded memory (floating-point figures compared with a tolerance of 1e-9).
bool PlanBetter(const Plan& a, const Plan& b);

// The figures of a plan given its stages' slices and block ranges (fills every field but `stages[].slice_id`
// and `gpu`, which come from `free`). Used by the planner and by brute-force checks.
Plan EvaluatePlan(const StageCostTable& costs, const TransferModel& transfer, std::span<const FreeSlice> free,
                  std::vector<PlanStage> stages);

class PipelinePlanner {
 public:
  explicit PipelinePlanner(PlannerOptions options = {}) : options_(options) {}
  const PlannerOptions& options() const { return options_; }

  // The best plan, or why there is none: FailedPrecondition (no free slices), ResourceExhausted (the function
  // does not fit the free memory with up to max_stages stages), DeadlineExceeded (it fits, but no plan meets
  // the SLO), InvalidArgument (a free slice of a kind the cost table does not know).
  Result<Plan> Best(const StageCostTable& costs, double slo_ms, std::span<const FreeSlice> free) const;
  // The same best plan, or nullopt, without working out why there is none (Best's diagnosis runs one more search,
  // over every plan that fits): what a scheduler asks on its hot path, where a failed plan is common and the reason
  // unused.
  std::optional<Plan> Find(const StageCostTable& costs, double slo_ms, std::span<const FreeSlice> free) const;

 private:
  struct Classes;
  // Best's checks and its slice classes; an error for bad options or input.
  Result<Classes> Classify(const StageCostTable& costs, std::span<const FreeSlice> free) const;
  // Find over slices already classified.
  std::optional<Plan> FindIn(const StageCostTable& costs, double slo_ms, std::span<const FreeSlice> free,
                             const Classes& c) const;
  PlannerOptions options_;
};

}  // namespace fluidfaas::policy
