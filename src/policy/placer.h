// Placer: where a new instance of a function goes (the scale-up ladder of design point 2).
//
// In order: the smallest free slice that fits and serves the function alone (unless another function cannot
// do without a slice of that size: then a pipeline over the slices nobody else needs, or a time-sharing slot,
// first); else a pipeline from the planner over the free slices; else a time-sharing slice, evicting its least
// hot idle residents to host memory; else a slice reclaimed from idle instances of a function with capacity to
// spare; else a slice or a pipeline over free slices and slices whose residents have all been idle for
// displace_idle and are colder than the function (each evicted to host memory first: where many functions idle
// on few slices, the slices one needs are held by idle others). A warm instance of the function is reloaded
// before a new one is started. A ladder that found nothing
// is not climbed again for the function until a placement changes or scale_up_retry passes. A request turned
// away for want of capacity may make a busy pipeline yield its slices (TurnedAway).
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/instance_table.h"

namespace fluidfaas::policy {

class Placer {
 public:
  Placer(const FluidFaaSOptions& options, SliceBooks& slices, InstanceTable& instances,
         const std::map<FunctionId, ServedFunction>& functions)
      : options_(options), slices_(slices), instances_(instances), functions_(functions), planner_(options.planner) {
    for (size_t i = 0; i < slices_.size(); ++i) {
      const SliceKind& k = slices_.info(i).kind;
      const auto seen = std::find(kinds_.begin(), kinds_.end(), k);
      slice_kind_.push_back(static_cast<size_t>(seen - kinds_.begin()));
      if (seen == kinds_.end()) kinds_.push_back(k);
    }
  }

  // Places an instance of `f` (a warm one reloaded, or a new one), or nullptr when nothing fits.
  InstanceRec* ScaleUp(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);
  // A new instance of `f` on the smallest free slice that serves it alone and that no other function needs or was
  // recently short of (Needed, Contested), taking nothing from anyone; nullptr when there is none. For cold starts
  // beside one in flight.
  InstanceRec* ScaleUpOnSpare(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);

  // The best plan for `f` on the free slices with at most `max_stages` stages (1: a single slice), in cluster
  // slice indices. `spare_needed`: leave out free slices another function cannot do without.
  // `contest_at`: leave out slices contested at that time (below).
  std::optional<Plan> PlanOnFreeSlices(const ServedFunction& f, int max_stages, bool spare_needed = false,
                                       std::optional<TimePoint> contest_at = std::nullopt) const;
  // Places `f` on `plan` (a warm instance reloaded or a new one); `reuse` false: always a new instance.
  InstanceRec& PlacePlan(const ServedFunction& f, const Plan& plan, InstanceState after_load, TimePoint now,
                         std::vector<Decision>& out, bool reuse = true, std::vector<InstanceId> after_release = {});

  // A request of `f` was turned away for want of capacity: counted, and with pipeline_yield a busy pipeline of
  // another function over a slice that serves `f` alone is drained (then evicted to host memory) when `f`'s
  // turned-away rate, capped at what that one slice serves at batch 1, exceeds the pipeline's own request rate.
  void TurnedAway(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);

  // `f` is deployed (it is in the functions map now) or removed: what is known of it is set up or forgotten.
  void Deployed(const ServedFunction& f);
  void Removed(FunctionId fn);

