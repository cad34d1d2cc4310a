// Controller::Impl: the node daemon's controller inside, shared by the files that each do one of its jobs:
//   control_loop.cc    the control thread (its own, or turns posted to an event loop), its task queues, shutdown
//   admission.cc       Controller::Infer: the checks before a request is admitted
//   request_table.cc   open requests: arrival (with the newcomer's cold-start rule), answers, the one callback
//   carrier.cc         the node's side of the shared carrier (carrier/carrier.h, which carries out the scheduler's
//                      decisions and forms batches for the simulator too): launches, batches and evictions handed
//                      to the runtime, requests ended
//   runtime_events.cc  the runtime's events handed to the carrier
//   deploy.cc          deploying and removing functions
//   generation.cc      generative functions: the GenerationNode on the control thread, the node's slices leased
//                      to it from the scheduler's, sequences and their tokens
//   snapshot.cc        /v1/node
//   metrics.cc         Prometheus text
// controller.cc is the wiring: Start, the public methods that only delegate.
//
// Thread safety: fields under `mu` are GUARDED_BY it; the rest belong to the control thread (or, once it has
// ended, to whoever holds closed_mu).
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "carrier/carrier.h"
#include "carrier/generation_node.h"
#include "common/limits.h"
#include "common/mutex.h"
#include "common/rate_meter.h"
#include "common/wake_round.h"
#include "daemon/controller.h"
#include "daemon/gen_engine.h"
#include "daemon/lateness.h"
#include "daemon/repository.h"
#include "gpu/mps.h"
#include "model/zoo.h"
#include "policy/cold_start.h"
#include "policy/factory.h"
#include "policy/serve_function.h"

namespace fluidfaas::daemon {

using policy::Decision;
using policy::FunctionId;
using policy::InstanceId;
using policy::Reason;
using policy::RequestId;

inline constexpr double kDefaultSloScale = 5.0;
inline constexpr Duration kTick = Seconds(1);

// Latency histogram buckets, seconds.
inline constexpr double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct Histogram {
  std::vector<uint64_t> counts = std::vector<uint64_t>(std::size(kBuckets) + 1, 0);
  double sum = 0;
  uint64_t count = 0;
  void Observe(double seconds) {
    size_t i = 0;
    while (i < std::size(kBuckets) && seconds > kBuckets[i]) ++i;
    ++counts[i];
    sum += seconds;
    ++count;
  }
};

inline std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += labels[i].first + "=\"" + labels[i].second + "\"";  // names and codes are plain (no escaping needed)
  }
  return out + "}";
}

struct Controller::Impl final : carrier::Mechanism, carrier::Host {
  struct Function {
    FunctionId id = 0;
    FunctionConfig config;
    FunctionRef info;
    std::string dir;                                 // a TorchScript function directory; empty for a zoo model
    std::vector<std::vector<int64_t>> block_inputs;  // of a TorchScript function: each block's input per sample
    std::shared_ptr<const model::FunctionSpec> spec;
    std::shared_ptr<const policy::StageCostTable> costs;  // the carrier's (carrier::CarriedFunction)
    std::shared_ptr<const policy::BatchCosts> batched;
    std::shared_ptr<const policy::BatchCosts> mps;
    uint64_t input_bytes = 0;  // per sample
    bool removed = false;
  };
  struct Request {
    FunctionId function = 0;
    TimePoint arrival;
    TimePoint deadline;
    std::vector<std::byte> input;
    InferCallback done;
    double slo_ms = 0;
    bool own_deadline = false;  // the caller gave timeout_ms
  };
  ControllerOptions options;
  std::unique_ptr<RealClock> own_clock;  // when none is injected
  Clock* clock = nullptr;
  int64_t epoch_ns = 0;  // CLOCK_MONOTONIC of clock's time 0
  std::vector<policy::ClusterSlice> cluster;
  std::unique_ptr<gpu::MpsShares> mps_shares;
  model::LatencyModel latency;
  runtime::NodeMechanism* runtime = nullptr;

