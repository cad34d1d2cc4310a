// InstanceTable: FluidFaaS's instances, their checked lifecycle, and what placing and removing one does to the
// slice books.
//
// Every state change goes through SetState (lifecycle.h's table; an illegal move is recorded as an error and
// never applied). Place books an instance's stages on their slices and emits its Launch; Evict and Retire
// unbook them (their memory stays booked as releasing until acknowledged) and emit the decision. Records leave
// the table when they can never be used again: a retired instance once it is retired, a warm one when it
// turns cold; so a long-running daemon's table holds only what is placed or in host memory.
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/fluidfaas_options.h"
#include "policy/slice_books.h"

namespace fluidfaas::policy {

struct InstanceRec {
  InstanceId id = 0;
  FunctionId function = 0;
  InstanceState state = InstanceState::kCold;
  InstanceState after_load = InstanceState::kExclusiveHot;
  std::vector<StagePlacement> stages;
  LoadTracker load;
  int outstanding = 0;  // requests routed to it and not ended
  TimePoint ready_at;   // end of the current load (estimated)
  Duration service{0};  // estimated service time of the current placement at batch 1 (stages, hops)
  std::vector<std::vector<Duration>> stage_batch;  // each stage: estimated time of a batch of 1, 2, ... max
  std::vector<Duration> hop_time;                  // after each stage (0 after the last)
  double speed = 1.0;                              // measured / estimated batch time, running mean
  double speed_var = 0;                            // its running variance
  double booking_speed = 1.0;  // speed + noise_margin standard deviations: what batches are booked at
  TimePoint state_since;
  // When it was last loaded, placed or promoted: every state change but a demotion to time sharing. Idleness and the
  // dwell time count from here, so a demotion does not restart them (a demoted instance had been idle in its exclusive
  // state, and holding its slice a second dwell time starved functions waiting for one).
  TimePoint in_use_since;
  int64_t weights_mib = 0;             // its function's weights: what a warm copy holds in host memory
  std::optional<InstanceId> replaces;  // a migration target: the pipeline it will take over from
  bool migrating = false;              // a pipeline with a migration target loading
  bool evict_pending = false;          // leaving its slice (a co-resident was promoted) once idle
  // Its place on the tick's agenda (InstanceTable::Judge, JudgeAt).
  bool judge_soon = false;
  TimePoint judge_at = TimePoint::max();

  // Requests per second it serves at batch 1, at its measured speed (0 before it has a placement).
  double CapacityRps() const {
    const double ms = ToMillis(service) * speed;
    return ms > 0 ? 1000.0 / ms : 0;
  }
  // Estimated time of a batch of `n` at stage `s`, corrected by measurements.
  Duration BatchTime(size_t s, int n) const {
    return Duration(
        static_cast<int64_t>(static_cast<double>(stage_batch[s][static_cast<size_t>(n - 1)].count()) * booking_speed));
  }
  int max_batch(size_t s) const { return static_cast<int>(stage_batch[s].size()); }
  // A batch took `ratio` times its estimate: the exponentially weighted mean and variance move (weight `alpha`),
  // and batches are booked from now on at the mean plus `margin` standard deviations, so noisy execution makes
  // bookings cautious instead of late.
  void Measured(double ratio, double alpha, double margin) {
    const double delta = ratio - speed;
    speed += alpha * delta;
    speed_var = (1 - alpha) * (speed_var + alpha * delta * delta);
    booking_speed = speed + margin * std::sqrt(speed_var);
  }
  bool Live() const {
    return state == InstanceState::kExclusiveHot || state == InstanceState::kTimeSharing ||
           state == InstanceState::kLoading;
  }
  bool Exclusive() const {
    return state == InstanceState::kExclusiveHot ||
           (state == InstanceState::kLoading && after_load == InstanceState::kExclusiveHot);
  }
};

class InstanceTable {
 public:
  InstanceTable(const FluidFaaSOptions& options, SliceBooks& slices) : options_(options), slices_(slices) {}

