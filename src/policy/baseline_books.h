// The books the baseline schedulers (ESG, INFless, exclusive keep-alive) keep alike for their instances: any
// record type with `int outstanding` and `bool loading`, in a map by InstanceId.
//
// Thread safety: none (see Scheduler).
#pragma once

#include <algorithm>

#include "policy/scheduler.h"

namespace fluidfaas::policy {

// A request ended on its instance (its last stage finished).
template <typename Instances>
void CountRequestEnd(Instances& instances, const StageEvent& stage) {
  if (!stage.last) return;
  auto it = instances.find(stage.instance);
  if (it != instances.end()) it->second.outstanding = std::max(0, it->second.outstanding - 1);
}

// Marks a load done. False when the instance is known and its load failed: the caller retires it.
template <typename Instances>
bool MarkLoaded(Instances& instances, const LoadEvent& load) {
  auto it = instances.find(load.instance);
  if (it == instances.end()) return true;
  it->second.loading = !load.ok && it->second.loading;
  return load.ok;
}

}  // namespace fluidfaas::policy
