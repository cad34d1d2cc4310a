#include "policy/fluidfaas_scheduler.h"

#include <algorithm>
#include <cmath>

namespace fluidfaas::policy {

Status CheckServedFunction(const ServedFunction& f, bool needs_batched, bool needs_mps) {
  const std::string name = f.spec != nullptr ? std::string(f.Name()) : "function " + std::to_string(f.id);
  if (f.spec == nullptr || f.spec->blocks.empty()) return Status::InvalidArgument(name + ": no model blocks");
  if (f.costs == nullptr || f.costs->blocks() != f.spec->blocks.size()) {
    return Status::InvalidArgument(name + ": no batch-1 cost table over its blocks");
  }
  if (!std::isfinite(f.slo_ms) || f.slo_ms <= 0) return Status::InvalidArgument(name + ": the SLO must be positive");
  if (needs_batched && (f.batched == nullptr || f.batched->blocks() != f.costs->blocks())) {
    return Status::InvalidArgument(name + ": this policy needs cost tables by batch size");
  }
  if (needs_mps && (f.mps == nullptr || f.mps->blocks() != f.costs->blocks())) {
    return Status::InvalidArgument(name + ": this policy needs cost tables of MPS shares");
  }
  return Status::Ok();
}

FluidFaaSScheduler::FluidFaaSScheduler(std::vector<ClusterSlice> slices, FluidFaaSOptions options)
    : options_(options),
      slices_(std::move(slices)),
      instances_(options_, slices_),
      router_(options_, slices_, instances_),
      placer_(options_, slices_, instances_, functions_),
      hotness_(options_, slices_, instances_),
      migrator_(options_, slices_, instances_, placer_, functions_) {}

Result<std::unique_ptr<FluidFaaSScheduler>> FluidFaaSScheduler::Create(std::vector<ClusterSlice> slices,
                                                                       std::vector<ServedFunction> functions,
                                                                       FluidFaaSOptions options) {
  std::unique_ptr<FluidFaaSScheduler> s(new FluidFaaSScheduler(std::move(slices), options));
  for (ServedFunction& f : functions) FF_RETURN_IF_ERROR(s->Deploy(std::move(f)));
  return s;
}

Status FluidFaaSScheduler::Deploy(ServedFunction function) {
  FF_RETURN_IF_ERROR(CheckServedFunction(function, false, false));
  if (functions_.contains(function.id)) {
    return Status::AlreadyExists("function id " + std::to_string(function.id) + " is deployed already");
  }
  const FunctionId id = function.id;
  placer_.Deployed(functions_.emplace(id, std::move(function)).first->second);
  return Status::Ok();
}

Status FluidFaaSScheduler::Remove(FunctionId function, TimePoint now, std::vector<Decision>& out) {
  if (functions_.erase(function) == 0)
    return Status::NotFound("function id " + std::to_string(function) + " is not deployed");
  placer_.Removed(function);
  waiting_for_load_.erase(function);
  const std::vector<InstanceRec*> mine = instances_.OfFunction(function);
  for (InstanceRec* inst : mine) {
    if (inst->state == InstanceState::kWarm) {
      instances_.Expire(*inst, now, out);
    } else if (inst->state == InstanceState::kExclusiveHot || inst->state == InstanceState::kTimeSharing) {
      instances_.SetState(*inst, InstanceState::kDraining, now, out);
      if (inst->outstanding == 0) instances_.Retire(*inst, now, out);
    }
    // A loading instance drains when its load finishes (OnLoadFinished).
  }
  return Status::Ok();
}

std::optional<FluidFaaSScheduler::Refusal> FluidFaaSScheduler::Admit(const ServedFunction& f,
                                                                     const RequestEvent& request, TimePoint now,
                                                                     std::vector<Decision>& out) {
  Router::Choice c = router_.Choose(f, request, now);
  if (c.best != nullptr) {
    router_.Route(*c.best, request, now, out);
    return std::nullopt;
  }
  // No live instance meets the deadline: add capacity. While a cold start is in flight, another begins only when
  // the requests turned away meanwhile come faster than the loading instances will serve them (a burst would
  // otherwise start one per request); a warm reload is only a host-to-device copy, so any number.
  const std::vector<InstanceRec*>& mine = instances_.OfFunction(f.id);
  const bool warm =
      std::any_of(mine.begin(), mine.end(), [](const InstanceRec* i) { return i->state == InstanceState::kWarm; });
  Refusal refusal{Reason::kDeadlineUnreachable, "a cold start is already in flight"};
  // Another cold start beside one in flight takes only slices nobody else needs.
  const bool another = c.loading && !warm;
  if (!another || ColdStartShort(f, now)) {
    if (InstanceRec* added = another ? placer_.ScaleUpOnSpare(f, now, out) : placer_.ScaleUp(f, now, out)) {
      const TimePoint finish = router_.EstimatedFinish(*added, now, request.deadline);
      if (finish <= request.deadline || options_.serve_late) {
        router_.Route(*added, request, now, out);
        return std::nullopt;
      }
      if (finish < c.earliest_finish) {
        c.earliest = added;
        c.earliest_finish = finish;
      }
      refusal.detail = "a new instance would be ready too late";
    } else if (!another) {
      refusal = Refusal{Reason::kNoCapacity, "no free slice, pipeline or time-sharing slot for another instance"};
      placer_.TurnedAway(f, now, out);
    }
  }
  if (options_.serve_late && c.earliest != nullptr) {
    router_.Route(*c.earliest, request, now, out);
    return std::nullopt;
  }
  // One string, built once: about 40% of the requests of an overloaded simulation end here.
  std::string why;
  why.reserve(160);
  why.append("no instance of ").append(f.Name()).append(" can finish before the deadline: ").append(refusal.detail);
  if (c.earliest != nullptr) {
    why.append(" (earliest estimate ").append(FormatDuration(c.earliest_finish - request.deadline)).append(" late)");
  }
  refusal.detail = std::move(why);
  return refusal;
}

bool FluidFaaSScheduler::ColdStartShort(const ServedFunction& f, TimePoint now) {
  if (!options_.cold_starts) return false;
  LoadTracker& waiting = waiting_for_load_.try_emplace(f.id, options_.tracker).first->second;
  waiting.OnArrival(now);
  // What the loading instances will serve, at batch 1: a ramp's deadlines leave little room for batches to fill
  // (priced at full batches, a single hot function's ramp lost 4-5 points against this).
  double loading_rps = 0;
  size_t mine = 0;
  for (const InstanceRec* i : instances_.OfFunction(f.id)) {
    if (i->state != InstanceState::kLoading) continue;
    ++mine;
    loading_rps += i->CapacityRps();
  }
  // Only while no other function is loading: functions ramping together share the free slices one cold start at a
  // time each (letting the hottest start several lost 2.2 points on paper at heavy load).
  if (instances_.loading() > mine) return false;
  return waiting.RateShort(now) > loading_rps;
}

void FluidFaaSScheduler::OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) {
  auto f = functions_.find(request.function);
  if (f == functions_.end()) {
    out.push_back(
        RejectDecision{request.id, Reason::kUnknownFunction, "unknown function " + std::to_string(request.function)});
    return;
  }
  if (std::optional<Refusal> no = Admit(f->second, request, now, out)) {
    out.push_back(RejectDecision{request.id, no->code, std::move(no->detail)});
  }
}

