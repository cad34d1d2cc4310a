#include "policy/fluidfaas_scheduler.h"

#include <algorithm>
#include <cmath>

namespace fluidfaas::policy {
namespace {

bool Live(InstanceState s) {
  return s == InstanceState::kExclusiveHot || s == InstanceState::kTimeSharing || s == InstanceState::kLoading;
}

}  // namespace

FluidFaaSScheduler::FluidFaaSScheduler(std::vector<ClusterSlice> slices, std::vector<ServedFunction> functions,
                                       FluidFaaSOptions options)
    : options_(options), functions_(std::move(functions)), planner_(options.planner) {
  for (ClusterSlice& s : slices) slices_.push_back(SliceRec{std::move(s), {}, {}, 0, TimePoint{}});
}

const ServedFunction& FluidFaaSScheduler::Function(FunctionId id) const {
  for (const ServedFunction& f : functions_) {
    if (f.id == id) return f;
  }
  return functions_.front();  // OnRequest rejects unknown functions before asking
}

void FluidFaaSScheduler::SetState(InstanceRec& inst, InstanceState to, TimePoint now, std::vector<Decision>& out,
                                  bool announce) {
  const Status s = CheckTransition(inst.state, to);
  if (!s.ok()) {
    errors_.push_back("instance " + std::to_string(inst.id) + ": " + s.message());
    return;
  }
  if (announce) out.push_back(StateDecision{inst.id, inst.state, to});
  inst.state = to;
  inst.state_since = now;
}

bool FluidFaaSScheduler::Exclusive(const InstanceRec& inst) const {
  return inst.state == InstanceState::kExclusiveHot ||
         (inst.state == InstanceState::kLoading && inst.after_load == InstanceState::kExclusiveHot);
}

TimePoint FluidFaaSScheduler::EstimatedFinish(const InstanceRec& inst, TimePoint now,
                                              std::vector<Booking>* bookings) const {
  TimePoint t = now;
  if (inst.state == InstanceState::kLoading) t = std::max(t, inst.ready_at);
  // Observed service times scale the modelled stage times.
  const double scale = inst.service > Duration{0}
                           ? ToSeconds(inst.load.ServiceTime(inst.service)) / ToSeconds(inst.service)
                           : 1.0;
  const auto batch_time = [&](size_t s, int n) { return MillisF(ToMillis(inst.stage_batch[s][n - 1]) * scale); };
  for (size_t s = 0; s < inst.stages.size(); ++s) {
    // The slice runs FIFO; requests of one instance queued back to back run as one batch. A request that
    // reaches the stage before the slice's last booked batch starts, and that batch is this instance's and
    // stage's and not full, joins it; otherwise it opens a new batch after the slice's booked work.
    const SliceRec& slice = slices_[inst.stages[s].slice];
    const OpenBatch& open = slice.last_batch;
    Booking b;
    if (open.instance == inst.id && open.stage == s && t < open.start &&
        open.count < static_cast<int>(inst.stage_batch[s].size())) {
      b = Booking{open.start, open.count + 1, open.start + batch_time(s, open.count + 1)};
    } else {
      const TimePoint start = std::max(t, slice.busy_until);
      b = Booking{start, 1, start + batch_time(s, 1)};
    }
    if (bookings != nullptr) bookings->push_back(b);
    t = b.end + inst.hop_time[s];
  }
  return t;
}

void FluidFaaSScheduler::Route(InstanceRec& inst, const RequestEvent& request, TimePoint now,
                               std::vector<Decision>& out) {
  std::vector<Booking> bookings;
  EstimatedFinish(inst, now, &bookings);
  for (size_t s = 0; s < inst.stages.size(); ++s) {
    SliceRec& slice = slices_[inst.stages[s].slice];
    slice.last_batch = OpenBatch{inst.id, s, bookings[s].start, bookings[s].count};
    slice.busy_until = std::max(slice.busy_until, bookings[s].end);
  }
  ++inst.outstanding;
  inst.load.OnArrival(now);
  out.push_back(RouteDecision{request.id, inst.id});
}

void FluidFaaSScheduler::OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) {
  const bool known = std::any_of(functions_.begin(), functions_.end(),
                                 [&](const ServedFunction& f) { return f.id == request.function; });
  if (!known) {
    out.push_back(RejectDecision{request.id, "unknown function " + std::to_string(request.function)});
    return;
  }
  const ServedFunction& f = Function(request.function);
  InstanceRec* best = nullptr;
  bool best_preferred = false;
  TimePoint best_finish = TimePoint::max();
  InstanceRec* earliest = nullptr;
  TimePoint earliest_finish = TimePoint::max();
  bool loading = false;
  for (InstanceRec* candidate : by_function_[request.function]) {
    InstanceRec& inst = *candidate;
    if (!Live(inst.state) || inst.evict_pending) continue;
    loading = loading || inst.state == InstanceState::kLoading;
    const TimePoint finish = EstimatedFinish(inst, now);
    if (finish < earliest_finish) {
      earliest = &inst;
      earliest_finish = finish;
    }
    if (finish > request.deadline) continue;
    // Urgency against this instance's own service time: slack = deadline - now - service.
    const Duration slack = request.deadline - now - inst.load.ServiceTime(inst.service);
    const bool urgent = ToMillis(slack) < options_.urgent_slack_fraction * f.slo_ms;
    const bool preferred = urgent == Exclusive(inst);
    if (best == nullptr || (preferred && !best_preferred) || (preferred == best_preferred && finish < best_finish)) {
      best = &inst;
      best_preferred = preferred;
      best_finish = finish;
    }
  }
  if (best != nullptr) {
    Route(*best, request, now, out);
    return;
  }
  // No live instance meets the deadline: add capacity. One cold start in flight per function at a time (a burst
  // would otherwise start one per request); a warm reload is only a host-to-device copy, so any number.
  const bool warm = std::any_of(by_function_[request.function].begin(), by_function_[request.function].end(),
                                [](const InstanceRec* i) { return i->state == InstanceState::kWarm; });
  std::string why;
  if (!loading || warm) {
    if (InstanceRec* added = ScaleUp(request.function, now, out)) {
      const TimePoint finish = EstimatedFinish(*added, now);
      if (finish <= request.deadline || options_.serve_late) {
        Route(*added, request, now, out);
        return;
      }
      if (finish < earliest_finish) {
        earliest = added;
        earliest_finish = finish;
      }
      why = "a new instance would be ready too late";
    } else {
      why = "no free slice, pipeline or time-sharing slot for another instance";
    }
  } else {
    why = "a cold start is already in flight";
  }
  if (options_.serve_late && earliest != nullptr) {
    Route(*earliest, request, now, out);
    return;
  }
  std::string reason = "no instance of " + f.spec->name + " can finish before the deadline: " + why;
  if (earliest != nullptr) reason += " (earliest estimate " + FormatDuration(earliest_finish - request.deadline) + " late)";
  out.push_back(RejectDecision{request.id, std::move(reason)});
}

