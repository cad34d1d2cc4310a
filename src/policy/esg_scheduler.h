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
#include <optional>
#include <vector>

#include "policy/load_tracker.h"
#include "policy/scheduler.h"

namespace fluidfaas::policy {

struct EsgOptions {
  Duration keep_alive = Seconds(600);  // exclusive keep-alive, as the exclusive baseline
  double target_utilization = 0.8;     // instances a rate needs: rate x per-request time / this
  LoadCostModel load;                  // the same load costs as every policy
  LoadTrackerOptions tracker;
};

struct EsgConfig {
  int kind = -1;          // index into the cost tables' kinds
  int batch = 1;
  double exec_ms = 0;     // one batch
  double cost = 0;        // SM slices x exec_ms / batch
};

struct EsgSearchStats {
  int expanded = 0;       // configurations evaluated
  int pruned = 0;         // subtrees cut (batch too slow or too large for the slice)
};

// A* over (kind, batch index): each kind's batches form a chain; a node's priority is a lower bound on the
// cost of every configuration below it (the least per-request time of the larger batches of that kind), and a
// feasible configuration goes back in with its exact cost, so the first one popped is the cheapest. A batch
// that misses the SLO or the slice's memory prunes its chain (larger batches are slower and bigger).
// `kinds` are the kinds that may be used (kinds with a free slice); `rate_rps` the function's request rate.
std::optional<EsgConfig> SearchEsgConfig(const BatchCosts& costs, const std::vector<int>& kinds, double slo_ms,
                                         double rate_rps, EsgSearchStats* stats = nullptr);

class EsgScheduler final : public Scheduler {
 public:
  // Every function needs `batched` costs over the slices' kinds.
  EsgScheduler(std::vector<ClusterSlice> slices, const std::vector<ServedFunction>& functions, EsgOptions options = {});

  std::string_view name() const override { return "esg"; }
  void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) override;
  void OnStageFinished(const StageEvent& stage, TimePoint now, std::vector<Decision>& out) override;
  void OnLoadFinished(const LoadEvent& load, TimePoint now, std::vector<Decision>& out) override;
  void OnTick(TimePoint now, std::vector<Decision>& out) override;
  void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) override;

 private:
  struct Inst {
    FunctionId function = 0;
    size_t slice = 0;
    EsgConfig config;
    bool loading = true;
    TimePoint ready_at;
    TimePoint last_request;
    int outstanding = 0;
  };
  struct Fn {
    ServedFunction served;
    LoadTracker rate;
    std::vector<InstanceId> instances;
  };

  TimePoint EstimatedFinish(const Inst& inst, TimePoint now) const;
  std::optional<InstanceId> ScaleUp(Fn& fn, TimePoint now, std::vector<Decision>& out);
  void Retire(InstanceId id, std::vector<Decision>& out);

  EsgOptions options_;
  std::vector<ClusterSlice> slices_;
  std::vector<bool> taken_;
  std::map<FunctionId, Fn> functions_;
  std::map<InstanceId, Inst> instances_;
  InstanceId next_instance_ = 1;
};

}  // namespace fluidfaas::policy
