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

void Hotness::Tick(TimePoint now, std::vector<Decision>& out) {
  // Only instances on slices are judged (a promotion may evict others: hence the copy); warm copies are ordered by
  // when they turned warm and leave from the front. Idle functions cost nothing here.
  const std::vector<InstanceId> placed(instances_.on_slices().begin(), instances_.on_slices().end());
  std::vector<InstanceId> retire;
  for (InstanceId id : placed) {
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
