#include "policy/exclusive_scheduler.h"

#include <algorithm>

#include "policy/baseline_books.h"

namespace fluidfaas::policy {

ExclusiveScheduler::ExclusiveScheduler(std::vector<ClusterSlice> slices, std::vector<ServedFunction> functions,
                                       ExclusiveOptions options)
    : options_(options), functions_(std::move(functions)) {
  for (ClusterSlice& s : slices) slices_.push_back(SliceRec{std::move(s), false, TimePoint{}});
}

const ServedFunction* ExclusiveScheduler::Function(FunctionId id) const {
  for (const ServedFunction& f : functions_) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

void ExclusiveScheduler::OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) {
  const ServedFunction* f = Function(request.function);
  if (f == nullptr) {
    out.push_back(RejectDecision{request.id, "unknown function " + std::to_string(request.function)});
    return;
  }
  const auto finish_of = [&](const Inst& inst) {
    const TimePoint start = std::max({now, inst.ready_at, slices_[inst.slice].busy_until});
    return start + inst.service;
  };
  InstanceId best = 0;
  TimePoint best_finish = TimePoint::max();
  bool loading = false;
  for (const auto& [id, inst] : instances_) {
    if (inst.function != request.function) continue;
    loading = loading || inst.loading;
    const TimePoint finish = finish_of(inst);
    if (finish <= request.deadline && finish < best_finish) {
      best = id;
      best_finish = finish;
    }
  }
  if (best == 0 && !loading) {
    // One more instance on the smallest free slice that fits and serves.
    const size_t last = f->costs->blocks() - 1;
    std::optional<size_t> pick;
    for (size_t i = 0; i < slices_.size(); ++i) {
      const SliceRec& s = slices_[i];
      if (s.taken || !s.info.available) continue;
      if (!f->costs->ServesAlone(f->costs->KindIndex(s.info.kind), s.info.kind.profile->memory_mib, f->slo_ms)) {
        continue;
      }
      if (!pick || s.info.kind.profile->memory_mib < slices_[*pick].info.kind.profile->memory_mib) pick = i;
    }
    if (pick) {
      const int k = f->costs->KindIndex(slices_[*pick].info.kind);
      const int64_t mib = f->costs->MemoryMib(k, 0, last);
      Inst inst;
      inst.function = request.function;
      inst.slice = *pick;
      inst.service = MillisF(f->costs->ComputeMs(k, 0, last));
      const Duration load = options_.load.LoadTime((mib - f->costs->ReserveMib(k)) << 20, /*from_warm=*/false);
      inst.ready_at = now + load;
      inst.last_request = now;
      slices_[*pick].taken = true;
      const InstanceId id = next_instance_++;
      instances_[id] = inst;
      out.push_back(LaunchDecision{id, request.function, {StagePlacement{*pick, 0, last, mib}}, false, load, inst.service});
      if (finish_of(inst) <= request.deadline) {
        best = id;
        best_finish = finish_of(inst);
      }
    }
  }
  if (best == 0) {
    out.push_back(RejectDecision{request.id, "no exclusive instance of " + f->spec->name + " can meet the deadline"});
    return;
  }
  Inst& inst = instances_.at(best);
  slices_[inst.slice].busy_until = best_finish;
  inst.last_request = now;
  ++inst.outstanding;
  out.push_back(RouteDecision{request.id, best});
}

void ExclusiveScheduler::OnStageFinished(const StageEvent& stage, TimePoint, std::vector<Decision>&) {
  CountRequestEnd(instances_, stage);
}

void ExclusiveScheduler::OnLoadFinished(const LoadEvent& load, TimePoint, std::vector<Decision>& out) {
  if (MarkLoaded(instances_, load)) return;
  slices_[instances_.at(load.instance).slice].taken = false;
  out.push_back(RetireDecision{load.instance});
  instances_.erase(load.instance);
}

void ExclusiveScheduler::OnTick(TimePoint now, std::vector<Decision>& out) {
  for (auto it = instances_.begin(); it != instances_.end();) {
    const Inst& inst = it->second;
    if (!inst.loading && inst.outstanding == 0 && now - inst.last_request >= options_.keep_alive) {
      slices_[inst.slice].taken = false;
      out.push_back(RetireDecision{it->first});
      it = instances_.erase(it);
    } else {
      ++it;
    }
  }
}

void ExclusiveScheduler::OnSliceFreed(size_t slice, TimePoint, std::vector<Decision>&) {
  if (slice < slices_.size()) slices_[slice].info.available = true;
}

}  // namespace fluidfaas::policy