  // ---- shared with other threads
  mutable Mutex mu;
  std::condition_variable_any wake;
  std::deque<std::function<void()>> tasks GUARDED_BY(mu);
  std::deque<std::function<void()>> runtime_tasks GUARDED_BY(mu);  // the runtime's events, run first
  bool stop GUARDED_BY(mu) = false;
  bool draining GUARDED_BY(mu) = false;
  size_t open GUARDED_BY(mu) = 0;                            // admitted, not answered
  size_t open_bytes GUARDED_BY(mu) = 0;                      // their inputs' bytes
  std::atomic<double> late_margin{0};                        // LatenessMargin's learned margin, capped,
  std::atomic<int64_t> late_margin_at_us{0};                 // and its last observation (clock's micros)
  std::map<std::string, Function> functions GUARDED_BY(mu);  // written on the control thread only
  std::vector<const Function*> by_id;                        // functions by FunctionId (control thread)
  std::vector<std::unique_ptr<Function>> removed_functions;  // replaced by a new deployment of their name
  std::condition_variable_any idle;                          // open == 0
  // metrics
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> ends GUARDED_BY(mu);  // (function,
                                                                                              // outcome, code)
  std::map<std::string, Histogram> latency_hist GUARDED_BY(mu);                               // by function
  std::map<std::string, Histogram> queue_hist GUARDED_BY(mu);
  std::map<std::string, Histogram> compute_hist GUARDED_BY(mu);
  struct BatchCount {
    uint64_t batches = 0;
    uint64_t requests = 0;
  };
  std::map<std::string, BatchCount> batches GUARDED_BY(mu);  // completed, by function
  uint64_t violations GUARDED_BY(mu) = 0;
  nlohmann::json node_snapshot GUARDED_BY(mu) = nlohmann::json::object();

  // ---- control thread only
  // The 99.9th percentile of completions at most 5 s old, not applied after 2 s without one (the variants
  // measured: docs/daemon.md, "Overload"); the cap is options.late_margin_cap, applied where it is published.
  static constexpr Duration kLateHold = Seconds(2);
  LatenessMargin lateness{0.5, 1024, 0.999, kLateHold, Seconds(5)};
  std::unique_ptr<policy::Scheduler> scheduler;
  std::unique_ptr<carrier::Carrier> carrier;                // its books: instances, queues, batches in flight, releases
  std::unordered_map<RequestId, Request> requests;          // their payloads (the carrier keeps their place)
  std::unordered_map<FunctionId, RateMeter> arrival_rates;  // requests admitted, per function (the cluster report)
  RequestId next_request = 1;
  FunctionId next_function = 0;
  std::thread thread;  // without options.loop
  // On options.loop: a turn is posted to it when work comes in and none is pending; a timer wakes it for the
  // next due batch or tick. What is posted holds `link`, not the controller: Shutdown cuts it (on the loop).
  struct LoopLink {
    Impl* impl = nullptr;  // loop thread; null once the controller has stopped
  };
  std::shared_ptr<LoopLink> link;
  bool turn_posted GUARDED_BY(mu) = false;
  std::optional<TimePoint> timer_at;  // the turn the loop's timer is set for (control thread)
  void Kick() REQUIRES(mu);           // posts a turn to options.loop unless one is pending
  void LoopTurn();                    // a turn on options.loop, then its timer
  void ArmTimer();
  Mutex closed_mu;       // after the thread ends: serializes Close and the calls that run in its place
  bool closing = false;  // the loop has stopped; set by Close

