#include "daemon/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "common/limits.h"
#include "common/mutex.h"
#include "daemon/lateness.h"
#include "gpu/mps.h"
#include "model/zoo.h"
#include "policy/cold_start.h"
#include "policy/factory.h"
#include "policy/serve_function.h"
#include "sim/experiment.h"

namespace fluidfaas::daemon {

using policy::Decision;
using policy::FunctionId;
using policy::InstanceId;
using policy::Reason;
using policy::RequestId;

std::string_view ToString(Outcome outcome) {
  switch (outcome) {
    case Outcome::kCompleted: return "completed";
    case Outcome::kRejected: return "rejected";
    case Outcome::kFailed: return "failed";
  }
  return "?";
}

namespace {

constexpr double kDefaultSloScale = 5.0;
constexpr Duration kTick = Seconds(1);

// Latency histogram buckets, seconds.
constexpr double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

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

std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += labels[i].first + "=\"" + labels[i].second + "\"";  // names and codes are plain (no escaping needed)
  }
  return out + "}";
}

}  // namespace

struct Controller::Impl {
  struct Function {
    FunctionId id = 0;
    FunctionConfig config;
    FunctionInfo info;
    std::string dir;                                 // a TorchScript function directory; empty for a zoo model
    std::vector<std::vector<int64_t>> block_inputs;  // of a TorchScript function: each block's input per sample
    std::shared_ptr<const model::FunctionSpec> spec;
    std::shared_ptr<const policy::BatchCosts> batched;  // for the deadline cut of a batch
    uint64_t input_bytes = 0;                           // per sample
    bool removed = false;
  };
  struct Request {
    FunctionId function = 0;
    TimePoint arrival;
    TimePoint deadline;
    std::vector<std::byte> input;
    InferCallback done;
    InstanceId instance = 0;
    TimePoint routed;  // when it joined its instance's queue
    double slo_ms = 0;
    bool own_deadline = false;  // the caller gave timeout_ms
  };
  struct Instance {
    FunctionId function = 0;
    std::vector<policy::StagePlacement> stages;
    int max_batch = 1;
    Duration batch_timeout{0};  // with max_batch > 1: how long the oldest queued request waits for a fuller batch
    bool batch_by_deadline = false;
    TimePoint busy_until;  // modelled end of the batches submitted (for the deadline cut of one that waits)
    TimePoint wake_at = TimePoint::max();  // its entry in dispatch_at, while a short batch waits for its timeout
    bool loaded = false;
    bool in_runtime = true;       // false: the runtime refused its launch (nothing to evict there)
    std::deque<RequestId> queue;  // routed, not yet submitted
    size_t in_flight = 0;         // batches submitted
    policy::InstanceState state = policy::InstanceState::kLoading;
  };

  ControllerOptions options;
  RealClock clock;
  int64_t epoch_ns = 0;  // CLOCK_MONOTONIC of clock's time 0
  std::vector<policy::ClusterSlice> cluster;
  std::unique_ptr<gpu::MpsShares> mps_shares;
  model::LatencyModel latency;
  runtime::NodeRuntime* runtime = nullptr;

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
  uint64_t pipelines GUARDED_BY(mu) = 0;
  uint64_t migrations GUARDED_BY(mu) = 0;
  uint64_t evictions GUARDED_BY(mu) = 0;
  uint64_t launches GUARDED_BY(mu) = 0;
  uint64_t violations GUARDED_BY(mu) = 0;
  nlohmann::json node_snapshot GUARDED_BY(mu) = nlohmann::json::object();

  // ---- control thread only
  // The 99.9th percentile of completions at most 5 s old, not applied after 2 s without one (the variants
  // measured: docs/daemon.md, "Overload"); the cap is options.late_margin_cap, applied where it is published.
  static constexpr Duration kLateHold = Seconds(2);
  LatenessMargin lateness{0.5, 1024, 0.999, kLateHold, Seconds(5)};
  std::unique_ptr<policy::Scheduler> scheduler;
  std::unique_ptr<policy::AnswerChecker> checker;
  std::unordered_map<RequestId, Request> requests;
  std::map<InstanceId, Instance> instances;
  std::map<uint64_t, std::vector<RequestId>> batches;  // submitted batch -> its requests
  std::set<std::pair<InstanceId, size_t>> releasing;   // (instance, slice) releases not yet acknowledged
  std::vector<policy::LaunchDecision> deferred;        // launches waiting for releases
  std::multimap<TimePoint, InstanceId> dispatch_at;    // short batches waiting for their timeout
  std::vector<Decision> decisions;
  RequestId next_request = 1;
  uint64_t next_batch = 1;
  FunctionId next_function = 0;
  std::thread thread;
  Mutex closed_mu;       // after the thread ends: serializes Close and the calls that run in its place
  bool closing = false;  // the loop has stopped; set by Close

  // ---------------------------------------------------------------- plumbing
  // False once the loop has stopped: the task is not queued.
  bool Post(std::function<void()> task) {
    MutexLock lock(mu);
    if (stop) return false;
    tasks.push_back(std::move(task));
    wake.notify_one();
    return true;
  }
  // The runtime's events go ahead of new requests: a finished batch frees its slice for the next one, and under a
  // flood of requests it would otherwise wait behind thousands of them.
  void PostRuntime(std::function<void()> task) {
    MutexLock lock(mu);
    if (stop) return;  // the runtime's events after shutdown: every request was answered by Close
    runtime_tasks.push_back(std::move(task));
    wake.notify_one();
  }
  // Runs the runtime's events posted so far.
  void RunRuntimeTasks() {
    std::deque<std::function<void()>> ready;
    {
      MutexLock lock(mu);
      ready.swap(runtime_tasks);
    }
    for (auto& t : ready) t();
  }

  TimePoint FromNanos(int64_t ns) const { return AtMicros((ns - epoch_ns) / 1000); }

