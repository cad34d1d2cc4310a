#include "policy/hotness.h"

#include <algorithm>

namespace fluidfaas::policy {

void Hotness::Promote(InstanceRec& inst, TimePoint now, std::vector<Decision>& out) {
  // Exclusive means alone on its slices: idle co-residents leave now, busy ones take no new request and leave
  // when their last one finishes.
  for (const StagePlacement& st : inst.stages) {
    const std::vector<InstanceId> residents = slices_.residents(st.slice);
    for (InstanceId r : residents) {
      if (r == inst.id) continue;
      InstanceRec& other = instances_.at(r);
      other.evict_pending = true;
      instances_.Evict(other, now, out);
    }
  }
  instances_.SetState(inst, InstanceState::kExclusiveHot, now, out);
}

void Hotness::Busier(InstanceRec& inst, TimePoint now) {
  // Promotion is judged at the next tick only if the fraction reaches the threshold now: until another batch it
  // only falls (an exclusive instance's demotion only moves further off).
  if (inst.state == InstanceState::kTimeSharing && inst.load.BusyFraction(now) >= options_.promote_busy) {
    instances_.Judge(inst);
  }
}

void Hotness::Idle(InstanceRec& inst) {
  if (inst.state == InstanceState::kTimeSharing) IdleTimer(inst);
}

void Hotness::IdleTimer(InstanceRec& inst) {
  instances_.JudgeAt(inst, std::max(inst.in_use_since, inst.load.last_arrival()) + options_.ts_idle_evict);
}

void Hotness::Next(InstanceRec& inst, TimePoint now) {
  switch (inst.state) {
    case InstanceState::kTimeSharing:
      // Its busy fraction grows only with a batch done (Busier), so promotion waits for one; eviction waits for
      // its idle time, once nothing is outstanding (else from its last request's end: Idle).
      if (inst.outstanding == 0) IdleTimer(inst);
      break;
    case InstanceState::kExclusiveHot: {
      const Duration window = options_.tracker.busy_window;
      const TimePoint settled = inst.state_since + std::max(window, options_.min_dwell);
      if (now < settled) {
        instances_.JudgeAt(inst, settled);
        break;
      }
      // Busy time leaves the window no faster than time passes: the fraction falls by at most dt / window, so it
      // cannot reach demote_busy sooner than this (shaved, so rounding never makes it late).
      const double room = std::max(0.0, inst.load.BusyFraction(now) - options_.demote_busy);
      instances_.JudgeAt(inst,
                         now + Duration(static_cast<int64_t>(room * static_cast<double>(window.count()) * (1 - 1e-6))));
      break;
    }
    default: break;  // draining: retired below, or when its last request ends; warm or loading: not on a slice
  }
}

void Hotness::Tick(TimePoint now, std::vector<Decision>& out) {
  // Only the instances on the agenda are judged (InstanceTable::TakeDue): the others' judgement cannot have changed
  // since their last one. Warm copies are ordered by when they turned warm and leave from the front. Idle functions,
  // and placed instances with nothing new, cost nothing here.
  std::vector<InstanceId> retire;
  for (InstanceId id : instances_.TakeDue(now)) {
    InstanceRec& inst = instances_.at(id);
    switch (inst.state) {
      case InstanceState::kTimeSharing: {
        if (inst.load.BusyFraction(now) >= options_.promote_busy) {
          Promote(inst, now, out);
          break;
        }
        const TimePoint last_use = std::max(inst.in_use_since, inst.load.last_arrival());
        if (inst.outstanding == 0 && now - last_use >= options_.ts_idle_evict) instances_.Evict(inst, now, out);
        break;
      }
      case InstanceState::kExclusiveHot:
        // A whole busy window (and the dwell time) in this state before judging, so a fresh instance is not
        // demoted at once and a promoted one does not flap back while its batches keep its busy time low.
        if (now - inst.state_since >= std::max(options_.tracker.busy_window, options_.min_dwell) &&
            inst.load.BusyFraction(now) < options_.demote_busy) {
          instances_.SetState(inst, InstanceState::kTimeSharing, now, out);
        }
        break;
      case InstanceState::kDraining:
        if (inst.outstanding == 0) retire.push_back(id);
        break;
      default: break;  // evicted by a promotion above: warm now
    }
    Next(inst, now);
  }
  // Warm copies past their keep-alive turn cold; then, while the copies overflow host memory, the least recently
  // used go too.
  while (!instances_.warm().empty()) {
    const auto [since, id] = *instances_.warm().begin();
    const bool overflow = options_.host_memory_mib > 0 && instances_.warm_mib() > options_.host_memory_mib;
    if (now - since < options_.keep_alive && !overflow) break;
    instances_.Expire(instances_.at(id), now, out);
  }
  for (InstanceId id : retire) instances_.Retire(instances_.at(id), now, out);
}

}  // namespace fluidfaas::policy
