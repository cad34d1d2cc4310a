// The scheduler's decisions carried out on the runtime: launches, routes, releases, batch formation.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

void Controller::Impl::Carry(const policy::LaunchDecision& d) {
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

void Controller::Impl::Launch(const policy::LaunchDecision& d) {
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

void Controller::Impl::Carry(const policy::RouteDecision& d) {
  auto r = requests.find(d.request);
  auto inst = instances.find(d.instance);
  if (r == requests.end() || inst == instances.end()) return;  // the checker reports it
  r->second.instance = d.instance;
  r->second.routed = clock->Now();
  inst->second.queue.push_back(d.request);
  Dispatch(d.instance);
}

void Controller::Impl::Carry(const policy::StateDecision& d) {
  if (auto it = instances.find(d.instance); it != instances.end()) it->second.state = d.to;
}

void Controller::Impl::Carry(const policy::MigrateDecision&) {
  MutexLock lock(mu);
  ++migrations;
}

void Controller::Impl::Release(InstanceId id, bool keep_warm) {
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

void Controller::Impl::Dispatch(InstanceId id) {
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
    const TimePoint now = clock->Now();
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

size_t Controller::Impl::DeadlineCut(const Instance& inst, const Function& f, size_t n, TimePoint start) const {
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

double Controller::Impl::BatchMs(const Instance& inst, const Function& f, int batch, bool bottleneck) const {
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

void Controller::Impl::DispatchDue() {
  const TimePoint now = clock->Now();
  while (!dispatch_at.empty() && dispatch_at.begin()->first <= now) {
    const InstanceId id = dispatch_at.begin()->second;
    dispatch_at.erase(dispatch_at.begin());
    if (auto it = instances.find(id); it != instances.end()) it->second.wake_at = TimePoint::max();
    Dispatch(id);
  }
}

void Controller::Impl::LaunchDeferred() {
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

}  // namespace fluidfaas::daemon
