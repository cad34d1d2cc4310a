#include "policy/lifecycle.h"

#include <string>

namespace fluidfaas::policy {

std::string_view ToString(InstanceState state) {
  switch (state) {
    case InstanceState::kCold: return "cold";
    case InstanceState::kLoading: return "loading";
    case InstanceState::kExclusiveHot: return "exclusive_hot";
    case InstanceState::kTimeSharing: return "time_sharing";
    case InstanceState::kWarm: return "warm";
    case InstanceState::kDraining: return "draining";
    case InstanceState::kRetired: return "retired";
  }
  return "?";
}

Status CheckTransition(InstanceState from, InstanceState to) {
  using S = InstanceState;
  bool ok = false;
  switch (from) {
    case S::kCold: ok = to == S::kLoading || to == S::kRetired; break;
    case S::kLoading: ok = to == S::kExclusiveHot || to == S::kTimeSharing || to == S::kRetired; break;
    case S::kExclusiveHot: ok = to == S::kTimeSharing || to == S::kDraining; break;
    case S::kTimeSharing: ok = to == S::kExclusiveHot || to == S::kWarm || to == S::kDraining; break;
    case S::kWarm: ok = to == S::kLoading || to == S::kCold; break;
    case S::kDraining: ok = to == S::kRetired; break;
    case S::kRetired: ok = false; break;
  }
  if (ok) return Status::Ok();
  return Status::FailedPrecondition("invalid instance transition " + std::string(ToString(from)) + " -> " +
                                    std::string(ToString(to)));
}

}  // namespace fluidfaas::policy
