#include "policy/instance_table.h"

#include <algorithm>

namespace fluidfaas::policy {

InstanceRec& InstanceTable::New(FunctionId fn) {
  InstanceRec& inst = instances_[next_instance_];
  inst.id = next_instance_++;
  inst.function = fn;
  inst.load = LoadTracker(options_.tracker);
  by_function_[fn].push_back(&inst);
  return inst;
}

InstanceRec* InstanceTable::Find(InstanceId id) {
  auto it = instances_.find(id);
  return it == instances_.end() ? nullptr : &it->second;
}

const InstanceRec* InstanceTable::Find(InstanceId id) const {
  auto it = instances_.find(id);
  return it == instances_.end() ? nullptr : &it->second;
}

const std::vector<InstanceRec*>& InstanceTable::OfFunction(FunctionId fn) const {
  static const std::vector<InstanceRec*> kNone;
  auto it = by_function_.find(fn);
  return it == by_function_.end() ? kNone : it->second;
}

InstanceRec& InstanceTable::ReusableOrNew(FunctionId fn) {
  for (InstanceRec* inst : OfFunction(fn)) {
    if (inst->state == InstanceState::kWarm) return *inst;
  }
  return New(fn);
}

bool InstanceTable::SetState(InstanceRec& inst, InstanceState to, TimePoint now, std::vector<Decision>& out,
                             bool announce) {
  const Status s = CheckTransition(inst.state, to);
  if (!s.ok()) {
    errors_.push_back("instance " + std::to_string(inst.id) + ": " + s.message());
    return false;
  }
  if (announce) out.push_back(StateDecision{inst.id, inst.state, to});
  Index(inst, false);
  const bool demotion = inst.state == InstanceState::kExclusiveHot && to == InstanceState::kTimeSharing;
  if (!demotion) inst.in_use_since = now;
  inst.state = to;
  inst.state_since = now;
  Index(inst, true);
  return true;
}

void InstanceTable::Index(InstanceRec& inst, bool add) {
  switch (inst.state) {
    case InstanceState::kTimeSharing:
    case InstanceState::kExclusiveHot:
    case InstanceState::kDraining:
      if (add) {
        on_slices_.insert(inst.id);
        if (inst.stages.size() > 1) pipelines_.insert(inst.id);
        Judge(inst);
      } else {
        on_slices_.erase(inst.id);
        pipelines_.erase(inst.id);
        Unjudge(inst);  // off the timers; a stale entry of judge_soon_ is dropped by TakeDue
      }
      break;
    case InstanceState::kWarm:
      if (add) {
        warm_.emplace(inst.state_since, inst.id);
        warm_mib_ += inst.weights_mib;
      } else {
        warm_.erase({inst.state_since, inst.id});
        warm_mib_ -= inst.weights_mib;
      }
      break;
    case InstanceState::kLoading: loading_ += add ? 1 : -1; break;
    default: break;
  }
}

void InstanceTable::Judge(InstanceRec& inst) {
  if (inst.judge_soon) return;
  inst.judge_soon = true;
  judge_soon_.push_back(inst.id);
}

void InstanceTable::JudgeAt(InstanceRec& inst, TimePoint when) {
  // An earlier timer stands: judged then, the instance decides nothing it would not decide at any tick, and its
  // judge sets the next one. So a busy instance's request ends cost a comparison, not a reordering of the timers.
  if (inst.judge_at <= when) return;
  Unjudge(inst);
  inst.judge_at = when;
  judge_at_.emplace(when, inst.id);
}

void InstanceTable::Unjudge(InstanceRec& inst) {
  if (inst.judge_at == TimePoint::max()) return;
  judge_at_.erase({inst.judge_at, inst.id});
  inst.judge_at = TimePoint::max();
}

std::vector<InstanceId> InstanceTable::TakeDue(TimePoint now) {
  std::vector<InstanceId> due;
  for (InstanceId id : judge_soon_) {
    InstanceRec* inst = Find(id);
    if (inst == nullptr || !inst->judge_soon) continue;
    inst->judge_soon = false;
    if (on_slices_.contains(id)) due.push_back(id);
  }
  judge_soon_.clear();
  while (!judge_at_.empty() && judge_at_.begin()->first <= now) {
    const InstanceId id = judge_at_.begin()->second;
    judge_at_.erase(judge_at_.begin());
    instances_.at(id).judge_at = TimePoint::max();
    due.push_back(id);  // on a slice: leaving one takes it off the timers
  }
  std::sort(due.begin(), due.end());
  due.erase(std::unique(due.begin(), due.end()), due.end());
  return due;
}

void InstanceTable::Place(InstanceRec& inst, const ServedFunction& f, std::vector<StagePlacement> stages,
                          InstanceState after_load, TimePoint now, std::vector<Decision>& out,
                          std::vector<InstanceId> after_release) {
  const bool from_warm = inst.state == InstanceState::kWarm;
  if (!SetState(inst, InstanceState::kLoading, now, out, /*announce=*/false)) return;
  inst.weights_mib = (f.spec->TotalParams() * model::BytesPerElement(f.spec->dtype)) >> 20;
  ++placement_epoch_;
  inst.after_load = after_load;
  for (InstanceId prior : after_release) {
    for (const StagePlacement& st : stages) slices_.TakeOver(st.slice, prior);
  }
  for (StagePlacement& st : stages) {
    st.reserve_mib = f.costs->ReserveMib(f.costs->KindIndex(slices_.info(st.slice).kind));
  }
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
        const int k = f.costs->KindIndex(slices_.info(st.slice).kind);
        extra[s] = f.batched->MemoryMib(k, st.first_block, st.last_block, b) - st.memory_mib;
        fits = st.memory_mib - st.reserve_mib + extra[s] <= slices_.FreeMib(st.slice, st.reserve_mib);
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
  inst.speed = inst.booking_speed = 1.0;
  inst.speed_var = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    StagePlacement& st = stages[s];
    st.memory_mib += extra[s];
    const int k = f.costs->KindIndex(slices_.info(st.slice).kind);
    const int64_t own = st.memory_mib - st.reserve_mib;
    if (own > slices_.FreeMib(st.slice, st.reserve_mib)) {
      errors_.push_back("slice " + slices_.info(st.slice).id + " overbooked by instance " + std::to_string(inst.id));
    }
    slices_.Book(st.slice, inst.id, own, st.reserve_mib);
    largest_bytes = std::max(largest_bytes, own << 20);
    const double stage_ms = f.costs->ComputeMs(k, st.first_block, st.last_block);
    const double hop_ms =
        s + 1 < stages.size() ? options_.planner.transfer.HopMs(f.costs->OutBytes(st.last_block)) : 0.0;
    std::vector<Duration> by_batch = {MillisF(stage_ms)};
    for (int n = 2; n <= batch; ++n)
      by_batch.push_back(MillisF(f.batched->ComputeMs(k, st.first_block, st.last_block, n)));
    inst.stage_batch.push_back(std::move(by_batch));
    inst.hop_time.push_back(MillisF(hop_ms));
    service_ms += stage_ms + hop_ms;
  }
  inst.stages = std::move(stages);
  inst.service = MillisF(service_ms);
  const Duration load = options_.load.LoadTime(largest_bytes, from_warm);
  inst.ready_at = now + load;
  LaunchDecision launch{inst.id, inst.function, inst.stages, from_warm, load, inst.service};
  launch.max_batch = batch;         // opportunistic: whatever is queued back to back, no waiting for a fuller batch,
  launch.batch_by_deadline = true;  // and no larger than the deadlines in it allow (as Router books them)
  launch.after_release = std::move(after_release);
  out.push_back(std::move(launch));
}