  InstanceRec& New(FunctionId fn);
  InstanceRec* Find(InstanceId id);
  const InstanceRec* Find(InstanceId id) const;
  InstanceRec& at(InstanceId id) { return instances_.at(id); }
  const InstanceRec& at(InstanceId id) const { return instances_.at(id); }
  const std::vector<InstanceRec*>& OfFunction(FunctionId fn) const;
  // Every record, in no particular order (a hash map: placement reads residents by id on every scale-up).
  const std::unordered_map<InstanceId, InstanceRec>& all() const { return instances_; }
  // The instances on slices (time-sharing, exclusive or draining), by id: what a tick judges. Warm copies and
  // idle functions are not here, so a tick's work follows what is placed.
  const std::set<InstanceId>& on_slices() const { return on_slices_; }
  // Those of them with more than one stage: the pipelines that may migrate back or yield their slices.
  const std::set<InstanceId>& pipelines() const { return pipelines_; }
  // The tick's agenda: which instances on slices a tick judges, so that its work follows what changed, not what is
  // placed. Every instance that arrives on a slice (a state change) is judged at the next tick; so is one whose
  // judgement a scheduler event may change (Judge: a batch done, a request ended); and one whose judgement may
  // change by the passing of time alone, by the time its judge gives (JudgeAt: an idle timer, or the earliest a
  // busy fraction can fall to a threshold). TakeDue hands a tick the instances due, by id (the order a scan of
  // on_slices() would judge them in).
  void Judge(InstanceRec& inst);
  void JudgeAt(InstanceRec& inst, TimePoint when);  // an earlier timer of `inst` stands
  void Unjudge(InstanceRec& inst);                  // off the timers
  std::vector<InstanceId> TakeDue(TimePoint now);
  // Instances loading now, of every function.
  size_t loading() const { return loading_; }
  // The warm instances, oldest first (by when they turned warm), and the host memory their copies hold: expiry
  // and eviction from host memory take them from the front.
  const std::set<std::pair<TimePoint, InstanceId>>& warm() const { return warm_; }
  int64_t warm_mib() const { return warm_mib_; }
  // A warm instance of `fn` to reload, else a new one.
  InstanceRec& ReusableOrNew(FunctionId fn);

  // The checked state change; announced to the mechanism with a StateDecision unless `announce` is false.
  bool SetState(InstanceRec& inst, InstanceState to, TimePoint now, std::vector<Decision>& out, bool announce = true);

  // Books `stages` for `inst` (a warm reload or a new instance of `f`), picks its batch size (the largest up to
  // max_batch whose activations fit every stage's slice), and emits its Launch. `after_release` names evicted
  // instances whose releasing memory the launch takes over.
  void Place(InstanceRec& inst, const ServedFunction& f, std::vector<StagePlacement> stages, InstanceState after_load,
             TimePoint now, std::vector<Decision>& out, std::vector<InstanceId> after_release = {});
  // An idle time-sharing instance leaves its slice for host memory (false when it is not idle and time-sharing).
  bool Evict(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);
  // The instance gives its slices up for host memory: an exclusive one is demoted to time-sharing first; an idle
  // one leaves now (true), a busy one takes no new request and leaves when its last one ends (evict_pending).
  bool Leave(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);
  // Stops the instance and releases its slices; the record leaves the table (`inst` dangles after).
  void Retire(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);
  // A warm instance turns cold: its host copy is dropped and the record leaves the table.
  void Expire(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);

  // Bumped whenever an instance is placed or leaves its slices.
  uint64_t placement_epoch() const { return placement_epoch_; }
  const std::vector<std::string>& errors() const { return errors_; }
  void Error(std::string what) { errors_.push_back(std::move(what)); }

 private:
  void Unplace(InstanceRec& inst);
  void Erase(InstanceRec& inst);
  // Adds `inst` to the index of its state (on_slices_ or warm_), or removes it.
  void Index(InstanceRec& inst, bool add);

  const FluidFaaSOptions& options_;
  SliceBooks& slices_;
  std::unordered_map<InstanceId, InstanceRec> instances_;  // nodes are stable: by_function_ points into it
  std::unordered_map<FunctionId, std::vector<InstanceRec*>> by_function_;  // the same records
  std::set<InstanceId> on_slices_;
  std::set<InstanceId> pipelines_;
  std::vector<InstanceId> judge_soon_;                   // each once (InstanceRec::judge_soon)
  std::set<std::pair<TimePoint, InstanceId>> judge_at_;  // each once (InstanceRec::judge_at)
  size_t loading_ = 0;
  std::set<std::pair<TimePoint, InstanceId>> warm_;
  int64_t warm_mib_ = 0;
  InstanceId next_instance_ = 1;
  uint64_t placement_epoch_ = 0;
  std::vector<std::string> errors_;
};

}  // namespace fluidfaas::policy
