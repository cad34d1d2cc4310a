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

 private:
  // Promotes `inst` to exclusive_hot: its co-residents leave its slices.
  void Promote(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);

  const FluidFaaSOptions& options_;
  SliceBooks& slices_;
  InstanceTable& instances_;
};

}  // namespace fluidfaas::policy