void InstanceTable::Unplace(InstanceRec& inst) {
  ++placement_epoch_;
  for (const StagePlacement& st : inst.stages) slices_.Unbook(st.slice, inst.id);
  inst.stages.clear();
}

bool InstanceTable::Evict(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  if (inst.outstanding > 0) return false;  // never drop a request: only idle instances are evicted
  if (inst.state != InstanceState::kTimeSharing) return false;
  inst.evict_pending = false;
  Unplace(inst);
  out.push_back(EvictDecision{inst.id});
  SetState(inst, InstanceState::kWarm, now, out);
  return true;
}

bool InstanceTable::Leave(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  if (inst.state == InstanceState::kExclusiveHot) SetState(inst, InstanceState::kTimeSharing, now, out);
  inst.evict_pending = true;
  return Evict(inst, now, out);
}

void InstanceTable::Retire(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  Unplace(inst);
  out.push_back(RetireDecision{inst.id});
  if (inst.state == InstanceState::kExclusiveHot || inst.state == InstanceState::kTimeSharing) {
    SetState(inst, InstanceState::kDraining, now, out, /*announce=*/false);
  }
  SetState(inst, InstanceState::kRetired, now, out);
  Erase(inst);
}

void InstanceTable::Expire(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  SetState(inst, InstanceState::kCold, now, out);
  Erase(inst);
}

void InstanceTable::Erase(InstanceRec& inst) {
  Index(inst, false);  // cold and retired records are in no index, unless the change to that state was refused
  auto list = by_function_.find(inst.function);
  std::erase(list->second, &inst);
  if (list->second.empty()) by_function_.erase(list);  // a function that is not served holds nothing here
  instances_.erase(inst.id);
}

}  // namespace fluidfaas::policy
