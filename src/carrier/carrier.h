// Carrier: the scheduler's decisions carried out on one node, written once for the simulator and the daemon.
//
// A Scheduler decides; a Carrier turns its decisions into calls on the node's Mechanism (launch a pipeline, submit
// a batch, evict or retire an instance) and the mechanism's events back into the scheduler's. Between the two it
// keeps the books both need:
//  - each instance: its stages, whether it is loaded, its queue of routed requests, its batches in flight;
//  - each open request: its function, arrival, planned deadline, instance and when it joined that queue;
//  - releases the mechanism has not yet acknowledged, and launches that wait for them (a launch that takes over
//    memory still being released starts loading once those releases are done: the answer rule's memory clause).
//
// Batches are formed here, once, at the pipeline's entry, and run through every stage together. An instance takes
// requests only once loaded; it keeps one batch per stage in flight plus one waiting at its entry, so a stage that
// finishes starts the next batch at once. A batch is the queue's front up to the launch's max_batch; with
// batch_by_deadline it is cut to the longest run whose every request still meets its planned deadline when run
// through every stage from when the entry frees (its hops included); a batch short of max_batch waits up to the
// launch's batch timeout from when its oldest request joined the queue.
//
// The daemon's mechanism is NodeRuntime (worker processes, shared-memory rings); the simulator's is its
// discrete-event node. What the two do with a decision is therefore the same code, and scripts/sim-vs-daemon.sh
// measures what is left: the mechanisms' own timing.
//
// Every request the carrier is given ends exactly once: it completes (BatchCompleted hands its id to the caller's
// answer) or the Host hears Ended (rejected or failed, with a reason code).
//
// Thread safety: none; one thread drives a carrier (the daemon's control thread, the simulator's loop). It never
// reads a clock or does I/O: every call carries `now`. totals() may be read from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "policy/answer_checker.h"
#include "policy/cluster_router.h"
#include "policy/pipeline_planner.h"
#include "policy/scheduler.h"

namespace fluidfaas::carrier {

using policy::FunctionId;
using policy::InstanceId;
using policy::Reason;
using policy::RequestId;

// What the node does with the carrier's calls. Each call returns at once; its outcome comes back as an event
// (Carrier::Loaded, BatchCompleted, BatchFailed, SliceLost, Released) on a later call, never inside this one.
class Mechanism {
 public:
  virtual ~Mechanism() = default;
  // Starts loading `launch`'s instance on its slices (whatever it waited for is released). Ok: one Loaded follows,
  // unless one of its slices is lost first. An error: nothing was started; the carrier reports a failed load.
  virtual Status Launch(const policy::LaunchDecision& launch) = 0;
  // Feeds a batch of the instance's requests to its first stage. Ok: one BatchCompleted or BatchFailed follows,
  // unless one of its slices is lost first. ResourceExhausted: no room now, nothing taken (the carrier tries again
  // at the instance's next event). Another error: the instance is going away; its event hands the queue back.
  virtual Status Submit(InstanceId instance, uint64_t batch, std::span<const RequestId> requests) = 0;
  // Takes the instance off its slices (keep_warm: its weights stay in host memory). One Released per slice follows.
  virtual Status Evict(InstanceId instance, bool keep_warm) = 0;
};

enum class Ending : uint8_t { kRejected, kFailed };

// Whoever owns the requests' payloads (the daemon's callbacks, the simulator's records).
class Host {
 public:
  virtual ~Host() = default;
  // A request ended without completing. The carrier forgets it once this returns.
  virtual void Ended(RequestId id, Ending ending, Reason code, const std::string& detail) = 0;
  // Runs `task` later, outside the current call, with the time then (a refused launch's failed load, the releases
  // of an instance that never reached the mechanism).
  virtual void Later(std::function<void(TimePoint now)> task) = 0;
  // A short batch waits for its timeout: call DispatchDue at `at` (NextDue() says the same).
  virtual void WakeAt(TimePoint at) = 0;
};

// What the carrier needs of a function: its costs, for the deadline cut. Not owned: they outlive the carrier.
struct CarriedFunction {
  const policy::StageCostTable* costs = nullptr;  // batch 1: activation bytes between stages
  const policy::BatchCosts* batched = nullptr;    // MIG kinds by batch; none: batches are not cut
  const policy::BatchCosts* mps = nullptr;        // MPS share kinds, for stages placed on a share
  // The mechanism runs the modelled compute times scaled by this (the daemon's emulated functions at
  // --time-scale): the batches' modelled ends and deadline cuts use the times it will take.
  double time_scale = 1;
};

// One stage's run of a batch, as the mechanism saw it.
struct StageRun {
  TimePoint started;
  TimePoint finished;
};

struct Instance {
  FunctionId function = 0;
  std::vector<policy::StagePlacement> stages;
  int max_batch = 1;
  Duration batch_timeout{0};
  bool batch_by_deadline = false;
  bool in_mechanism = false;  // the mechanism took it: there is something to evict
  bool loaded = false;
  TimePoint busy_until;                  // modelled end of the batches submitted (the deadline cut of one that waits)
  TimePoint load_ends;                   // expected end of its load (the launch's expected_load)
  TimePoint wake_at = TimePoint::max();  // its entry in the due list, while a short batch waits for its timeout
  std::deque<RequestId> queue;           // routed, not yet submitted
  size_t in_flight = 0;                  // batches submitted
  policy::InstanceState state = policy::InstanceState::kLoading;
};

struct OpenRequest {
  FunctionId function = 0;
  TimePoint arrival;
  TimePoint deadline;  // planned
  InstanceId instance = 0;
  TimePoint routed;  // when it joined its instance's queue
  int routes = 0;    // more than one after a failure handed it back
};

struct Totals {
  std::atomic<uint64_t> launches{0}, pipelines{0}, migrations{0}, evictions{0};
};

class Carrier {
 public:
  Carrier(std::vector<policy::ClusterSlice> slices, policy::Scheduler& scheduler, Mechanism& mechanism, Host& host,
          policy::TransferModel transfer = {});

