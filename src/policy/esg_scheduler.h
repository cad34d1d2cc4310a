// EsgScheduler: the ESG baseline (HPDC'24), as ARCHITECTURE.md describes it, on MIG slices.
//
//  - Configuration search: per function, the cheapest single-slice configuration (slice profile, batch size)
//    that meets the SLO, found by A* with pruning (SearchEsgConfig). Cost of a configuration: SM slices x
//    execution time of a batch / batch size, the slice time one request uses. It meets the SLO when filling the
//    batch at the function's current request rate and running it fits the SLO, and the batch fits the slice.
//  - Instances: one per slice, never pipelined, never shared; kept for `keep_alive` after their last request
//    (exclusive keep-alive), then retired.
//  - Batching: an instance runs up to its configuration's batch; a batch that is not full starts when waiting any
//    longer would leave its oldest request no time to run behind one batch already queued
//    (timeout = SLO - 2 x batch time, at least 0).
//  - Dispatch: warm (loaded) instances before loading ones; among those, locality: the instance with the most
//    requests already queued (its batch fills first), on the lowest slice; only instances whose estimated
//    finish meets the deadline. When none does, scale up with the search run over the kinds of the free slices;
//    a request the new instance cannot serve in time is rejected at once (like the other policies).
//  - Scale-up pacing: a new instance while none of the function is loading, or while the function has fewer
//    instances than its rate needs at `target_utilization`.
//
// Thread safety: none (see Scheduler).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/result.h"
#include "policy/baseline_scheduler.h"
#include "policy/load_tracker.h"

namespace fluidfaas::policy {

struct EsgOptions {
  Duration keep_alive = Seconds(600);  // exclusive keep-alive, as the exclusive baseline
  double target_utilization = 0.8;     // instances a rate needs: rate x per-request time / this
  LoadCostModel load;                  // the same load costs as every policy
  LoadTrackerOptions tracker;
};

struct EsgConfig {
  int kind = -1;  // index into the cost tables' kinds
  int batch = 1;
  double exec_ms = 0;  // one batch
  double cost = 0;     // SM slices x exec_ms / batch
};

struct EsgSearchStats {
  int expanded = 0;  // configurations evaluated
  int pruned = 0;    // subtrees cut (batch too slow or too large for the slice)
};

// A* over (kind, batch index): each kind's batches form a chain; a node's priority is a lower bound on the
// cost of every configuration below it (the least per-request time of the larger batches of that kind), and a
// feasible configuration goes back in with its exact cost, so the first one popped is the cheapest. A batch
// that misses the SLO or the slice's memory prunes its chain (larger batches are slower and bigger).
// `kinds` are the kinds that may be used (kinds with a free slice); `rate_rps` the function's request rate.
std::optional<EsgConfig> SearchEsgConfig(const BatchCosts& costs, const std::vector<int>& kinds, double slo_ms,
                                         double rate_rps, EsgSearchStats* stats = nullptr);

struct EsgInstance {
  FunctionId function = 0;
  size_t slice = 0;
  bool loading = true;
  int outstanding = 0;
  EsgConfig config;
  TimePoint ready_at;
  TimePoint last_request;
};

struct EsgFunction {
  ServedFunction served;
  std::vector<InstanceId> instances;
  bool removed = false;
  LoadTracker rate;
};

class EsgScheduler final : public BaselineScheduler<EsgInstance, EsgFunction> {
 public:
  // Every function needs `batched` costs over the slices' kinds.
  static Result<std::unique_ptr<EsgScheduler>> Create(std::vector<ClusterSlice> slices,
                                                      std::vector<ServedFunction> functions, EsgOptions options = {});

  std::string_view name() const override { return "esg"; }
  void OnTick(TimePoint now, std::vector<Decision>& out) override;

 private:
  EsgScheduler(std::vector<ClusterSlice> slices, EsgOptions options)
      : BaselineScheduler(std::move(slices), true, false), options_(options) {}

  std::optional<Refusal> Admit(EsgFunction& fn, const RequestEvent& request, TimePoint now,
                               std::vector<Decision>& out) override;
  EsgFunction MakeFn(ServedFunction&& served) override {
    return EsgFunction{std::move(served), {}, false, LoadTracker(options_.tracker)};
  }
  TimePoint EstimatedFinish(const EsgInstance& inst, TimePoint now) const;
  std::optional<InstanceId> ScaleUp(EsgFunction& fn, TimePoint now, std::vector<Decision>& out);

  EsgOptions options_;
};

}  // namespace fluidfaas::policy