  // ---------------------------------------------------------------- plumbing
  // False once the loop has stopped: the task is not queued.
  bool Post(std::function<void()> task);
  // Post's queueing, for a caller that holds mu (and has checked stop).
  void PostLocked(std::function<void()> task) REQUIRES(mu) {
    tasks.push_back(std::move(task));
    if (options.loop != nullptr) return Kick();
    // An edge's loop hands over its round's requests with one wake-up (common/wake_round.h).
    DeferWake(this, [](void* impl) { static_cast<Impl*>(impl)->wake.notify_one(); });
  }
  // Why the node turns any new request away, whatever its function: stopped, draining, or at its limit of open
  // requests or of their input bytes; as (code, detail). None when it may be admitted. Infer and Generate ask it.
  std::optional<std::pair<std::string, std::string>> NodeRefusal(size_t input_bytes) const REQUIRES(mu);
  // The function label of a request turned away: its name when deployed, else "unknown" (names from outside
  // never become label values).
  std::string RefusedLabel(const std::string& function) const REQUIRES(mu) {
    const auto it = functions.find(function);
    return it != functions.end() && !it->second.removed ? function : "unknown";
  }
  // The runtime's events go ahead of new requests: a finished batch frees its slice for the next one, and under a
  // flood of requests it would otherwise wait behind thousands of them.
  void PostRuntime(std::function<void()> task);
  // Runs the runtime's events posted so far.
  void RunRuntimeTasks();

  TimePoint FromNanos(int64_t ns) const { return AtMicros((ns - epoch_ns) / 1000); }

  void Loop();
  // One turn of the loop: what is posted, due batches, the tick when due. `wait`: first wait up to 20 ms (or the
  // next due batch) for work. Returns the tasks run, or nullopt once stopped.
  std::optional<size_t> Turn(bool wait);
  TimePoint next_tick;

  // One scheduler call, its decisions carried out; the first answer-rule violation is logged and counted.
  void Apply(const std::function<void(std::vector<Decision>&)>& call) {
    carrier->Apply(clock->Now(), call);
    CountViolations();
  }
  void CountViolations() {
    const int seen = carrier->checker().violations();
    if (seen == 0) return;
    MutexLock lock(mu);
    if (violations == 0) spdlog::error("answer rule violated: {}", carrier->checker().status().message());
    violations = static_cast<uint64_t>(seen);
  }

  // ---------------------------------------------------------------- answering
  void Answer(RequestId id, Outcome outcome, Reason code, const std::string& detail);

  // The learned margin to plan with now (any thread).
  double LateMargin() const;

  // The one place a request's callback runs: metrics, the open count, then the callback.
  void Finish(const Request& r, InferResult result);

  // Per request, so by index rather than a walk over the map (ids are given out in order; map nodes stay put).
  const Function* FindFunction(FunctionId id) const { return id < by_id.size() ? by_id[id] : nullptr; }
  const std::string& FunctionName(FunctionId id) const;

  // ---------------------------------------------------------------- the carrier's mechanism and host
  Status Launch(const policy::LaunchDecision& d) override;
  Status Submit(InstanceId instance, uint64_t batch, std::span<const RequestId> ids) override;
  Status Evict(InstanceId instance, bool keep_warm) override;
  void Ended(RequestId id, carrier::Ending ending, Reason code, const std::string& detail) override;
  void Later(std::function<void(TimePoint)> task) override;
  // The loop asks carrier->NextDue() before it waits: nothing to do here.
  void WakeAt(TimePoint) override {}

  // ---------------------------------------------------------------- events from HTTP and the runtime
  void Arrive(RequestId id, Request r);

  void BatchCompleted(runtime::BatchCompleted& done);

  void BatchFailed(const runtime::BatchFailed& failed);

  void LoadDone(const runtime::LoadDone& load);

  void WorkerLost(runtime::WorkerLost& lost);

  void Released(const runtime::StageReleased& r);

  void OnRuntimeEvent(runtime::RuntimeEvent e);

  // ---------------------------------------------------------------- deploy
  // A function ready to install: its spec and cost tables, built off the control thread.
  struct Prepared {
    FunctionConfig config;                           // name filled in
    std::string dir;                                 // a TorchScript directory; empty for a zoo model
    std::vector<std::vector<int64_t>> block_inputs;  // its blocks' input shapes
    policy::ServedFunction served;
  };

  Status CheckNotDeployed(const std::string& name) const;