void FluidFaaSScheduler::Reroute(std::span<const RequestEvent> stranded, Reason code, std::string_view detail,
                                 TimePoint now, std::vector<Decision>& out) {
  for (const RequestEvent& r : stranded) {
    auto f = functions_.find(r.function);
    if (f == functions_.end()) {
      out.push_back(FailDecision{r.id, Reason::kFunctionRemoved, "its function was removed"});
      continue;
    }
    // Past its deadline nothing is added for it; otherwise it may scale up like a new request ("move or fail").
    if (r.deadline <= now || Admit(f->second, r, now, out))
      out.push_back(FailDecision{r.id, code, std::string(detail)});
  }
}

void FluidFaaSScheduler::Ended(InstanceRec& inst, int n, TimePoint now, std::vector<Decision>& out) {
  inst.outstanding = std::max(0, inst.outstanding - n);
  if (inst.outstanding == 0) hotness_.Idle(inst);
  if (inst.evict_pending) instances_.Evict(inst, now, out);
  if (inst.state == InstanceState::kDraining && inst.outstanding == 0) instances_.Retire(inst, now, out);
}

void FluidFaaSScheduler::OnStageFinished(const StageFinished& stage, TimePoint now, std::vector<Decision>& out) {
  InstanceRec* inst = instances_.Find(stage.instance);
  if (inst == nullptr || stage.stage >= inst->stages.size() || stage.requests.empty()) return;
  const int n = static_cast<int>(stage.requests.size());
  slices_.BatchDone(inst->stages[stage.stage].slice, inst->id, stage.stage, n, stage.finished);
  inst->load.OnBusy(stage.started, stage.finished);
  hotness_.Busier(*inst, now);
  // Measured speed: what the batch took against what the cost table said, as a running mean.
  const Duration estimate =
      inst->stage_batch[stage.stage][static_cast<size_t>(std::min(n, inst->max_batch(stage.stage)) - 1)];
  if (estimate > Duration{0} && stage.finished > stage.started) {
    const double ratio =
        static_cast<double>((stage.finished - stage.started).count()) / static_cast<double>(estimate.count());
    inst->Measured(ratio, options_.speed_alpha, options_.noise_margin);
  }
  if (stage.last) Ended(*inst, n, now, out);
}