  void Loop() {
    TimePoint next_tick = clock.Now() + kTick;
    for (;;) {
      std::deque<std::function<void()>> batch;
      {
        MutexLock lock(mu);
        auto wait = std::chrono::milliseconds(20);
        if (!dispatch_at.empty()) {
          wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(
                                    std::max(Duration{0}, dispatch_at.begin()->first - clock.Now())));
        }
        lock.WaitFor(wake, wait, [&] {
          mu.AssertHeld();
          return stop || !tasks.empty() || !runtime_tasks.empty();
        });
        if (stop) return;
        batch.swap(tasks);
      }
      RunRuntimeTasks();
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]();
        if (i % 16 == 15) RunRuntimeTasks();
      }
      RunRuntimeTasks();
      DispatchDue();
      const TimePoint now = clock.Now();
      if (now >= next_tick) {
        next_tick = now + kTick;
        Apply([&](auto& out) { scheduler->OnTick(now, out); });
        if (Status s = scheduler->Invariants(); !s.ok()) spdlog::error("scheduler invariants: {}", s.message());
        Snapshot();
      }
    }
  }

  template <typename Call>
  void Apply(Call call) {
    std::vector<Decision>& out = decisions;  // reused: no scheduler call is made while another's are carried out
    out.clear();
    call(out);
    for (Decision& d : out) {
      checker->OnDecision(d);
      std::visit([this](auto& decision) { this->Carry(decision); }, d);
    }
    checker->EndCall();
    if (checker->violations() > 0) {
      MutexLock lock(mu);
      if (violations == 0) spdlog::error("answer rule violated: {}", checker->status().message());
      violations = static_cast<uint64_t>(checker->violations());
    }
  }

  // ---------------------------------------------------------------- answering
  void Answer(RequestId id, Outcome outcome, Reason code, const std::string& detail) {
    auto it = requests.find(id);
    if (it == requests.end()) return;
    Request r = std::move(it->second);
    requests.erase(it);
    InferResult result;
    result.outcome = outcome;
    result.code = std::string(policy::ToString(code));
    result.detail = detail;
    Finish(r, std::move(result));
  }

  // The learned margin to plan with now (any thread).
  double LateMargin() const {
    const TimePoint at = TimePoint{} + std::chrono::microseconds(late_margin_at_us.load(std::memory_order_relaxed));
    return LatenessMargin::Applied(late_margin.load(std::memory_order_relaxed), clock.Now() - at, kLateHold);
  }

  // The one place a request's callback runs: metrics, the open count, then the callback.
  void Finish(const Request& r, InferResult result) {
    result.total_ms = static_cast<double>(ToMicros(clock.Now() - r.arrival)) / 1000.0;
    const std::string& name = FunctionName(r.function);
    {
      MutexLock lock(mu);
      ++ends[{name, std::string(daemon::ToString(result.outcome)), result.code}];
      if (result.outcome == Outcome::kCompleted) {
        if (options.late_margin_cap > 0 && r.slo_ms > 0) {
          const TimePoint now = clock.Now();
          lateness.Observe(now, ToMillis(now - r.deadline) / r.slo_ms);
          late_margin.store(std::min(lateness.learned(), options.late_margin_cap), std::memory_order_relaxed);
          late_margin_at_us.store(ToMicros(now), std::memory_order_relaxed);
        }
        latency_hist[name].Observe(result.total_ms / 1000.0);
        queue_hist[name].Observe(std::max(0.0, result.queue_ms) / 1000.0);
        compute_hist[name].Observe(result.compute_ms / 1000.0);
      }
      --open;
      open_bytes -= std::min(open_bytes, r.input.size());
      if (open == 0) idle.notify_all();
    }
    spdlog::debug("{} request: {} {} {}", name, daemon::ToString(result.outcome), result.code, result.detail);
    r.done(std::move(result));
  }

  // Per request, so by index rather than a walk over the map (ids are given out in order; map nodes stay put).
  const Function* FindFunction(FunctionId id) const { return id < by_id.size() ? by_id[id] : nullptr; }
  const std::string& FunctionName(FunctionId id) const {
    static const std::string kUnknown = "unknown";
    const Function* f = FindFunction(id);
    return f != nullptr ? f->info.name : kUnknown;
  }

  policy::RequestEvent EventOf(RequestId id) const {
    const Request& r = requests.at(id);
    return policy::RequestEvent{id, r.function, r.arrival, r.deadline};
  }

  // ---------------------------------------------------------------- decisions
  void Carry(const policy::LaunchDecision& d) {
    for (InstanceId prior : d.after_release) {
      for (const auto& [inst, slice] : releasing) {
        if (inst == prior) {
          deferred.push_back(d);
          return;
        }
      }
    }
    Launch(d);
  }

  void Launch(const policy::LaunchDecision& d) {
    const Function* f = FindFunction(d.function);
    Instance inst;
    inst.function = d.function;
    inst.stages = d.stages;
    inst.max_batch = std::max(1, d.max_batch);
    inst.batch_timeout = d.batch_timeout;
    inst.batch_by_deadline = d.batch_by_deadline;
    instances[d.instance] = inst;
    runtime::PipelineSpec p;
    p.instance = d.instance;
    p.max_batch = inst.max_batch;
    p.input_bytes_per_sample = f != nullptr ? f->input_bytes : 1;
    for (const policy::StagePlacement& st : d.stages) {
      runtime::PipelineStage s;
      s.slice = st.slice;
      s.spec.executor = f != nullptr && !f->dir.empty() ? "torchscript" : "emulated";
      s.spec.function = f != nullptr ? f->info.name : "?";
      s.spec.model = f != nullptr ? f->config.model : "?";
      s.spec.dir = f != nullptr ? f->dir : "";
      if (f != nullptr && st.first_block < f->block_inputs.size()) s.spec.input_shape = f->block_inputs[st.first_block];
      s.spec.first_block = st.first_block;
      s.spec.last_block = st.last_block;
      s.spec.max_batch = inst.max_batch;
      s.spec.gpu = std::string(cluster[st.slice].kind.gpu->name);
      s.spec.profile = std::string(cluster[st.slice].kind.profile->name);
      s.spec.time_scale = f != nullptr ? f->config.time_scale : 1.0;
      s.output_bytes_per_sample =
          f != nullptr ? static_cast<uint64_t>(f->spec->blocks[st.last_block].ActivationOutBytes(f->spec->dtype)) : 1;
      p.stages.push_back(std::move(s));
    }
    {
      MutexLock lock(mu);
      ++launches;
      if (d.stages.size() > 1) ++pipelines;
    }
    if (Status s = runtime->Launch(p); !s.ok()) {
      // Reported as a failed load, on the next turn of the loop (never inside the scheduler's call).
      spdlog::warn("launch of instance {}: {}", d.instance, s.message());
      instances[d.instance].in_runtime = false;
      Post([this, id = d.instance, detail = s.message()] { LoadDone(runtime::LoadDone{id, false, detail}); });
    }
  }

  void Carry(const policy::RouteDecision& d) {
    auto r = requests.find(d.request);
    auto inst = instances.find(d.instance);
    if (r == requests.end() || inst == instances.end()) return;  // the checker reports it
    r->second.instance = d.instance;
    r->second.routed = clock.Now();
    inst->second.queue.push_back(d.request);
    Dispatch(d.instance);
  }
  void Carry(const policy::RejectDecision& d) { Answer(d.request, Outcome::kRejected, d.code, d.detail); }
  void Carry(const policy::FailDecision& d) { Answer(d.request, Outcome::kFailed, d.code, d.detail); }
  void Carry(const policy::EvictDecision& d) { Release(d.instance, /*keep_warm=*/true); }
  void Carry(const policy::RetireDecision& d) { Release(d.instance, /*keep_warm=*/false); }
  void Carry(const policy::StateDecision& d) {
    if (auto it = instances.find(d.instance); it != instances.end()) it->second.state = d.to;
  }
  void Carry(const policy::MigrateDecision&) {
    MutexLock lock(mu);
    ++migrations;
  }

  void Release(InstanceId id, bool keep_warm) {
    auto it = instances.find(id);
    if (it == instances.end()) return;  // gone with a worker: its releases are on their way
    const std::vector<policy::StagePlacement> stages = it->second.stages;
    const bool in_runtime = it->second.in_runtime;
    instances.erase(it);
    for (const policy::StagePlacement& st : stages) releasing.insert({id, st.slice});
    if (!in_runtime) {
      // Its launch never reached a worker: nothing holds its memory; acknowledge each slice on the next turn.
      for (const policy::StagePlacement& st : stages) {
        Post([this, id, slice = st.slice] { Released(runtime::StageReleased{id, slice}); });
      }
      return;
    }
    if (keep_warm) {
      MutexLock lock(mu);
      ++evictions;
    }
    if (Status s = runtime->Evict(id, keep_warm); !s.ok()) spdlog::warn("release of instance {}: {}", id, s.message());
  }

  // Submits batches while the instance has room: one batch in flight per stage keeps every stage busy.
  void Dispatch(InstanceId id) {
    auto it = instances.find(id);
    if (it == instances.end()) return;
    Instance& inst = it->second;
    const Function* f = FindFunction(inst.function);
    if (f == nullptr) return;
    // One batch per stage in flight, and one more waiting in the first ring: a stage that finishes starts the
    // next batch at once, without waiting for the control thread to hear of it.
    while (inst.loaded && !inst.queue.empty() && inst.in_flight <= inst.stages.size()) {
      // The batch, as the simulator forms it: the queue's front, up to the max batch, cut short so that every
      // request in it still meets its deadline when the policy asks; a short one waits up to the batch timeout.
      const TimePoint now = clock.Now();
      const TimePoint start = inst.in_flight >= inst.stages.size() ? std::max(now, inst.busy_until) : now;
      size_t n = std::min(inst.queue.size(), static_cast<size_t>(inst.max_batch));
      if (inst.batch_by_deadline) n = DeadlineCut(inst, *f, n, start);
      if (n < static_cast<size_t>(inst.max_batch) && inst.batch_timeout > Duration{0}) {
        const TimePoint due = requests.at(inst.queue.front()).routed + inst.batch_timeout;
        if (now < due) {
          if (inst.wake_at != due) {  // once per due time, however many requests join meanwhile
            inst.wake_at = due;
            dispatch_at.emplace(due, id);
          }
          return;
        }
      }
      std::vector<RequestId> ids(inst.queue.begin(), inst.queue.begin() + static_cast<ptrdiff_t>(n));
      std::vector<std::byte> input;
      input.reserve(n * f->input_bytes);
      for (RequestId r : ids) {
        const auto& bytes = requests.at(r).input;
        input.insert(input.end(), bytes.begin(), bytes.end());
      }
      std::vector<int64_t> shape = {static_cast<int64_t>(n)};
      shape.insert(shape.end(), f->spec->input_shape.begin(), f->spec->input_shape.end());
      const uint64_t batch = next_batch++;
      const Status s =
          runtime->Submit(id, batch, ids, runtime::TensorView{static_cast<uint32_t>(f->spec->dtype), shape, input});
      if (s.code() == StatusCode::kResourceExhausted) return;  // the ring is full: the next completion retries
      if (!s.ok()) {
        spdlog::warn("submit to instance {}: {}", id, s.message());
        return;  // the instance is going away; its event hands the queue back
      }
      inst.queue.erase(inst.queue.begin(), inst.queue.begin() + static_cast<ptrdiff_t>(n));
      ++inst.in_flight;
      inst.busy_until = std::max(now, inst.busy_until) + MillisF(BatchMs(inst, *f, static_cast<int>(n), true));
      batches[batch] = std::move(ids);
    }
  }

  // The longest run of the `n` requests at the front of `inst`'s queue that, run together through every stage from
  // `start`, still leaves each of them its deadline (at least one).
  size_t DeadlineCut(const Instance& inst, const Function& f, size_t n, TimePoint start) const {
    if (f.batched == nullptr) return n;
    TimePoint earliest = TimePoint::max();
    size_t fits = 1;
    for (size_t k = 1; k <= n; ++k) {
      earliest = std::min(earliest, requests.at(inst.queue[k - 1]).deadline);
      if (k == 1) continue;
      const int batch = static_cast<int>(k);
      if (batch > f.batched->max_batch()) break;
      if (start + MillisF(BatchMs(inst, f, batch, false)) > earliest) break;
      fits = k;
    }
    return fits;
  }

  // The modelled time of a batch of `batch` on `inst`: through every stage, or its slowest stage (`bottleneck`:
  // how long it holds the pipeline's entry). 0 without batched costs.
  double BatchMs(const Instance& inst, const Function& f, int batch, bool bottleneck) const {
    if (f.batched == nullptr) return 0;
    batch = std::clamp(batch, 1, f.batched->max_batch());
    double total = 0, slowest = 0;
    for (const policy::StagePlacement& st : inst.stages) {
      const double ms =
          f.batched->ComputeMs(f.batched->KindIndex(cluster[st.slice].kind), st.first_block, st.last_block, batch);
      total += ms;
      slowest = std::max(slowest, ms);
    }
    return bottleneck ? slowest : total;
  }

  // Instances whose short batch waits for its timeout (DispatchDue runs them).
  void DispatchDue() {
    const TimePoint now = clock.Now();
    while (!dispatch_at.empty() && dispatch_at.begin()->first <= now) {
      const InstanceId id = dispatch_at.begin()->second;
      dispatch_at.erase(dispatch_at.begin());
      if (auto it = instances.find(id); it != instances.end()) it->second.wake_at = TimePoint::max();
      Dispatch(id);
    }
  }

  // ---------------------------------------------------------------- events from HTTP and the runtime
  void Arrive(RequestId id, Request r) {
    if (closing) return AnswerShutdown(r);
    // A newcomer's request (no deadline of its own) to a function with no loaded instance waits for the cold
    // start, as Knative's activator holds requests while a service scales from zero (policy::ColdStartDeadline).
    if (!r.own_deadline) {
      const bool warm = std::any_of(instances.begin(), instances.end(), [&](const auto& entry) {
        return entry.second.function == r.function && entry.second.loaded;
      });
      r.deadline = policy::ColdStartDeadline(r.arrival, r.deadline, warm, options.cold_start_wait);
    }
    requests.emplace(id, std::move(r));
    const policy::RequestEvent event = EventOf(id);
    checker->OnRequest(event);
    Apply([&](auto& out) { scheduler->OnRequest(event, clock.Now(), out); });
  }

  // A batch leaves the books when it finishes or fails: its requests, and one fewer in flight on its instance.
  std::optional<std::vector<RequestId>> TakeBatch(InstanceId instance, uint64_t batch) {
    auto b = batches.find(batch);
    if (b == batches.end()) return std::nullopt;
    std::vector<RequestId> ids = std::move(b->second);
    batches.erase(b);
    if (auto inst = instances.find(instance); inst != instances.end() && inst->second.in_flight > 0) {
      --inst->second.in_flight;
    }
    return ids;
  }

  void BatchCompleted(runtime::BatchCompleted& done) {
    const std::optional<std::vector<RequestId>> taken = TakeBatch(done.instance, done.batch);
    if (!taken) return;
    const std::vector<RequestId>& ids = *taken;
    const size_t n = ids.size();
    const size_t row = n > 0 ? done.output.size() / n : 0;
    // Answer first (their output rows), then tell the scheduler every stage's run.
    for (size_t i = 0; i < n; ++i) {
      auto r = requests.find(ids[i]);
      if (r == requests.end()) continue;
      InferResult result;
      result.instance = done.instance;
      result.dtype = done.dtype;
      result.shape = done.shape;
      if (!result.shape.empty()) result.shape[0] = 1;
      result.output.assign(done.output.begin() + static_cast<ptrdiff_t>(i * row),
                           done.output.begin() + static_cast<ptrdiff_t>((i + 1) * row));
      if (!done.timings.empty()) {
        result.queue_ms =
            static_cast<double>(ToMicros(FromNanos(done.timings.front().started_ns) - r->second.arrival)) / 1000.0;
        for (const runtime::StageTiming& t : done.timings) {
          result.compute_ms += static_cast<double>(t.finished_ns - t.started_ns) / 1e6;
        }
      }
      // The request ends with its last stage's event below; the answer goes out now.
      Request req = std::move(r->second);
      requests.erase(r);
      Finish(req, std::move(result));
    }
    for (size_t s = 0; s < done.timings.size(); ++s) {
      const policy::StageFinished event{done.instance,
                                        s,
                                        done.batch,
                                        s + 1 == done.timings.size(),
                                        ids,
                                        FromNanos(done.timings[s].started_ns),
                                        FromNanos(done.timings[s].finished_ns)};
      checker->OnStageFinished(event);
      Apply([&](auto& out) { scheduler->OnStageFinished(event, clock.Now(), out); });
    }
    Dispatch(done.instance);
  }

  void BatchFailed(const runtime::BatchFailed& failed) {
    const std::optional<std::vector<RequestId>> taken = TakeBatch(failed.instance, failed.batch);
    if (!taken) return;
    const std::vector<RequestId>& ids = *taken;
    for (RequestId r : ids) {
      if (auto it = requests.find(r); it != requests.end()) it->second.instance = 0;
    }
    const policy::StageFailed event{failed.instance, failed.stage, failed.batch, ids, failed.detail};
    checker->OnStageFailed(event);
    Apply([&](auto& out) { scheduler->OnStageFailed(event, clock.Now(), out); });
    Dispatch(failed.instance);
  }

  void LoadDone(const runtime::LoadDone& load) {
    auto it = instances.find(load.instance);
    if (it == instances.end()) return;
    std::vector<policy::RequestEvent> stranded;
    if (load.ok) {
      it->second.loaded = true;
    } else {
      for (RequestId r : it->second.queue) {
        requests.at(r).instance = 0;
        stranded.push_back(EventOf(r));
      }
      it->second.queue.clear();
    }
    const policy::LoadFinished event{load.instance, load.ok, load.detail, stranded};
    checker->OnLoadFinished(event);
    Apply([&](auto& out) { scheduler->OnLoadFinished(event, clock.Now(), out); });
    if (load.ok) Dispatch(load.instance);
  }

  void WorkerLost(runtime::WorkerLost& lost) {
    std::vector<policy::RequestEvent> stranded;
    for (const runtime::StrandedBatch& b : lost.stranded) {
      auto it = batches.find(b.batch);
      if (it == batches.end()) continue;
      for (RequestId r : it->second) {
        if (requests.contains(r)) stranded.push_back(EventOf(r));
      }
      batches.erase(it);
    }
    for (InstanceId id : lost.instances) {
      auto it = instances.find(id);
      if (it == instances.end()) continue;
      for (RequestId r : it->second.queue) stranded.push_back(EventOf(r));
      // Its other slices' releases come as StageReleased; the lost slice's memory is free now.
      for (const policy::StagePlacement& st : it->second.stages) {
        if (st.slice != lost.slice) releasing.insert({id, st.slice});
      }
      instances.erase(it);
    }
    std::erase_if(releasing, [&](const auto& p) { return p.second == lost.slice; });
    for (const policy::RequestEvent& e : stranded) requests.at(e.id).instance = 0;
    const policy::SliceLost event{lost.slice, Reason::kWorkerLost, lost.detail, stranded};
    checker->OnSliceLost(event);
    Apply([&](auto& out) { scheduler->OnSliceLost(event, clock.Now(), out); });
    LaunchDeferred();
  }

  void Released(const runtime::StageReleased& r) {
    releasing.erase({r.instance, r.slice});
    const policy::Released event{r.instance, r.slice};
    checker->OnReleased(event);
    Apply([&](auto& out) { scheduler->OnReleased(event, clock.Now(), out); });
    LaunchDeferred();
  }

  void LaunchDeferred() {
    std::vector<policy::LaunchDecision> ready;
    std::erase_if(deferred, [&](const policy::LaunchDecision& d) {
      for (InstanceId prior : d.after_release) {
        for (const auto& [inst, slice] : releasing) {
          if (inst == prior) return false;
        }
      }
      ready.push_back(d);
      return true;
    });
    for (const auto& d : ready) Launch(d);
  }

  void OnRuntimeEvent(runtime::RuntimeEvent e) {
    PostRuntime([this, e = std::move(e)]() mutable {
      std::visit(
          [this](auto& event) {
            using T = std::decay_t<decltype(event)>;
            if constexpr (std::is_same_v<T, runtime::BatchCompleted>) BatchCompleted(event);
            if constexpr (std::is_same_v<T, runtime::BatchFailed>) BatchFailed(event);
            if constexpr (std::is_same_v<T, runtime::LoadDone>) LoadDone(event);
            if constexpr (std::is_same_v<T, runtime::WorkerLost>) WorkerLost(event);
            if constexpr (std::is_same_v<T, runtime::StageReleased>) Released(event);
          },
          e);
    });
  }

  // ---------------------------------------------------------------- deploy
  // A function ready to install: its spec and cost tables, built off the control thread.
  struct Prepared {
    FunctionConfig config;                           // name filled in
    std::string dir;                                 // a TorchScript directory; empty for a zoo model
    std::vector<std::vector<int64_t>> block_inputs;  // its blocks' input shapes
    policy::ServedFunction served;
  };

  Status CheckNotDeployed(const std::string& name) const {
    MutexLock lock(mu);
    if (auto it = functions.find(name); it != functions.end() && !it->second.removed) {
      return Status::AlreadyExists("function '" + name + "' is deployed");
    }
    return Status::Ok();
  }

  // Any thread: reads only what Start set up.
  Result<Prepared> Prepare(const FunctionConfig& in) const {
    Prepared p;
    FunctionConfig& c = p.config = in;
    if (c.model.empty() == c.directory.empty()) {
      return Status::InvalidArgument("a function is a zoo model or a repository directory (one of the two)");
    }
    if (!c.directory.empty()) FF_RETURN_IF_ERROR(CheckName("directory", c.directory));
    if (c.name.empty()) c.name = c.directory.empty() ? c.model : c.directory;
    FF_RETURN_IF_ERROR(CheckName("function name", c.name));
    FF_RETURN_IF_ERROR(CheckRange("time_scale", c.time_scale, 0.0, 1000.0, /*open_low=*/true));
    if (c.slo_ms != 0) FF_RETURN_IF_ERROR(CheckRange("slo_ms", c.slo_ms, 0.0, 1e7, /*open_low=*/true));
    if (c.max_batch != 0) FF_RETURN_IF_ERROR(CheckRange("max_batch", int64_t{c.max_batch}, 1, kMaxBatch));
    FF_RETURN_IF_ERROR(CheckNotDeployed(c.name));  // before a second's inspection; Install checks again

    model::FunctionSpec spec;
    std::optional<model::FunctionProfile> profile;
    if (!c.directory.empty()) {
      if (!options.repository) {
        return Status::FailedPrecondition("the node has no function repository (fluidfaas serve --repository DIR)");
      }
      FF_ASSIGN_OR_RETURN(InspectedFunction found, options.repository->Inspect(c.directory));
      spec = std::move(found.spec);
      profile = std::move(found.profile);
      p.dir = std::move(found.dir);
      p.block_inputs = std::move(found.block_inputs);
      c.time_scale = 1;  // real blocks run at their own speed
    } else {
      const auto zoo = model::ZooModels();
      if (std::none_of(zoo.begin(), zoo.end(), [&](const model::ZooEntry& e) { return e.name == c.model; })) {
        return Status::NotFound("no zoo model '" + Printable(c.model) + "' (fluidfaas zoo list)");
      }
      FF_ASSIGN_OR_RETURN(spec, model::BuildZooModel(c.model));
    }
    if (c.max_batch != 0) spec.max_batch = c.max_batch;
    const double manifest_slo = p.dir.empty() ? 0 : spec.slo_ms;
    auto shared = std::make_shared<const model::FunctionSpec>(std::move(spec));
    const model::ModelledBlockTimes modelled(*shared, latency);
    std::optional<model::ProfiledBlockTimes> profiled;
    if (profile) profiled.emplace(std::move(*profile), modelled);
    const model::BlockTimes& times = profiled ? static_cast<const model::BlockTimes&>(*profiled) : modelled;
    FF_ASSIGN_OR_RETURN(p.served, policy::ServeFunction(0, shared, times, latency, *mps_shares, kDefaultSloScale));
    if (c.slo_ms > 0) {
      p.served.slo_ms = c.slo_ms;
    } else if (manifest_slo > 0) {
      p.served.slo_ms = manifest_slo;
    }
    return p;
  }

  // Control thread.
  Status Install(Prepared p) {
    const FunctionConfig& c = p.config;
    FF_RETURN_IF_ERROR(CheckNotDeployed(c.name));
    const FunctionId id = next_function++;
    p.served.id = id;
    FF_RETURN_IF_ERROR(scheduler->Deploy(p.served));
    const model::FunctionSpec& spec = *p.served.spec;
    Function f;
    f.id = id;
    f.config = c;
    f.dir = p.dir;
    f.block_inputs = std::move(p.block_inputs);
    f.spec = p.served.spec;
    f.batched = p.served.batched;
    f.input_bytes = static_cast<uint64_t>(model::BytesPerElement(spec.dtype));
    for (int64_t d : spec.input_shape) f.input_bytes *= static_cast<uint64_t>(d);
    f.info = FunctionInfo{c.name,
                          c.model,
                          c.directory,
                          p.served.slo_ms,
                          p.served.batched->max_batch(),
                          c.time_scale,
                          spec.dtype == model::DType::kFp16 ? "FP16" : "FP32",
                          spec.input_shape,
                          {}};
    f.info.output_shape =
        p.dir.empty() ? std::vector<int64_t>{spec.blocks.back().out_elems} : spec.output_shape;  // zoo: flattened
    MutexLock lock(mu);
    if (auto old = functions.find(c.name); old != functions.end()) {
      // A removed function deployed again under its name: its old id keeps its own record (its instances drain).
      removed_functions.push_back(std::make_unique<Function>(std::move(old->second)));
      by_id[removed_functions.back()->id] = removed_functions.back().get();
      functions.erase(old);
    }
    Function& stored = functions[c.name] = std::move(f);
    by_id.push_back(&stored);
    return Status::Ok();
  }

  // Runs `task` on the control thread and waits for it.
  template <typename T>
  T RunOnControl(std::function<T()> task) {
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
  void Close() {
    MutexLock lock(closed_mu);
    closing = true;
    std::deque<std::function<void()>> left;
    {
      MutexLock lk(mu);
      left.swap(tasks);
      runtime_tasks.clear();
    }
    for (auto& t : left) t();
    std::vector<RequestId> open_ids;
    for (const auto& [id, r] : requests) open_ids.push_back(id);
    for (RequestId id : open_ids) {
      auto it = requests.find(id);
      Request r = std::move(it->second);
      requests.erase(it);
      AnswerShutdown(r);
    }
  }
  void AnswerShutdown(const Request& r) {
    InferResult result;
    result.outcome = Outcome::kFailed;
    result.code = "shutdown";
    result.detail = "the node stopped before the request was answered";
    Finish(r, std::move(result));
  }

  void Snapshot() {
    nlohmann::json slices = nlohmann::json::array();
    for (size_t s = 0; s < cluster.size(); ++s) {
      slices.push_back({{"id", cluster[s].id},
                        {"gpu", cluster[s].gpu},
                        {"profile", cluster[s].kind.profile->name},
                        {"uuid", options.node.slices[s].uuid},
                        {"residents", nlohmann::json::array()}});
    }
    nlohmann::json insts = nlohmann::json::array();
    for (const auto& [id, inst] : instances) {
      nlohmann::json stages = nlohmann::json::array();
      for (const auto& st : inst.stages) {
        stages.push_back({{"slice", cluster[st.slice].id},
                          {"blocks", {st.first_block, st.last_block}},
                          {"memory_mib", st.memory_mib}});
        slices[st.slice]["residents"].push_back(id);
      }
      insts.push_back({{"id", id},
                       {"function", FunctionName(inst.function)},
                       {"state", policy::ToString(inst.state)},
                       {"loaded", inst.loaded},
                       {"queued", inst.queue.size()},
                       {"batches_in_flight", inst.in_flight},
                       {"pipeline", inst.stages.size() > 1},
                       {"stages", stages}});
    }
    const runtime::RuntimeStats rs = runtime->Stats();
    nlohmann::json totals;
    {
      MutexLock lock(mu);
      totals = {{"launches", launches}, {"pipelines", pipelines}, {"migrations", migrations}, {"evictions", evictions}};
    }
    nlohmann::json node = {{"name", options.node.name},
                           {"emulated", options.node.emulated},
                           {"policy", options.policy},
                           {"slo_margin", options.slo_margin},
                           {"cold_start_wait_s", ToSeconds(options.cold_start_wait)},
                           {"late_margin", LateMargin()},
                           {"slices", slices},
                           {"instances", insts},
                           {"host_memory", {{"warm_bytes", rs.warm_bytes}, {"warm_copies", rs.warm_copies}}},
                           {"totals", totals},
                           {"workers", {{"alive", rs.workers_alive}, {"restarts", rs.worker_restarts}}}};
    MutexLock lock(mu);
    node_snapshot = std::move(node);
  }
};

