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
  std::vector<InstanceId> expire;
  std::vector<InstanceId> retire;
  for (auto& [id, inst] : instances_.all()) {
    switch (inst.state) {
      case InstanceState::kTimeSharing: {
        if (inst.load.BusyFraction(now) >= options_.promote_busy) {
          Promote(inst, now, out);
          break;
        }
        const TimePoint last_use = std::max(inst.state_since, inst.load.last_arrival());
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
      case InstanceState::kWarm:
        if (now - inst.state_since >= options_.keep_alive) expire.push_back(id);
        break;
      case InstanceState::kDraining:
        if (inst.outstanding == 0) retire.push_back(id);
        break;
      default: break;
    }
  }
  // Host memory: the warm copies that stay must fit; the least recently used go first.
  if (options_.host_memory_mib > 0) {
    std::vector<const InstanceRec*> warm;
    int64_t held = 0;
    for (const auto& [id, inst] : instances_.all()) {
      if (inst.state != InstanceState::kWarm || std::find(expire.begin(), expire.end(), id) != expire.end()) continue;
      warm.push_back(&inst);
      held += inst.weights_mib;
    }
    std::sort(warm.begin(), warm.end(), [](const InstanceRec* a, const InstanceRec* b) {
      return a->state_since != b->state_since ? a->state_since < b->state_since : a->id < b->id;
    });
    for (size_t i = 0; held > options_.host_memory_mib && i < warm.size(); ++i) {
      expire.push_back(warm[i]->id);
      held -= warm[i]->weights_mib;
    }
  }
  for (InstanceId id : expire) instances_.Expire(instances_.at(id), now, out);
  for (InstanceId id : retire) instances_.Retire(instances_.at(id), now, out);
}

}  // namespace fluidfaas::policy
