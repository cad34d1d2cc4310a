// fluidfaas plan: the pipeline planner on the command line.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/limits.h"
#include "common/strings.h"
#include "gpu/topology.h"
#include "model/zoo.h"
#include "policy/pipeline_planner.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;

constexpr int kExitNoPlan = 3;

struct PlanOptions {
  std::string model;
  std::string gpu = "a100-80gb";
  std::string free;
  std::string layout = "1g.10gb+2g.20gb+4g.40gb";
  int gpus = 1;
  int batch = 1;
  int seq = -1;        // -1: the model's own
  std::string slo_ms;  // empty: no budget
  int max_stages = 4;
  bool json_output = false;
};

// Parses --free: "all" (every slice of --gpus GPUs with --layout) or a comma-separated list of slice ids, each
// a profile of the GPU type at an allowed start; slices of one GPU must not overlap.
Result<std::vector<policy::FreeSlice>> ParseFree(const PlanOptions& o, const gpu::GpuType& type) {
  std::vector<policy::FreeSlice> free;
  const auto add = [&](int g, const gpu::PlacedSlice& s) {
    free.push_back(policy::FreeSlice{gpu::SliceId{g, std::string(s.profile->name), s.start}.ToString(), g,
                                     policy::SliceKind{&type, s.profile}, s.profile->memory_mib});
  };
  if (o.free == "all") {
    if (o.gpus < 1 || o.gpus > 64) return Status::InvalidArgument("--gpus must be in 1..64");
    Result<gpu::Layout> layout = gpu::ParseLayout(type, o.layout);
    if (!layout.ok()) return layout.status().WithContext("--layout");
    for (int g = 0; g < o.gpus; ++g) {
      for (const gpu::PlacedSlice& s : layout->slices()) add(g, s);
    }
    return free;
  }
  Result<std::vector<std::pair<int, gpu::PlacedSlice>>> list = gpu::ParseSliceList(type, o.free);
  if (!list.ok()) return list.status().WithContext("--free");
  for (const auto& [g, s] : *list) add(g, s);
  return free;
}

json PlanJson(const policy::Plan& p) {
  json stages = json::array();
  for (const policy::PlanStage& s : p.stages) {
    stages.push_back({{"slice", s.slice_id},
                      {"gpu", s.gpu},
                      {"first_block", s.first_block},
                      {"last_block", s.last_block},
                      {"compute_ms", s.compute_ms},
                      {"transfer_ms", s.transfer_ms},
                      {"memory_mib", s.memory_mib}});
  }
  return {{"feasible", true}, {"stages", stages}, {"bottleneck_ms", p.bottleneck_ms}, {"latency_ms", p.latency_ms},
          {"cv", p.cv},       {"gpus", p.gpus},   {"stranded_mib", p.stranded_mib}};
}

int RunPlan(const PlanOptions& o) {
  const auto bad = [&o](const Status& s) {
    if (o.json_output) {
      std::cout << json{{"feasible", false}, {"reason", s.message()}, {"error", "bad input"}}.dump(2) << '\n';
    } else {
      std::cerr << "fluidfaas: " << s.message() << '\n';
    }
    return kExitBadInput;
  };
  if (Status st = CheckSeqAndBatch(o.seq, o.batch); !st.ok()) return bad(st);
  double slo = std::numeric_limits<double>::infinity();
  if (!o.slo_ms.empty()) {
    const std::optional<double> v = ParseFiniteDouble(o.slo_ms);
    if (!v) return bad(Status::InvalidArgument("--slo-ms: '" + Printable(o.slo_ms, 30) + "' is not a number"));
    if (Status st = CheckRange("--slo-ms", *v, 0, 1e9, /*open_low=*/true); !st.ok()) return bad(st);
    slo = *v;
  }
  Result<model::FunctionSpec> f = model::BuildZooModel(o.model, model::ZooOptions{.seq_len = std::max(o.seq, 0)});
  if (!f.ok()) return bad(f.status());
  Result<const gpu::GpuType*> type = gpu::FindGpuType(o.gpu);
  if (!type.ok()) return bad(type.status());
  if (o.max_stages < 1 || o.max_stages > 8) return bad(Status::InvalidArgument("--max-stages must be in 1..8"));
  Result<std::vector<policy::FreeSlice>> free = ParseFree(o, **type);
  if (!free.ok()) return bad(free.status());

  std::vector<policy::SliceKind> kinds;
  for (const gpu::MigProfile& p : (*type)->profiles) kinds.push_back(policy::SliceKind{*type, &p});
  const model::LatencyModel latency;
  const model::ModelledBlockTimes times(*f, latency);
  const policy::StageCostTable costs = policy::StageCostTable::Build(*f, times, latency, o.batch, kinds);
  const Result<policy::Plan> plan =
      policy::PipelinePlanner(policy::PlannerOptions{.max_stages = o.max_stages}).Best(costs, slo, *free);

  if (!plan.ok()) {
    if (o.json_output) {
      std::cout << json{{"feasible", false}, {"reason", plan.status().message()}}.dump(2) << '\n';
    } else {
      std::cout << "no plan: " << plan.status().message() << '\n';
    }
    return kExitNoPlan;
  }
  if (o.json_output) {
    std::cout << PlanJson(*plan).dump(2) << '\n';
    return kExitOk;
  }
  std::cout << f->name << ", batch " << o.batch << ": " << plan->stages.size() << " stage(s) on " << plan->gpus
            << " GPU(s); bottleneck " << Fixed(plan->bottleneck_ms, 2) << " ms, latency " << Fixed(plan->latency_ms, 2)
            << " ms, CV " << Fixed(plan->cv, 3) << "\n\n";
  Table table({"slice", "blocks", ">compute ms", ">transfer ms", ">memory MiB"});
  for (const policy::PlanStage& s : plan->stages) {
    table.AddRow({s.slice_id,
                  f->blocks[s.first_block].name + " .. " + f->blocks[s.last_block].name + " (" +
                      std::to_string(s.first_block) + "-" + std::to_string(s.last_block) + ")",
                  Fixed(s.compute_ms, 2), Fixed(s.transfer_ms, 3), std::to_string(s.memory_mib)});
  }
  table.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddPlanCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* plan = app.add_subcommand(
      "plan",
      "Plan a function on free slices: one slice when one serves it, else a balanced pipeline of up to "
      "--max-stages stages. Exit 0 with the plan, 3 when there is none (with the reason), 2 on bad input");
  plan->add_option("--model", o->model, "Zoo model (fluidfaas zoo list)")->required();
  plan->add_option("--gpu", o->gpu, "GPU type")->capture_default_str();
  plan->add_option("--free", o->free,
                   "Free slices: ids like 0:2g.20gb@4,0:1g.10gb@6, or 'all' (every slice of --gpus GPUs with "
                   "--layout)")
      ->required();
  plan->add_option("--layout", o->layout, "Layout of each GPU with --free all")->capture_default_str();
  plan->add_option("--gpus", o->gpus, "GPUs with --free all")->capture_default_str();
  plan->add_option("--batch", o->batch, "Batch size")->capture_default_str();
  plan->add_option("--seq", o->seq, "Sequence (prompt) length of a transformer");
  plan->add_option("--slo-ms", o->slo_ms, "End-to-end latency budget, ms, in (0, 1e9] (default: none)");
  plan->add_option("--max-stages", o->max_stages, "Most pipeline stages")->capture_default_str();
  plan->add_flag("--json", o->json_output, "Print JSON");
  plan->callback([o, &exit_code] { exit_code = RunPlan(*o); });
}

}  // namespace fluidfaas::cli