FluidFaaSScheduler::InstanceRec& FluidFaaSScheduler::ReusableOrNew(FunctionId fn) {
  InstanceRec* cold = nullptr;
  for (InstanceRec* inst : by_function_[fn]) {
    if (inst->state == InstanceState::kWarm) return *inst;
    if (inst->state == InstanceState::kCold && cold == nullptr) cold = inst;
  }
  return cold != nullptr ? *cold : NewInstance(fn);
}

FluidFaaSScheduler::InstanceRec& FluidFaaSScheduler::NewInstance(FunctionId fn) {
  InstanceRec& inst = instances_[next_instance_];
  inst.id = next_instance_++;
  inst.function = fn;
  inst.load = LoadTracker(options_.tracker);
  by_function_[fn].push_back(&inst);
  return inst;
}

std::optional<Plan> FluidFaaSScheduler::PlanOnFreeSlices(const ServedFunction& f, int max_stages,
                                                         bool spare_needed) const {
  std::vector<FreeSlice> free;
  std::vector<size_t> index;
  for (size_t i = 0; i < slices_.size(); ++i) {
    const SliceRec& s = slices_[i];
    if (!s.info.available || !s.residents.empty()) continue;
    if (spare_needed && Needed(f, s.info.kind)) continue;
    free.push_back(FreeSlice{s.info.id, s.info.gpu, s.info.kind, s.info.kind.profile->memory_mib});
    index.push_back(i);
  }
  if (free.empty()) return std::nullopt;
  PlannerOptions po = options_.planner;
  po.max_stages = max_stages;
  Result<Plan> plan = PipelinePlanner(po).Best(*f.costs, f.slo_ms, free);
  if (!plan.ok()) return std::nullopt;
  for (PlanStage& st : plan->stages) st.slice = index[st.slice];  // back to cluster indices
  return std::move(plan).value();
}

