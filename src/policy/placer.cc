#include "policy/placer.h"

#include <algorithm>
#include <climits>
#include <cstring>

namespace fluidfaas::policy {

InstanceRec* Placer::ScaleUp(const ServedFunction& f, TimePoint now, std::vector<Decision>& out) {
  // In a burst every request would otherwise repeat the same search over every slice and resident; the
  // time-sharing test reads hotness, which drifts, hence the retry after scale_up_retry.
  const uint64_t epoch = instances_.placement_epoch();
  const auto recent = [&](const std::pair<uint64_t, TimePoint>& failed) {
    return failed.first == epoch && now - failed.second < options_.scale_up_retry;
  };
  if (auto failed = failed_.find(f.id); failed != failed_.end() && recent(failed->second)) return nullptr;
  // A function with no instance at all climbs the same ladder as any other such function of its model and SLO
  // (nothing of its own is placed, warm or measured): where thousands of functions are deployed and many turn
  // cold, one failed climb stands for all of them until a placement changes or the retry passes.
  const bool cold = instances_.OfFunction(f.id).empty();
  const ColdKey key{f.costs.get(), f.slo_ms};
  if (cold) {
    if (auto failed = cold_failed_.find(key); failed != cold_failed_.end() && recent(failed->second)) {
      failed_[f.id] = {epoch, now};
      ShortOf(f.id, now);
      return nullptr;
    }
  }
  InstanceRec* added = TryScaleUp(f, now, out);
  if (added == nullptr) {
    failed_[f.id] = {epoch, now};
    if (cold) cold_failed_[key] = {epoch, now};
    ShortOf(f.id, now);
  }
  return added;
}

void Placer::ShortOf(FunctionId f, TimePoint now) {
  ++short_version_;
  if (auto it = short_of_.find(f); it != short_of_.end()) short_by_time_.erase({it->second, f});
  short_of_[f] = now;
  short_by_time_.emplace(now, f);
  while (now - short_by_time_.begin()->first > options_.contest_window) {
    short_of_.erase(short_by_time_.begin()->second);
    short_by_time_.erase(short_by_time_.begin());
  }
}

void Placer::Deployed(const ServedFunction& f) {
  plans_.clear();  // the memo is keyed by costs' addresses: a new function's may reuse a removed one's
  Removed(f.id);
  const int64_t smallest = SmallestServing(f);
  smallest_[f.id] = smallest;
  ++smallest_count_[smallest];
}

void Placer::Removed(FunctionId fn) {
  failed_.erase(fn);
  if (auto it = short_of_.find(fn); it != short_of_.end()) {
    short_by_time_.erase({it->second, fn});
    short_of_.erase(it);
  }
  turned_away_.erase(fn);
  ++short_version_;
  if (auto it = smallest_.find(fn); it != smallest_.end()) {
    if (--smallest_count_[it->second] == 0) smallest_count_.erase(it->second);
    smallest_.erase(it);
  }
}

void Placer::TurnedAway(const ServedFunction& f, TimePoint now, std::vector<Decision>& out) {
  LoadTracker& away = turned_away_.try_emplace(f.id, options_.tracker).first->second;
  away.OnArrival(now);
  if (!options_.pipeline_yield) return;
  // A busy pipeline over a slice that serves `f` alone gives way when `f`, turned away, would finish more
  // requests on that one slice than the pipeline finishes on all of its slices.
  const double wanted = away.RateShort(now);
  InstanceRec* yielding = nullptr;
  double yielding_rate = 0;
  for (InstanceId id : instances_.pipelines()) {
    const InstanceRec& rec = instances_.at(id);
    if (rec.function == f.id || rec.migrating || rec.evict_pending ||
        (rec.state != InstanceState::kExclusiveHot && rec.state != InstanceState::kTimeSharing) ||
        now - rec.in_use_since < options_.contest_window) {
      continue;
    }
    const double rate = rec.load.RateShort(now);
    for (const StagePlacement& st : rec.stages) {
      const SliceKind& kind = slices_.info(st.slice).kind;
      const int k = f.costs->KindIndex(kind);
      if (!f.costs->ServesAlone(k, kind.profile->memory_mib, f.slo_ms)) continue;
      const double gain = std::min(wanted, 1000.0 / f.costs->ComputeMs(k, 0, f.costs->blocks() - 1));
      if (gain > rate && (yielding == nullptr || rate < yielding_rate)) {
        yielding = &instances_.at(id);
        yielding_rate = rate;
      }
      break;
    }
  }
  if (yielding == nullptr) return;
  instances_.Leave(*yielding, now, out);  // a warm copy kept, once its last request ends
}

InstanceRec* Placer::TryScaleUp(const ServedFunction& f, TimePoint now, std::vector<Decision>& out) {
  // 1. The smallest free slice that fits and serves alone.
  std::optional<size_t> single;
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!slices_.Free(i)) continue;
    const SliceKind& kind = slices_.info(i).kind;
    if (!f.costs->ServesAlone(f.costs->KindIndex(kind), kind.profile->memory_mib, f.slo_ms)) continue;
    if (!single || kind.profile->memory_mib < slices_.capacity_mib(*single)) single = i;
  }
  // A slice larger than this function needs, of a size some other function cannot do without (its smallest
  // serving slice), is taken only when no time-sharing slot is left: spilling small models onto the slices
  // large ones need is how the large ones lose. Before that, the fragments nobody else needs more.
  if (single && Needed(f, slices_.info(*single).kind)) {
    if (std::optional<Plan> plan = PlanOnFreeSlices(f, options_.planner.max_stages, /*spare_needed=*/true)) {
      return &PlacePlan(f, *plan, InstanceState::kExclusiveHot, now, out);
    }
    if (InstanceRec* shared = TimeShare(f, now, out)) return shared;
  }
  if (single) return &PlaceWhole(f, *single, InstanceState::kExclusiveHot, now, out);
  // 2. A pipeline over free slices.
  if (std::optional<Plan> plan = PlanOnFreeSlices(f, options_.planner.max_stages, false, now)) {
    return &PlacePlan(f, *plan, InstanceState::kExclusiveHot, now, out);
  }
  // 3. A time-sharing slice, evicting its least hot idle residents.
  if (InstanceRec* shared = TimeShare(f, now, out)) return shared;
  // 4. A slice reclaimed from a function that has capacity to spare.
  if (InstanceRec* reclaimed = Reclaim(f, now, out)) return reclaimed;
  // 5. Slices of idle, colder functions, their instances evicted to host memory.
  return Displace(f, now, out);
}