  // Any thread: reads only what Start set up.
  Result<Prepared> Prepare(const FunctionConfig& in) const;

  // Control thread.
  Status Install(Prepared p);

  // Runs `task` on the control thread and waits for it.
  template <typename T>
  T RunOnControl(std::function<T()> task) {
    if (options.loop != nullptr && options.loop->InLoop()) {
      if (link->impl != nullptr) return task();  // this thread is the control thread, between turns
      MutexLock lock(closed_mu);
      return task();
    }
    std::promise<T> promise;
    auto future = promise.get_future();
    if (!Post([&] { promise.set_value(task()); })) {
      MutexLock lock(closed_mu);  // the control thread has ended: run here, one caller at a time
      return task();
    }
    return future.get();
  }

  // After the control thread has ended: runs what was posted to it (a request not yet arrived is answered
  // "shutdown"), then answers every open request "shutdown". Every request ends exactly once, even here.
  void Close();
  void AnswerShutdown(const Request& r);

  void Snapshot();

  // ---------------------------------------------------------------- generation (generation.cc)
  struct GenFunction {
    size_t index = 0;  // in the GenerationNode
    FunctionRef info;
    bool removed = false;
    bool in_workers = false;  // a TorchScript function: the worker engine runs it (gen_engine.h)
  };
  struct Generation {
    uint64_t handle = 0;
    size_t function = 0;  // GenerationNode index
    std::string name;
    int prompt_tokens = 0;
    uint64_t seed = 0;            // the emulated executor's tokens: from the prompt
    std::vector<int64_t> prompt;  // a function run in the workers: its tokens
    GenerateCallbacks callbacks;
    TimePoint arrival;
    std::optional<TimePoint> first;
    int generated = 0;
    bool stop_completes = false;  // Stop(completed): a cancel that ends it completed
  };
  struct GenBridge;  // the GenerationNode's lease of the node's slices and its listener
  std::map<std::string, GenFunction> gen_functions GUARDED_BY(mu);  // written on the control thread only
  std::shared_ptr<GenBridge> gen_bridge;  // shared: its type is complete only in generation.cc
  std::unique_ptr<carrier::GenerationNode> gen;
  std::unique_ptr<WorkerGenEngine> gen_engine;           // runs TorchScript generative functions in the workers
  std::vector<bool> gen_taken;                           // slices the generation node holds (control thread)
  std::unordered_map<uint64_t, Generation> generations;  // open, by sequence id (control thread)
  std::unordered_map<uint64_t, uint64_t> gen_sequences;  // handle -> sequence id (control thread)
  std::atomic<uint64_t> next_gen_handle{1};
  std::map<std::string, Histogram> ttft_hist GUARDED_BY(mu);  // by function
  std::map<std::string, Histogram> tpot_hist GUARDED_BY(mu);
  std::map<std::string, uint64_t> gen_tokens GUARDED_BY(mu);

  void StartGeneration();  // at Start: the node and its bridge
  double GenSeconds(TimePoint t) const { return static_cast<double>(ToMicros(t)) / 1e6; }
  std::optional<TimePoint> GenNextDue() const;
  Result<GenFunction> AddGenerative(const FunctionConfig& c, const InspectedGenerative* directory);
  Status DeployGenerative(const FunctionConfig& c, const InspectedGenerative* directory);
  Result<std::optional<InspectedGenerative>> GenerativeDirectory(const FunctionConfig& c) const;
  void GenArrive(Generation g, int prompt_tokens, int max_tokens);
  void GenStop(uint64_t handle, bool completed);
  void GenToken(uint64_t seq, int index, int64_t token);
  void GenEnded(uint64_t seq, std::string_view refusal);
  bool GenRuntimeEvent(runtime::RuntimeEvent& e);  // the worker engine's instances' events; false: not one of them
  void FinishGeneration(Generation& g, GenerateEnd end);
  void CloseGenerations();  // after the loop: every open generation ends "shutdown"
};

}  // namespace fluidfaas::daemon