std::optional<std::pair<size_t, std::vector<InstanceId>>> FluidFaaSScheduler::TimeSharingSlot(
    const ServedFunction& f, TimePoint now) const {
  const size_t last = f.costs->blocks() - 1;
  // Hotness decides who stays: a resident is evicted only for a function hotter than it (otherwise the two
  // would keep evicting each other).
  double newcomer_rate = 0;
  auto mine = by_function_.find(f.id);
  if (mine != by_function_.end()) {
    for (const InstanceRec* inst : mine->second) newcomer_rate += inst->load.RateShort(now);
  }
  std::optional<std::pair<size_t, std::vector<InstanceId>>> best;
  for (size_t i = 0; i < slices_.size(); ++i) {
    const SliceRec& s = slices_[i];
    if (!s.info.available || s.residents.empty()) continue;
    const int k = f.costs->KindIndex(s.info.kind);
    if (k < 0 || f.costs->ComputeMs(k, 0, last) > f.slo_ms) continue;
    bool shareable = true;
    std::vector<const InstanceRec*> idle;
    for (InstanceId r : s.residents) {
      const InstanceRec& res = instances_.at(r);
      // A second instance of the function on the same slice adds no capacity: they would share one queue.
      shareable = shareable && res.state == InstanceState::kTimeSharing && res.stages.size() == 1 &&
                  res.function != f.id;
      // Residents placed within the dwell time stay: evicting them would undo the last scale-up at once.
      if (res.outstanding == 0 && res.load.RateShort(now) < newcomer_rate && now - res.state_since >= options_.min_dwell) {
        idle.push_back(&res);
      }
    }
    if (!shareable) continue;
    // Least hot first: short-window rate, then the oldest last use.
    std::sort(idle.begin(), idle.end(), [now](const InstanceRec* a, const InstanceRec* b) {
      const double ra = a->load.RateShort(now);
      const double rb = b->load.RateShort(now);
      return ra != rb ? ra < rb : a->load.last_arrival() < b->load.last_arrival();
    });
    const int64_t need = f.costs->MemoryMib(k, 0, last) - f.costs->ReserveMib(k);
    int64_t free_mib = s.info.kind.profile->memory_mib - f.costs->ReserveMib(k) - s.used_mib;
    std::vector<InstanceId> evict;
    for (size_t v = 0; free_mib < need && v < idle.size(); ++v) {
      evict.push_back(idle[v]->id);
      free_mib += OwnMib(*idle[v], idle[v]->stages.front());
    }
    if (free_mib < need) continue;
    // Time sharing is for slices that are mostly idle: the residents that stay must leave room.
    double staying_busy = 0;
    for (InstanceId r : s.residents) {
      if (std::find(evict.begin(), evict.end(), r) == evict.end()) staying_busy += instances_.at(r).load.BusyFraction(now);
    }
    if (staying_busy >= options_.share_busy_cap) continue;
    if (!best || evict.size() < best->second.size()) best = std::make_pair(i, std::move(evict));
  }
  return best;
}

FluidFaaSScheduler::InstanceRec* FluidFaaSScheduler::ScaleUp(FunctionId fn, TimePoint now, std::vector<Decision>& out) {
  // A scale-up that found nothing is not tried again for the same function until a placement changed or
  // scale_up_retry passed (the time-sharing test reads hotness, which drifts): in a burst every request would
  // otherwise repeat the same search over every slice and resident.
  if (auto failed = failed_scale_up_.find(fn);
      failed != failed_scale_up_.end() && failed->second.first == placement_epoch_ &&
      now - failed->second.second < options_.scale_up_retry) {
    return nullptr;
  }
  InstanceRec* added = TryScaleUp(fn, now, out);
  if (added == nullptr) failed_scale_up_[fn] = {placement_epoch_, now};
  return added;
}

