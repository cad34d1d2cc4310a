#include "carrier/carrier.h"

#include <algorithm>
#include <variant>

namespace fluidfaas::carrier {

Carrier::Carrier(std::vector<policy::ClusterSlice> slices, policy::Scheduler& scheduler, Mechanism& mechanism,
                 Host& host, policy::TransferModel transfer)
    : slices_(std::move(slices)),
      scheduler_(scheduler),
      mechanism_(mechanism),
      host_(host),
      transfer_(transfer),
      checker_(slices_) {}

void Carrier::AddFunction(FunctionId id, const CarriedFunction& function) {
  if (functions_.size() <= id) functions_.resize(id + 1);
  functions_[id] = function;
}

const CarriedFunction* Carrier::FunctionOf(FunctionId id) const {
  return id < functions_.size() && functions_[id] ? &*functions_[id] : nullptr;
}

const OpenRequest* Carrier::Find(RequestId id) const {
  const auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

bool Carrier::Warm(FunctionId function) const {
  return std::any_of(instances_.begin(), instances_.end(),
                     [&](const auto& entry) { return entry.second.function == function && entry.second.loaded; });
}

std::optional<TimePoint> Carrier::NextDue() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->first;
}

policy::RequestEvent Carrier::EventOf(RequestId id) const {
  const OpenRequest& r = requests_.at(id);
  return policy::RequestEvent{id, r.function, r.arrival, r.deadline};
}

void Carrier::Apply(TimePoint now, const std::function<void(std::vector<policy::Decision>&)>& call) {
  now_ = now;
  std::vector<policy::Decision>& out = decisions_;
  out.clear();
  call(out);
  for (policy::Decision& d : out) {
    checker_.OnDecision(d);
    std::visit([this](auto& decision) { this->Carry(decision); }, d);
  }
  checker_.EndCall();
}

// ---------------------------------------------------------------- from outside the node

void Carrier::Arrive(const policy::RequestEvent& request, TimePoint now) {
  requests_[request.id] = OpenRequest{request.function, request.arrival, request.deadline};
  checker_.OnRequest(request);
  Apply(now, [&](auto& out) { scheduler_.OnRequest(request, now, out); });
}

void Carrier::Tick(TimePoint now) {
  Apply(now, [&](auto& out) { scheduler_.OnTick(now, out); });
}

void Carrier::SliceFreed(size_t slice, TimePoint now) {
  taken_.erase(slice);
  Apply(now, [&](auto& out) { scheduler_.OnSliceFreed(slice, now, out); });
}

void Carrier::End(RequestId id, Ending ending, Reason code, const std::string& detail) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;  // the checker reports it
  host_.Ended(id, ending, code, detail);
  requests_.erase(it);
}

// ---------------------------------------------------------------- decisions

void Carrier::Carry(const policy::LaunchDecision& d) {
  ++totals_.launches;
  if (d.stages.size() > 1) ++totals_.pipelines;
  Instance& inst = instances_[d.instance];
  inst = Instance{};
  inst.function = d.function;
  inst.stages = d.stages;
  inst.max_batch = std::max(1, d.max_batch);
  inst.batch_timeout = d.batch_timeout;
  inst.batch_by_deadline = d.batch_by_deadline;
  inst.load_ends = now_ + d.expected_load;
  deferred_[d.instance] = d;
  if (!WaitsForRelease(d)) Launch(d.instance);
}

bool Carrier::WaitsForRelease(const policy::LaunchDecision& d) const {
  for (InstanceId prior : d.after_release) {
    const auto it = releasing_.lower_bound({prior, 0});
    if (it != releasing_.end() && it->first.first == prior) return true;
  }
  return false;
}

void Carrier::Launch(InstanceId id) {
  auto node = deferred_.extract(id);
  auto inst = instances_.find(id);
  if (node.empty() || inst == instances_.end()) return;
  if (Status s = mechanism_.Launch(node.mapped()); !s.ok()) {
    // Reported as a failed load on a later call, never inside the scheduler's.
    host_.Later([this, id, detail = s.message()](TimePoint now) {
      auto it = instances_.find(id);
      if (it != instances_.end() && !it->second.in_mechanism) Loaded(id, false, detail, now);
    });
    return;
  }
  inst->second.in_mechanism = true;
}

void Carrier::LaunchDeferred() {
  std::vector<InstanceId> ready;
  for (const auto& [id, d] : deferred_) {
    if (!WaitsForRelease(d)) ready.push_back(id);
  }
  for (InstanceId id : ready) Launch(id);
}

