// The newcomer's rule for cold starts, one rule for the daemon and the simulator.
//
// A request that names no deadline of its own (a client that sends no timeout_ms) to a function with no loaded
// instance would otherwise be turned away at once: only a warm instance could meet the SLO. Such a request is
// planned for a later deadline, at least `wait` after its arrival, so the scheduler launches an instance and
// routes the request to it, as Knative's activator holds requests during scale-from-zero. Its answer is still
// judged by the SLO, so a request that waited counts as late. A request with a deadline of its own keeps the fast
// refusal, and overload (the node's limits) still refuses.
//
// Thread safety: a pure function.
#pragma once

#include <algorithm>

#include "common/time.h"

namespace fluidfaas::policy {

// The deadline to plan `planned` with: unchanged when the function has a loaded instance or `wait` is 0.
constexpr TimePoint ColdStartDeadline(TimePoint arrival, TimePoint planned, bool loaded_instance, Duration wait) {
  if (loaded_instance || wait <= Duration{0}) return planned;
  return std::max(planned, arrival + wait);
}

}  // namespace fluidfaas::policy
