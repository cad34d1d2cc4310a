// A node's report to the cluster: what the gateway routes by (policy/cluster_router.h) and shows in /v1/cluster.
// Published by each node into the JetStream KV bucket "fluidfaas_nodes" under the node's name at least every
// 0.5 s (cluster/reporter.h), read by the gateway (cluster/gateway.h). JSON on the wire:
//
//   {"node": "gpu-a", "advertise": "10.0.0.5:8000", "seq": 41, "interval_ms": 500, "open": 3,
//    "draining": false,
//    "slices": [{"id": "0:4g.40gb@0", "profile": "4g.40gb", "gpu_model": "a100-80gb", "free_mib": 40192}],
//    "functions": [{"name": "bert", "model": "bert-base", "slo_ms": 31.8, "hot": 1, "finish_ms": 4.2, "warm": 0}]}
//
// `slices` lists only the slices a new process could take, with their free memory (carrier::Carrier::MakeReport).
// A function of a TorchScript directory has "model": "" (the gateway knows no costs for it: it routes it by its
// hot instances and warm copies only).
//
// Thread safety: plain values and functions.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace fluidfaas::cluster {

struct ReportedSlice {
  std::string id;
  std::string profile;    // "4g.40gb"
  std::string gpu_model;  // gpu::GpuType's name, "a100-80gb"
  int64_t free_mib = 0;
};

struct ReportedFunction {
  std::string name;
  std::string model;  // its zoo model, "" for a TorchScript directory
  double slo_ms = 0;
  int hot = 0;
  double finish_ms = 0;
  int warm = 0;
};

struct NodeReport {
  std::string node;
  std::string advertise;  // HOST:PORT of its HTTP endpoint
  uint64_t seq = 0;       // bumped on every report
  int64_t interval_ms = 500;
  int64_t open = 0;  // requests admitted and not answered
  bool draining = false;
  std::vector<ReportedSlice> slices;
  std::vector<ReportedFunction> functions;
};

// [A-Za-z0-9_-]{1,64}: a node name is a KV key and a metric label.
Status CheckNodeName(std::string_view name);

std::string ToJsonText(const NodeReport& r);
// InvalidArgument naming the field at fault: a report from the network is checked like any input (names, finite
// numbers in range, at most 4,096 slices and 65,536 functions).
Result<NodeReport> ParseNodeReport(std::string_view text);

}  // namespace fluidfaas::cluster
