// MakeScheduler: the one way to build a policy by name, for the simulator, the daemon and tests. Every function
// is checked for the cost tables its policy needs: a missing table is an InvalidArgument naming the function,
// never a crash later.
//
// Thread safety: plain functions.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/scheduler.h"

namespace fluidfaas::policy {

// "fluidfaas", "esg", "infless", "exclusive", in the order reports list them.
const std::vector<std::string>& PolicyNames();

// Whether the policy runs on whole GPUs with MIG off (INFless, on MPS) rather than on the MIG slices.
bool UsesWholeGpus(std::string_view policy);

// `cluster`: the MIG slices, or the whole GPUs for a policy that UsesWholeGpus.
Result<std::unique_ptr<Scheduler>> MakeScheduler(std::string_view policy, std::vector<ClusterSlice> cluster,
                                                 std::vector<ServedFunction> functions);

}  // namespace fluidfaas::policy