void FluidFaaSScheduler::OnStageFailed(const StageFailed& stage, TimePoint now, std::vector<Decision>& out) {
  InstanceRec* inst = instances_.Find(stage.instance);
  const int n = static_cast<int>(stage.requests.size());
  for (RequestId r : stage.requests) {
    out.push_back(FailDecision{r, Reason::kStageFailed,
                               "stage " + std::to_string(stage.stage) + ": " + std::string(stage.detail)});
  }
  if (inst == nullptr) return;
  for (size_t s = stage.stage; s < inst->stages.size(); ++s) {
    if (s == stage.stage) {
      slices_.BatchDone(inst->stages[s].slice, inst->id, s, n, now);
    } else {
      slices_.Cancel(inst->stages[s].slice, inst->id, s, n);
    }
  }
  Ended(*inst, n, now, out);
}

void FluidFaaSScheduler::Lost(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  if (inst.replaces) migrator_.TargetLoaded(inst, /*ok=*/false, now, out);
  inst.outstanding = 0;  // its requests were handed back with the event
  instances_.Retire(inst, now, out);
}

void FluidFaaSScheduler::OnLoadFinished(const LoadFinished& load, TimePoint now, std::vector<Decision>& out) {
  InstanceRec* inst = instances_.Find(load.instance);
  if (inst == nullptr || inst->state != InstanceState::kLoading) return;
  if (!load.ok) {
    Lost(*inst, now, out);
    Reroute(load.stranded, Reason::kLoadFailed, load.detail, now, out);
    return;
  }
  instances_.SetState(*inst, inst->after_load, now, out);
  if (inst->replaces) migrator_.TargetLoaded(*inst, /*ok=*/true, now, out);
  if (!functions_.contains(inst->function)) {  // removed while it loaded
    instances_.SetState(*inst, InstanceState::kDraining, now, out);
    if (inst->outstanding == 0) instances_.Retire(*inst, now, out);
  }
}

void FluidFaaSScheduler::OnSliceLost(const SliceLost& lost, TimePoint now, std::vector<Decision>& out) {
  if (lost.slice >= slices_.size()) return;
  if (lost.reason == Reason::kSliceTaken) slices_.SetAvailable(lost.slice, false);
  for (InstanceId id : slices_.Lose(lost.slice)) {
    if (InstanceRec* inst = instances_.Find(id)) Lost(*inst, now, out);
  }
  Reroute(lost.stranded, lost.reason, lost.detail, now, out);
}

void FluidFaaSScheduler::OnReleased(const Released& released, TimePoint, std::vector<Decision>&) {
  slices_.Acknowledge(released.slice, released.instance);
}

void FluidFaaSScheduler::OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) {
  if (slice >= slices_.size()) return;
  slices_.SetAvailable(slice, true);
  migrator_.Consider(now, out);
}

void FluidFaaSScheduler::OnTick(TimePoint now, std::vector<Decision>& out) {
  hotness_.Tick(now, out);
  migrator_.Consider(now, out);
}

Status FluidFaaSScheduler::Invariants() const {
  if (!instances_.errors().empty()) return Status::Internal("fluidfaas: " + instances_.errors().front());
  FF_RETURN_IF_ERROR(slices_.Check());
  // Every resident of a slice is a placed instance with a stage there, and the other way round.
  for (size_t s = 0; s < slices_.size(); ++s) {
    for (InstanceId id : slices_.residents(s)) {
      const InstanceRec* inst = instances_.Find(id);
      if (inst == nullptr || std::none_of(inst->stages.begin(), inst->stages.end(),
                                          [s](const StagePlacement& st) { return st.slice == s; })) {
        return Status::Internal("fluidfaas: slice " + slices_.info(s).id + " lists instance " + std::to_string(id) +
                                ", which is not placed there");
      }
    }
  }
  for (const auto& [id, inst] : instances_.all()) {
    for (const StagePlacement& st : inst.stages) {
      const auto& r = slices_.residents(st.slice);
      if (std::find(r.begin(), r.end(), id) == r.end()) {
        return Status::Internal("fluidfaas: instance " + std::to_string(id) + " is placed on slice " +
                                slices_.info(st.slice).id + " but not booked there");
      }
    }
  }
  return Status::Ok();
}

std::vector<InstanceView> FluidFaaSScheduler::Instances() const {
  std::vector<InstanceView> out;
  for (const auto& [id, inst] : instances_.all())
    out.push_back(InstanceView{id, inst.function, inst.state, inst.stages, inst.outstanding});
  std::sort(out.begin(), out.end(), [](const InstanceView& a, const InstanceView& b) { return a.id < b.id; });
  return out;
}

std::optional<InstanceView> FluidFaaSScheduler::Instance(InstanceId id) const {
  const InstanceRec* inst = instances_.Find(id);
  if (inst == nullptr) return std::nullopt;
  return InstanceView{id, inst->function, inst->state, inst->stages, inst->outstanding};
}

std::vector<SliceView> FluidFaaSScheduler::Slices() const {
  std::vector<SliceView> out;
  for (size_t s = 0; s < slices_.size(); ++s) {
    out.push_back(SliceView{slices_.info(s).id, slices_.available(s), slices_.residents(s), slices_.used_mib(s)});
  }
  return out;
}

}  // namespace fluidfaas::policy
