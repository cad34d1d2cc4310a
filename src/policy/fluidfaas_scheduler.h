// FluidFaaSScheduler: design point 2 on top of the planner (ARCHITECTURE.md). docs/policies.md has the states,
// thresholds and formulas, and which of them are the design's and which this project's.
//
//  - Hotness: each instance has a LoadTracker; on ticks, a time-sharing instance whose busy fraction reaches
//    promote_busy becomes exclusive_hot (its co-residents are evicted to warm), and an exclusive_hot one whose
//    busy fraction falls under demote_busy becomes time_sharing (hysteresis: 0.5 / 0.3), judged only after
//    min_dwell in its state.
//  - Batching: requests of an instance queued back to back at a stage run as one batch (up to max_batch,
//    memory permitting); slices are booked batch by batch, so a request may join the last booked batch.
//  - Routing: the finish time of a request on each live instance is estimated from the queues of its slices
//    (as batches), its remaining load time and its service time. Urgent requests (slack under urgent_slack_fraction x SLO)
//    go to exclusive instances first, the others to time-sharing ones first; the earliest finish that meets
//    the deadline wins. When none meets it, the scheduler scales up; a request that still cannot meet its
//    deadline is rejected at once (or served late with serve_late).
//  - Scaling up: the smallest free slice that fits and serves (unless another function cannot do without that
//    slice: then fragments and time sharing first); else a pipeline from the planner over the free slices; else
//    a time-sharing slice, evicting its least hot idle residents to warm; else a slice reclaimed from idle
//    instances of a function with capacity to spare. A warm instance of the function is reloaded before a cold
//    one is started.
//  - Scaling down: an idle time-sharing instance is evicted to warm after ts_idle_evict; a warm one turns cold
//    after keep_alive.
//  - Migration: when a pipelined instance fits alone on a free slice without becoming slower, a plain instance
//    is launched there; once loaded, new requests go to it and the pipeline drains, then is retired.
//
// Thread safety: none (see Scheduler).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/load_tracker.h"
#include "policy/pipeline_planner.h"
#include "policy/scheduler.h"

namespace fluidfaas::policy {

struct FluidFaaSOptions {
  double promote_busy = 0.5;             // time_sharing -> exclusive_hot at this busy fraction or more
  double demote_busy = 0.3;              // exclusive_hot -> time_sharing under this busy fraction (the design's)
  double urgent_slack_fraction = 0.25;   // urgent when slack < this x SLO
  Duration min_dwell = Seconds(120);      // an instance keeps its state (exclusive_hot, or a time-sharing
                                         // resident that may be evicted for another) at least this long
  double reclaim_headroom = 1.5;         // a function gives up a slice only if its other instances can carry
                                         // this multiple of its request rate
  Duration ts_idle_evict = Seconds(60);  // idle time-sharing instance -> warm after this
  Duration keep_alive = Seconds(600);    // warm -> cold after this (the design's 10 min)
  double migrate_slowdown = 0.05;        // migrate when the plain instance is at most this much slower
  double share_busy_cap = 0.5;           // join a time-sharing slice only while its staying residents are
                                         // busy less than this fraction of the time, together
  bool serve_late = false;               // route requests that will miss their deadline instead of rejecting
  Duration scale_up_retry = Millis(100);  // a failed scale-up is retried after this (or a placement change)
  int max_batch = 8;                     // requests queued back to back at a stage run together, up to this many
                                         // (with ServedFunction::batched costs; 1 without them)
  LoadCostModel load;
  PlannerOptions planner;
  LoadTrackerOptions tracker;
};

// One instance as the scheduler sees it (exposed for tests, the simulator's reports and the daemon's status).
struct InstanceView {
  InstanceId id = 0;
  FunctionId function = 0;
  InstanceState state = InstanceState::kCold;
  std::vector<StagePlacement> stages;
  int outstanding = 0;
};

// One slice's occupancy: who is resident and how much memory they use (without the worker's reserve).
struct SliceView {
  std::string id;
  bool available = true;
  std::vector<InstanceId> residents;
  int64_t used_mib = 0;
};

class FluidFaaSScheduler final : public Scheduler {
 public:
  FluidFaaSScheduler(std::vector<ClusterSlice> slices, std::vector<ServedFunction> functions,
                     FluidFaaSOptions options = {});

