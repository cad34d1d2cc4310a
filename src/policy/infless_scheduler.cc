#include "policy/infless_scheduler.h"

#include <algorithm>
#include <cmath>

#include "policy/baseline_books.h"

namespace fluidfaas::policy {

std::optional<InflessConfig> ChooseInflessConfig(const BatchCosts& costs, double slo_ms, double rate_rps,
                                                 int64_t gpu_memory_mib, double exec_budget_batching) {
  const size_t shares = costs.one().kinds().size();
  std::optional<InflessConfig> best;
  for (size_t s = 0; s < shares; ++s) {
    const SliceKind& kind = costs.one().kinds()[s];
    const double fraction = static_cast<double>(kind.profile->sms) / kind.gpu->sms;
    for (int b : costs.batches()) {
      const int k = static_cast<int>(s);
      const double exec = costs.WholeMs(k, b);
      const double budget = exec_budget_batching * slo_ms;
      if (exec > budget || costs.WholeMib(k, b) > gpu_memory_mib) break;  // larger batches only get worse
      const double timeout_s = (slo_ms - exec) / 1000.0;
      if (b > 1 && rate_rps * timeout_s < b - 1) break;  // the batch would not fill in time
      const InflessConfig c{k, b, exec, fraction, 1000.0 * b / exec};
      const double per_share = c.throughput_rps / fraction;
      if (!best || per_share > best->throughput_rps / best->fraction * (1 + 1e-9)) best = c;
    }
  }
  return best;
}

InflessScheduler::InflessScheduler(std::vector<ClusterSlice> gpus, const std::vector<ServedFunction>& functions,
                                   InflessOptions options)
    : options_(options), next_scale_(TimePoint{} + options.scale_period) {
  for (ClusterSlice& g : gpus) {
    const int64_t mib = g.kind.gpu->memory_mib;
    gpus_.push_back(Gpu{std::move(g), 1.0, mib});
  }
  for (const ServedFunction& f : functions) functions_.emplace(f.id, Fn{f, LoadTracker(options_.tracker), {}});
}

TimePoint InflessScheduler::EstimatedFinish(const Inst& inst, TimePoint now) const {
  const TimePoint start = std::max(now, inst.ready_at);
  const int batches_ahead = inst.outstanding / inst.config.batch;  // full batches queued before this request's
  return start + MillisF(inst.config.exec_ms * (batches_ahead + 1));
}

double InflessScheduler::Capacity(const Fn& fn) const {
  double rps = 0;
  for (InstanceId id : fn.instances) rps += instances_.at(id).config.throughput_rps;
  return rps;
}

std::optional<InstanceId> InflessScheduler::PickWeighted(Fn& fn) {
  // Smooth weighted round robin over the loaded instances (all of them while none is loaded yet).
  const bool any_loaded = std::any_of(fn.instances.begin(), fn.instances.end(),
                                      [&](InstanceId id) { return !instances_.at(id).loading; });
  double total = 0;
  Inst* pick = nullptr;
  InstanceId pick_id = 0;
  for (InstanceId id : fn.instances) {
    Inst& inst = instances_.at(id);
    if (any_loaded && inst.loading) continue;
    inst.credit += inst.config.throughput_rps;
    total += inst.config.throughput_rps;
    if (pick == nullptr || inst.credit > pick->credit) {
      pick = &inst;
      pick_id = id;
    }
  }
  if (pick == nullptr) return std::nullopt;
  pick->credit -= total;
  return pick_id;
}

void InflessScheduler::OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) {
  auto fit = functions_.find(request.function);
  if (fit == functions_.end()) {
    out.push_back(RejectDecision{request.id, "unknown function " + std::to_string(request.function)});
    return;
  }
  Fn& fn = fit->second;
  fn.rate.OnArrival(now);
  ++fn.arrivals;
  if (++fn.arrivals_this_second > Capacity(fn)) ++fn.overflow;
  if (fn.instances.empty()) Launch(fn, now, out);
  InstanceId pick = PickWeighted(fn).value_or(0);
  if (pick != 0 && EstimatedFinish(instances_.at(pick), now) > request.deadline) {
    pick = 0;
    TimePoint best = TimePoint::max();
    for (InstanceId id : fn.instances) {
      const TimePoint t = EstimatedFinish(instances_.at(id), now);
      if (t <= request.deadline && t < best) {
        best = t;
        pick = id;
      }
    }
  }
  if (pick == 0) {
    out.push_back(RejectDecision{request.id, "no INFless instance of " + fn.served.spec->name + " can meet the deadline"});
    return;
  }
  Inst& inst = instances_.at(pick);
  ++inst.outstanding;
  ++inst.served_this_period;
  out.push_back(RouteDecision{request.id, pick});
}

