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

// A policy spec is a name with options: "exclusive:keep_alive=60s", "fluidfaas:keep_alive=5m:idle_evict=30s".
// Options: keep_alive (fluidfaas, esg, exclusive: how long an idle instance, or fluidfaas's warm copy, is kept)
// idle_evict (fluidfaas: an idle time-sharing instance goes to host memory after this) and dwell (fluidfaas: the
// least time an instance keeps its hot or time-sharing state, FluidFaaSOptions::min_dwell); durations as 60s,
// 500ms, 10m, 1h, in (0, 1 day]. FluidFaaS's mechanisms switch off for their ablations with pipelines=off,
// time_sharing=off, migration=off (on by default), and the design's urgency routing switches on with urgency=on (off
// by default; FluidFaaSOptions). The name part of a spec.
std::string_view PolicyName(std::string_view spec);

// Whether the policy runs on whole GPUs with MIG off (INFless, on MPS) rather than on the MIG slices.
bool UsesWholeGpus(std::string_view spec);

// What the node offers every policy alike.
struct NodeLimits {
  int64_t host_memory_mib = 0;  // host memory for warm copies (0: no limit); the policies that keep them book it
};

// `cluster`: the MIG slices, or the whole GPUs for a policy that UsesWholeGpus. InvalidArgument for an unknown
// policy or option, a bad value, or a function without the cost tables the policy needs.
Result<std::unique_ptr<Scheduler>> MakeScheduler(std::string_view spec, std::vector<ClusterSlice> cluster,
                                                 std::vector<ServedFunction> functions, NodeLimits limits = {});

}  // namespace fluidfaas::policy
