#include "gpu/node_config.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "common/config.h"
#include "common/limits.h"

namespace fluidfaas::gpu {
namespace {

constexpr std::string_view kEmbeddedDefault = R"(# FluidFaaS embedded default: one emulated A100-80GB.
node:
  name: fluidfaas-node
  discovery: auto
  gpus:
    - type: a100-80gb
      layout: 1g.10gb+2g.20gb+4g.40gb
      count: 1
)";

Result<DiscoveryMode> ParseDiscoveryMode(std::string_view text) {
  if (text == "auto") return DiscoveryMode::kAuto;
  if (text == "nvml") return DiscoveryMode::kNvml;
  if (text == "emulated") return DiscoveryMode::kEmulated;
  return Status::InvalidArgument("node.discovery: '" + std::string(text) + "' is not one of auto, nvml, emulated");
}

}  // namespace

std::string_view ToString(DiscoveryMode mode) {
  switch (mode) {
    case DiscoveryMode::kAuto: return "auto";
    case DiscoveryMode::kNvml: return "nvml";
    case DiscoveryMode::kEmulated: return "emulated";
  }
  return "?";
}

std::string_view EmbeddedDefaultConfig() {
  return kEmbeddedDefault;
}

namespace {

Result<NodeConfig> ParseNodeConfigUnguarded(const YAML::Node& root) {
  if (!root.IsMap()) return Status::InvalidArgument("config: expected a map with a 'node' section");
  const YAML::Node node = root["node"];
  if (!node) return Status::InvalidArgument("config: missing the 'node' section");
  FF_RETURN_IF_ERROR(
      config::CheckMap(node, "node", {"name", "discovery", "driver_before_r510", "gpus", "host_memory_gib"}));

  NodeConfig out;
  FF_ASSIGN_OR_RETURN(auto name, config::Optional<std::string>(node, "name", "node"));
  if (name) out.name = *name;
  FF_ASSIGN_OR_RETURN(auto discovery, config::Optional<std::string>(node, "discovery", "node"));
  if (discovery) {
    FF_ASSIGN_OR_RETURN(out.discovery, ParseDiscoveryMode(*discovery));
  }
  FF_ASSIGN_OR_RETURN(auto before_r510, config::Optional<bool>(node, "driver_before_r510", "node"));
  out.rules.driver_before_r510 = before_r510.value_or(false);
  FF_ASSIGN_OR_RETURN(out.host_memory_gib, config::Optional<double>(node, "host_memory_gib", "node"));

  const YAML::Node gpus = node["gpus"];
  if (gpus && !gpus.IsSequence()) return Status::InvalidArgument("node.gpus: expected a list");
  for (size_t i = 0; gpus && i < gpus.size(); ++i) {
    const std::string where = "node.gpus[" + std::to_string(i) + "]";
    FF_RETURN_IF_ERROR(config::CheckMap(gpus[i], where, {"type", "layout", "count"}));
    EmulatedGpuGroup group;
    FF_ASSIGN_OR_RETURN(auto type_name, config::Required<std::string>(gpus[i], "type", where));
    Result<const GpuType*> type = FindGpuType(type_name);
    if (!type.ok()) return type.status().WithContext(where + ".type");
    group.type = *type;
    FF_ASSIGN_OR_RETURN(group.layout, config::Required<std::string>(gpus[i], "layout", where));
    FF_ASSIGN_OR_RETURN(auto count, config::Optional<int>(gpus[i], "count", where));
    group.count = count.value_or(1);
    out.gpus.push_back(std::move(group));
  }
  return out;
}

}  // namespace

Result<NodeConfig> ParseNodeConfig(const YAML::Node& root) {
  try {
    return ParseNodeConfigUnguarded(root);
  } catch (const YAML::Exception& e) {  // a shape the readers did not expect: an error, never a crash
    return Status::InvalidArgument(std::string("config: ") + e.what());
  }
}

