// NodeRuntime: the mechanism of one node. It starts and watches one worker process per slice in use, wires each
// pipeline instance's stages with shared-memory rings (node -> stage 0 -> ... -> stage n-1 -> node), feeds
// batches in, reads results out, keeps the books of warm copies against the host-memory budget, and reports
// what happened as events: the facts the scheduler's events (policy/scheduler.h) are made of.
//
// Lifecycle of an instance: Launch (asynchronous: LoadDone when every stage has loaded, or failed) -> Submit
// batches (each ends in exactly one BatchCompleted, BatchFailed or WorkerLost) -> Evict or Retire (only with
// nothing in flight; one StageReleased per stage when its worker has dropped the device copy). A worker that dies
// (SIGKILL, a crash) is noticed through its control socket and pidfd within the monitor's 50 ms poll: every
// instance with a stage on its slice is gone, its batches in flight are listed in WorkerLost, its stages on other
// slices are evicted (each acknowledged with StageReleased; its memory on the lost slice is free at once), its
// warm copies leave the books, and the worker is started again after a backoff (100 ms doubling to 10 s; reset after 30
// s of life). A worker that answers no heartbeat for heartbeat_timeout (stopped, or its control thread stuck) is killed
// and handled the same way. Launch on a slice whose worker is in backoff is refused (Unavailable), so the scheduler
// places elsewhere.
//
// Migration (MigrateDecision) needs nothing special here: launch the target while the source serves, submit new
// batches to the target, retire the source once InFlight(source) is 0.
//
// Events are delivered on the runtime's own threads (the monitor, and one collector per instance), never under
// its lock: the sink may call back into the runtime. The node daemon's sink posts them to its control thread.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "runtime/executor.h"
#include "runtime/residency.h"
#include "runtime/ring.h"
#include "runtime/worker_process.h"

namespace fluidfaas::runtime {

struct RuntimeSlice {
  std::string id;    // "0:2g.20gb@4"
  std::string uuid;  // "MIG-..." (made up on an emulated node)
};

struct RuntimeOptions {
  std::string worker_binary;         // fluidfaas-worker
  std::vector<RuntimeSlice> slices;  // the node's slices; indices match the scheduler's ClusterSlice indices
  int64_t host_memory_bytes = DefaultHostMemoryBytes();  // budget for warm copies (node config host_memory_gib)
  uint32_t ring_slots = 4;                               // slots per hop ring, 2..1024
  Duration restart_min = Millis(100);
  Duration restart_max = Seconds(10);
  Duration heartbeat_interval = Seconds(1);  // a ping to every worker this often
  Duration heartbeat_timeout = Seconds(5);   // no message for this long: the worker is hung; killed and restarted
  Duration start_timeout = Seconds(60);      // no "ready" for this long after its start: the same
  std::string worker_log_level = "warn";
};

struct PipelineStage {
  size_t slice = 0;
  StageSpec spec;
  uint64_t output_bytes_per_sample = 0;  // the hop after this stage (the planner's hop bytes)
};

struct PipelineSpec {
  uint64_t instance = 0;
  std::vector<PipelineStage> stages;  // 1..kMaxStages, in order
  int max_batch = 1;
  uint64_t input_bytes_per_sample = 0;
};

// An input tensor for Submit: bytes in row-major order, batch first.
struct TensorView {
  uint32_t dtype = 0;  // model::DType
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;
};

// ---- events
struct BatchCompleted {
  uint64_t instance = 0;
  uint64_t batch = 0;
  std::vector<uint64_t> requests;
  std::vector<StageTiming> timings;  // per stage, CLOCK_MONOTONIC ns
  int64_t completed_ns = 0;          // when the node read the result
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  std::vector<std::byte> output;
};
struct BatchFailed {
  uint64_t instance = 0;
  size_t stage = 0;
  uint64_t batch = 0;
  std::vector<uint64_t> requests;
  std::string detail;
};
struct LoadDone {
  uint64_t instance = 0;
  bool ok = true;
  std::string detail;
  bool from_warm = false;  // every stage came from a warm copy
  double load_ms = 0;      // the slowest stage's
};
struct StrandedBatch {
  uint64_t instance = 0;
  uint64_t batch = 0;
  std::vector<uint64_t> requests;
};
struct WorkerLost {
  size_t slice = 0;
  std::string detail;
  std::vector<uint64_t> instances;  // gone: every live instance with a stage on the slice (Retire is not needed)
  std::vector<StrandedBatch> stranded;
};
struct StageReleased {
  uint64_t instance = 0;
  size_t slice = 0;
};
using RuntimeEvent = std::variant<BatchCompleted, BatchFailed, LoadDone, WorkerLost, StageReleased>;
using EventSink = std::function<void(RuntimeEvent)>;

struct RuntimeStats {
  size_t workers_alive = 0;
  uint64_t worker_restarts = 0;
  size_t instances = 0;
  size_t batches_in_flight = 0;
  int64_t warm_bytes = 0;
  size_t warm_copies = 0;
  std::vector<int> worker_pids;  // per slice; 0 where none runs
};

// What the node's controller asks of its runtime: launch a pipeline, submit a batch, evict or retire an
// instance, and its counters; events come back through the EventSink the mechanism was made with. NodeRuntime is
// the real one (worker processes); the controller's tests use a fake (daemon/fake_mechanism.h).
class NodeMechanism {
 public:
  virtual ~NodeMechanism() = default;
  virtual Status Launch(const PipelineSpec& spec) = 0;
  virtual Status Submit(uint64_t instance, uint64_t batch, std::span<const uint64_t> requests,
                        const TensorView& input) = 0;
  virtual Status Evict(uint64_t instance, bool keep_warm) = 0;
  virtual RuntimeStats Stats() const = 0;
};

class NodeRuntime final : public NodeMechanism {
 public:
  // InvalidArgument for bad options (no worker binary, no slices, ranges).
  static Result<std::unique_ptr<NodeRuntime>> Start(RuntimeOptions options, EventSink sink);
  ~NodeRuntime() override;  // stops every worker and thread; every segment goes with them