InstanceRec* Placer::ScaleUpOnSpare(const ServedFunction& f, TimePoint now, std::vector<Decision>& out) {
  std::optional<size_t> single;
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!slices_.Free(i)) continue;
    const SliceKind& kind = slices_.info(i).kind;
    if (!f.costs->ServesAlone(f.costs->KindIndex(kind), kind.profile->memory_mib, f.slo_ms) || Needed(f, kind) ||
        Contested(f, i, now)) {
      continue;
    }
    if (!single || kind.profile->memory_mib < slices_.capacity_mib(*single)) single = i;
  }
  if (!single) return nullptr;
  return &PlaceWhole(f, *single, InstanceState::kExclusiveHot, now, out);
}

bool Placer::Displaceable(size_t i, const ServedFunction& f, double newcomer_rate, TimePoint now) const {
  if (!slices_.available(i) || slices_.releasing(i) || slices_.residents(i).empty()) return false;
  for (InstanceId r : slices_.residents(i)) {
    const InstanceRec& res = instances_.at(r);
    if (res.function == f.id || res.outstanding > 0 ||
        (res.state != InstanceState::kExclusiveHot && res.state != InstanceState::kTimeSharing) ||
        now - std::max(res.load.last_arrival(), res.in_use_since) < options_.displace_idle ||
        res.load.RateShort(now) >= newcomer_rate) {
      return false;
    }
  }
  return true;
}

