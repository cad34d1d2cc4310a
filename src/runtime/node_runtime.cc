#include "runtime/node_runtime.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/limits.h"
#include "runtime/control.h"

namespace fluidfaas::runtime {

struct NodeRuntime::Instance {
  PipelineSpec spec;
  std::vector<Ring> rings;  // rings[i] feeds stage i; rings.back() comes back to the node
  std::mutex submit_mu;     // one writer of rings[0]
  // GUARDED_BY(NodeRuntime::mu_):
  std::map<uint64_t, std::vector<uint64_t>> in_flight;  // batch -> requests
  size_t loads_pending = 0;
  bool load_failed = false;
  bool all_warm = true;
  double load_ms = 0;
  std::string load_detail;
  bool releasing = false;
  size_t releases_pending = 0;
  std::atomic<bool> stop{false};
  std::thread collector;

  // The last reference may be the collector's own (an event sink that evicted from the collector's thread).
  ~Instance() {
    if (!collector.joinable()) return;
    if (collector.get_id() == std::this_thread::get_id()) {
      collector.detach();
    } else {
      collector.join();
    }
  }
};

namespace {

constexpr int64_t kHealthyNs = 30'000'000'000;  // a worker that lived this long restarts with the shortest backoff

}  // namespace

Result<std::unique_ptr<NodeRuntime>> NodeRuntime::Start(RuntimeOptions options, EventSink sink) {
  if (options.worker_binary.empty()) return Status::InvalidArgument("runtime: no worker binary");
  if (access(options.worker_binary.c_str(), X_OK) != 0) {
    return Status::NotFound("runtime: worker binary '" + options.worker_binary + "' is not an executable");
  }
  if (options.slices.empty()) return Status::InvalidArgument("runtime: no slices");
  FF_RETURN_IF_ERROR(CheckRange("runtime ring_slots", int64_t{options.ring_slots}, 2, 1024));
  FF_RETURN_IF_ERROR(CheckRange("runtime host_memory_bytes", options.host_memory_bytes, 0, int64_t{1} << 50));
  if (options.heartbeat_timeout <= options.heartbeat_interval || options.heartbeat_interval <= Duration(0)) {
    return Status::InvalidArgument("runtime: heartbeat_timeout must exceed heartbeat_interval > 0");
  }
  if (!sink) return Status::InvalidArgument("runtime: no event sink");
  std::unique_ptr<NodeRuntime> rt(new NodeRuntime(std::move(options), std::move(sink)));
  rt->monitor_ = std::thread([r = rt.get()] { r->Monitor(); });
  return rt;
}

NodeRuntime::NodeRuntime(RuntimeOptions options, EventSink sink)
    : options_(std::move(options)),
      sink_(std::move(sink)),
      workers_(options_.slices.size()),
      residency_(options_.host_memory_bytes) {}

NodeRuntime::~NodeRuntime() {
  stop_.store(true);
  if (monitor_.joinable()) monitor_.join();
  std::map<uint64_t, std::shared_ptr<Instance>> instances;
  {
    MutexLock lock(mu_);
    instances.swap(instances_);
  }
  for (auto& [id, inst] : instances) {
    inst->stop.store(true);
    for (Ring& r : inst->rings) r.Close();
    if (inst->collector.joinable()) inst->collector.join();
  }
  MutexLock lock(mu_);
  workers_.clear();  // each WorkerProcess stops (or kills) and reaps its process
}

Status NodeRuntime::StartWorker(size_t slice) {
  Worker& w = workers_[slice];
  FF_ASSIGN_OR_RETURN(w.process, WorkerProcess::Start(WorkerLaunch{.binary = options_.worker_binary,
                                                                   .slice_uuid = options_.slices[slice].uuid,
                                                                   .log_level = options_.worker_log_level}));
  w.started_ns = MonotonicNanos();
  w.last_heard_ns = w.started_ns;
  w.last_ping_ns = w.started_ns;
  w.ready = false;
  w.restart_at_ns = 0;
  spdlog::info("runtime: worker for slice {} started (pid {})", options_.slices[slice].id, w.process->pid());
  return Status::Ok();
}

Status NodeRuntime::Launch(const PipelineSpec& spec) {
  if (spec.stages.empty() || spec.stages.size() > static_cast<size_t>(kMaxStages)) {
    return Status::InvalidArgument("launch: 1.." + std::to_string(kMaxStages) + " stages");
  }
  FF_RETURN_IF_ERROR(CheckRange("launch max_batch", int64_t{spec.max_batch}, 1, kMaxBatch));
  std::vector<uint64_t> hop_bytes = {spec.input_bytes_per_sample};
  for (const PipelineStage& s : spec.stages) {
    if (s.slice >= options_.slices.size())
      return Status::InvalidArgument("launch: no slice " + std::to_string(s.slice));
    hop_bytes.push_back(s.output_bytes_per_sample);
  }
  auto inst = std::make_shared<Instance>();
  inst->spec = spec;
  for (size_t i = 0; i < hop_bytes.size(); ++i) {
    FF_ASSIGN_OR_RETURN(const int64_t payload,
                        CheckedMul("launch hop bytes", static_cast<int64_t>(hop_bytes[i]), int64_t{spec.max_batch}));
    FF_ASSIGN_OR_RETURN(
        Ring ring, Ring::Create("hop" + std::to_string(i), RingSpec{.slot_count = options_.ring_slots,
                                                                    .max_batch = static_cast<uint32_t>(spec.max_batch),
                                                                    .payload_bytes = static_cast<uint64_t>(payload)}));
    inst->rings.push_back(std::move(ring));
  }
  std::vector<RuntimeEvent> events;
  {
    MutexLock lock(mu_);
    if (instances_.contains(spec.instance)) {
      return Status::AlreadyExists("launch: instance " + std::to_string(spec.instance) + " is live");
    }
    for (const PipelineStage& s : spec.stages) {
      Worker& w = workers_[s.slice];
      if (w.process == nullptr && w.restart_at_ns > 0) {
        return Status::Unavailable("launch: the worker of slice " + options_.slices[s.slice].id +
                                   " is restarting after a failure");
      }
      if (w.process == nullptr) FF_RETURN_IF_ERROR(StartWorker(s.slice));
      w.in_use = true;
    }
    inst->loads_pending = spec.stages.size();
    for (size_t i = 0; i < spec.stages.size(); ++i) {
      const PipelineStage& s = spec.stages[i];
      const int fds[2] = {inst->rings[i].fd(), inst->rings[i + 1].fd()};
      residency_.Remove(WarmKey{spec.instance, i});
      // A failed send means the worker just died: its death (noticed by the monitor) ends this instance.
      (void)workers_[s.slice].process->Send(
          {{"op", "load"}, {"instance", spec.instance}, {"stage", i}, {"spec", s.spec.ToJson()}}, fds);
    }
    instances_[spec.instance] = inst;
    inst->collector = std::thread([this, inst] { Collect(inst); });
  }
  return Status::Ok();
}

Status NodeRuntime::Submit(uint64_t instance, uint64_t batch, std::span<const uint64_t> requests,
                           const TensorView& input) {
  std::shared_ptr<Instance> inst;
  {
    MutexLock lock(mu_);
    const auto it = instances_.find(instance);
    if (it == instances_.end() || it->second->releasing) {
      return Status::NotFound("submit: no live instance " + std::to_string(instance));
    }
    inst = it->second;
    if (requests.empty() || requests.size() > static_cast<size_t>(inst->spec.max_batch)) {
      return Status::InvalidArgument("submit: " + std::to_string(requests.size()) + " requests (max batch " +
                                     std::to_string(inst->spec.max_batch) + ")");
    }
    if (input.bytes.size() > inst->rings[0].spec().payload_bytes || input.shape.size() > size_t{kMaxRank}) {
      return Status::InvalidArgument("submit: input of " + std::to_string(input.bytes.size()) +
                                     " bytes does not fit the instance's first hop");
    }
    if (!inst->in_flight.emplace(batch, std::vector<uint64_t>(requests.begin(), requests.end())).second) {
      return Status::AlreadyExists("submit: batch " + std::to_string(batch) + " is in flight");
    }
  }
  Result<Slot> slot = Status::Unavailable("");
  {
    std::lock_guard<std::mutex> lock(inst->submit_mu);
    slot = inst->rings[0].BeginWrite(Duration(0));
    if (slot.ok()) {
      SlotHeader& h = *slot->header;
      h.batch = batch;
      h.instance = instance;
      h.count = static_cast<uint32_t>(requests.size());
      std::copy(requests.begin(), requests.end(), slot->ids.begin());
      h.dtype = input.dtype;
      h.rank = static_cast<uint32_t>(input.shape.size());
      std::copy(input.shape.begin(), input.shape.end(), h.shape);
      h.payload_bytes = input.bytes.size();
      if (!input.bytes.empty()) std::memcpy(slot->payload.data(), input.bytes.data(), input.bytes.size());
      inst->rings[0].EndWrite();
      return Status::Ok();
    }
  }
  // Not written. Take the batch back, unless a worker death already reported it stranded (then its event ends it).
  MutexLock lock(mu_);
  if (inst->in_flight.erase(batch) == 0) return Status::Ok();
  if (slot.status().code() == StatusCode::kDeadlineExceeded) {
    return Status::ResourceExhausted("submit: the first stage's ring is full");
  }
  return Status::Unavailable("submit: " + slot.status().message());
}

Status NodeRuntime::Evict(uint64_t instance, bool keep_warm) {
  std::shared_ptr<Instance> inst;
  {
    MutexLock lock(mu_);
    const auto it = instances_.find(instance);
    if (it == instances_.end() || it->second->releasing) {
      return Status::NotFound("evict: no live instance " + std::to_string(instance));
    }
    inst = it->second;
    if (!inst->in_flight.empty()) {
      return Status::FailedPrecondition("evict: instance " + std::to_string(instance) + " has " +
                                        std::to_string(inst->in_flight.size()) + " batches in flight");
    }
    inst->releasing = true;
    inst->releases_pending = inst->spec.stages.size();
    inst->stop.store(true);
    for (Ring& r : inst->rings) r.Close();
    for (size_t i = 0; i < inst->spec.stages.size(); ++i) {
      Worker& w = workers_[inst->spec.stages[i].slice];
      if (w.process != nullptr) {
        (void)w.process->Send({{"op", "evict"}, {"instance", instance}, {"stage", i}, {"keep_warm", keep_warm}});
      }
    }
  }
  if (inst->collector.joinable() && inst->collector.get_id() != std::this_thread::get_id()) inst->collector.join();
  return Status::Ok();
}

size_t NodeRuntime::InFlight(uint64_t instance) const {
  MutexLock lock(mu_);
  const auto it = instances_.find(instance);
  return it == instances_.end() ? 0 : it->second->in_flight.size();
}

RuntimeStats NodeRuntime::Stats() const {
  MutexLock lock(mu_);
  RuntimeStats s;
  s.worker_restarts = restarts_;
  s.instances = instances_.size();
  for (const auto& [id, inst] : instances_) s.batches_in_flight += inst->in_flight.size();
  s.warm_bytes = residency_.used_bytes();
  s.warm_copies = residency_.size();
  for (const Worker& w : workers_) {
    s.worker_pids.push_back(w.process != nullptr ? w.process->pid() : 0);
    if (w.process != nullptr) ++s.workers_alive;
  }
  return s;
}

Status NodeRuntime::KillWorker(size_t slice) {
  MutexLock lock(mu_);
  if (slice >= workers_.size() || workers_[slice].process == nullptr) {
    return Status::NotFound("no worker on slice " + std::to_string(slice));
  }
  workers_[slice].process->Kill();
  return Status::Ok();
}

void NodeRuntime::Collect(const std::shared_ptr<Instance>& inst) {
  Ring& ring = inst->rings.back();
  while (!inst->stop.load()) {
    auto slot = ring.BeginRead(Millis(100));
    if (!slot.ok()) {
      if (slot.status().code() == StatusCode::kDeadlineExceeded) continue;
      if (slot.status().code() == StatusCode::kInternal) spdlog::error("runtime: {}", slot.status().message());
      return;
    }
    const SlotHeader& h = *slot->header;
    BatchCompleted done;
    done.instance = inst->spec.instance;
    done.batch = h.batch;
    done.completed_ns = MonotonicNanos();
    done.timings.assign(h.timings, h.timings + h.stages_done);
    done.dtype = h.dtype;
    done.shape.assign(h.shape, h.shape + h.rank);
    done.output.assign(slot->payload.begin(), slot->payload.begin() + static_cast<ptrdiff_t>(h.payload_bytes));
    ring.EndRead();
    {
      MutexLock lock(mu_);
      const auto it = inst->in_flight.find(done.batch);
      if (it == inst->in_flight.end()) {
        spdlog::error("runtime: instance {} returned batch {}, which is not in flight", done.instance, done.batch);
        continue;
      }
      done.requests = std::move(it->second);
      inst->in_flight.erase(it);
    }
    sink_(std::move(done));
  }
}

void NodeRuntime::HandleMessage(size_t slice, const nlohmann::json& body, std::vector<RuntimeEvent>& events) {
  const std::string op = body["op"].get<std::string>();
  if (op == "ready" || op == "pong") return;
  auto instance_id = GetU64(body, "instance");
  auto stage_id = GetU64(body, "stage");
  if (!instance_id.ok() || !stage_id.ok()) {
    spdlog::warn("runtime: slice {}: malformed '{}' from the worker", options_.slices[slice].id, op);
    return;
  }
  const auto it = instances_.find(*instance_id);
  Instance* inst = it == instances_.end() ? nullptr : it->second.get();
  if (op == "loaded") {
    if (inst == nullptr || inst->releasing || inst->loads_pending == 0) return;
    if (!ValueOr(body, "ok", false)) {
      inst->load_failed = true;
      if (inst->load_detail.empty()) inst->load_detail = ValueOr(body, "detail", std::string("load failed"));
    }
    inst->all_warm = inst->all_warm && ValueOr(body, "from_warm", false);
    const double load_ms = ValueOr(body, "load_ms", 0.0);  // from another process: finite and in range, or 0
    if (std::isfinite(load_ms) && load_ms >= 0 && load_ms < 1e9) inst->load_ms = std::max(inst->load_ms, load_ms);
    if (--inst->loads_pending == 0) {
      events.push_back(LoadDone{.instance = *instance_id,
                                .ok = !inst->load_failed,
                                .detail = inst->load_detail,
                                .from_warm = !inst->load_failed && inst->all_warm,
                                .load_ms = inst->load_ms});
    }
  } else if (op == "released") {
    int64_t host_bytes = ValueOr(body, "host_bytes", int64_t{0});
    if (host_bytes < 0 || host_bytes > (int64_t{1} << 50)) host_bytes = 0;
    if (inst == nullptr || !inst->releasing) return;  // a dropped warm copy's acknowledgement
    if (host_bytes > 0) {
      for (const WarmCopy& victim : residency_.Add(WarmCopy{{*instance_id, *stage_id}, slice, host_bytes})) {
        Worker& w = workers_[victim.slice];
        if (w.process != nullptr) {
          (void)w.process->Send(
              {{"op", "evict"}, {"instance", victim.key.instance}, {"stage", victim.key.stage}, {"keep_warm", false}});
        }
      }
    }
    events.push_back(StageReleased{.instance = *instance_id, .slice = slice});
    if (--inst->releases_pending == 0) instances_.erase(it);
  } else if (op == "stage_failed") {
    auto batch = GetU64(body, "batch");
    if (inst == nullptr || !batch.ok()) return;
    const auto b = inst->in_flight.find(*batch);
    if (b == inst->in_flight.end()) return;
    events.push_back(BatchFailed{.instance = *instance_id,
                                 .stage = static_cast<size_t>(*stage_id),
                                 .batch = *batch,
                                 .requests = std::move(b->second),
                                 .detail = ValueOr(body, "detail", std::string("stage failed"))});
    inst->in_flight.erase(b);
  }
}

void NodeRuntime::HandleDeath(size_t slice, const std::string& detail, std::vector<RuntimeEvent>& events,
                              std::vector<std::shared_ptr<Instance>>& stopped) {
  Worker& w = workers_[slice];
  if (w.process == nullptr) return;
  spdlog::warn("runtime: worker of slice {} (pid {}) is gone: {}", options_.slices[slice].id, w.process->pid(), detail);
  w.process->Kill();
  w.process.reset();  // reaps
  WorkerLost lost{.slice = slice, .detail = detail};
  for (auto it = instances_.begin(); it != instances_.end();) {
    Instance& inst = *it->second;
    const auto on_slice = static_cast<size_t>(std::count_if(inst.spec.stages.begin(), inst.spec.stages.end(),
                                                            [&](const PipelineStage& s) { return s.slice == slice; }));
    if (on_slice == 0) {
      ++it;
      continue;
    }
    if (inst.releasing) {  // evicted or retired already: its memory on this slice is free with the process
      inst.releases_pending -= std::min(inst.releases_pending, on_slice);
      it = inst.releases_pending == 0 ? instances_.erase(it) : std::next(it);
      continue;
    }
    lost.instances.push_back(it->first);
    for (auto& [batch, requests] : inst.in_flight) {
      lost.stranded.push_back(StrandedBatch{it->first, batch, std::move(requests)});
    }
    inst.in_flight.clear();
    inst.stop.store(true);
    for (Ring& r : inst.rings) r.Close();
    stopped.push_back(it->second);
    // The instance is gone. Its stages on other slices are evicted; each acknowledges with StageReleased, as a
    // retirement would (the scheduler retires a lost instance and waits for those releases).
    inst.releasing = true;
    inst.releases_pending = 0;
    for (size_t i = 0; i < inst.spec.stages.size(); ++i) {
      Worker& other = workers_[inst.spec.stages[i].slice];
      if (inst.spec.stages[i].slice == slice || other.process == nullptr) continue;
      (void)other.process->Send({{"op", "evict"}, {"instance", it->first}, {"stage", i}, {"keep_warm", false}});
      ++inst.releases_pending;
    }
    it = inst.releases_pending == 0 ? instances_.erase(it) : std::next(it);
  }
  residency_.RemoveSlice(slice);
  const int64_t now = MonotonicNanos();
  const int64_t min_ns = ToMicros(options_.restart_min) * 1000;
  w.backoff_ns = (w.backoff_ns == 0 || now - w.started_ns > kHealthyNs)
                     ? min_ns
                     : std::min(w.backoff_ns * 2, ToMicros(options_.restart_max) * 1000);
  w.restart_at_ns = now + w.backoff_ns;
  events.push_back(std::move(lost));
}

void NodeRuntime::Deliver(std::vector<RuntimeEvent>& events) {
  for (RuntimeEvent& e : events) sink_(std::move(e));
  events.clear();
}

void NodeRuntime::Monitor() {
  std::vector<RuntimeEvent> events;
  std::vector<std::shared_ptr<Instance>> stopped;
  while (!stop_.load()) {
    std::vector<pollfd> fds;
    std::vector<std::pair<size_t, bool>> owners;  // (slice, is the pidfd)
    {
      MutexLock lock(mu_);
      const int64_t now = MonotonicNanos();
      for (size_t s = 0; s < workers_.size(); ++s) {
        Worker& w = workers_[s];
        if (w.process == nullptr && w.restart_at_ns > 0 && now >= w.restart_at_ns && w.in_use) {
          if (Status st = StartWorker(s); st.ok()) {
            ++restarts_;
          } else {
            spdlog::error("runtime: restarting the worker of slice {}: {}", options_.slices[s].id, st.message());
            w.restart_at_ns = now + ToMicros(options_.restart_max) * 1000;
          }
        }
        if (w.process == nullptr) continue;
        const Duration limit = w.ready ? options_.heartbeat_timeout : options_.start_timeout;
        if (now - w.last_heard_ns > ToMicros(limit) * 1000) {
          HandleDeath(s,
                      std::string(w.ready ? "no heartbeat" : "not ready") + " for " +
                          std::to_string(ToMicros(limit) / 1000) + " ms",
                      events, stopped);
          continue;
        }
        if (now - w.last_ping_ns >= ToMicros(options_.heartbeat_interval) * 1000) {
          w.last_ping_ns = now;
          (void)w.process->Send({{"op", "ping"}, {"seq", static_cast<uint64_t>(now)}});
        }
        fds.push_back(pollfd{w.process->control_fd(), POLLIN, 0});
        owners.emplace_back(s, false);
        if (w.process->pidfd() >= 0) {
          fds.push_back(pollfd{w.process->pidfd(), POLLIN, 0});
          owners.emplace_back(s, true);
        }
      }
    }
    const int n = poll(fds.data(), fds.size(), 50);
    for (size_t i = 0; n > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const auto [slice, is_pidfd] = owners[i];
      MutexLock lock(mu_);
      Worker& w = workers_[slice];
      if (w.process == nullptr || (is_pidfd ? w.process->pidfd() : w.process->control_fd()) != fds[i].fd) continue;
      if (is_pidfd) {
        HandleDeath(slice, "the worker process exited", events, stopped);
        continue;
      }
      // Drain every message that is there; a hang-up or error is a death.
      for (;;) {
        auto m = ReceiveControl(fds[i].fd, Duration(0));
        if (m.ok()) {
          w.last_heard_ns = MonotonicNanos();
          if (m->body["op"] == "ready") w.ready = true;
          try {
            HandleMessage(slice, m->body, events);
          } catch (const std::exception& e) {  // a worker's message of an unexpected shape: dropped, never fatal
            spdlog::error("runtime: slice {}: message dropped: {}", options_.slices[slice].id, e.what());
          }
          continue;
        }
        if (m.status().code() == StatusCode::kDeadlineExceeded) break;
        if (m.status().code() == StatusCode::kInvalidArgument) {
          spdlog::warn("runtime: slice {}: {}", options_.slices[slice].id, m.status().message());
          continue;
        }
        HandleDeath(slice, "its control socket closed (" + m.status().message() + ")", events, stopped);
        break;
      }
    }
    for (auto& inst : stopped) {
      if (inst->collector.joinable()) inst->collector.join();
    }
    stopped.clear();
    Deliver(events);
  }
}

}  // namespace fluidfaas::runtime