  std::string_view name() const override { return "fluidfaas"; }
  void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) override;
  void OnStageFinished(const StageEvent& stage, TimePoint now, std::vector<Decision>& out) override;
  void OnLoadFinished(const LoadEvent& load, TimePoint now, std::vector<Decision>& out) override;
  void OnTick(TimePoint now, std::vector<Decision>& out) override;
  void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) override;

  std::vector<InstanceView> Instances() const;
  std::optional<InstanceView> Instance(InstanceId id) const;
  std::vector<SliceView> Slices() const;
  // Invariant violations found (an invalid state transition is a bug, reported here and never applied).
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  struct InstanceRec {
    InstanceId id = 0;
    FunctionId function = 0;
    InstanceState state = InstanceState::kCold;
    InstanceState after_load = InstanceState::kExclusiveHot;
    std::vector<StagePlacement> stages;
    LoadTracker load;
    int outstanding = 0;
    TimePoint ready_at;            // end of the current load
    Duration service{0};           // prior service time of the current placement (stages and hops)
    std::vector<std::vector<Duration>> stage_batch;  // each stage: prior time of a batch of 1, 2, ... max_batch
    std::vector<Duration> hop_time;    // after each stage (0 after the last)
    TimePoint state_since;
    std::optional<InstanceId> replaces;   // a migration target: the pipeline it will take over from
    bool migrating = false;               // a pipeline with a migration target loading
    bool evict_pending = false;           // leaving its slice (a co-resident was promoted) once idle
  };
  // The last batch booked on a slice: requests of the same instance and stage that arrive before it starts join it.
  struct OpenBatch {
    InstanceId instance = 0;
    size_t stage = 0;
    TimePoint start;
    int count = 0;
  };
  struct Booking {
    TimePoint start;
    int count = 1;       // the batch's size with this request
    TimePoint end;
  };
  struct SliceRec {
    ClusterSlice info;
    OpenBatch last_batch;
    std::vector<InstanceId> residents;
    int64_t used_mib = 0;
    TimePoint busy_until;          // estimated end of the work queued on it
  };

  const ServedFunction& Function(FunctionId id) const;
  void SetState(InstanceRec& inst, InstanceState to, TimePoint now, std::vector<Decision>& out, bool announce = true);
  // When a request routed now would finish: it walks the stages in order, each starting when the request
  // arrives there and the stage's slice has finished what is queued on it (or joining the batch booked last
  // there). `bookings`, when given, receives each stage's batch (Route books the slices with them).
  TimePoint EstimatedFinish(const InstanceRec& inst, TimePoint now, std::vector<Booking>* bookings = nullptr) const;
  bool Exclusive(const InstanceRec& inst) const;
  void Route(InstanceRec& inst, const RequestEvent& request, TimePoint now, std::vector<Decision>& out);

  // Scale-up: places an instance of `fn` (reusing a warm or cold one), or nullptr when nothing fits.
  InstanceRec* ScaleUp(FunctionId fn, TimePoint now, std::vector<Decision>& out);
  InstanceRec* TryScaleUp(FunctionId fn, TimePoint now, std::vector<Decision>& out);
  InstanceRec* TimeShare(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);
  // A slice that serves `f` alone and whose residents are idle instances of functions whose other instances
  // carry their rate with reclaim_headroom to spare: the smallest such slice.
  std::optional<size_t> Reclaimable(const ServedFunction& f, TimePoint now) const;
  double CapacityRps(const InstanceRec& inst) const;  // requests per second at batch 1
  InstanceRec* PlacePlan(const ServedFunction& f, const Plan& plan, TimePoint now, std::vector<Decision>& out);
  // Whether a free slice of `kind`, larger than `f` needs, is the smallest one another function can be served on.
  bool Needed(const ServedFunction& f, const SliceKind& kind) const;
  // `spare_needed`: leave out free slices Needed by another function.
  std::optional<Plan> PlanOnFreeSlices(const ServedFunction& f, int max_stages, bool spare_needed = false) const;
  std::optional<std::pair<size_t, std::vector<InstanceId>>> TimeSharingSlot(const ServedFunction& f, TimePoint now) const;
  InstanceRec& ReusableOrNew(FunctionId fn);
  InstanceRec& NewInstance(FunctionId fn);
  void Place(InstanceRec& inst, std::vector<StagePlacement> stages, InstanceState after_load, TimePoint now,
             std::vector<Decision>& out);
  void Release(InstanceRec& inst);
  // Memory of a stage without the slice's process reserve (one worker process per slice hosts its residents).
  int64_t OwnMib(const InstanceRec& inst, const StagePlacement& st) const;
  void EvictToWarm(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);
  void MaybeMigrate(TimePoint now, std::vector<Decision>& out);
  void MaybeRetire(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);

  FluidFaaSOptions options_;
  std::vector<SliceRec> slices_;
  std::vector<ServedFunction> functions_;
  std::map<InstanceId, InstanceRec> instances_;
  std::map<FunctionId, std::vector<InstanceRec*>> by_function_;  // the same records, per function (map nodes are stable)
  InstanceId next_instance_ = 1;
  PipelinePlanner planner_;
  std::vector<std::string> errors_;
  uint64_t placement_epoch_ = 0;  // bumped whenever an instance is placed or leaves its slices
  std::map<FunctionId, std::pair<uint64_t, TimePoint>> failed_scale_up_;  // epoch and time of the last failure
};

}  // namespace fluidfaas::policy
