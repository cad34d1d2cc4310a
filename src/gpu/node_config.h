// The node section of a FluidFaaS config file, and how a node is obtained from it: discovered through NVML, or
// emulated from the layouts it names.
//
//   node:
//     name: node-a                # default: fluidfaas-node
//     discovery: auto             # auto (NVML, else emulate) | nvml (fail without it) | emulated
//     driver_before_r510: false   # forbid 4g + 3g on one GPU
//     host_memory_gib: 64         # host memory for warm copies of evicted instances (default: the machine's
//                                 # memory less a quarter, at least 4 GiB of headroom); (0, 65536]
//     gpus:                       # the emulated node (ignored when NVML discovery succeeds)
//       - type: a100-80gb
//         layout: 1g.10gb+2g.20gb+4g.40gb
//         count: 8                # default 1: this many identical GPUs
//
// Thread safety: plain values and functions.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "gpu/nvml.h"
#include "gpu/topology.h"

namespace fluidfaas::gpu {

enum class DiscoveryMode {
  kAuto,      // NVML when it works, else the emulated node
  kNvml,      // NVML or an error
  kEmulated,  // never touch NVML
};
std::string_view ToString(DiscoveryMode mode);

struct EmulatedGpuGroup {
  const GpuType* type = nullptr;
  std::string layout;  // as written; validated by ValidateNodeConfig
  int count = 1;       // REQUIRES: 1..kMaxGpusPerNode
};

inline constexpr int kMaxGpusPerNode = 16;

struct NodeConfig {
  std::string name = "fluidfaas-node";
  DiscoveryMode discovery = DiscoveryMode::kAuto;
  LayoutRules rules;
  std::vector<EmulatedGpuGroup> gpus;
  std::optional<double> host_memory_gib;  // nullopt: the runtime's default (runtime/residency.h)
};

// The node FluidFaaS runs on when no config is given: one A100-80GB with 1g.10gb + 2g.20gb + 4g.40gb.
std::string_view EmbeddedDefaultConfig();

// Reads the `node` map of a config document (other top-level sections are not this function's business).
// Syntax and types only; ValidateNodeConfig checks the meaning.
Result<NodeConfig> ParseNodeConfig(const YAML::Node& root);

// Every layout parses and places on its GPU type, counts are in range, the node has 1..16 GPUs.
Status ValidateNodeConfig(const NodeConfig& config);

// Parse + validate a config file, or the embedded default when `path` is empty.
Result<NodeConfig> LoadNodeConfig(const std::string& path);

// The emulated node a (valid) config describes.
Result<NodeTopology> EmulateNode(const NodeConfig& config, std::string source_note = "emulated");

// The node this process runs on, following config.discovery, with `discover` as the NVML step (tests pass a
// fake). In auto mode a discovery failure is not an error: the node is emulated, and its `source` says why
// ("emulated (NVML unavailable: ...)").
Result<NodeTopology> ResolveNode(const NodeConfig& config, const std::function<Result<NodeTopology>()>& discover);

// ResolveNode with discovery through the system's libnvidia-ml.so.1.
Result<NodeTopology> ResolveNode(const NodeConfig& config);

}  // namespace fluidfaas::gpu
