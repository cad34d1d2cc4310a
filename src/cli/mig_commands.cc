// fluidfaas mig profiles | layouts | validate
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/table.h"
#include "gpu/json.h"
#include "gpu/layout.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;

struct MigOptions {
  std::string gpu = "a100-80gb";
  std::string profiles = "classic";
  bool driver_before_r510 = false;
  bool json_output = false;
  std::string layout;
};

// Resolves --gpu, printing the reason when it is unknown.
const gpu::GpuType* GpuTypeOrReport(const MigOptions& opts) {
  Result<const gpu::GpuType*> type = gpu::FindGpuType(opts.gpu);
  if (!type.ok()) {
    std::cerr << "fluidfaas: " << type.status().message() << '\n';
    return nullptr;
  }
  return *type;
}

int RunProfiles(const MigOptions& opts) {
  const gpu::GpuType* type = GpuTypeOrReport(opts);
  if (type == nullptr) return kExitBadInput;
  if (opts.json_output) {
    std::cout << json(type->profiles).dump(2) << '\n';
    return kExitOk;
  }
  std::cout << type->product << " (" << type->name << "): " << type->memory_mib << " MiB, " << type->sms << " SMs, "
            << gpu::kSmSlices << " SM slices, " << gpu::kMemorySlices << " memory slices\n\n";
  Table table({">id", "profile", ">SM slices", ">mem slices", ">memory MiB", ">SMs", "placements", ">max"});
  for (const gpu::MigProfile& p : type->profiles) {
    table.AddRow({std::to_string(p.id), std::string(p.name), std::to_string(p.sm_slices),
                  std::to_string(p.memory_slices), std::to_string(p.memory_mib), std::to_string(p.sms),
                  p.PlacementsToString(), std::to_string(p.max_count)});
  }
  table.Print(std::cout);
  return kExitOk;
}

int RunLayouts(const MigOptions& opts) {
  const gpu::GpuType* type = GpuTypeOrReport(opts);
  if (type == nullptr) return kExitBadInput;
  const gpu::ProfileSet set = opts.profiles == "all" ? gpu::ProfileSet::kAll : gpu::ProfileSet::kClassic;
  const std::vector<gpu::Layout> layouts =
      gpu::EnumerateMaximalLayouts(*type, set, gpu::LayoutRules{opts.driver_before_r510});
  if (opts.json_output) {
    std::cout << json(layouts).dump(2) << '\n';
    return kExitOk;
  }
  Table table({">#", "layout", ">SM slices", ">mem slices"});
  for (size_t i = 0; i < layouts.size(); ++i) {
    table.AddRow({std::to_string(i + 1), layouts[i].ToString(), std::to_string(layouts[i].sm_slices_used()),
                  std::to_string(layouts[i].memory_slices_used())});
  }
  table.Print(std::cout);
  std::cout << '\n'
            << layouts.size() << " maximal layouts of " << type->name << " (" << opts.profiles << " profiles"
            << (opts.driver_before_r510 ? ", driver before R510" : "") << ")\n";
  return kExitOk;
}

int RunValidate(const MigOptions& opts) {
  const gpu::GpuType* type = GpuTypeOrReport(opts);
  if (type == nullptr) return kExitBadInput;
  Result<gpu::Layout> layout = gpu::ParseLayout(*type, opts.layout, gpu::LayoutRules{opts.driver_before_r510});
  if (opts.json_output) {
    json out = layout.ok() ? json{{"valid", true}, {"layout", layout->ToString()}, {"slices", layout->slices()}}
                           : json{{"valid", false}, {"reason", layout.status().message()}};
    std::cout << out.dump(2) << '\n';
  } else if (layout.ok()) {
    std::cout << layout->ToString() << '\n';
  } else {
    std::cerr << "invalid layout: " << layout.status().message() << '\n';
  }
  return layout.ok() ? kExitOk : kExitBadInput;
}

void AddGpuOption(CLI::App* cmd, MigOptions& opts) {
  cmd->add_option("--gpu", opts.gpu, "GPU type: a100-40gb, a100-80gb, h100-80gb or h200-141gb")->capture_default_str();
}

}  // namespace

void AddMigCommands(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<MigOptions>();
  CLI::App* mig = app.add_subcommand("mig", "MIG profiles, placements and layouts of a GPU type");
  mig->require_subcommand(1);

  CLI::App* profiles = mig->add_subcommand("profiles", "List the MIG profiles of a GPU type");
  AddGpuOption(profiles, *opts);
  profiles->add_flag("--json", opts->json_output, "Print JSON");
  profiles->callback([opts, &exit_code] { exit_code = RunProfiles(*opts); });

  CLI::App* layouts = mig->add_subcommand("layouts", "Enumerate the maximal placed layouts of a GPU type");
  AddGpuOption(layouts, *opts);
  layouts->add_option("--profiles", opts->profiles, "classic (1g, 2g, 3g, 4g, 7g) or all")
      ->check(CLI::IsMember({"classic", "all"}))
      ->capture_default_str();
  layouts->add_flag("--driver-before-r510", opts->driver_before_r510, "Forbid 4g + 3g (drivers before R510)");
  layouts->add_flag("--json", opts->json_output, "Print JSON: [{\"slices\":[{\"profile\":..,\"start\":..}]}]");
  layouts->callback([opts, &exit_code] { exit_code = RunLayouts(*opts); });

  CLI::App* validate = mig->add_subcommand(
      "validate", "Check a layout and assign placements; exit 0 and print the placed layout, or exit 2 and the reason");
  AddGpuOption(validate, *opts);
  validate->add_option("LAYOUT", opts->layout, "e.g. 1g.10gb+2g.20gb+4g.40gb or 4g.40gb@0+2g.20gb@4+1g.10gb@6")
      ->required();
  validate->add_flag("--driver-before-r510", opts->driver_before_r510, "Forbid 4g + 3g (drivers before R510)");
  validate->add_flag("--json", opts->json_output, "Print JSON: {\"valid\":..,\"layout\"|\"reason\":..}");
  validate->callback([opts, &exit_code] { exit_code = RunValidate(*opts); });
}

}  // namespace fluidfaas::cli