void Carrier::Carry(const policy::RouteDecision& d) {
  auto r = requests_.find(d.request);
  auto inst = instances_.find(d.instance);
  if (r == requests_.end()) return;  // the checker reports it
  if (inst == instances_.end()) {
    End(d.request, Ending::kFailed, Reason::kNoCapacity, "routed to an instance that does not exist");
    return;
  }
  r->second.instance = d.instance;
  r->second.routed = now_;
  ++r->second.routes;
  inst->second.queue.push_back(d.request);
  Dispatch(d.instance);
}

void Carrier::Carry(const policy::StateDecision& d) {
  if (d.from == policy::InstanceState::kWarm) warm_.erase(d.instance);  // loads again, or expires
  if (auto it = instances_.find(d.instance); it != instances_.end()) it->second.state = d.to;
}

void Carrier::Release(InstanceId id, bool keep_warm) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;  // gone with a lost slice: its releases are on their way
  const std::vector<policy::StagePlacement> stages = it->second.stages;
  const bool in_mechanism = it->second.in_mechanism;
  if (keep_warm) warm_[id] = it->second.function;
  instances_.erase(it);
  deferred_.erase(id);
  for (const policy::StagePlacement& st : stages) releasing_[{id, st.slice}] = st.memory_mib;
  if (!in_mechanism) {
    // The mechanism never took it: nothing holds its memory; each slice's release is acknowledged later.
    for (const policy::StagePlacement& st : stages) {
      host_.Later([this, id, slice = st.slice](TimePoint now) { Released(id, slice, now); });
    }
    return;
  }
  if (keep_warm) ++totals_.evictions;
  (void)mechanism_.Evict(id, keep_warm);  // an error means the instance is already going (its events say so)
}

// ---------------------------------------------------------------- batches

void Carrier::Flush(TimePoint now) {
  now_ = now;
  held_ = false;
  std::vector<InstanceId> ids;
  ids.swap(held_dispatches_);
  for (InstanceId id : ids) Dispatch(id);
}

void Carrier::Dispatch(InstanceId id) {
  if (held_) {
    if (std::find(held_dispatches_.begin(), held_dispatches_.end(), id) == held_dispatches_.end()) {
      held_dispatches_.push_back(id);
    }
    return;
  }
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  Instance& inst = it->second;
  const CarriedFunction* f = FunctionOf(inst.function);
  // One batch per stage in flight, and one more waiting at the entry: a stage that finishes starts the next batch
  // at once, without waiting for the carrier to hear of it.
  while (inst.loaded && !inst.queue.empty() && inst.in_flight <= inst.stages.size()) {
    const TimePoint start = inst.in_flight >= inst.stages.size() ? std::max(now_, inst.busy_until) : now_;
    size_t n = std::min(inst.queue.size(), static_cast<size_t>(inst.max_batch));
    if (inst.batch_by_deadline && f != nullptr) n = DeadlineCut(inst, *f, n, start);
    if (n < static_cast<size_t>(inst.max_batch) && inst.batch_timeout > Duration{0}) {
      const TimePoint due = requests_.at(inst.queue.front()).routed + inst.batch_timeout;
      if (now_ < due) {
        if (inst.wake_at != due) {  // once per due time, however many requests join meanwhile
          inst.wake_at = due;
          due_.emplace(due, id);
          host_.WakeAt(due);
        }
        return;
      }
    }
    const uint64_t batch = next_batch_;
    std::vector<RequestId> ids(inst.queue.begin(), inst.queue.begin() + static_cast<ptrdiff_t>(n));
    if (!mechanism_.Submit(id, batch, ids).ok()) return;  // no room (the next event retries), or going away
    ++next_batch_;
    inst.queue.erase(inst.queue.begin(), inst.queue.begin() + static_cast<ptrdiff_t>(n));
    ++inst.in_flight;
    if (f != nullptr)
      inst.busy_until = std::max(now_, inst.busy_until) + MillisF(BatchMs(inst, *f, static_cast<int>(n), true));
    batches_[batch] = Batch{id, std::move(ids)};
  }
}

size_t Carrier::DeadlineCut(const Instance& inst, const CarriedFunction& f, size_t n, TimePoint start) const {
  if (f.batched == nullptr) return n;
  TimePoint earliest = TimePoint::max();
  size_t fits = 1;
  for (size_t k = 1; k <= n; ++k) {
    earliest = std::min(earliest, requests_.at(inst.queue[k - 1]).deadline);
    if (k == 1) continue;
    const int batch = static_cast<int>(k);
    if (batch > f.batched->max_batch()) break;
    if (start + MillisF(BatchMs(inst, f, batch, false)) > earliest) break;
    fits = k;
  }
  return fits;
}