Status ValidateNodeConfig(const NodeConfig& config) {
  FF_RETURN_IF_ERROR(CheckName("node.name", config.name));
  if (config.host_memory_gib) {
    FF_RETURN_IF_ERROR(CheckRange("node.host_memory_gib", *config.host_memory_gib, 0.0, 65536.0, /*open_low=*/true));
  }
  int total = 0;
  for (size_t i = 0; i < config.gpus.size(); ++i) {
    const EmulatedGpuGroup& g = config.gpus[i];
    const std::string where = "node.gpus[" + std::to_string(i) + "]";
    if (g.count < 1 || g.count > kMaxGpusPerNode) {
      return Status::InvalidArgument(where + ".count: " + std::to_string(g.count) + " is not in 1.." +
                                     std::to_string(kMaxGpusPerNode));
    }
    Result<Layout> layout = ParseLayout(*g.type, g.layout, config.rules);
    if (!layout.ok()) return layout.status().WithContext(where + ".layout");
    total += g.count;
  }
  if (config.discovery != DiscoveryMode::kNvml && total == 0) {
    return Status::InvalidArgument("node.gpus: an emulated node needs at least one GPU");
  }
  if (total > kMaxGpusPerNode) {
    return Status::InvalidArgument("node.gpus: " + std::to_string(total) + " GPUs; a node has at most " +
                                   std::to_string(kMaxGpusPerNode));
  }
  return Status::Ok();
}

Result<NodeConfig> LoadNodeConfig(const std::string& path) {
  Result<YAML::Node> doc = path.empty() ? config::ParseYaml(std::string(kEmbeddedDefault), "<embedded default>")
                                        : config::LoadYamlFile(path);
  FF_RETURN_IF_ERROR(doc);
  const std::string source = path.empty() ? "<embedded default>" : path;
  Result<NodeConfig> config = ParseNodeConfig(*doc);
  if (!config.ok()) return config.status().WithContext(source);
  FF_RETURN_IF_ERROR(ValidateNodeConfig(*config).WithContext(source));
  return config;
}

Result<NodeTopology> EmulateNode(const NodeConfig& config, std::string source_note) {
  FF_RETURN_IF_ERROR(ValidateNodeConfig(config));
  std::vector<GpuInfo> gpus;
  for (const EmulatedGpuGroup& g : config.gpus) {
    FF_ASSIGN_OR_RETURN(Layout layout, ParseLayout(*g.type, g.layout, config.rules));
    for (int c = 0; c < g.count; ++c) {
      GpuInfo gpu;
      gpu.index = static_cast<int>(gpus.size());
      gpu.type = g.type;
      gpu.product = std::string(g.type->product);
      gpu.uuid = MakeUpUuid("GPU", config.name + "/" + std::to_string(gpu.index));
      gpu.layout = layout;
      gpus.push_back(std::move(gpu));
    }
  }
  return MakeNodeTopology(config.name, /*emulated=*/true, std::move(source_note), std::move(gpus));
}

Result<NodeTopology> ResolveNode(const NodeConfig& config, const std::function<Result<NodeTopology>()>& discover) {
  if (config.discovery == DiscoveryMode::kEmulated) return EmulateNode(config, "emulated (discovery: emulated)");
  Result<NodeTopology> found = discover();
  if (found.ok()) return found;
  if (config.discovery == DiscoveryMode::kNvml) return found.status().WithContext("NVML discovery");
  // No NVML at all is the normal case of a machine without GPUs; NVML that is there and fails (no driver
  // loaded, a GPU this build does not know, MIG off) is worth a warning: the operator may expect real GPUs.
  if (found.status().code() == StatusCode::kNotFound) {
    spdlog::info("NVML is not installed ({}); emulating the node from its config", found.status().message());
    return EmulateNode(config, "emulated (NVML absent)");
  }
  spdlog::warn(
      "NVML discovery failed: {}; emulating the node from its config (set discovery: nvml to make this "
      "an error)",
      found.status().message());
  return EmulateNode(config, "emulated (NVML failed: " + found.status().message() + ")");
}

Result<NodeTopology> ResolveNode(const NodeConfig& config) {
  return ResolveNode(config, [&config]() -> Result<NodeTopology> {
    // FLUIDFAAS_NVML_LIBRARY names another library (tests point it nowhere to emulate on any host).
    const char* path = std::getenv("FLUIDFAAS_NVML_LIBRARY");
    FF_ASSIGN_OR_RETURN(std::unique_ptr<nvml::Library> lib,
                        nvml::Library::Open(path != nullptr && *path != '\0' ? path : "libnvidia-ml.so.1"));
    return nvml::Discover(lib->api(), config.name);
  });
}

}  // namespace fluidfaas::gpu