FluidFaaSScheduler::InstanceRec* FluidFaaSScheduler::TryScaleUp(FunctionId fn, TimePoint now,
                                                                std::vector<Decision>& out) {
  const ServedFunction& f = Function(fn);
  const size_t last = f.costs->blocks() - 1;
  // 1. The smallest free slice that fits and serves alone.
  std::optional<size_t> single;
  for (size_t i = 0; i < slices_.size(); ++i) {
    const SliceRec& s = slices_[i];
    if (!s.info.available || !s.residents.empty()) continue;
    if (!f.costs->ServesAlone(f.costs->KindIndex(s.info.kind), s.info.kind.profile->memory_mib, f.slo_ms)) {
      continue;
    }
    if (!single || s.info.kind.profile->memory_mib < slices_[*single].info.kind.profile->memory_mib) single = i;
  }
  // A slice larger than this function needs, of a size that some other function cannot do without (its
  // smallest serving slice), is taken only when no time-sharing slot is left: spilling small models onto the
  // slices large ones need is how the large ones lose.
  // Before that, the fragments: a pipeline over free slices that nobody else needs more.
  if (single && Needed(f, slices_[*single].info.kind)) {
    if (std::optional<Plan> plan = PlanOnFreeSlices(f, options_.planner.max_stages, /*spare_needed=*/true)) {
      return PlacePlan(f, *plan, now, out);
    }
    if (InstanceRec* shared = TimeShare(f, now, out)) return shared;
  }
  if (single) {
    InstanceRec& inst = ReusableOrNew(fn);
    const int k = f.costs->KindIndex(slices_[*single].info.kind);
    Place(inst, {StagePlacement{*single, 0, last, f.costs->MemoryMib(k, 0, last)}}, InstanceState::kExclusiveHot, now,
          out);
    return &inst;
  }
  // 2. A pipeline over free slices.
  if (std::optional<Plan> plan = PlanOnFreeSlices(f, options_.planner.max_stages)) return PlacePlan(f, *plan, now, out);
  // 3. A time-sharing slice, evicting its least hot idle residents.
  if (InstanceRec* shared = TimeShare(f, now, out)) return shared;
  // 4. A slice reclaimed from a function that has capacity to spare.
  if (std::optional<size_t> slice = Reclaimable(f, now)) {
    for (InstanceId victim : std::vector<InstanceId>(slices_[*slice].residents)) {
      InstanceRec& v = instances_.at(victim);
      if (v.state == InstanceState::kExclusiveHot) SetState(v, InstanceState::kTimeSharing, now, out);  // demoted
      EvictToWarm(v, now, out);
    }
    if (!slices_[*slice].residents.empty()) {
      errors_.push_back("slice " + slices_[*slice].info.id + " still had residents after reclaiming it");
      return nullptr;
    }
    InstanceRec& inst = ReusableOrNew(fn);
    const int k = f.costs->KindIndex(slices_[*slice].info.kind);
    Place(inst, {StagePlacement{*slice, 0, last, f.costs->MemoryMib(k, 0, last)}}, InstanceState::kExclusiveHot, now,
          out);
    return &inst;
  }
  return nullptr;
}

double FluidFaaSScheduler::CapacityRps(const InstanceRec& inst) const {
  const double ms = ToMillis(inst.service);
  return ms > 0 ? 1000.0 / ms : 0;
}

std::optional<size_t> FluidFaaSScheduler::Reclaimable(const ServedFunction& f, TimePoint now) const {
  std::optional<size_t> best;
  int64_t best_mib = 0;
  for (size_t i = 0; i < slices_.size(); ++i) {
    const SliceRec& s = slices_[i];
    if (!s.info.available || s.residents.empty()) continue;
    if (!f.costs->ServesAlone(f.costs->KindIndex(s.info.kind), s.info.kind.profile->memory_mib, f.slo_ms)) continue;
    bool spare = true;
    for (InstanceId r : s.residents) {
      const InstanceRec& res = instances_.at(r);
      if (res.function == f.id || res.outstanding > 0 || res.stages.size() != 1 ||
          (res.state != InstanceState::kExclusiveHot && res.state != InstanceState::kTimeSharing) ||
          now - res.state_since < options_.min_dwell || res.load.BusyFraction(now) >= options_.promote_busy) {
        spare = false;
        break;
      }
      // What its function keeps without it must still carry its rate with room to spare.
      double rate = 0;
      double keeps = 0;
      for (const InstanceRec* other : by_function_.at(res.function)) {
        rate += other->load.RateShort(now);
        if (other->id != res.id && Live(other->state) && other->state != InstanceState::kLoading) {
          keeps += CapacityRps(*other);
        }
      }
      spare = keeps >= options_.reclaim_headroom * rate && keeps > 0;
      if (!spare) break;
    }
    if (!spare) continue;
    if (!best || s.info.kind.profile->memory_mib < best_mib) {
      best = i;
      best_mib = s.info.kind.profile->memory_mib;
    }
  }
  return best;
}

