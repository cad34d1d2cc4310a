// A node's report to the cluster: what the gateway routes by (policy/cluster_router.h) and shows in /v1/cluster.
// Published by each node into the JetStream KV bucket "fluidfaas_nodes" under the node's name at least every
// 0.5 s (cluster/reporter.h), read by the gateway (cluster/gateway.h). JSON on the wire:
//
//   {"node": "gpu-a", "advertise": "10.0.0.5:8000", "seq": 41, "interval_ms": 500, "open": 3,
//    "draining": false, "host_free_mib": 491520,
//    "slices": [{"id": "0:4g.40gb@0", "profile": "4g.40gb", "gpu_model": "a100-80gb", "free_mib": 40192}],
//    "functions": [{"name": "bert", "model": "bert-base", "slo_ms": 31.8, "hot": 1, "finish_ms": 4.2, "warm": 0,
//                   "rate_per_s": 12.5,
//                   "instances": [{"id": 7, "state": "exclusive_hot", "slices": ["0:2g.20gb@4"], "queued": 2}]}]}
//
// `slices` lists only the slices a new process could take, with their free memory (carrier::Carrier::MakeReport).
// `host_free_mib`: host memory left for warm copies. `rate_per_s`: the function's arrivals at the node over the
// last 10 s. `instances`: those on slices, with their state (policy::InstanceState's names: loading,
// exclusive_hot, time_sharing, draining) and queue; copies warm in host memory are counted in `warm`.
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

struct ReportedInstance {
  uint64_t id = 0;
  std::string state;                // policy::ToString(InstanceState)
  std::vector<std::string> slices;  // its stages' slices, first stage first: more than one is a pipeline
  int64_t queued = 0;               // requests waiting for a batch
};

struct ReportedFunction {
  std::string name;
  std::string model;  // its zoo model, "" for a TorchScript directory
  double slo_ms = 0;
  int hot = 0;
  double finish_ms = 0;
  int warm = 0;
  double rate_per_s = 0;
  std::vector<ReportedInstance> instances;
};

struct NodeReport {
  std::string node;
  std::string advertise;  // HOST:PORT of its HTTP endpoint
  uint64_t seq = 0;       // bumped on every report
  int64_t interval_ms = 500;
  int64_t open = 0;  // requests admitted and not answered
  bool draining = false;
  int64_t host_free_mib = 0;
  std::vector<ReportedSlice> slices;
  std::vector<ReportedFunction> functions;
};

// [A-Za-z0-9_-]{1,64}: a node name is a KV key and a metric label.
Status CheckNodeName(std::string_view name);

std::string ToJsonText(const NodeReport& r);
// A function's instances as the report writes them (and /v1/cluster shows them).
nlohmann::json InstancesJson(const std::vector<ReportedInstance>& instances);
// InvalidArgument naming the field at fault: a report from the network is checked like any input (names, finite
// numbers in range, at most 4,096 slices, 65,536 functions and 4,096 instances of one function).
Result<NodeReport> ParseNodeReport(std::string_view text);

}  // namespace fluidfaas::cluster
