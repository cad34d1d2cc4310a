// fluidfaas mig profiles | layouts | validate | advise
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/table.h"
#include "gpu/json.h"
#include "gpu/layout.h"
#include "sim/advisor.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;

struct MigOptions {
  std::string gpu = "a100-80gb";
  std::string profiles = "classic";
  bool driver_before_r510 = false;
  bool json_output = false;
  std::string layout;
  // advise
  int gpus = 8;
  std::string preset = "serverless";
  std::string mix;
  int functions = 0;
  std::string trace;  // mig advise: an Azure Functions trace as the workload
  std::string minutes;
  double rate_scale = 1.0;
  std::string policy = "fluidfaas";
  std::string load = "medium";
  double budget_s = 60;
  double short_s = 180;
  double full_s = 600;
  int finalists = 5;
  std::vector<uint64_t> seeds = {1, 2, 3, 4};
  std::string emit;
  int top = 12;
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

std::string Percent(const std::optional<double>& x) {
  return x ? Fixed(100 * *x, 1) + "%" : "-";
}

int RunAdvise(const MigOptions& opts) {
  const auto fail = [](const Status& s) {
    std::cerr << "fluidfaas mig advise: " << s.message() << '\n';
    return kExitBadInput;
  };
  if (opts.gpu != "a100-80gb") {
    return fail(Status::InvalidArgument("--gpu " + opts.gpu +
                                        ": the latency model behind the simulation is calibrated for a100-80gb only"));
  }
  sim::AdviseOptions o;
  o.preset = opts.preset;
  o.preset_options.gpus = opts.gpus;
  o.preset_options.functions = opts.functions;
  if (!opts.mix.empty()) {
    auto mix = sim::ParseMix(opts.mix);
    if (!mix.ok()) return fail(mix.status());
    o.preset_options.mix = *mix;
  }
  auto share = sim::LoadShare(opts.load);
  if (!share.ok()) return fail(share.status());
  o.load_share = *share;
  if (!opts.trace.empty()) {
    o.trace = opts.trace;
    o.trace_options.mix = o.preset_options.mix.empty() ? sim::PresetMix(opts.preset) : o.preset_options.mix;
    o.trace_options.max_functions = opts.functions > 0 ? static_cast<size_t>(opts.functions) : 512;
    o.preset_options.functions = 0;  // the trace's rows are the functions
    if (Status st = CheckRange("--rate-scale", opts.rate_scale, 0, 1e6, /*open_low=*/true); !st.ok()) return fail(st);
    o.trace_options.rate_scale = opts.rate_scale;
    if (!opts.minutes.empty()) {
      if (Status st = ParseMinutes(opts.minutes, o.trace_options); !st.ok()) return fail(st);
    }
  }
  o.policy = opts.policy;
  o.profiles = opts.profiles == "all" ? gpu::ProfileSet::kAll : gpu::ProfileSet::kClassic;
  o.budget_s = opts.budget_s;
  o.short_s = opts.short_s;
  o.full_s = opts.full_s;
  o.finalists = opts.finalists;
  o.seeds = opts.seeds;
  auto advice = sim::AdviseLayouts(o);
  if (!advice.ok()) return fail(advice.status());
  const sim::LayoutCandidate& best = advice->ranking.front();
  if (opts.emit == "mig-parted") {
    std::cout << sim::MigPartedConfig(best, "fluidfaas-advised");
    return kExitOk;
  }
  if (opts.emit == "node-config") {
    std::cout << sim::NodeConfigYaml(best, "fluidfaas-node");
    return kExitOk;
  }
  if (opts.json_output) {
    json ranking = json::array();
    for (const sim::LayoutCandidate& c : advice->ranking) {
      json row = {{"layout", c.label},  {"per_gpu", c.per_gpu},     {"origin", c.origin},
                  {"anchor", c.anchor}, {"bound_rps", c.bound_rps}, {"stranded_mib", c.stranded_mib},
                  {"note", c.note}};
      if (c.short_hit) row["short_hit_rate"] = *c.short_hit;
      if (c.full_hit) row["hit_rate"] = *c.full_hit;
      if (!c.full_hits.empty()) row["hit_rate_per_seed"] = c.full_hits;
      ranking.push_back(std::move(row));
    }
    std::cout << json{{"preset", advice->preset},
                      {"policy", advice->policy},
                      {"gpus", advice->gpus},
                      {"rate_rps", advice->rate_rps},
                      {"candidates", advice->candidates},
                      {"simulated_short", advice->simulated_short},
                      {"finalists", advice->finalists},
                      {"seconds", advice->seconds},
                      {"ranking", ranking}}
                     .dump(2)
              << '\n';
    return kExitOk;
  }
  std::string seeds;
  for (uint64_t s : opts.seeds) seeds += (seeds.empty() ? "" : ",") + std::to_string(s);
  if (opts.trace.empty()) {
    std::printf("%s on %d x a100-80gb, %s at %.1f req/s (%s load on the preset's own layout)\n", opts.policy.c_str(),
                advice->gpus, advice->preset.c_str(), advice->rate_rps, opts.load.c_str());
  } else {
    std::printf("%s on %d x a100-80gb, trace %s at %.1f req/s (its busiest rows as functions)\n", opts.policy.c_str(),
                advice->gpus, opts.trace.c_str(), advice->rate_rps);
  }
  std::printf(
      "%d candidates, ranked by fluid bound; %d simulated %.0f s (seed %llu); %d finalists %.0f s x seeds %s; %.1f "
      "s\n\n",
      advice->candidates, advice->simulated_short, opts.short_s, static_cast<unsigned long long>(opts.seeds.front()),
      advice->finalists, opts.full_s, seeds.c_str(), advice->seconds);
  if (advice->slowest_short_s > 5) {
    std::printf(
        "the slowest short run took %.1f s (%s): runs are not cut short, so the budget can be passed by one\n\n",
        advice->slowest_short_s, advice->slowest_label.c_str());
  }
  Table table({">#", "layout", "origin", ">bound req/s", ">stranded GiB", ">short", ">SLO hit", "note"});
  for (size_t i = 0; i < advice->ranking.size() && i < static_cast<size_t>(opts.top); ++i) {
    const sim::LayoutCandidate& c = advice->ranking[i];
    table.AddRow({std::to_string(i + 1), c.label, c.origin, c.bound_rps > 0 ? Fixed(c.bound_rps, 1) : "-",
                  std::to_string(c.stranded_mib / 1024), Percent(c.short_hit), Percent(c.full_hit), c.note});
  }
  table.Print(std::cout);
  std::printf("\nbest: %s, %s SLO hit rate", best.label.c_str(), Percent(best.full_hit).c_str());
  for (const sim::LayoutCandidate& c : advice->ranking) {
    if (c.anchor && &c != &best && !c.full_hits.empty() && c.full_hits.size() == best.full_hits.size()) {
      // Paired by seed: every candidate saw the same arrivals.
      std::vector<double> lead;
      for (size_t i = 0; i < c.full_hits.size(); ++i) lead.push_back(best.full_hits[i] - c.full_hits[i]);
      const sim::PairedDifference d = sim::Difference(lead);
      std::printf("\n  %+.1f points over %s (per seed %+.1f to %+.1f)", 100 * d.mean, c.origin.c_str(), 100 * d.min,
                  100 * d.max);
    }
  }
  std::printf("\n(--emit mig-parted or --emit node-config prints it as a config)\n");
  return kExitOk;
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

  CLI::App* advise = mig->add_subcommand(
      "advise",
      "Search MIG layouts per GPU for the best simulated SLO hit rate of a workload under a policy, in a time budget");
  AddGpuOption(advise, *opts);
  advise->add_option("--gpus", opts->gpus, "GPUs")->check(CLI::Range(1, 64))->capture_default_str();
  advise->add_option("--preset", opts->preset, "The workload: serverless, tenants, paper or fragmented")
      ->capture_default_str();
  advise->add_option("--mix", opts->mix, "Model mix instead of the preset's: llama2-13b:3,resnet50:1");
  advise->add_option("--functions", opts->functions,
                     "Functions dealt from the mix (default: the preset's); with --trace, its busiest rows kept (512)");
  advise
      ->add_option("--trace", opts->trace,
                   "An Azure Functions 2019 invocations file as the workload instead of the preset's (its rows are "
                   "the functions, models by the preset's mix or --mix; --load is unused)")
      ->check(CLI::ExistingFile);
  advise->add_option("--minutes", opts->minutes, "With --trace: the minute columns A..B");
  advise->add_option("--rate-scale", opts->rate_scale, "With --trace: multiplies every count")->capture_default_str();
  advise->add_option("--policy", opts->policy, "The policy the layout is chosen for")->capture_default_str();
  advise->add_option("--load", opts->load, "light, medium, heavy or a share of the preset's capacity on its layout")
      ->capture_default_str();
  advise->add_option("--profiles", opts->profiles, "classic (19 layouts per GPU) or all (239)")
      ->check(CLI::IsMember({"classic", "all"}))
      ->capture_default_str();
  advise->add_option("--budget", opts->budget_s, "Seconds for the search (the anchors are always simulated)")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  advise->add_option("--short", opts->short_s, "Seconds of arrivals in the short round")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  advise->add_option("--duration", opts->full_s, "Seconds of arrivals in the finalists' runs")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  advise->add_option("--finalists", opts->finalists, "Best of the short round run in full, besides the anchors")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  advise->add_option("--seed", opts->seeds, "The finalists' seeds (the short round uses the first)")->delimiter(',');
  advise->add_option("--top", opts->top, "Rows of the ranking printed")->capture_default_str();
  advise->add_option("--emit", opts->emit, "Print the best layout as a config instead: mig-parted or node-config")
      ->check(CLI::IsMember({"mig-parted", "node-config"}));
  advise->add_flag("--json", opts->json_output, "Print the ranking as JSON");
  advise->callback([opts, &exit_code] { exit_code = RunAdvise(*opts); });
}

}  // namespace fluidfaas::cli