  // A function's costs; before its first request.
  void AddFunction(FunctionId id, const CarriedFunction& function);

  // ---- events from outside the node
  void Arrive(const policy::RequestEvent& request, TimePoint now);
  void Tick(TimePoint now);
  void SliceFreed(size_t slice, TimePoint now);
  // Any other scheduler call (deploy, remove): its decisions checked and carried out.
  void Apply(TimePoint now, const std::function<void(std::vector<policy::Decision>&)>& call);

  // ---- the mechanism's events
  void Loaded(InstanceId instance, bool ok, std::string_view detail, TimePoint now);
  // The batch ran through every stage (`runs`, one per stage). `answer` gets its requests first, while the
  // carrier still knows them (Find); then the scheduler hears of every stage's run. An unknown batch (its
  // instance lost meanwhile) is ignored.
  void BatchCompleted(InstanceId instance, uint64_t batch, std::span<const StageRun> runs, TimePoint now,
                      const std::function<void(std::span<const RequestId>)>& answer);
  void BatchFailed(InstanceId instance, uint64_t batch, size_t stage, std::string_view detail, TimePoint now);
  // The slice's worker died (kWorkerLost) or the slice was taken (kSliceTaken): every instance with a stage on it
  // is gone, with its queue and batches in flight; the mechanism has dropped them too, and releases their other
  // slices (Released follows for each).
  void SliceLost(size_t slice, Reason reason, std::string_view detail, TimePoint now);
  void Released(InstanceId instance, size_t slice, TimePoint now);
  // Submits the short batches whose timeout has come.
  void DispatchDue(TimePoint now);
  // Events delivered together (the daemon's control thread runs everything posted since its last turn at once):
  // between Hold and Flush no batch is submitted, so requests that arrive together leave together, as one batch,
  // instead of the first alone. Flush submits what the held events made ready.
  void Hold() { held_ = true; }
  void Flush(TimePoint now);