std::optional<InstanceId> InflessScheduler::Launch(Fn& fn, TimePoint now, std::vector<Decision>& out) {
  const ServedFunction& f = fn.served;
  const int64_t gpu_mib = gpus_.empty() ? 0 : gpus_.front().info.kind.gpu->memory_mib;
  const std::optional<InflessConfig> config =
      ChooseInflessConfig(*f.mps, f.slo_ms, fn.rate.RateShort(now), gpu_mib, options_.exec_budget_batching);
  if (!config) return std::nullopt;
  const int64_t mib = f.mps->WholeMib(config->share, config->batch);
  std::optional<size_t> gpu;
  for (size_t g = 0; g < gpus_.size(); ++g) {
    const Gpu& c = gpus_[g];
    if (!c.info.available || c.free_share + 1e-9 < config->fraction || c.free_mib < mib) continue;
    if (!gpu || c.free_share < gpus_[*gpu].free_share) gpu = g;  // best fit: least left over
  }
  if (!gpu) return std::nullopt;
  gpus_[*gpu].free_share -= config->fraction;
  gpus_[*gpu].free_mib -= mib;
  const int64_t weights = (f.mps->WholeMib(config->share, 1) - f.mps->one().ReserveMib(config->share)) << 20;
  const Duration load = options_.load.LoadTime(weights, /*from_warm=*/false);
  const InstanceId id = next_instance_++;
  Inst inst;
  inst.function = f.id;
  inst.gpu = *gpu;
  inst.config = *config;
  inst.memory_mib = mib;
  inst.ready_at = now + load;
  instances_.emplace(id, inst);
  fn.instances.push_back(id);
  StagePlacement place{*gpu, 0, f.mps->blocks() - 1, mib};
  place.mps_share = config->share;
  LaunchDecision launch{id, f.id, {place}, false, load, MillisF(f.mps->WholeMs(config->share, 1))};
  launch.max_batch = config->batch;
  launch.batch_timeout = MillisF(std::max(0.0, f.slo_ms - config->exec_ms));
  out.push_back(std::move(launch));
  return id;
}

void InflessScheduler::OnStageFinished(const StageEvent& stage, TimePoint, std::vector<Decision>&) {
  CountRequestEnd(instances_, stage);
}

void InflessScheduler::OnLoadFinished(const LoadEvent& load, TimePoint, std::vector<Decision>& out) {
  if (!MarkLoaded(instances_, load)) Retire(load.instance, out);
}

void InflessScheduler::Retire(InstanceId id, std::vector<Decision>& out) {
  auto it = instances_.find(id);
  Gpu& g = gpus_[it->second.gpu];
  g.free_share = std::min(1.0, g.free_share + it->second.config.fraction);
  g.free_mib += it->second.memory_mib;
  std::vector<InstanceId>& list = functions_.at(it->second.function).instances;
  list.erase(std::find(list.begin(), list.end(), id));
  instances_.erase(it);
  out.push_back(RetireDecision{id});
}

void InflessScheduler::OnTick(TimePoint now, std::vector<Decision>& out) {
  for (auto& [id, fn] : functions_) fn.arrivals_this_second = 0;  // a new split period
  if (now < next_scale_) return;
  next_scale_ = now + options_.scale_period;
  const double period_s = ToSeconds(options_.scale_period);
  for (auto& [fid, fn] : functions_) {
    if (fn.arrivals > 0 && static_cast<double>(fn.overflow) > options_.overflow_threshold * fn.arrivals) {
      const double extra_rps = static_cast<double>(fn.overflow) / period_s;
      double added = 0;
      while (added < extra_rps) {
        const std::optional<InstanceId> id = Launch(fn, now, out);
        if (!id) break;
        added += instances_.at(*id).config.throughput_rps;
      }
    }
    fn.overflow = 0;
    fn.arrivals = 0;
  }
  std::vector<InstanceId> idle;
  for (auto& [id, inst] : instances_) {
    inst.idle_periods = inst.served_this_period == 0 ? inst.idle_periods + 1 : 0;
    inst.served_this_period = 0;
    if (!inst.loading && inst.outstanding == 0 && inst.idle_periods >= options_.idle_periods) idle.push_back(id);
  }
  for (InstanceId id : idle) Retire(id, out);
}

void InflessScheduler::OnSliceFreed(size_t slice, TimePoint, std::vector<Decision>&) {
  if (slice < gpus_.size()) gpus_[slice].info.available = true;
}

}  // namespace fluidfaas::policy