// ---------------------------------------------------------------- Controller

Result<std::unique_ptr<Controller>> Controller::Start(ControllerOptions options,
                                                      const std::vector<FunctionConfig>& functions) {
  if (options.node.slices.empty()) return Status::InvalidArgument("the node has no slices");
  FF_RETURN_IF_ERROR(CheckRange("slo margin", options.slo_margin, 0.0, 0.5));
  FF_RETURN_IF_ERROR(CheckRange("late margin cap", options.late_margin_cap, 0.0, 0.5));
  FF_RETURN_IF_ERROR(CheckRange("cold start wait", ToSeconds(options.cold_start_wait), 0.0, 600.0));
  if (policy::UsesWholeGpus(options.policy)) {
    return Status::InvalidArgument("policy '" + options.policy +
                                   "' runs on whole GPUs with MPS, which the node "
                                   "daemon does not drive (the simulator does)");
  }
  std::unique_ptr<Controller> c(new Controller());
  c->impl_ = std::make_unique<Impl>();
  Impl& impl = *c->impl_;
  impl.epoch_ns = MonotonicNanos() - ToMicros(impl.clock.Now()) * 1000;
  const gpu::GpuType* type = nullptr;
  for (const gpu::Slice& s : options.node.slices) {
    const gpu::GpuType* t = options.node.gpus.at(static_cast<size_t>(s.gpu)).type;
    if (t->model != gpu::GpuModel::kA100_80GB) {
      return Status::Unimplemented("the daemon's cost tables are built for A100-80GB slices; slice " + s.id +
                                   " is on " + std::string(t->name));
    }
    type = t;
    impl.cluster.push_back(policy::ClusterSlice{s.id, s.gpu, policy::SliceKind{t, s.profile}, true});
  }
  impl.mps_shares = std::make_unique<gpu::MpsShares>(*type);
  // The scheduler books warm copies against the node's host memory, as the runtime does (runtime/residency.h):
  // it drops them first, so the runtime's own budget is only a backstop.
  policy::NodeLimits limits;
  limits.host_memory_mib = options.host_memory_bytes.value_or(runtime::DefaultHostMemoryBytes()) >> 20;
  FF_ASSIGN_OR_RETURN(impl.scheduler, policy::MakeScheduler(options.policy, impl.cluster, {}, limits));
  impl.checker = std::make_unique<policy::AnswerChecker>(impl.cluster);
  impl.options = options;

  runtime::RuntimeOptions ro = options.runtime;
  ro.worker_binary = options.worker_binary;
  ro.slices.clear();
  for (const gpu::Slice& s : options.node.slices) ro.slices.push_back(runtime::RuntimeSlice{s.id, s.uuid});
  if (options.host_memory_bytes) ro.host_memory_bytes = *options.host_memory_bytes;
  FF_ASSIGN_OR_RETURN(c->runtime_, runtime::NodeRuntime::Start(
                                       ro, [&impl](runtime::RuntimeEvent e) { impl.OnRuntimeEvent(std::move(e)); }));
  impl.runtime = c->runtime_.get();
  for (const FunctionConfig& f : functions) {
    auto prepared = impl.Prepare(f);
    Status s = prepared.ok() ? impl.Install(std::move(*prepared)) : prepared.status();
    if (!s.ok()) return s.WithContext("deploying '" + (f.name.empty() ? f.model + f.directory : f.name) + "'");
  }
  impl.Snapshot();
  impl.thread = std::thread([&impl] { impl.Loop(); });
  return c;
}