  // ---- the books
  const OpenRequest* Find(RequestId id) const;
  const std::map<InstanceId, Instance>& instances() const { return instances_; }
  // Whether the function has a loaded instance (the newcomer's cold-start rule asks).
  bool Warm(FunctionId function) const;
  std::optional<TimePoint> NextDue() const;
  size_t open() const { return requests_.size(); }
  // The answer rule, checked on every event and decision (Finish at the end of a run).
  policy::AnswerChecker& checker() { return checker_; }
  const Totals& totals() const { return totals_; }
  // Instances evicted to host memory (warm copies) and their functions, until they load again or expire.
  const std::map<InstanceId, FunctionId>& warm_copies() const { return warm_; }
  // The node as a report to a gateway says it (policy/cluster_router.h), the same for the daemon and the simulator:
  // per function, its instances on slices with the earliest a new request could finish on one of them (the
  // modelled end of the batches submitted, then its queue in batches of max_batch at the slowest stage's pace, then
  // its own run through every stage and hop) and its warm copies, sorted by function; and the slices a new process
  // could take with their free memory: not taken by another tenant, not held by an exclusive or loading instance,
  // less the memory of their residents and of releases not yet acknowledged. `free` gives slice indexes.
  struct Report {
    std::vector<policy::NodeFunction> functions;
    std::vector<std::pair<size_t, int64_t>> free;  // (slice, free MiB)
  };
  Report MakeReport(TimePoint now) const;

 private:
  const CarriedFunction* FunctionOf(FunctionId id) const;
  policy::RequestEvent EventOf(RequestId id) const;
  void End(RequestId id, Ending ending, Reason code, const std::string& detail);

  void Carry(const policy::LaunchDecision& d);
  void Carry(const policy::RouteDecision& d);
  void Carry(const policy::RejectDecision& d) { End(d.request, Ending::kRejected, d.code, d.detail); }
  void Carry(const policy::FailDecision& d) { End(d.request, Ending::kFailed, d.code, d.detail); }
  void Carry(const policy::EvictDecision& d) { Release(d.instance, /*keep_warm=*/true); }
  void Carry(const policy::RetireDecision& d) { Release(d.instance, /*keep_warm=*/false); }
  void Carry(const policy::StateDecision& d);
  void Carry(const policy::MigrateDecision&) { ++totals_.migrations; }

  bool WaitsForRelease(const policy::LaunchDecision& d) const;
  void Launch(InstanceId id);
  void LaunchDeferred();
  void Release(InstanceId id, bool keep_warm);
  std::optional<std::vector<RequestId>> TakeBatch(InstanceId instance, uint64_t batch);

  // Submits batches while the instance has room (at Flush while held).
  void Dispatch(InstanceId id);
  // The longest run of the `n` requests at the front of the queue that, run together through every stage from
  // `start`, leaves each of them its deadline (at least one).
  size_t DeadlineCut(const Instance& inst, const CarriedFunction& f, size_t n, TimePoint start) const;
  // The modelled time of a batch through every stage and hop, or of its slowest stage (`bottleneck`: how long it
  // holds the pipeline's entry). 0 without batched costs.
  double BatchMs(const Instance& inst, const CarriedFunction& f, int batch, bool bottleneck) const;

  const std::vector<policy::ClusterSlice> slices_;
  policy::Scheduler& scheduler_;
  Mechanism& mechanism_;
  Host& host_;
  const policy::TransferModel transfer_;
  policy::AnswerChecker checker_;
  std::vector<std::optional<CarriedFunction>> functions_;  // by FunctionId
  std::unordered_map<RequestId, OpenRequest> requests_;
  std::map<InstanceId, Instance> instances_;
  std::map<InstanceId, policy::LaunchDecision> deferred_;  // launches waiting for releases
  struct Batch {
    InstanceId instance = 0;
    std::vector<RequestId> requests;
  };
  std::unordered_map<uint64_t, Batch> batches_;                 // submitted, not yet ended
  std::map<std::pair<InstanceId, size_t>, int64_t> releasing_;  // (instance, slice) releases not yet acknowledged:
                                                                // the memory they hold (MiB)
  std::set<size_t> taken_;                                      // slices another tenant holds (kSliceTaken)
  std::multimap<TimePoint, InstanceId> due_;                    // short batches waiting for their timeout
  std::map<InstanceId, FunctionId> warm_;                       // warm copies in host memory
  bool held_ = false;                                           // between Hold and Flush
  std::vector<InstanceId> held_dispatches_;                     // instances to dispatch at Flush, first asked first
  std::vector<policy::Decision> decisions_;  // reused: no call is made while another's are carried out
  TimePoint now_;                            // the current call's
  uint64_t next_batch_ = 1;
  Totals totals_;
};

}  // namespace fluidfaas::carrier