FluidFaaSScheduler::InstanceRec* FluidFaaSScheduler::PlacePlan(const ServedFunction& f, const Plan& plan, TimePoint now,
                                                               std::vector<Decision>& out) {
  std::vector<StagePlacement> stages;
  for (const PlanStage& st : plan.stages) stages.push_back(StagePlacement{st.slice, st.first_block, st.last_block, st.memory_mib});
  InstanceRec& inst = ReusableOrNew(f.id);
  Place(inst, std::move(stages), InstanceState::kExclusiveHot, now, out);
  return &inst;
}

FluidFaaSScheduler::InstanceRec* FluidFaaSScheduler::TimeShare(const ServedFunction& f, TimePoint now,
                                                               std::vector<Decision>& out) {
  auto slot = TimeSharingSlot(f, now);
  if (!slot) return nullptr;
  for (InstanceId victim : slot->second) EvictToWarm(instances_.at(victim), now, out);
  InstanceRec& inst = ReusableOrNew(f.id);
  const size_t last = f.costs->blocks() - 1;
  const int k = f.costs->KindIndex(slices_[slot->first].info.kind);
  Place(inst, {StagePlacement{slot->first, 0, last, f.costs->MemoryMib(k, 0, last)}}, InstanceState::kTimeSharing,
        now, out);
  return &inst;
}

bool FluidFaaSScheduler::Needed(const ServedFunction& f, const SliceKind& kind) const {
  const auto smallest = [&](const ServedFunction& g) {
    int64_t best = INT64_MAX;
    for (const SliceRec& s : slices_) {
      const int k = g.costs->KindIndex(s.info.kind);
      if (g.costs->ServesAlone(k, s.info.kind.profile->memory_mib, g.slo_ms)) {
        best = std::min<int64_t>(best, s.info.kind.profile->memory_mib);
      }
    }
    return best;
  };
  const int64_t mine = smallest(f);
  const int64_t size = kind.profile->memory_mib;
  if (size <= mine) return false;
  return std::any_of(functions_.begin(), functions_.end(), [&](const ServedFunction& g) {
    return g.id != f.id && smallest(g) == size;
  });
}

void FluidFaaSScheduler::Place(InstanceRec& inst, std::vector<StagePlacement> stages, InstanceState after_load,
                               TimePoint now, std::vector<Decision>& out) {
  const ServedFunction& f = Function(inst.function);
  const bool from_warm = inst.state == InstanceState::kWarm;
  ++placement_epoch_;
  SetState(inst, InstanceState::kLoading, now, out, /*announce=*/false);
  inst.after_load = after_load;
  // Batching: the largest batch up to max_batch whose extra activations fit every stage's slice beside what is
  // resident there. The stage's memory is booked for that batch.
  int batch = 1;
  std::vector<int64_t> extra(stages.size(), 0);
  if (f.batched != nullptr) {
    for (size_t i = f.batched->batches().size(); i-- > 1;) {
      const int b = f.batched->batches()[i];
      if (b > options_.max_batch) continue;
      bool fits = true;
      for (size_t s = 0; s < stages.size() && fits; ++s) {
        const StagePlacement& st = stages[s];
        const SliceRec& slice = slices_[st.slice];
        const int k = f.costs->KindIndex(slice.info.kind);
        extra[s] = f.batched->MemoryMib(k, st.first_block, st.last_block, b) - st.memory_mib;
        fits = slice.used_mib + (st.memory_mib + extra[s]) <= slice.info.kind.profile->memory_mib;
      }
      if (fits) {
        batch = b;
        break;
      }
    }
    if (batch == 1) std::fill(extra.begin(), extra.end(), 0);
  }
  int64_t largest_bytes = 0;
  double service_ms = 0;
  inst.stage_batch.clear();
  inst.hop_time.clear();
  for (size_t s = 0; s < stages.size(); ++s) {
    StagePlacement& st = stages[s];
    st.memory_mib += extra[s];
    SliceRec& slice = slices_[st.slice];
    const int k = f.costs->KindIndex(slice.info.kind);
    const int64_t own = OwnMib(inst, st);
    slice.residents.push_back(inst.id);
    slice.used_mib += own;
    if (slice.used_mib + f.costs->ReserveMib(k) > slice.info.kind.profile->memory_mib) {
      errors_.push_back("slice " + slice.info.id + " overbooked: " + std::to_string(slice.used_mib) + " MiB in use");
    }
    largest_bytes = std::max(largest_bytes, own << 20);
    const double stage_ms = f.costs->ComputeMs(k, st.first_block, st.last_block);
    const double hop_ms = s + 1 < stages.size() ? options_.planner.transfer.HopMs(f.costs->OutBytes(st.last_block)) : 0.0;
    std::vector<Duration> by_batch = {MillisF(stage_ms)};
    for (int n = 2; n <= batch; ++n) by_batch.push_back(MillisF(f.batched->ComputeMs(k, st.first_block, st.last_block, n)));
    inst.stage_batch.push_back(std::move(by_batch));
    inst.hop_time.push_back(MillisF(hop_ms));
    service_ms += stage_ms + hop_ms;
  }
  inst.stages = std::move(stages);
  inst.service = MillisF(service_ms);
  const Duration load = options_.load.LoadTime(largest_bytes, from_warm);
  inst.ready_at = now + load;
  LaunchDecision launch{inst.id, inst.function, inst.stages, from_warm, load, inst.service};
  launch.max_batch = batch;  // opportunistic: whatever is queued back to back, no waiting for a fuller batch
  out.push_back(std::move(launch));
}

