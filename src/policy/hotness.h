// Hotness: the periodic state changes of design point 2, judged on each tick from each instance's load record.
//
//  - time_sharing -> exclusive_hot at busy fraction >= promote_busy; its co-residents leave (idle ones now,
//    busy ones once their last request ends).
//  - exclusive_hot -> time_sharing under demote_busy, judged only after min_dwell (and a whole busy window) in
//    the state.
//  - An idle time-sharing instance is evicted to warm after ts_idle_evict; a warm one expires to cold after
//    keep_alive; a draining one is retired once its last request ends. Warm copies beyond host_memory_mib expire
//    too, least recently used first.
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <vector>

#include "policy/instance_table.h"

namespace fluidfaas::policy {

class Hotness {
 public:
  Hotness(const FluidFaaSOptions& options, SliceBooks& slices, InstanceTable& instances)
      : options_(options), slices_(slices), instances_(instances) {}

  void Tick(TimePoint now, std::vector<Decision>& out);
  // What the scheduler tells it between ticks, so that a tick judges only the instances these may have changed:
  // `inst` ran a batch (its busy fraction grew), or its last outstanding request ended.
  void Busier(InstanceRec& inst, TimePoint now);
  void Idle(InstanceRec& inst);

 private:
  // Puts a judged instance back on the agenda for when its judgement may next change by itself.
  void Next(InstanceRec& inst, TimePoint now);
  // A time-sharing instance with nothing outstanding: judged once it has been idle for ts_idle_evict.
  void IdleTimer(InstanceRec& inst);
  // Promotes `inst` to exclusive_hot: its co-residents leave its slices.
  void Promote(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);

  const FluidFaaSOptions& options_;
  SliceBooks& slices_;
  InstanceTable& instances_;
};

}  // namespace fluidfaas::policy
