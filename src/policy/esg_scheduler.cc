#include "policy/esg_scheduler.h"

#include <algorithm>
#include <cmath>
#include <queue>

namespace fluidfaas::policy {

std::optional<EsgConfig> SearchEsgConfig(const BatchCosts& costs, const std::vector<int>& kinds, double slo_ms,
                                         double rate_rps, EsgSearchStats* stats) {
  EsgSearchStats local;
  EsgSearchStats& st = stats != nullptr ? *stats : local;
  const std::vector<int>& batches = costs.batches();
  const auto slices_of = [&](int k) { return static_cast<double>(costs.one().kinds()[k].profile->sm_slices); };
  const auto per_request = [&](int k, size_t i) { return slices_of(k) * costs.WholeMs(k, batches[i]) / batches[i]; };
  // Lower bound of the cost of batches [i, end) of kind k: the least per-request time among them.
  const auto bound = [&](int k, size_t i) {
    double b = per_request(k, i);
    for (size_t j = i + 1; j < batches.size(); ++j) b = std::min(b, per_request(k, j));
    return b;
  };
  struct Node {
    double f;
    int kind;
    size_t batch;
    bool goal;  // a feasible configuration with its exact cost
    bool operator>(const Node& o) const {
      if (f != o.f) return f > o.f;
      if (goal != o.goal) return !goal;  // at equal cost, a goal first
      if (kind != o.kind) return kind > o.kind;
      return batch > o.batch;
    }
  };
  std::priority_queue<Node, std::vector<Node>, std::greater<>> open;
  for (int k : kinds) open.push(Node{bound(k, 0), k, 0, false});
  while (!open.empty()) {
    const Node n = open.top();
    open.pop();
    const int b = batches[n.batch];
    if (n.goal) return EsgConfig{n.kind, b, costs.WholeMs(n.kind, b), n.f};
    ++st.expanded;
    const double exec = costs.WholeMs(n.kind, b);
    const double fill_ms = b == 1 ? 0 : (rate_rps > 0 ? 1000.0 * (b - 1) / rate_rps : 1e300);
    const bool fits = costs.WholeMib(n.kind, b) <= costs.one().kinds()[n.kind].profile->memory_mib;
    if (!fits || exec + fill_ms > slo_ms) {
      ++st.pruned;  // larger batches of this kind are slower, need more memory and take longer to fill
      continue;
    }
    open.push(Node{per_request(n.kind, n.batch), n.kind, n.batch, true});
    if (n.batch + 1 < batches.size()) open.push(Node{bound(n.kind, n.batch + 1), n.kind, n.batch + 1, false});
  }
  return std::nullopt;
}

Result<std::unique_ptr<EsgScheduler>> EsgScheduler::Create(std::vector<ClusterSlice> slices,
                                                           std::vector<ServedFunction> functions, EsgOptions options) {
  std::unique_ptr<EsgScheduler> s(new EsgScheduler(std::move(slices), options));
  for (ServedFunction& f : functions) FF_RETURN_IF_ERROR(s->Deploy(std::move(f)));
  return s;
}

TimePoint EsgScheduler::EstimatedFinish(const EsgInstance& inst, TimePoint now) const {
  const TimePoint start = std::max(now, inst.ready_at);
  const int batches_ahead = inst.outstanding / inst.config.batch;
  return start + MillisF(inst.config.exec_ms * (batches_ahead + 1));
}

std::optional<EsgScheduler::Refusal> EsgScheduler::Admit(EsgFunction& fn, const RequestEvent& request, TimePoint now,
                                                         std::vector<Decision>& out) {
  fn.rate.OnArrival(now);
  // Warm first, then the fullest queue (its batch fills first), then the lowest slice.
  std::optional<InstanceId> best;
  const auto better = [&](const EsgInstance& a, const EsgInstance& b) {
    if (a.loading != b.loading) return !a.loading;
    if (a.outstanding != b.outstanding) return a.outstanding > b.outstanding;
    return a.slice < b.slice;
  };
  for (InstanceId id : fn.instances) {
    const EsgInstance& inst = instances_.at(id);
    if (EstimatedFinish(inst, now) > request.deadline) continue;
    if (!best || better(inst, instances_.at(*best))) best = id;
  }
  Refusal refusal{Reason::kDeadlineUnreachable, "a new instance would be ready too late"};
  if (!best) {
    const std::optional<InstanceId> fresh = ScaleUp(fn, now, out);
    if (!fresh) refusal = Refusal{Reason::kNoCapacity, "no configuration fits a free slice, or one is loading already"};
    if (fresh && EstimatedFinish(instances_.at(*fresh), now) <= request.deadline) best = fresh;
  }
  if (!best) {
    refusal.detail =
        "no ESG instance of " + std::string(fn.served.Name()) + " can meet the deadline: " + refusal.detail;
    return refusal;
  }
  EsgInstance& inst = instances_.at(*best);
  inst.last_request = now;
  ++inst.outstanding;
  out.push_back(RouteDecision{request.id, *best});
  return std::nullopt;
}

std::optional<InstanceId> EsgScheduler::ScaleUp(EsgFunction& fn, TimePoint now, std::vector<Decision>& out) {
  const ServedFunction& f = fn.served;
  const double rate = fn.rate.RateShort(now);
  int loading = 0;
  double capacity_rps = 0;
  for (InstanceId id : fn.instances) {
    const EsgInstance& inst = instances_.at(id);
    loading += inst.loading;
    capacity_rps += 1000.0 * inst.config.batch / inst.config.exec_ms * options_.target_utilization;
  }
  if (loading > 0 && capacity_rps >= rate) return std::nullopt;
  std::vector<int> kinds;
  for (size_t s = 0; s < slices_.size(); ++s) {
    if (!slices_.Free(s)) continue;
    const int k = f.batched->KindIndex(slices_.info(s).kind);
    if (k >= 0 && std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  }
  const std::optional<EsgConfig> config = SearchEsgConfig(*f.batched, kinds, f.slo_ms, rate);
  if (!config) return std::nullopt;
  size_t slice = 0;
  while (!slices_.Free(slice) || f.batched->KindIndex(slices_.info(slice).kind) != config->kind) ++slice;
  const int64_t mib = f.batched->WholeMib(config->kind, config->batch);
  const int64_t reserve = f.costs->ReserveMib(config->kind);
  const int64_t weights = (f.batched->WholeMib(config->kind, 1) - reserve) << 20;
  const Duration load = options_.load.LoadTime(weights, /*from_warm=*/false);
  const InstanceId id = next_instance_++;
  EsgInstance inst;
  inst.function = f.id;
  inst.slice = slice;
  inst.config = *config;
  inst.ready_at = now + load;
  inst.last_request = now;
  Add(id, inst, fn, mib - reserve, reserve);
  LaunchDecision launch{id,    f.id, {StagePlacement{slice, 0, f.costs->blocks() - 1, mib, reserve}},
                        false, load, MillisF(f.costs->ComputeMs(config->kind, 0, f.costs->blocks() - 1))};
  launch.max_batch = config->batch;
  launch.batch_timeout = MillisF(std::max(0.0, f.slo_ms - 2 * config->exec_ms));
  out.push_back(std::move(launch));
  return id;
}

void EsgScheduler::OnTick(TimePoint now, std::vector<Decision>& out) {
  std::vector<InstanceId> expired;
  for (const auto& [id, inst] : instances_) {
    if (!inst.loading && inst.outstanding == 0 && now - inst.last_request >= options_.keep_alive) {
      expired.push_back(id);
    }
  }
  for (InstanceId id : expired) Retire(id, out);
}

}  // namespace fluidfaas::policy
