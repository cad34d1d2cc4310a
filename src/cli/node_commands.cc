// fluidfaas node show
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/table.h"
#include "gpu/json.h"
#include "gpu/node_config.h"

namespace fluidfaas::cli {
namespace {

struct NodeOptions {
  std::string config_path;
  bool json_output = false;
};

int RunShow(const NodeOptions& opts) {
  Result<gpu::NodeConfig> config = gpu::LoadNodeConfig(opts.config_path);
  if (!config.ok()) {
    std::cerr << "fluidfaas: " << config.status().message() << '\n';
    return kExitBadInput;
  }
  Result<gpu::NodeTopology> node = gpu::ResolveNode(*config);
  if (!node.ok()) {
    std::cerr << "fluidfaas: " << node.status().message() << '\n';
    return kExitFailure;
  }
  if (opts.json_output) {
    std::cout << nlohmann::json(*node).dump(2) << '\n';
    return kExitOk;
  }
  std::cout << "node " << node->name << ": " << node->gpus.size() << " GPU(s), " << node->slices.size() << " slice(s), "
            << node->source << "\n\n";
  Table gpus({">gpu", "type", "uuid", "MIG", "layout"});
  for (const gpu::GpuInfo& g : node->gpus) {
    gpus.AddRow({std::to_string(g.index), std::string(g.type->name), g.uuid, g.mig_enabled ? "on" : "off",
                 g.layout.ToString()});
  }
  gpus.Print(std::cout);
  std::cout << '\n';
  Table slices({"slice", ">memory MiB", ">SMs", "uuid"});
  for (const gpu::Slice& s : node->slices) {
    slices.AddRow({s.id, std::to_string(s.memory_mib), std::to_string(s.sms), s.uuid});
  }
  slices.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddNodeCommands(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<NodeOptions>();
  CLI::App* node = app.add_subcommand("node", "The GPUs and MIG slices of this node");
  node->require_subcommand(1);
  CLI::App* show = node->add_subcommand(
      "show",
      "Show the node: discovered through NVML when a driver is present, else emulated from the config (the "
      "embedded default is one A100-80GB with 1g.10gb + 2g.20gb + 4g.40gb)");
  show->add_option("--config", opts->config_path, "YAML config file with a 'node' section")->check(CLI::ExistingFile);
  show->add_flag("--json", opts->json_output, "Print JSON");
  show->callback([opts, &exit_code] { exit_code = RunShow(*opts); });
}

}  // namespace fluidfaas::cli