double Carrier::BatchMs(const Instance& inst, const CarriedFunction& f, int batch, bool bottleneck) const {
  if (f.batched == nullptr) return 0;
  double total = 0, slowest = 0;
  for (size_t s = 0; s < inst.stages.size(); ++s) {
    const policy::StagePlacement& st = inst.stages[s];
    const bool mps = st.mps_share >= 0 && f.mps != nullptr;
    const policy::BatchCosts& costs = mps ? *f.mps : *f.batched;
    const int kind = mps ? st.mps_share : costs.KindIndex(slices_[st.slice].kind);
    if (kind < 0) continue;
    const double ms =
        f.time_scale * costs.ComputeMs(kind, st.first_block, st.last_block, std::clamp(batch, 1, costs.max_batch()));
    total += ms;
    slowest = std::max(slowest, ms);
    if (s + 1 < inst.stages.size() && f.costs != nullptr) {
      total += transfer_.HopMs(f.costs->OutBytes(st.last_block) * batch);
    }
  }
  return bottleneck ? slowest : total;
}

void Carrier::DispatchDue(TimePoint now) {
  now_ = now;
  while (!due_.empty() && due_.begin()->first <= now) {
    const InstanceId id = due_.begin()->second;
    due_.erase(due_.begin());
    if (auto it = instances_.find(id); it != instances_.end()) it->second.wake_at = TimePoint::max();
    Dispatch(id);
  }
}

std::optional<std::vector<RequestId>> Carrier::TakeBatch(InstanceId instance, uint64_t batch) {
  auto b = batches_.find(batch);
  if (b == batches_.end() || b->second.instance != instance) return std::nullopt;
  std::vector<RequestId> ids = std::move(b->second.requests);
  batches_.erase(b);
  if (auto inst = instances_.find(instance); inst != instances_.end() && inst->second.in_flight > 0) {
    --inst->second.in_flight;
  }
  return ids;
}

// ---------------------------------------------------------------- the mechanism's events

void Carrier::Loaded(InstanceId instance, bool ok, std::string_view detail, TimePoint now) {
  now_ = now;
  auto it = instances_.find(instance);
  if (it == instances_.end()) return;
  std::vector<policy::RequestEvent> stranded;
  if (ok) {
    it->second.loaded = true;
  } else {
    for (RequestId r : it->second.queue) {
      requests_.at(r).instance = 0;
      stranded.push_back(EventOf(r));
    }
    it->second.queue.clear();
  }
  const policy::LoadFinished event{instance, ok, detail, stranded};
  checker_.OnLoadFinished(event);
  Apply(now, [&](auto& out) { scheduler_.OnLoadFinished(event, now, out); });
  if (ok) Dispatch(instance);
}

void Carrier::BatchCompleted(InstanceId instance, uint64_t batch, std::span<const StageRun> runs, TimePoint now,
                             const std::function<void(std::span<const RequestId>)>& answer) {
  now_ = now;
  const std::optional<std::vector<RequestId>> taken = TakeBatch(instance, batch);
  if (!taken) return;
  const std::vector<RequestId>& ids = *taken;
  answer(ids);
  for (RequestId r : ids) requests_.erase(r);
  for (size_t s = 0; s < runs.size(); ++s) {
    const policy::StageFinished event{instance, s, batch, s + 1 == runs.size(), ids, runs[s].started, runs[s].finished};
    checker_.OnStageFinished(event);
    Apply(now, [&](auto& out) { scheduler_.OnStageFinished(event, now, out); });
  }
  Dispatch(instance);
}

void Carrier::BatchFailed(InstanceId instance, uint64_t batch, size_t stage, std::string_view detail, TimePoint now) {
  now_ = now;
  const std::optional<std::vector<RequestId>> taken = TakeBatch(instance, batch);
  if (!taken) return;
  for (RequestId r : *taken) {
    if (auto it = requests_.find(r); it != requests_.end()) it->second.instance = 0;
  }
  const policy::StageFailed event{instance, stage, batch, *taken, detail};
  checker_.OnStageFailed(event);
  Apply(now, [&](auto& out) { scheduler_.OnStageFailed(event, now, out); });
  Dispatch(instance);
}