 private:
  InstanceRec* TryScaleUp(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);
  // The planner's best plan for `f` over the slices `include` accepts (each counted whole: its memory empty), with
  // at most `max_stages` stages, in cluster slice indices.
  std::optional<Plan> PlanOver(const ServedFunction& f, int max_stages,
                               const std::function<bool(size_t)>& include) const;
  InstanceRec* TimeShare(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);
  InstanceRec* Reclaim(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);
  InstanceRec* Displace(const ServedFunction& f, TimePoint now, std::vector<Decision>& out);
  // Whether every resident of slice `i` may be evicted for `f`: no request open or for displace_idle, colder
  // than `f`, and not of `f` (a pipeline is evicted whole: its other slices are freed too).
  bool Displaceable(size_t i, const ServedFunction& f, double newcomer_rate, TimePoint now) const;
  InstanceRec& PlaceWhole(const ServedFunction& f, size_t slice, InstanceState after_load, TimePoint now,
                          std::vector<Decision>& out, std::vector<InstanceId> after_release = {});
  // A slice whose residents are all idle instances of functions whose other instances carry their rate with
  // reclaim_headroom to spare, and which serves `f` alone: the smallest such.
  std::optional<size_t> Reclaimable(const ServedFunction& f, TimePoint now) const;
  // Whether a free slice of `kind`, larger than `f` needs, is the smallest one another function is served on.
  bool Needed(const ServedFunction& f, const SliceKind& kind) const;
  // The memory of the smallest slice kind of the cluster that serves `f` alone (INT64_MAX: none does).
  int64_t SmallestServing(const ServedFunction& f) const;
  // `f` found no place at `now`: remembered for contest_window.
  void ShortOf(FunctionId f, TimePoint now);
  // A time-sharing slice `f` can join, with the idle residents to evict first (the fewest).
  std::optional<std::pair<size_t, std::vector<InstanceId>>> TimeSharingSlot(const ServedFunction& f,
                                                                            TimePoint now) const;
  // A slice of `kind` is contested for `f` when another function that it would serve alone found no place within
  // contest_window: a pipeline for `f` leaves it to them (booking two slices for one instance is a loss when one
  // of them would have served another function by itself).
  bool Contested(const ServedFunction& f, size_t slice, TimePoint now) const;
  bool ContestedKind(const ServedFunction& f, const SliceKind& kind, TimePoint now) const;

  // PlanOver's answers. It is a pure function of the function's costs and SLO, the stage limit and the set of slices
  // it may use (each counted whole), and under load the same question comes back with every request turned away
  // (the planner's search was a fifth of the simulator's time on serverless). Forgotten when a function is deployed
  // (its costs may sit at a removed function's address) and when it holds kPlanMemo answers.
  static constexpr size_t kPlanMemo = 1 << 14;
  mutable std::unordered_map<std::string, std::optional<Plan>> plans_;
  mutable std::string plan_key_;  // PlanOver's key, built in place (no allocation per question)

  const FluidFaaSOptions& options_;
  SliceBooks& slices_;
  InstanceTable& instances_;
  const std::map<FunctionId, ServedFunction>& functions_;
  PipelinePlanner planner_;
  std::map<FunctionId, std::pair<uint64_t, TimePoint>> failed_;    // epoch and time of the last failed ladder
  using ColdKey = std::pair<const StageCostTable*, double>;        // a model's costs and an SLO
  std::map<ColdKey, std::pair<uint64_t, TimePoint>> cold_failed_;  // the same, of a function with no instance
  // Functions that found no place within contest_window: when, by function and by time (older ones are dropped).
  std::map<FunctionId, TimePoint> short_of_;
  std::set<std::pair<TimePoint, FunctionId>> short_by_time_;
  // Needed's index: each function's SmallestServing, and how many functions have each (the slice kinds are fixed,
  // so a deploy computes it once and a placement asks in O(log F), not by a scan of every function).
  std::vector<SliceKind> kinds_;    // the cluster's slice kinds, each once
  std::vector<size_t> slice_kind_;  // each slice's kind, as an index into kinds_
  // Contested's answers per slice kind (-1: not asked yet), for one function at one time with the same shortfalls:
  // a climb asks it of every slice, and the answer depends only on the slice's kind.
  struct ContestMemo {
    FunctionId function = 0;
    TimePoint at = TimePoint::min();
    uint64_t shortfalls = 0;  // short_version_ when filled
    std::vector<int8_t> by_kind;
  };
  mutable ContestMemo contest_memo_;
  uint64_t short_version_ = 0;  // changes whenever short_by_time_ does
  std::map<FunctionId, int64_t> smallest_;
  std::map<int64_t, int> smallest_count_;
  std::map<FunctionId, LoadTracker> turned_away_;  // requests turned away for want of capacity
};

}  // namespace fluidfaas::policy
