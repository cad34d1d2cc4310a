// Scheduler: the one interface between FluidFaaS's decisions and whatever carries them out.
//
// The simulator and the node daemon both drive a Scheduler: they feed it events with the current time and carry
// out the decisions it appends to `out`. FluidFaaSScheduler is this project's policy; the baselines (ESG, INFless,
// exclusive keep-alive) are other implementations of the same interface. Schedulers are built by MakeScheduler
// (factory.h), which checks that every function has the cost tables the policy needs.
//
// Events: a request arrived; a stage ran a batch (what really ran: batch size, start, end); a stage failed; a
// load finished or failed; a worker process was lost; a slice was taken by someone outside FluidFaaS, or freed;
// the memory of an evicted or retired instance was released on a slice (the acknowledgement); a timer tick;
// a function deployed or removed.
//
// The answer rule (AnswerChecker, answer_checker.h, checks it on the decision stream of the simulator and of the
// daemon alike):
//  1. Every request ends exactly once: completed (its last stage finished), rejected (Reject, never routed) or
//     failed (Fail, routed but it will not complete), each rejection and failure with a Reason code.
//  2. Ownership. The scheduler owns a request from OnRequest until it answers Route or Reject for it, in the
//     same call. After Route the mechanism owns it until it completes or the mechanism hands it back: a failed
//     stage, a failed load, a lost worker or a taken slice lists the requests it strands, and the scheduler
//     answers each of them in that same call, with Route (to another instance; it runs from its first stage) or
//     Fail.
//  3. Causal order. Launch before any Route to an instance; no Route to an instance after its Evict or Retire
//     until it is launched again; Evict and Retire only of an instance with no request in flight (the requests
//     of a failed instance are handed back first); Migrate names a launched target.
//  4. Memory. Slice memory booked by a Launch stays booked until the instance is evicted or retired and the
//     mechanism acknowledges the release on that slice (OnReleased). A Launch may take over memory still being
//     released only by naming those instances in `after_release`: the mechanism then starts the load once their
//     releases are done. A lost worker or a taken slice frees its memory at once (the process is gone).
//
// Thread safety: none. A scheduler is driven from one thread (the simulator's loop, or the daemon's control
// thread); it never blocks, sleeps or reads a clock.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "model/load_cost.h"
#include "policy/batch_costs.h"
#include "policy/lifecycle.h"
#include "policy/stage_costs.h"

