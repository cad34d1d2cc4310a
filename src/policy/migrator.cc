#include "policy/migrator.h"

namespace fluidfaas::policy {

void Migrator::Consider(TimePoint now, std::vector<Decision>& out) {
  if (!options_.migration) return;
  std::vector<InstanceId> pipelines;
  for (InstanceId id : instances_.pipelines()) {
    const InstanceRec& inst = instances_.at(id);
    if (!inst.migrating && (inst.state == InstanceState::kExclusiveHot || inst.state == InstanceState::kTimeSharing)) {
      pipelines.push_back(id);
    }
  }
  if (slices_.version() == seen_version_ && pipelines == seen_pipelines_) return;
  seen_version_ = slices_.version();
  seen_pipelines_ = pipelines;
  for (InstanceId id : pipelines) {
    InstanceRec& old = instances_.at(id);
    auto f = functions_.find(old.function);
    if (f == functions_.end()) continue;
    std::optional<Plan> plain = placer_.PlanOnFreeSlices(f->second, 1);
    if (!plain) continue;
    // Pays off: the pipeline keeps serving while the plain instance loads, so no request waits for the reload,
    // and once it is done the pipeline's other slices are free; only a slower plain instance is refused.
    if (plain->latency_ms > ToMillis(old.service) * (1 + options_.migrate_slowdown)) continue;
    const InstanceState state = old.state;
    old.migrating = true;
    InstanceRec& target = placer_.PlacePlan(f->second, *plain, state, now, out, /*reuse=*/false);
    target.replaces = id;
  }
}

void Migrator::TargetLoaded(InstanceRec& target, bool ok, TimePoint now, std::vector<Decision>& out) {
  InstanceRec* old = instances_.Find(*target.replaces);
  target.replaces.reset();
  if (old == nullptr) return;  // the pipeline is gone (its worker was lost): the target simply serves
  old->migrating = false;
  if (!ok) return;
  if (old->state == InstanceState::kWarm) {  // evicted while the target loaded: its warm copy is not needed now
    instances_.Expire(*old, now, out);
    return;
  }
  if (old->state != InstanceState::kExclusiveHot && old->state != InstanceState::kTimeSharing) return;
  out.push_back(MigrateDecision{old->id, target.id});
  instances_.SetState(*old, InstanceState::kDraining, now, out);
  if (old->outstanding == 0) instances_.Retire(*old, now, out);
}

}  // namespace fluidfaas::policy
