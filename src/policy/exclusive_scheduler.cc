#include "policy/exclusive_scheduler.h"

#include <algorithm>

namespace fluidfaas::policy {

Result<std::unique_ptr<ExclusiveScheduler>> ExclusiveScheduler::Create(std::vector<ClusterSlice> slices,
                                                                       std::vector<ServedFunction> functions,
                                                                       ExclusiveOptions options) {
  std::unique_ptr<ExclusiveScheduler> s(new ExclusiveScheduler(std::move(slices), options));
  for (ServedFunction& f : functions) FF_RETURN_IF_ERROR(s->Deploy(std::move(f)));
  return s;
}

TimePoint ExclusiveScheduler::Finish(const ExclusiveInstance& inst, TimePoint now) const {
  return std::max({now, inst.ready_at, slices_.BusyUntil(inst.slice)}) + inst.service;
}

std::optional<ExclusiveScheduler::Refusal> ExclusiveScheduler::Admit(ExclusiveFunction& fn, const RequestEvent& request,
                                                                     TimePoint now, std::vector<Decision>& out) {
  const ServedFunction& f = fn.served;
  InstanceId best = 0;
  TimePoint best_finish = TimePoint::max();
  bool loading = false;
  for (InstanceId id : fn.instances) {
    const ExclusiveInstance& inst = instances_.at(id);
    loading = loading || inst.loading;
    const TimePoint finish = Finish(inst, now);
    if (finish <= request.deadline && finish < best_finish) {
      best = id;
      best_finish = finish;
    }
  }
  Refusal refusal{Reason::kDeadlineUnreachable, "a cold start is already in flight"};
  if (best == 0 && !loading) {
    // One more instance on the smallest free slice that fits and serves.
    const size_t last = f.costs->blocks() - 1;
    std::optional<size_t> pick;
    for (size_t i = 0; i < slices_.size(); ++i) {
      if (!slices_.Free(i)) continue;
      const SliceKind& kind = slices_.info(i).kind;
      if (!f.costs->ServesAlone(f.costs->KindIndex(kind), kind.profile->memory_mib, f.slo_ms)) continue;
      if (!pick || kind.profile->memory_mib < slices_.capacity_mib(*pick)) pick = i;
    }
    if (pick) {
      const int k = f.costs->KindIndex(slices_.info(*pick).kind);
      const int64_t mib = f.costs->MemoryMib(k, 0, last);
      const int64_t reserve = f.costs->ReserveMib(k);
      ExclusiveInstance inst;
      inst.function = f.id;
      inst.slice = *pick;
      inst.service = MillisF(f.costs->ComputeMs(k, 0, last));
      const Duration load = options_.load.LoadTime((mib - reserve) << 20, /*from_warm=*/false);
      inst.ready_at = now + load;
      inst.last_request = now;
      const InstanceId id = next_instance_++;
      const ExclusiveInstance& added = Add(id, inst, fn, mib - reserve, reserve);
      out.push_back(
          LaunchDecision{id, f.id, {StagePlacement{*pick, 0, last, mib, reserve}}, false, load, added.service});
      refusal.detail = "a new instance would be ready too late";
      if (Finish(added, now) <= request.deadline) {
        best = id;
        best_finish = Finish(added, now);
      }
    } else {
      refusal = Refusal{Reason::kNoCapacity, "no free slice serves it alone"};
    }
  }
  if (best == 0) {
    refusal.detail = "no exclusive instance of " + std::string(f.Name()) + " can meet the deadline: " + refusal.detail;
    return refusal;
  }
  ExclusiveInstance& inst = instances_.at(best);
  slices_.BookBatch(inst.slice, best, 0, best_finish - inst.service, best_finish, request.deadline, false);
  inst.last_request = now;
  ++inst.outstanding;
  out.push_back(RouteDecision{request.id, best});
  return std::nullopt;
}

void ExclusiveScheduler::OnTick(TimePoint now, std::vector<Decision>& out) {
  std::vector<InstanceId> expired;
  for (const auto& [id, inst] : instances_) {
    if (!inst.loading && inst.outstanding == 0 && now - inst.last_request >= options_.keep_alive) expired.push_back(id);
  }
  for (InstanceId id : expired) Retire(id, out);
}

}  // namespace fluidfaas::policy
