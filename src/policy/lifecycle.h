// Instance lifecycle: the states of one runnable copy of a function, and the only legal moves between them.
//
//   cold ──> loading ──> exclusive_hot <──> time_sharing ──> warm ──> loading (reload)
//                                 │                │           └───> cold (keep-alive expired)
//                                 └──> draining <──┘
//                                        └──> retired
//
// Every state change goes through Transition, which answers an error for a move the table does not allow:
// never a silent no-op.
//
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include "common/status.h"

namespace fluidfaas::policy {

enum class InstanceState {
  kCold,          // weights on disk only; no process
  kLoading,       // a process is starting and loading weights onto its slices
  kExclusiveHot,  // busy: runs alone on its slices and is never evicted
  kTimeSharing,   // not busy: shares its slice with other time-sharing instances; may be evicted
  kWarm,          // evicted: weights kept in host memory, no slice; reload is a host-to-device copy
  kDraining,      // finishing the requests it has; receives no new ones (retirement, migration)
  kRetired,       // gone; its slices are released
};

std::string_view ToString(InstanceState state);

// Ok when `from` -> `to` is in the table above; FailedPrecondition naming both states otherwise.
Status CheckTransition(InstanceState from, InstanceState to);

}  // namespace fluidfaas::policy