  // InvalidArgument for a bad spec, AlreadyExists for a live instance id, Unavailable when a slice's worker is
  // restarting.
  Status Launch(const PipelineSpec& spec) override;
  // Feeds a batch to the instance's first stage (loaded or still loading). ResourceExhausted when its ring is
  // full (back-pressure; nothing was taken), NotFound for an unknown instance, InvalidArgument for a batch that
  // does not fit. Once it returns Ok, exactly one event ends the batch.
  Status Submit(uint64_t instance, uint64_t batch, std::span<const uint64_t> requests,
                const TensorView& input) override;
  // FailedPrecondition with batches in flight. Each stage's release comes as StageReleased.
  Status Evict(uint64_t instance, bool keep_warm) override;
  Status Retire(uint64_t instance) { return Evict(instance, false); }

  size_t InFlight(uint64_t instance) const;
  RuntimeStats Stats() const override;
  // Fault injection: SIGKILL the worker of `slice` (noticed like any death).
  Status KillWorker(size_t slice);

 private:
  struct Instance;
  struct Worker {
    std::unique_ptr<WorkerProcess> process;
    int64_t started_ns = 0;
    int64_t restart_at_ns = 0;  // > 0: dead, start again then
    int64_t backoff_ns = 0;
    int64_t last_heard_ns = 0;  // any message from it
    int64_t last_ping_ns = 0;
    bool ready = false;   // said "ready": heartbeats count from then (starting LibTorch takes about a second)
    bool in_use = false;  // has hosted a stage: restart it after a death
  };

  NodeRuntime(RuntimeOptions options, EventSink sink);
  void Monitor();
  // Each returns the events to deliver once the lock is released.
  void HandleMessage(size_t slice, const nlohmann::json& body, std::vector<RuntimeEvent>& events) REQUIRES(mu_);
  void HandleDeath(size_t slice, const std::string& detail, std::vector<RuntimeEvent>& events,
                   std::vector<std::shared_ptr<Instance>>& stopped) REQUIRES(mu_);
  Status StartWorker(size_t slice) REQUIRES(mu_);
  void Collect(const std::shared_ptr<Instance>& instance);
  void Deliver(std::vector<RuntimeEvent>& events);

  const RuntimeOptions options_;
  const EventSink sink_;
  mutable Mutex mu_;
  std::vector<Worker> workers_ GUARDED_BY(mu_);  // per slice
  std::map<uint64_t, std::shared_ptr<Instance>> instances_ GUARDED_BY(mu_);
  HostResidency residency_ GUARDED_BY(mu_);
  uint64_t restarts_ GUARDED_BY(mu_) = 0;
  std::atomic<bool> stop_{false};
  std::thread monitor_;
};

}  // namespace fluidfaas::runtime