namespace fluidfaas::policy {

using FunctionId = uint32_t;
using InstanceId = uint64_t;
using RequestId = uint64_t;

// Why a request was rejected or failed: the code outputs count by; detail text rides beside it.
enum class Reason : uint8_t {
  kNoCapacity,           // no instance could take it and none could be added
  kDeadlineUnreachable,  // an instance exists or was added, but none can finish before the deadline
  kUnknownFunction,      // no such function is deployed
  kOverloaded,           // admission refused it: queues full (the daemon's overload action)
  kLoadFailed,           // its instance failed to load, and no other could take it in time
  kStageFailed,          // a stage failed while running it
  kWorkerLost,           // the worker process of one of its slices died
  kSliceTaken,           // one of its slices was taken by another tenant or the operator
  kFunctionRemoved,      // its function was removed while it waited
};
inline constexpr int kReasonCount = 9;
std::string_view ToString(Reason reason);

// A slice of the cluster the scheduler may place on.
struct ClusterSlice {
  std::string id;  // "0:2g.20gb@4"
  int gpu = 0;
  SliceKind kind;
  bool available = true;  // false: held by something outside FluidFaaS until OnSliceFreed
};

struct StagePlacement {
  size_t slice = 0;  // index into the cluster's slices
  size_t first_block = 0;
  size_t last_block = 0;
  int64_t memory_mib = 0;   // booked on the slice, the worker process's reserve included
  int64_t reserve_mib = 0;  // the part of memory_mib that is the worker process's reserve: one process per slice
                            // hosts all its residents, so it counts once per slice (0: a process of its own)
  int mps_share = -1;       // >= 0: the stage runs on an MPS share (gpu::MpsShares index) of `slice`, a whole
                            // GPU; -1: it has the slice to itself or time-shares it
};

// A function a scheduler serves; the scheduler holds its cost tables (shared, immutable).
struct ServedFunction {
  FunctionId id = 0;
  std::shared_ptr<const model::FunctionSpec> spec;  // may be shared by the functions of one model
  std::shared_ptr<const StageCostTable> costs;      // MIG slice kinds, batch 1 (every policy)
  double slo_ms = 0;
  std::shared_ptr<const BatchCosts> batched;  // MIG slice kinds at several batch sizes (batching policies)
  std::shared_ptr<const BatchCosts> mps;      // MPS share kinds (MpsKinds) at several batch sizes (INFless)
  std::string name;                           // the function's own; empty: its model's (spec->name)
  std::string_view Name() const { return name.empty() ? std::string_view(spec->name) : std::string_view(name); }
};

// The checks every policy makes of a function it is asked to serve: a spec and batch-1 costs that agree on the
// blocks, a finite positive SLO, and the tables the policy needs (`batched`, `mps`). InvalidArgument naming the
// function otherwise.
Status CheckServedFunction(const ServedFunction& f, bool needs_batched, bool needs_mps);

// The time to load an instance (cold or from a warm copy): model/load_cost.h, the runtime's too.
using LoadCostModel = model::LoadCostModel;

// ---- events

struct RequestEvent {
  RequestId id = 0;
  FunctionId function = 0;
  TimePoint arrival;
  TimePoint deadline;  // arrival + SLO (or the caller's own timeout)
};

// A stage ran one batch. Busy time counts once per batch: [started, finished) on the stage's slice.
struct StageFinished {
  InstanceId instance = 0;
  size_t stage = 0;
  uint64_t batch = 0;                   // the mechanism's id of the batch (for logs and traces)
  bool last = true;                     // the instance's last stage: these requests are complete
  std::span<const RequestId> requests;  // the batch (its size is requests.size())
  TimePoint started;                    // when the batch began running (after its queue)
  TimePoint finished;
};

// A stage failed on a batch: its requests are handed back (the instance stays).
struct StageFailed {
  InstanceId instance = 0;
  size_t stage = 0;
  uint64_t batch = 0;
  std::span<const RequestId> requests;
  std::string_view detail;
};

struct LoadFinished {
  InstanceId instance = 0;
  bool ok = true;  // false: the load failed; its slices must be released (Retire)
  std::string_view detail;
  std::span<const RequestEvent> stranded;  // on failure: the requests routed to it, handed back
};

// A worker process died (kWorkerLost: the slice stays usable) or the slice was taken away (kSliceTaken: it is
// unavailable until OnSliceFreed). Every instance with a stage on the slice is gone, and its memory there free.
struct SliceLost {
  size_t slice = 0;
  Reason reason = Reason::kWorkerLost;
  std::string_view detail;
  std::span<const RequestEvent> stranded;  // every request routed to those instances and not complete
};

// An evicted or retired instance's memory on `slice` is free.
struct Released {
  InstanceId instance = 0;
  size_t slice = 0;
};

// ---- decisions

struct LaunchDecision {  // start (or reload) an instance's processes on its slices
  InstanceId instance = 0;
  FunctionId function = 0;
  std::vector<StagePlacement> stages;
  bool from_warm = false;  // weights are in host memory: a host-to-device copy, no process start
  Duration expected_load{0};
  Duration expected_service{0};           // one request at batch 1, all stages and hops
  int max_batch = 1;                      // a stage runs up to this many queued requests of the instance together
  Duration batch_timeout{0};              // with max_batch > 1: how long the oldest request may wait for a fuller batch
  bool batch_by_deadline = false;         // cut a batch short so that every request in it still meets its deadline
                                          // (the longest such run of the queue, at least one request)
  std::vector<InstanceId> after_release;  // evicted or retired instances whose memory on these slices this
                                          // launch takes over: load once their releases are acknowledged
};
struct RouteDecision {
  RequestId request = 0;
  InstanceId instance = 0;
};
struct RejectDecision {  // a request the scheduler owns, never routed, ends here
  RequestId request = 0;
  Reason code = Reason::kNoCapacity;
  std::string detail;
};
struct FailDecision {  // a request handed back by the mechanism ends here
  RequestId request = 0;
  Reason code = Reason::kStageFailed;
  std::string detail;
};
struct EvictDecision {  // drop the instance's weights from its slice, keep them in host memory
  InstanceId instance = 0;
};
struct StateDecision {  // an instance changed state (promote, demote, expire): for the mechanism's books
  InstanceId instance = 0;
  InstanceState from = InstanceState::kCold;
  InstanceState to = InstanceState::kCold;
};
struct MigrateDecision {  // new requests go to `to` from now on; `from` drains and is then retired
  InstanceId from = 0;
  InstanceId to = 0;
};
struct RetireDecision {  // stop the instance's processes and release its slices
  InstanceId instance = 0;
};

using Decision = std::variant<LaunchDecision, RouteDecision, RejectDecision, FailDecision, EvictDecision, StateDecision,
                              MigrateDecision, RetireDecision>;

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::string_view name() const = 0;

  virtual void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) = 0;
  virtual void OnStageFinished(const StageFinished& stage, TimePoint now, std::vector<Decision>& out) = 0;
  virtual void OnStageFailed(const StageFailed& stage, TimePoint now, std::vector<Decision>& out) = 0;
  virtual void OnLoadFinished(const LoadFinished& load, TimePoint now, std::vector<Decision>& out) = 0;
  virtual void OnSliceLost(const SliceLost& lost, TimePoint now, std::vector<Decision>& out) = 0;
  virtual void OnReleased(const Released& released, TimePoint now, std::vector<Decision>& out) = 0;
  // A slice held outside FluidFaaS became available.
  virtual void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) = 0;
  // Periodic housekeeping (hotness, keep-alive, migration); the driver calls it about once a second.
  virtual void OnTick(TimePoint now, std::vector<Decision>& out) = 0;

  // A function deployed at run time. InvalidArgument when its cost tables do not suit the policy, or its id
  // is taken.
  virtual Status Deploy(ServedFunction function) = 0;
  // A function removed: requests for it are rejected from now on (kUnknownFunction); its instances take no
  // new request, finish what they have, and are retired.
  virtual Status Remove(FunctionId function, TimePoint now, std::vector<Decision>& out) = 0;

  // The first violation of the policy's own invariants (its books), or Ok. Cheap enough to ask every tick.
  virtual Status Invariants() const = 0;
};

}  // namespace fluidfaas::policy