int64_t FluidFaaSScheduler::OwnMib(const InstanceRec& inst, const StagePlacement& st) const {
  const ServedFunction& f = Function(inst.function);
  return st.memory_mib - f.costs->ReserveMib(f.costs->KindIndex(slices_[st.slice].info.kind));
}

void FluidFaaSScheduler::Release(InstanceRec& inst) {
  ++placement_epoch_;
  for (const StagePlacement& st : inst.stages) {
    SliceRec& slice = slices_[st.slice];
    slice.residents.erase(std::remove(slice.residents.begin(), slice.residents.end(), inst.id), slice.residents.end());
    slice.used_mib -= OwnMib(inst, st);
  }
  inst.stages.clear();
}

void FluidFaaSScheduler::EvictToWarm(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  if (inst.outstanding > 0) return;  // never drop a request: only idle instances are evicted
  if (inst.state != InstanceState::kTimeSharing) return;
  inst.evict_pending = false;
  Release(inst);
  out.push_back(EvictDecision{inst.id});
  SetState(inst, InstanceState::kWarm, now, out);
}

void FluidFaaSScheduler::MaybeRetire(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  if (inst.state != InstanceState::kDraining || inst.outstanding > 0) return;
  Release(inst);
  out.push_back(RetireDecision{inst.id});
  SetState(inst, InstanceState::kRetired, now, out);
}

void FluidFaaSScheduler::OnStageFinished(const StageEvent& stage, TimePoint now, std::vector<Decision>& out) {
  if (!stage.last) return;
  auto it = instances_.find(stage.instance);
  if (it == instances_.end()) return;
  InstanceRec& inst = it->second;
  inst.outstanding = std::max(0, inst.outstanding - 1);
  inst.load.OnBusy(stage.started, stage.finished);
  inst.load.OnServiceTime(stage.finished - stage.started);
  if (inst.evict_pending) EvictToWarm(inst, now, out);
  MaybeRetire(inst, now, out);
}

void FluidFaaSScheduler::OnLoadFinished(const LoadEvent& load, TimePoint now, std::vector<Decision>& out) {
  auto it = instances_.find(load.instance);
  if (it == instances_.end() || it->second.state != InstanceState::kLoading) return;
  InstanceRec& inst = it->second;
  if (!load.ok) {
    Release(inst);
    out.push_back(RetireDecision{inst.id});
    SetState(inst, InstanceState::kRetired, now, out);
    if (inst.replaces) instances_.at(*inst.replaces).migrating = false;
    return;
  }
  SetState(inst, inst.after_load, now, out);
  if (inst.replaces) {
    InstanceRec& old = instances_.at(*inst.replaces);
    out.push_back(MigrateDecision{old.id, inst.id});
    old.migrating = false;
    SetState(old, InstanceState::kDraining, now, out);
    inst.replaces.reset();
    MaybeRetire(old, now, out);
  }
}