InstanceRec* Placer::Displace(const ServedFunction& f, TimePoint now, std::vector<Decision>& out) {
  if (options_.displace_idle <= Duration{0}) return nullptr;
  // The request being placed counts, as an arrival counts in a tracker: a function scaling up from nothing is
  // hotter than residents that have seen nothing for a while.
  double rate = 1.0 / ToSeconds(options_.tracker.short_tau);
  for (const InstanceRec* inst : instances_.OfFunction(f.id)) rate = std::max(rate, inst->load.RateShort(now));
  std::vector<bool> displaceable(slices_.size(), false);
  bool any = false;
  for (size_t i = 0; i < slices_.size(); ++i) {
    displaceable[i] = !slices_.Free(i) && Displaceable(i, f, rate, now);
    any = any || displaceable[i];
  }
  if (!any) return nullptr;  // the free slices alone were tried before
  // One slice first; a pipeline only over slices nobody else is short of.
  std::optional<Plan> plan = PlanOver(f, 1, [&](size_t i) { return slices_.Free(i) || displaceable[i]; });
  if (!plan && options_.planner.max_stages > 1) {
    plan = PlanOver(f, options_.planner.max_stages,
                    [&](size_t i) { return (slices_.Free(i) || displaceable[i]) && !Contested(f, i, now); });
  }
  if (!plan) return nullptr;
  std::vector<InstanceId> evicted;
  for (const PlanStage& st : plan->stages) {
    const std::vector<InstanceId> residents = slices_.residents(st.slice);
    for (InstanceId victim : residents) {
      if (instances_.Leave(instances_.at(victim), now, out)) evicted.push_back(victim);
    }
    if (!slices_.residents(st.slice).empty()) {
      instances_.Error("slice " + slices_.info(st.slice).id + " still had residents after displacing them");
      return nullptr;
    }
  }
  return &PlacePlan(f, *plan, InstanceState::kExclusiveHot, now, out, /*reuse=*/true, std::move(evicted));
}

InstanceRec& Placer::PlaceWhole(const ServedFunction& f, size_t slice, InstanceState after_load, TimePoint now,
                                std::vector<Decision>& out, std::vector<InstanceId> after_release) {
  InstanceRec& inst = instances_.ReusableOrNew(f.id);
  const size_t last = f.costs->blocks() - 1;
  const int k = f.costs->KindIndex(slices_.info(slice).kind);
  instances_.Place(inst, f, {StagePlacement{slice, 0, last, f.costs->MemoryMib(k, 0, last)}}, after_load, now, out,
                   std::move(after_release));
  return inst;
}

InstanceRec& Placer::PlacePlan(const ServedFunction& f, const Plan& plan, InstanceState after_load, TimePoint now,
                               std::vector<Decision>& out, bool reuse, std::vector<InstanceId> after_release) {
  std::vector<StagePlacement> stages;
  for (const PlanStage& st : plan.stages) {
    stages.push_back(StagePlacement{st.slice, st.first_block, st.last_block, st.memory_mib});
  }
  InstanceRec& inst = reuse ? instances_.ReusableOrNew(f.id) : instances_.New(f.id);
  instances_.Place(inst, f, std::move(stages), after_load, now, out, std::move(after_release));
  return inst;
}

InstanceRec* Placer::TimeShare(const ServedFunction& f, TimePoint now, std::vector<Decision>& out) {
  if (!options_.time_sharing) return nullptr;
  auto slot = TimeSharingSlot(f, now);
  if (!slot) return nullptr;
  std::vector<InstanceId> evicted;
  for (InstanceId victim : slot->second) {
    if (instances_.Evict(instances_.at(victim), now, out)) evicted.push_back(victim);
  }
  return &PlaceWhole(f, slot->first, InstanceState::kTimeSharing, now, out, std::move(evicted));
}

InstanceRec* Placer::Reclaim(const ServedFunction& f, TimePoint now, std::vector<Decision>& out) {
  const std::optional<size_t> slice = Reclaimable(f, now);
  if (!slice) return nullptr;
  const std::vector<InstanceId> victims = slices_.residents(*slice);
  for (InstanceId victim : victims) instances_.Leave(instances_.at(victim), now, out);
  if (!slices_.residents(*slice).empty()) {
    instances_.Error("slice " + slices_.info(*slice).id + " still had residents after reclaiming it");
    return nullptr;
  }
  return &PlaceWhole(f, *slice, InstanceState::kExclusiveHot, now, out, victims);
}

