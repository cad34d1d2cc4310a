// Scheduler: the one interface between FluidFaaS's decisions and whatever carries them out.
//
// The simulator and the node daemon both drive a Scheduler: they feed it events (a request arrived, a stage
// finished, a load finished, a timer tick, a slice was freed) with the current time, and carry out the
// decisions it appends to `out`. FluidFaaSScheduler is this project's policy; the baselines (ESG, INFless,
// exclusive keep-alive) are other implementations of the same interface.
//
// Ownership of a request: the scheduler owns it from OnRequest until it answers Route or Reject for it, in the
// same call. After Route the mechanism owns its execution and reports its end with OnStageFinished(last).
// Decisions about an instance are in causal order: Launch before any Route to it; Retire and Evict only when
// it has no request in flight.
//
// Thread safety: none. A scheduler is driven from one thread (the simulator's loop, or the daemon's control
// thread); it never blocks, sleeps or reads a clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/time.h"
#include "policy/batch_costs.h"
#include "policy/lifecycle.h"
#include "policy/stage_costs.h"

namespace fluidfaas::policy {

using FunctionId = uint32_t;
using InstanceId = uint64_t;
using RequestId = uint64_t;

// A slice of the cluster the scheduler may place on.
struct ClusterSlice {
  std::string id;          // "0:2g.20gb@4"
  int gpu = 0;
  SliceKind kind;
  bool available = true;   // false: held by something outside FluidFaaS until OnSliceFreed
};

struct StagePlacement {
  size_t slice = 0;        // index into the cluster's slices
  size_t first_block = 0;
  size_t last_block = 0;
  int64_t memory_mib = 0;
  int mps_share = -1;      // >= 0: the stage runs on an MPS share (gpu::MpsShares index) of `slice`, a whole
                           // GPU; -1: it has the slice to itself or time-shares it
};

// A function a scheduler serves. Everything pointed to must outlive the scheduler.
struct ServedFunction {
  FunctionId id = 0;
  const model::FunctionSpec* spec = nullptr;
  const StageCostTable* costs = nullptr;  // MIG slice kinds, batch 1
  double slo_ms = 0;
  const BatchCosts* batched = nullptr;    // MIG slice kinds at several batch sizes (batching policies)
  const BatchCosts* mps = nullptr;        // MPS share kinds (MpsKinds) at several batch sizes (INFless)
};

// How long loading takes (every policy is charged the same).
struct LoadCostModel {
  double process_start_ms = 1500;  // a worker process with CUDA and the framework initialised
  double disk_gbs = 2.0;           // reading weights from local NVMe
  double pcie_gbs = 25.0;          // host-to-device copy (PCIe 4.0 x16)

  // Cold: start, read, copy; warm: copy only. `bytes` are the largest stage's weights (stages load in parallel).
  Duration LoadTime(int64_t bytes, bool from_warm) const {
    const double b = static_cast<double>(bytes);
    double ms = b / (pcie_gbs * 1e6);
    if (!from_warm) ms += process_start_ms + b / (disk_gbs * 1e6);
    return MillisF(ms);
  }
};

// ---- events

struct RequestEvent {
  RequestId id = 0;
  FunctionId function = 0;
  TimePoint arrival;
  TimePoint deadline;      // arrival + SLO
};

struct StageEvent {
  RequestId request = 0;
  InstanceId instance = 0;
  size_t stage = 0;
  bool last = true;        // the request is done
  TimePoint started;       // when the stage began running (after its queue)
  TimePoint finished;
};

struct LoadEvent {
  InstanceId instance = 0;
  bool ok = true;          // false: the load failed; the instance is retired
};

// ---- decisions

struct LaunchDecision {    // start (or reload) an instance's processes on its slices
  InstanceId instance = 0;
  FunctionId function = 0;
  std::vector<StagePlacement> stages;
  bool from_warm = false;  // weights are in host memory: a host-to-device copy, no process start
  Duration expected_load{0};
  Duration expected_service{0};  // one request at batch 1, all stages and hops
  int max_batch = 1;       // a stage runs up to this many queued requests of the instance together
  Duration batch_timeout{0};  // with max_batch > 1: how long the oldest request may wait for a fuller batch
};
struct RouteDecision {
  RequestId request = 0;
  InstanceId instance = 0;
};
struct RejectDecision {
  RequestId request = 0;
  std::string reason;
};
struct EvictDecision {     // drop the instance's weights from its slice, keep them in host memory
  InstanceId instance = 0;
};
struct StateDecision {     // an instance changed state (promote, demote, expire): for the mechanism's books
  InstanceId instance = 0;
  InstanceState from = InstanceState::kCold;
  InstanceState to = InstanceState::kCold;
};
struct MigrateDecision {   // new requests go to `to` from now on; `from` drains and is then retired
  InstanceId from = 0;
  InstanceId to = 0;
};
struct RetireDecision {    // stop the instance's processes and release its slices
  InstanceId instance = 0;
};

using Decision = std::variant<LaunchDecision, RouteDecision, RejectDecision, EvictDecision, StateDecision,
                              MigrateDecision, RetireDecision>;

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::string_view name() const = 0;

  virtual void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) = 0;
  virtual void OnStageFinished(const StageEvent& stage, TimePoint now, std::vector<Decision>& out) = 0;
  virtual void OnLoadFinished(const LoadEvent& load, TimePoint now, std::vector<Decision>& out) = 0;
  // Periodic housekeeping (hotness, keep-alive, migration); the driver calls it about once a second.
  virtual void OnTick(TimePoint now, std::vector<Decision>& out) = 0;
  // A slice held outside FluidFaaS became available.
  virtual void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) = 0;
};

}  // namespace fluidfaas::policy