void FluidFaaSScheduler::OnTick(TimePoint now, std::vector<Decision>& out) {
  for (auto& [id, inst] : instances_) {
    switch (inst.state) {
      case InstanceState::kTimeSharing: {
        if (inst.load.BusyFraction(now) >= options_.promote_busy) {
          // Exclusive means alone on its slices: idle co-residents leave now, busy ones take no new request
          // and leave when their last one finishes.
          for (const StagePlacement& st : inst.stages) {
            const std::vector<InstanceId> residents = slices_[st.slice].residents;
            for (InstanceId r : residents) {
              if (r == id) continue;
              InstanceRec& other = instances_.at(r);
              other.evict_pending = true;
              EvictToWarm(other, now, out);
            }
          }
          SetState(inst, InstanceState::kExclusiveHot, now, out);
          break;
        }
        const TimePoint last_use = std::max(inst.state_since, inst.load.last_arrival());
        if (inst.outstanding == 0 && now - last_use >= options_.ts_idle_evict) EvictToWarm(inst, now, out);
        break;
      }
      case InstanceState::kExclusiveHot:
        // A whole busy window (and the dwell time) in this state before judging, so a fresh instance is not
        // demoted at once and a promoted one does not flap back while its batches keep its busy time low.
        if (now - inst.state_since >= std::max(options_.tracker.busy_window, options_.min_dwell) &&
            inst.load.BusyFraction(now) < options_.demote_busy) {
          SetState(inst, InstanceState::kTimeSharing, now, out);
        }
        break;
      case InstanceState::kWarm:
        if (now - inst.state_since >= options_.keep_alive) SetState(inst, InstanceState::kCold, now, out);
        break;
      case InstanceState::kDraining:
        MaybeRetire(inst, now, out);
        break;
      default:
        break;
    }
  }
  MaybeMigrate(now, out);
}

void FluidFaaSScheduler::OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) {
  if (slice >= slices_.size()) return;
  slices_[slice].info.available = true;
  MaybeMigrate(now, out);
}

void FluidFaaSScheduler::MaybeMigrate(TimePoint now, std::vector<Decision>& out) {
  std::vector<InstanceId> pipelines;
  for (const auto& [id, inst] : instances_) {
    if (inst.stages.size() > 1 && !inst.migrating &&
        (inst.state == InstanceState::kExclusiveHot || inst.state == InstanceState::kTimeSharing)) {
      pipelines.push_back(id);
    }
  }
  for (InstanceId id : pipelines) {
    InstanceRec& old = instances_.at(id);
    const ServedFunction& f = Function(old.function);
    std::optional<Plan> plain = PlanOnFreeSlices(f, 1);
    if (!plain) continue;
    // Pays off: the pipeline keeps serving while the plain instance loads, so no request waits for the reload,
    // and once it is done the pipeline's other slices are free; only a slower plain instance is refused.
    if (plain->latency_ms > ToMillis(old.service) * (1 + options_.migrate_slowdown)) continue;
    InstanceRec& target = NewInstance(old.function);
    target.replaces = old.id;
    old.migrating = true;
    const PlanStage& st = plain->stages.front();
    Place(target, {StagePlacement{st.slice, st.first_block, st.last_block, st.memory_mib}}, old.state, now, out);
  }
}

std::vector<InstanceView> FluidFaaSScheduler::Instances() const {
  std::vector<InstanceView> out;
  for (const auto& [id, inst] : instances_) out.push_back(InstanceView{id, inst.function, inst.state, inst.stages, inst.outstanding});
  return out;
}

std::vector<SliceView> FluidFaaSScheduler::Slices() const {
  std::vector<SliceView> out;
  for (const SliceRec& s : slices_) out.push_back(SliceView{s.info.id, s.info.available, s.residents, s.used_mib});
  return out;
}

std::optional<InstanceView> FluidFaaSScheduler::Instance(InstanceId id) const {
  auto it = instances_.find(id);
  if (it == instances_.end()) return std::nullopt;
  const InstanceRec& inst = it->second;
  return InstanceView{id, inst.function, inst.state, inst.stages, inst.outstanding};
}

}  // namespace fluidfaas::policy