std::optional<size_t> Placer::Reclaimable(const ServedFunction& f, TimePoint now) const {
  std::optional<size_t> best;
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!slices_.available(i) || slices_.residents(i).empty() || slices_.releasing(i)) continue;
    const SliceKind& kind = slices_.info(i).kind;
    // Only a smaller slice than the best found can replace it.
    if (best && kind.profile->memory_mib >= slices_.capacity_mib(*best)) continue;
    if (!f.costs->ServesAlone(f.costs->KindIndex(kind), kind.profile->memory_mib, f.slo_ms)) continue;
    // Every resident must be idle and spare. Read in rising cost (the answer is the same in any order): its
    // state, then its busy fraction, then its function's rates.
    const auto& residents = slices_.residents(i);
    const auto idle = [&](InstanceId r) {
      const InstanceRec& res = instances_.at(r);
      return res.function != f.id && res.outstanding == 0 && res.stages.size() == 1 &&
             (res.state == InstanceState::kExclusiveHot || res.state == InstanceState::kTimeSharing) &&
             now - res.in_use_since >= options_.min_dwell;
    };
    const auto not_busy = [&](InstanceId r) { return instances_.at(r).load.BusyFraction(now) < options_.promote_busy; };
    // What its function keeps without it must still carry its rate with room to spare.
    const auto spare = [&](InstanceId r) {
      const InstanceRec& res = instances_.at(r);
      double rate = 0;
      double keeps = 0;
      for (const InstanceRec* other : instances_.OfFunction(res.function)) {
        rate += other->load.RateShort(now);
        if (other->id != res.id && other->Live() && other->state != InstanceState::kLoading)
          keeps += other->CapacityRps();
      }
      return keeps >= options_.reclaim_headroom * rate && keeps > 0;
    };
    if (std::all_of(residents.begin(), residents.end(), idle) &&
        std::all_of(residents.begin(), residents.end(), not_busy) &&
        std::all_of(residents.begin(), residents.end(), spare)) {
      best = i;
    }
  }
  return best;
}

int64_t Placer::SmallestServing(const ServedFunction& f) const {
  int64_t best = INT64_MAX;
  for (const SliceKind& k : kinds_) {
    if (f.costs->ServesAlone(f.costs->KindIndex(k), k.profile->memory_mib, f.slo_ms)) {
      best = std::min<int64_t>(best, k.profile->memory_mib);
    }
  }
  return best;
}

bool Placer::Needed(const ServedFunction& f, const SliceKind& kind) const {
  const int64_t size = kind.profile->memory_mib;
  const auto mine = smallest_.find(f.id);
  if (mine == smallest_.end() || size <= mine->second) return false;
  // Every function counted at `size` is another one: this one's smallest is below it.
  return smallest_count_.contains(size);
}

bool Placer::Contested(const ServedFunction& f, size_t slice, TimePoint now) const {
  if (options_.contest_window <= Duration{0}) return false;
  ContestMemo& memo = contest_memo_;
  if (memo.function != f.id || memo.at != now || memo.shortfalls != short_version_) {
    memo.function = f.id;
    memo.at = now;
    memo.shortfalls = short_version_;
    memo.by_kind.assign(kinds_.size(), -1);  // the same storage, climb after climb
  }
  int8_t& known = memo.by_kind[slice_kind_[slice]];
  if (known < 0) known = ContestedKind(f, kinds_[slice_kind_[slice]], now) ? 1 : 0;
  return known == 1;
}

bool Placer::ContestedKind(const ServedFunction& f, const SliceKind& kind, TimePoint now) const {
  for (auto recent = short_by_time_.rbegin(); recent != short_by_time_.rend(); ++recent) {  // the latest first
    const auto& [when, g] = *recent;
    if (now - when > options_.contest_window) break;
    if (g == f.id) continue;
    const auto it = functions_.find(g);
    if (it == functions_.end()) continue;
    const ServedFunction& other = it->second;
    if (other.costs->ServesAlone(other.costs->KindIndex(kind), kind.profile->memory_mib, other.slo_ms)) return true;
  }
  return false;
}

std::optional<Plan> Placer::PlanOnFreeSlices(const ServedFunction& f, int max_stages, bool spare_needed,
                                             std::optional<TimePoint> contest_at) const {
  return PlanOver(f, max_stages, [&](size_t i) {
    const SliceKind& kind = slices_.info(i).kind;
    return slices_.Free(i) && !(spare_needed && Needed(f, kind)) &&
           !(contest_at && max_stages > 1 && Contested(f, i, *contest_at));
  });
}