Controller::~Controller() {
  if (impl_ == nullptr) return;
  Shutdown();
  runtime_.reset();  // its threads may still post; the queue outlives them (and drops what they post)
}

void Controller::Shutdown() {
  {
    MutexLock lock(impl_->mu);
    if (impl_->stop) return;
    impl_->stop = true;
    impl_->wake.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->Close();
}

void Controller::Infer(const std::string& function, std::vector<std::byte> input, std::optional<double> timeout_ms,
                       InferCallback done) {
  Impl& impl = *impl_;
  InferResult refusal;
  refusal.outcome = Outcome::kRejected;
  Impl::Request r;
  {
    MutexLock lock(impl.mu);
    const auto it = impl.functions.find(function);
    if (it == impl.functions.end() || it->second.removed) {
      refusal.code = std::string(policy::ToString(Reason::kUnknownFunction));
      refusal.detail = "no function '" + function + "' is deployed";
    } else if (impl.stop) {
      refusal.code = "shutdown";
      refusal.detail = "the node has stopped";
    } else if (impl.draining) {
      refusal.code = "draining";
      refusal.detail = "the node is draining: it takes no new request";
    } else if (impl.open >= impl.options.max_open_requests ||
               impl.open_bytes + input.size() > impl.options.max_open_bytes) {
      refusal.code = std::string(policy::ToString(Reason::kOverloaded));
      refusal.detail = "the node has " + std::to_string(impl.open) + " requests (" +
                       std::to_string(impl.open_bytes >> 20) + " MiB of inputs) open: its limit";
    } else if (input.size() != it->second.input_bytes) {
      refusal.code = "bad_input";
      refusal.detail = "input of " + std::to_string(input.size()) + " bytes; '" + function + "' takes " +
                       std::to_string(it->second.input_bytes);
    } else {
      ++impl.open;
      impl.open_bytes += input.size();
      r.function = it->second.id;
      r.arrival = impl.clock.Now();
      const double slo = timeout_ms.value_or(it->second.info.slo_ms);
      // The scheduler plans for a deadline a margin early: what the HTTP exchange and the client take is
      // outside its model, and so is what a saturated node adds (the learned part).
      r.slo_ms = slo;
      r.own_deadline = timeout_ms.has_value();
      r.deadline = r.arrival + MillisF(slo * (1 - impl.options.slo_margin - impl.LateMargin()));
    }
    if (!refusal.code.empty()) {
      ++impl.ends[{function.size() <= kMaxNameLength && CheckName("f", function).ok() ? function : "unknown",
                   "rejected", refusal.code}];
    }
  }
  if (!refusal.code.empty()) {
    done(std::move(refusal));
    return;
  }
  r.input = std::move(input);
  r.done = std::move(done);
  impl.Post([&impl, r = std::move(r)]() mutable {
    const RequestId id = impl.next_request++;
    impl.Arrive(id, std::move(r));
  });
}

Status Controller::Deploy(const FunctionConfig& config) {
  auto prepared = impl_->Prepare(config);
  if (!prepared.ok()) return prepared.status();
  return impl_->RunOnControl<Status>(
      [this, p = std::make_shared<Impl::Prepared>(std::move(*prepared))] { return impl_->Install(std::move(*p)); });
}

std::vector<std::string> Controller::RepositoryFunctions() const {
  return impl_->options.repository ? impl_->options.repository->List() : std::vector<std::string>{};
}

Status Controller::Remove(const std::string& name) {
  return impl_->RunOnControl<Status>([this, name]() -> Status {
    Impl& impl = *impl_;
    FunctionId id = 0;
    {
      MutexLock lock(impl.mu);
      auto it = impl.functions.find(name);
      if (it == impl.functions.end() || it->second.removed) return Status::NotFound("no function '" + name + "'");
      it->second.removed = true;
      id = it->second.id;
    }
    Status s;
    impl.Apply([&](auto& out) { s = impl.scheduler->Remove(id, impl.clock.Now(), out); });
    return s;
  });
}

std::optional<FunctionInfo> Controller::Function(const std::string& name) const {
  MutexLock lock(impl_->mu);
  const auto it = impl_->functions.find(name);
  if (it == impl_->functions.end() || it->second.removed) return std::nullopt;
  return it->second.info;
}

std::vector<FunctionInfo> Controller::Functions() const {
  MutexLock lock(impl_->mu);
  std::vector<FunctionInfo> out;
  for (const auto& [name, f] : impl_->functions) {
    if (!f.removed) out.push_back(f.info);
  }
  return out;
}

nlohmann::json Controller::NodeJson() const {
  // Taken on the control thread, which owns the books it reads.
  return impl_->RunOnControl<nlohmann::json>([this] {
    impl_->Snapshot();
    MutexLock lock(impl_->mu);
    return impl_->node_snapshot;
  });
}

void Controller::CountRefused(const std::string& function, std::string_view code) {
  MutexLock lock(impl_->mu);
  const bool known = impl_->functions.contains(function);
  ++impl_->ends[{known ? function : "unknown", "rejected", std::string(code)}];
}

std::string Controller::MetricsText(const std::map<std::string, uint64_t>& edge_refusals) const {
  const Impl& impl = *impl_;
  const runtime::RuntimeStats rs = runtime_->Stats();
  MutexLock lock(impl.mu);
  std::ostringstream o;
  o << "# HELP fluidfaas_requests_total Requests that ended, by function, outcome and reason code.\n"
       "# TYPE fluidfaas_requests_total counter\n";
  for (const auto& [key, n] : impl.ends) {
    const auto& [function, outcome, code] = key;
    o << "fluidfaas_requests_total" << Labels({{"function", function}, {"outcome", outcome}, {"code", code}}) << ' '
      << n << '\n';
  }
  for (const auto& [code, n] : edge_refusals) {
    o << "fluidfaas_requests_total" << Labels({{"function", ""}, {"outcome", "rejected"}, {"code", code}}) << ' ' << n
      << '\n';
  }
  const auto histogram = [&o](const char* name, const char* help, const std::map<std::string, Histogram>& hs) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
    for (const auto& [function, h] : hs) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < std::size(kBuckets); ++i) {
        cumulative += h.counts[i];
        std::ostringstream le;
        le << kBuckets[i];
        o << name << "_bucket" << Labels({{"function", function}, {"le", le.str()}}) << ' ' << cumulative << '\n';
      }
      o << name << "_bucket" << Labels({{"function", function}, {"le", "+Inf"}}) << ' ' << h.count << '\n';
      o << name << "_sum" << Labels({{"function", function}}) << ' ' << h.sum << '\n';
      o << name << "_count" << Labels({{"function", function}}) << ' ' << h.count << '\n';
    }
  };
  histogram("fluidfaas_request_duration_seconds", "End-to-end latency of completed requests.", impl.latency_hist);
  histogram("fluidfaas_queue_duration_seconds", "Arrival to the start of the first stage, completed requests.",
            impl.queue_hist);
  histogram("fluidfaas_compute_duration_seconds", "Time in the stages, completed requests.", impl.compute_hist);
  const auto gauge = [&o](const char* name, const char* type, const char* help, double v) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << v << '\n';
  };
  gauge("fluidfaas_open_requests", "gauge", "Requests admitted and not yet answered.", static_cast<double>(impl.open));
  gauge("fluidfaas_late_margin", "gauge",
        "Share of the SLO new requests are planned earlier, learned from late completions (beyond --slo-margin).",
        impl.LateMargin());
  gauge("fluidfaas_launches_total", "counter", "Instances launched.", static_cast<double>(impl.launches));
  gauge("fluidfaas_pipelines_total", "counter", "Instances launched as pipelines of two or more stages.",
        static_cast<double>(impl.pipelines));
  gauge("fluidfaas_migrations_total", "counter", "Pipelines migrated to one slice.",
        static_cast<double>(impl.migrations));
  gauge("fluidfaas_evictions_total", "counter", "Instances evicted to host memory.",
        static_cast<double>(impl.evictions));
  gauge("fluidfaas_answer_rule_violations", "gauge", "Violations of the answer rule seen on the decision stream.",
        static_cast<double>(impl.violations));
  gauge("fluidfaas_host_warm_bytes", "gauge", "Host memory held by warm copies.", static_cast<double>(rs.warm_bytes));
  gauge("fluidfaas_workers_alive", "gauge", "Worker processes running.", static_cast<double>(rs.workers_alive));
  gauge("fluidfaas_worker_restarts_total", "counter", "Worker processes restarted after a failure.",
        static_cast<double>(rs.worker_restarts));
  gauge("fluidfaas_batches_in_flight", "gauge", "Batches submitted to pipelines and not finished.",
        static_cast<double>(rs.batches_in_flight));
  return o.str();
}

bool Controller::Drain(Duration timeout) {
  MutexLock lock(impl_->mu);
  impl_->draining = true;
  return lock.WaitFor(impl_->idle, std::chrono::microseconds(ToMicros(timeout)), [this] {
    impl_->mu.AssertHeld();
    return impl_->open == 0;
  });
}

bool Controller::draining() const {
  MutexLock lock(impl_->mu);
  return impl_->draining;
}

size_t Controller::open_requests() const {
  MutexLock lock(impl_->mu);
  return impl_->open;
}

}  // namespace fluidfaas::daemon