void Carrier::SliceLost(size_t slice, Reason reason, std::string_view detail, TimePoint now) {
  now_ = now;
  std::vector<InstanceId> lost;
  for (const auto& [id, inst] : instances_) {
    if (std::any_of(inst.stages.begin(), inst.stages.end(),
                    [slice](const policy::StagePlacement& st) { return st.slice == slice; })) {
      lost.push_back(id);
    }
  }
  std::vector<policy::RequestEvent> stranded;
  std::vector<uint64_t> lost_batches;
  for (const auto& [batch, b] : batches_) {
    if (std::find(lost.begin(), lost.end(), b.instance) != lost.end()) lost_batches.push_back(batch);
  }
  std::sort(lost_batches.begin(), lost_batches.end());  // in submission order: the hash map's is arbitrary
  for (uint64_t batch : lost_batches) {
    for (RequestId r : batches_.at(batch).requests) stranded.push_back(EventOf(r));
    batches_.erase(batch);
  }
  for (InstanceId id : lost) {
    const Instance& inst = instances_.at(id);
    for (RequestId r : inst.queue) stranded.push_back(EventOf(r));
    // Its other slices' releases follow (the mechanism's Released, or ours for one it never took); the lost
    // slice's memory is free now.
    for (const policy::StagePlacement& st : inst.stages) {
      if (st.slice == slice) continue;
      releasing_[{id, st.slice}] = st.memory_mib;
      if (!inst.in_mechanism) host_.Later([this, id, s = st.slice](TimePoint later) { Released(id, s, later); });
    }
    instances_.erase(id);
    deferred_.erase(id);
  }
  std::erase_if(releasing_, [&](const auto& p) { return p.first.second == slice; });
  if (reason == Reason::kSliceTaken) taken_.insert(slice);
  for (const policy::RequestEvent& e : stranded) requests_.at(e.id).instance = 0;
  const policy::SliceLost event{slice, reason, detail, stranded};
  checker_.OnSliceLost(event);
  Apply(now, [&](auto& out) { scheduler_.OnSliceLost(event, now, out); });
  LaunchDeferred();
}

void Carrier::Released(InstanceId instance, size_t slice, TimePoint now) {
  now_ = now;
  releasing_.erase({instance, slice});
  const policy::Released event{instance, slice};
  checker_.OnReleased(event);
  Apply(now, [&](auto& out) { scheduler_.OnReleased(event, now, out); });
  LaunchDeferred();
}

// ---------------------------------------------------------------- the report

Carrier::Report Carrier::MakeReport(TimePoint now) const {
  Report report;
  std::map<FunctionId, policy::NodeFunction> functions;
  std::vector<int64_t> booked(slices_.size(), 0);
  std::vector<bool> held(slices_.size(), false);
  for (const auto& [id, inst] : instances_) {
    const bool alone =
        inst.state == policy::InstanceState::kExclusiveHot || inst.state == policy::InstanceState::kLoading;
    for (const policy::StagePlacement& st : inst.stages) {
      booked[st.slice] += st.memory_mib;
      if (alone) held[st.slice] = true;
    }
    if (inst.state == policy::InstanceState::kDraining) continue;
    const CarriedFunction* f = FunctionOf(inst.function);
    // A new call's own run: batch 1 through every stage and hop; the batches ahead of it, at the slowest stage's pace.
    const double run_ms = f != nullptr ? BatchMs(inst, *f, 1, /*bottleneck=*/false) : 0;
    const double slowest_ms = f != nullptr ? BatchMs(inst, *f, 1, /*bottleneck=*/true) : 0;
    const size_t per_batch = static_cast<size_t>(inst.max_batch);
    const size_t queued_batches = (inst.queue.size() + per_batch - 1) / per_batch;  // rounded up
    const auto batches = static_cast<double>(queued_batches);
    const double wait_ms = std::max(0.0, ToMillis((inst.loaded ? inst.busy_until : inst.load_ends) - now));
    const double finish_ms = wait_ms + batches * slowest_ms + run_ms;
    policy::NodeFunction& nf = functions[inst.function];
    nf.function = inst.function;
    nf.finish_ms = nf.hot == 0 ? finish_ms : std::min(nf.finish_ms, finish_ms);
    ++nf.hot;
  }
  for (const auto& [key, mib] : releasing_) booked[key.second] += mib;
  for (const auto& [id, function] : warm_) {
    functions[function].function = function;
    ++functions[function].warm;
  }
  for (const auto& [id, f] : functions) report.functions.push_back(f);
  for (size_t s = 0; s < slices_.size(); ++s) {
    if (held[s] || taken_.count(s) > 0 || slices_[s].kind.profile == nullptr) continue;
    const int64_t free = slices_[s].kind.profile->memory_mib - booked[s];
    if (free > 0) report.free.emplace_back(s, free);
  }
  return report;
}

}  // namespace fluidfaas::carrier