std::optional<Plan> Placer::PlanOver(const ServedFunction& f, int max_stages,
                                     const std::function<bool(size_t)>& include) const {
  // The question, as bytes: the costs' address, the SLO, the stage limit, then the slices included as bits.
  std::string& key = plan_key_;
  key.assign(sizeof(const void*) + sizeof(double) + sizeof(int) + (slices_.size() + 7) / 8, '\0');
  const void* costs = f.costs.get();
  std::memcpy(key.data(), &costs, sizeof costs);
  std::memcpy(key.data() + sizeof costs, &f.slo_ms, sizeof f.slo_ms);
  std::memcpy(key.data() + sizeof costs + sizeof f.slo_ms, &max_stages, sizeof max_stages);
  const size_t bits = sizeof costs + sizeof f.slo_ms + sizeof max_stages;
  std::vector<FreeSlice> candidates;
  std::vector<size_t> index;
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!include(i)) continue;
    key[bits + i / 8] = static_cast<char>(key[bits + i / 8] | (1 << (i % 8)));
    index.push_back(i);
  }
  if (index.empty()) return std::nullopt;
  if (auto known = plans_.find(key); known != plans_.end()) return known->second;
  for (size_t i : index) {
    const ClusterSlice& s = slices_.info(i);
    candidates.push_back(FreeSlice{s.id, s.gpu, s.kind, s.kind.profile->memory_mib});
  }
  PlannerOptions po = options_.planner;
  po.max_stages = max_stages;
  std::optional<Plan> plan = PipelinePlanner(po).Find(*f.costs, f.slo_ms, candidates);
  if (plan) {
    for (PlanStage& st : plan->stages) st.slice = index[st.slice];  // back to cluster indices
  }
  if (plans_.size() >= kPlanMemo) plans_.clear();
  plans_.emplace(key, plan);
  return plan;
}

std::optional<std::pair<size_t, std::vector<InstanceId>>> Placer::TimeSharingSlot(const ServedFunction& f,
                                                                                  TimePoint now) const {
  const size_t last = f.costs->blocks() - 1;
  // Hotness decides who stays: a resident is evicted only for a function hotter than it (otherwise the two
  // would keep evicting each other).
  double newcomer_rate = 0;
  for (const InstanceRec* inst : instances_.OfFunction(f.id)) newcomer_rate += inst->load.RateShort(now);
  std::optional<std::pair<size_t, std::vector<InstanceId>>> best;
  std::vector<const InstanceRec*> residents;
  std::vector<std::pair<double, const InstanceRec*>> idle;  // rate, resident
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!slices_.available(i) || slices_.residents(i).empty()) continue;
    const int k = f.costs->KindIndex(slices_.info(i).kind);
    if (k < 0 || f.costs->ComputeMs(k, 0, last) > f.slo_ms) continue;
    // A slice too small for the function with every resident gone is passed over before its residents are read.
    if (f.costs->MemoryMib(k, 0, last) > slices_.capacity_mib(i)) continue;
    // A second instance of the function on the same slice adds no capacity: they would share one queue. The
    // residents are read cheaply first: most slices fail here, before any rate is worked out.
    residents.clear();  // each looked up once
    bool shareable = true;
    for (InstanceId r : slices_.residents(i)) {
      const InstanceRec& res = instances_.at(r);
      shareable = res.state == InstanceState::kTimeSharing && res.stages.size() == 1 && res.function != f.id;
      if (!shareable) break;
      residents.push_back(&res);
    }
    if (!shareable) continue;
    const int64_t reserve = f.costs->ReserveMib(k);
    const int64_t need = f.costs->MemoryMib(k, 0, last) - reserve;
    int64_t free_mib = slices_.FreeMib(i, reserve);
    std::vector<InstanceId> evict;
    if (free_mib < need) {
      // Residents placed within the dwell time stay: evicting them would undo the last scale-up at once.
      idle.clear();
      for (const InstanceRec* r : residents) {
        const InstanceRec& res = *r;
        if (res.outstanding != 0 || now - res.in_use_since < options_.min_dwell) continue;
        if (const double rate = res.load.RateShort(now); rate < newcomer_rate) idle.emplace_back(rate, &res);
      }
      // Least hot first: short-window rate, then the oldest last use.
      std::sort(idle.begin(), idle.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first < b.first : a.second->load.last_arrival() < b.second->load.last_arrival();
      });
      for (size_t v = 0; free_mib < need && v < idle.size(); ++v) {
        const InstanceRec& victim = *idle[v].second;
        evict.push_back(victim.id);
        free_mib += victim.stages.front().memory_mib - victim.stages.front().reserve_mib;
      }
      if (free_mib < need) continue;
    }
    // A later slice is taken only with fewer evictions: none is the best there is.
    if (best && evict.size() >= best->second.size()) continue;
    // Time sharing is for slices that are mostly idle: the residents that stay must leave room.
    double staying_busy = 0;
    for (const InstanceRec* r : residents) {
      if (std::find(evict.begin(), evict.end(), r->id) == evict.end()) staying_busy += r->load.BusyFraction(now);
    }
    if (staying_busy >= options_.share_busy_cap) continue;
    best = std::make_pair(i, std::move(evict));
    if (best->second.empty()) break;
  }
  return best;
}

}  // namespace fluidfaas::policy
