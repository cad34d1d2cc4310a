#include "policy/infless_scheduler.h"

#include <algorithm>
#include <cmath>

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

InflessScheduler::InflessScheduler(std::vector<ClusterSlice> gpus, InflessOptions options)
    : BaselineScheduler(std::move(gpus), false, true),
      options_(options),
      free_share_(slices_.size(), 1.0),
      next_split_(TimePoint{} + options.split_period),
      next_scale_(TimePoint{} + options.scale_period) {}

Result<std::unique_ptr<InflessScheduler>> InflessScheduler::Create(std::vector<ClusterSlice> gpus,
                                                                   std::vector<ServedFunction> functions,
                                                                   InflessOptions options) {
  if (!(options.split_period > Duration{0}) || !(options.scale_period > Duration{0})) {
    return Status::InvalidArgument("infless: the split and scaling periods must be positive");
  }
  std::unique_ptr<InflessScheduler> s(new InflessScheduler(std::move(gpus), options));
  for (ServedFunction& f : functions) FF_RETURN_IF_ERROR(s->Deploy(std::move(f)));
  return s;
}

TimePoint InflessScheduler::EstimatedFinish(const InflessInstance& inst, TimePoint now) const {
  const TimePoint start = std::max(now, inst.ready_at);
  const int batches_ahead = inst.outstanding / inst.config.batch;  // full batches queued before this request's
  return start + MillisF(inst.config.exec_ms * (batches_ahead + 1));
}

bool InflessScheduler::Loaded(const InflessFunction& fn) const {
  return std::any_of(fn.instances.begin(), fn.instances.end(),
                     [&](InstanceId id) { return !instances_.at(id).loading; });
}

double InflessScheduler::Capacity(const InflessFunction& fn) const {
  double rps = 0;
  for (InstanceId id : fn.instances) rps += instances_.at(id).config.throughput_rps;
  return rps;
}

std::optional<InstanceId> InflessScheduler::PickWeighted(InflessFunction& fn) {
  // Smooth weighted round robin over the loaded instances (all of them while none is loaded yet).
  const bool any_loaded = Loaded(fn);
  double total = 0;
  InflessInstance* pick = nullptr;
  InstanceId pick_id = 0;
  for (InstanceId id : fn.instances) {
    InflessInstance& inst = instances_.at(id);
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

void InflessScheduler::Split(TimePoint now) {
  if (now < next_split_) return;
  while (next_split_ <= now) next_split_ += options_.split_period;
  for (auto& [id, fn] : functions_) fn.arrivals_this_split = 0;
}

std::optional<InflessScheduler::Refusal> InflessScheduler::Admit(InflessFunction& fn, const RequestEvent& request,
                                                                 TimePoint now, std::vector<Decision>& out) {
  Split(now);
  fn.rate.OnArrival(now);
  ++fn.arrivals;
  const bool over_capacity =
      static_cast<double>(++fn.arrivals_this_split) > Capacity(fn) * ToSeconds(options_.split_period);
  if (over_capacity) ++fn.overflow;
  Refusal refusal{Reason::kDeadlineUnreachable, "none of its instances can finish in time"};
  if (fn.instances.empty() && !Launch(fn, now, out)) {
    refusal = Refusal{Reason::kNoCapacity, "no GPU has the SM share and memory for an instance"};
  }
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
    // Turned away within the instances' nominal capacity (their throughput alone, while MPS neighbours slow them,
    // or a burst inside the split): overflow all the same, so that a function that keeps losing requests scales
    // out. Counted once.
    if (!over_capacity && options_.refusals_overflow && Loaded(fn)) ++fn.overflow;
    refusal.detail =
        "no INFless instance of " + std::string(fn.served.Name()) + " can meet the deadline: " + refusal.detail;
    return refusal;
  }
  InflessInstance& inst = instances_.at(pick);
  ++inst.outstanding;
  ++inst.served_this_period;
  out.push_back(RouteDecision{request.id, pick});
  return std::nullopt;
}

std::optional<InstanceId> InflessScheduler::Launch(InflessFunction& fn, TimePoint now, std::vector<Decision>& out) {
  const ServedFunction& f = fn.served;
  const int64_t gpu_mib = slices_.size() == 0 ? 0 : slices_.capacity_mib(0);
  const std::optional<InflessConfig> config =
      ChooseInflessConfig(*f.mps, f.slo_ms, fn.rate.RateShort(now), gpu_mib, options_.exec_budget_batching);
  if (!config) return std::nullopt;
  const int64_t mib = f.mps->WholeMib(config->share, config->batch);
  std::optional<size_t> gpu;
  for (size_t g = 0; g < slices_.size(); ++g) {
    if (!slices_.available(g) || free_share_[g] + 1e-9 < config->fraction || slices_.FreeMib(g, 0) < mib) continue;
    if (!gpu || free_share_[g] < free_share_[*gpu]) gpu = g;  // best fit: least left over
  }
  if (!gpu) return std::nullopt;
  free_share_[*gpu] -= config->fraction;
  const int64_t weights = (f.mps->WholeMib(config->share, 1) - f.mps->one().ReserveMib(config->share)) << 20;
  const Duration load = options_.load.LoadTime(weights, /*from_warm=*/false);
  const InstanceId id = next_instance_++;
  InflessInstance inst;
  inst.function = f.id;
  inst.slice = *gpu;
  inst.config = *config;
  inst.ready_at = now + load;
  Add(id, inst, fn, mib, 0);  // an MPS client is a process of its own: its reserve is its own
  StagePlacement place{*gpu, 0, f.mps->blocks() - 1, mib, 0};
  place.mps_share = config->share;
  LaunchDecision launch{id, f.id, {place}, false, load, MillisF(f.mps->WholeMs(config->share, 1))};
  launch.max_batch = config->batch;
  launch.batch_timeout = MillisF(std::max(0.0, f.slo_ms - config->exec_ms * (1 + options_.interference_margin)));
  out.push_back(std::move(launch));
  return id;
}

void InflessScheduler::Retired(InstanceId id, const InflessInstance& inst) {
  share_releasing_[id] = {inst.slice, inst.config.fraction};
}

void InflessScheduler::ReleaseDone(const Released& released) {
  auto it = share_releasing_.find(released.instance);
  if (it == share_releasing_.end() || it->second.first != released.slice) return;
  free_share_[released.slice] = std::min(1.0, free_share_[released.slice] + it->second.second);
  share_releasing_.erase(it);
}

void InflessScheduler::SliceGone(size_t gpu) {
  // Every MPS client of the GPU is gone: its whole share is free (nothing else will be acknowledged there).
  free_share_[gpu] = 1.0;
  std::erase_if(share_releasing_, [gpu](const auto& entry) { return entry.second.first == gpu; });
}

void InflessScheduler::OnTick(TimePoint now, std::vector<Decision>& out) {
  Split(now);
  if (now < next_scale_) return;
  next_scale_ = now + options_.scale_period;
  const double period_s = ToSeconds(options_.scale_period);
  for (auto& [fid, fn] : functions_) {
    if (!fn.removed && fn.arrivals > 0 &&
        static_cast<double>(fn.overflow) > options_.overflow_threshold * static_cast<double>(fn.arrivals)) {
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

}  // namespace fluidfaas::policy
