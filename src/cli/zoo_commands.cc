// fluidfaas zoo list | blocks | latency | generation | calibrate | profile
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/csv.h"
#include "common/limits.h"
#include "model/calibration.h"
#include "model/generation.h"
#include "model/profile.h"
#include "model/zoo.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;

struct ZooOptions {
  std::string model;
  std::string gpu = "a100-80gb";
  std::string profile;
  int batch = 1;
  int seq = -1;          // -1: the model's own
  std::string measured;  // a profile JSON that replaces the model's figures
  std::string data_dir = "data/calibration";
  std::string out;
  bool fit = false;
  bool cross_validate = false;
  bool json_output = false;
  int prompt = 512;  // zoo generation
  int output = 128;  // zoo generation: generated tokens per sequence
  std::vector<int> batches = {1, 8, 32};
};

int Fail(const Status& s, int code = kExitBadInput) {
  std::cerr << "fluidfaas: " << s.message() << '\n';
  return code;
}

// The model, GPU type and slice profile the options name (profile optional).
struct Target {
  model::FunctionSpec f;
  const gpu::GpuType* gpu = nullptr;
  const gpu::MigProfile* slice = nullptr;
};

Result<Target> ResolveTarget(const ZooOptions& o, bool need_profile) {
  Target t;
  FF_RETURN_IF_ERROR(CheckSeqAndBatch(o.seq, o.batch));
  FF_ASSIGN_OR_RETURN(t.f, model::BuildZooModel(o.model, model::ZooOptions{.seq_len = std::max(o.seq, 0)}));
  FF_ASSIGN_OR_RETURN(t.gpu, gpu::FindGpuType(o.gpu));
  if (o.profile.empty()) {
    if (need_profile) return Status::InvalidArgument("--profile is required");
    return t;
  }
  t.slice = t.gpu->FindProfile(o.profile);
  if (t.slice == nullptr) {
    return Status::InvalidArgument("profile '" + o.profile + "' does not exist on " + std::string(t.gpu->name) +
                                   " (profiles: " + t.gpu->ProfileNames() + ")");
  }
  return t;
}

int RunList(const ZooOptions& o) {
  json out = json::array();
  Table table({"model", ">blocks", ">params", ">GFLOPs", "dtype", ">seq", "generates", "description"});
  for (const model::ZooEntry& e : model::ZooModels()) {
    const model::FunctionSpec f = *model::BuildZooModel(e.name);
    // GFLOPs as model zoos count them: one multiply-add is one operation (torchvision: ResNet-50 4.09).
    const double gflops = f.TotalMacs() / 1e9;
    out.push_back({{"name", f.name},
                   {"blocks", f.blocks.size()},
                   {"params", f.TotalParams()},
                   {"gflops_per_sample", std::round(gflops * 100) / 100},
                   {"dtype", model::ToString(f.dtype)},
                   {"seq_len", f.seq_len},
                   {"max_batch", f.max_batch},
                   {"generates", model::IsGenerativeZooModel(e.name)}});
    table.AddRow({f.name, std::to_string(f.blocks.size()), std::to_string(f.TotalParams()), Fixed(gflops, 2),
                  std::string(model::ToString(f.dtype)), f.seq_len ? std::to_string(f.seq_len) : "-",
                  model::IsGenerativeZooModel(e.name) ? "yes" : "-", std::string(e.description)});
  }
  if (o.json_output) {
    std::cout << out.dump(2) << '\n';
  } else {
    table.Print(std::cout);
  }
  return kExitOk;
}

int RunBlocks(const ZooOptions& o) {
  Result<Target> t = ResolveTarget(o, false);
  if (!t.ok()) return Fail(t.status());
  const model::LatencyModel lm;
  json out = json::array();
  Table table(
      t->slice ? std::vector<std::string>{">#", "block", "kind", ">params", ">act out B", ">latency ms", ">memory MiB"}
               : std::vector<std::string>{">#", "block", "kind", ">params", ">act out B"});
  for (size_t i = 0; i < t->f.blocks.size(); ++i) {
    const model::Block& b = t->f.blocks[i];
    json row = {{"name", b.name},
                {"kind", model::ToString(b.kind)},
                {"params", b.params},
                {"activation_out_bytes", b.ActivationOutBytes(t->f.dtype)}};
    std::vector<std::string> cells = {std::to_string(i), b.name, std::string(model::ToString(b.kind)),
                                      std::to_string(b.params), std::to_string(b.ActivationOutBytes(t->f.dtype))};
    if (t->slice) {
      const double ms = lm.BlockMs(b, t->f.dtype, *t->gpu, *t->slice, o.batch);
      // The block's own weights and activations, without the process reserve.
      const double mib = static_cast<double>(lm.StageBytes(t->f, i, i, o.batch)) / (1 << 20);
      row["latency_ms"] = ms;
      row["memory_mib"] = mib;
      cells.push_back(Fixed(ms, 3));
      cells.push_back(Fixed(mib, 1));
    }
    out.push_back(std::move(row));
    table.AddRow(std::move(cells));
  }
  if (o.json_output) {
    std::cout << out.dump(2) << '\n';
  } else {
    table.Print(std::cout);
  }
  return kExitOk;
}

// Per slice profile: whether the weights fit beside a working cache, how many sequences the cache holds, the time
// to the first token and per output token at each batch.
int RunGeneration(const ZooOptions& o) {
  Result<model::GenerationCosts> costs = model::GenerationCosts::Build(o.model);
  if (!costs.ok()) return Fail(costs.status());
  Result<const gpu::GpuType*> gpu = gpu::FindGpuType(o.gpu);
  if (!gpu.ok()) return Fail(gpu.status());
  const int max_positions = costs->max_positions();
  if (Status s = CheckRange("--prompt", int64_t{o.prompt}, 1, max_positions - 1); !s.ok()) return Fail(s);
  if (Status s = CheckRange("--output", int64_t{o.output}, 1, max_positions - o.prompt); !s.ok()) return Fail(s);
  for (int b : o.batches) {
    if (Status s = CheckRange("--batch", int64_t{b}, 1, kMaxBatch); !s.ok()) return Fail(s);
  }
  const size_t last = costs->spec().blocks.size() - 1;
  const int sequence = o.prompt + o.output;
  const double mean_context = o.prompt + o.output / 2.0;
  std::vector<std::string> head = {"profile", ">cache tokens", ">sequences", ">TTFT ms"};
  for (int b : o.batches) head.push_back(">TPOT ms @" + std::to_string(b));
  Table table(head);
  json rows = json::array();
  for (const gpu::MigProfile& slice : (*gpu)->profiles) {
    const int64_t tokens = costs->KvCapacityTokens(0, last, slice, o.prompt);
    const int64_t sequences = tokens / sequence;
    json row = {{"profile", slice.name}, {"cache_tokens", tokens}, {"sequences", sequences}};
    std::vector<std::string> cells = {std::string(slice.name), std::to_string(tokens), std::to_string(sequences)};
    if (sequences == 0) {
      cells.emplace_back("does not fit");
      for (size_t i = 0; i < o.batches.size(); ++i) cells.emplace_back("-");
    } else {
      const double ttft = costs->PrefillMs(0, last, **gpu, slice, o.prompt, 1);
      row["ttft_ms"] = ttft;
      cells.push_back(Fixed(ttft, 1));
      json tpot = json::object();
      for (int b : o.batches) {
        if (b > sequences) {
          cells.emplace_back("-");
          continue;
        }
        const double ms = costs->DecodeStepMs(0, last, **gpu, slice, b, mean_context);
        tpot[std::to_string(b)] = ms;
        cells.push_back(Fixed(ms, 1));
      }
      row["tpot_ms"] = tpot;
    }
    rows.push_back(std::move(row));
    table.AddRow(std::move(cells));
  }
  if (o.json_output) {
    std::cout << json{{"model", o.model},
                      {"gpu", (*gpu)->name},
                      {"prompt", o.prompt},
                      {"output", o.output},
                      {"kv_bytes_per_token", costs->KvBytesPerToken(0, last)},
                      {"weight_bytes", costs->WeightBytes(0, last)},
                      {"profiles", rows}}
                     .dump(2)
              << '\n';
    return kExitOk;
  }
  std::cout << o.model << " on " << (*gpu)->name << ": " << Fixed(costs->WeightBytes(0, last) / 1e9, 2)
            << " GB of weights, " << Fixed(costs->KvBytesPerToken(0, last) / 1024.0, 1)
            << " KiB of cache per token; prompt " << o.prompt << ", " << o.output
            << " tokens out (TPOT at the mean context, " << Fixed(mean_context, 0) << ")\n\n";
  table.Print(std::cout);
  std::cout << "\nsequences: how many " << sequence << "-token sequences the cache holds beside the weights (one "
            << "process on the slice); TPOT: one decode step of that many sequences (latency model, eager kernels; "
            << "docs/latency-model.md)\n";
  return kExitOk;
}

int RunLatency(const ZooOptions& o) {
  Result<Target> t = ResolveTarget(o, true);
  if (!t.ok()) return Fail(t.status());
  const model::LatencyModel lm;
  const model::ModelledBlockTimes modelled(t->f, lm);
  std::unique_ptr<model::ProfiledBlockTimes> profiled;
  if (!o.measured.empty()) {
    Result<model::FunctionProfile> p = model::LoadProfile(o.measured);
    if (!p.ok()) return Fail(p.status());
    if (Status s = model::CheckProfileMatches(*p, t->f); !s.ok()) return Fail(s.WithContext(o.measured));
    profiled = std::make_unique<model::ProfiledBlockTimes>(std::move(p).value(), modelled);
  }
  const model::BlockTimes& times = profiled ? static_cast<const model::BlockTimes&>(*profiled) : modelled;
  double ms = 0;
  for (size_t i = 0; i < t->f.blocks.size(); ++i) ms += times.BlockMs(i, *t->gpu, *t->slice, o.batch);
  const size_t last = t->f.blocks.size() - 1;
  const int64_t mib = lm.StageMib(t->f, 0, last, *t->slice, o.batch);
  const bool fits = mib <= t->slice->memory_mib;
  const std::string source = times.Source(*t->gpu, *t->slice);
  if (o.json_output) {
    std::cout << json{{"latency_ms", ms}, {"memory_mib", mib}, {"fits", fits}, {"source", source}}.dump(2) << '\n';
  } else {
    std::cout << t->f.name << " on " << t->gpu->name << " " << t->slice->name << ", batch " << o.batch
              << (t->f.seq_len ? ", " + std::to_string(t->f.seq_len) + " tokens" : "") << ": " << Fixed(ms, 2)
              << " ms, " << mib << " MiB of " << t->slice->memory_mib << " (" << (fits ? "fits" : "does not fit")
              << "; " << source << ")\n";
  }
  return kExitOk;
}

// The model's 4g/3g latency ratio beside MISO's training measurements (the only public 4g figures).
json FourGComparison(const model::LatencyModel& lm, const std::string& dir, Table& table) {
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  json out = {{"modelled", json::array()}, {"miso_training", json::array()}};
  for (const char* name : {"resnet50", "vit-b16", "bert-base"}) {
    const model::FunctionSpec f = *model::BuildZooModel(name);
    for (int batch : {1, 32, 128}) {
      const double r = lm.ModelMs(f, a100, *a100.FindProfile("4g.40gb"), batch) /
                       lm.ModelMs(f, a100, *a100.FindProfile("3g.40gb"), batch);
      out["modelled"].push_back({{"model", name}, {"batch", batch}, {"ratio_4g_3g", r}});
      table.AddRow({std::string("modelled ") + name, std::to_string(batch), Fixed(r, 3)});
    }
  }
  Result<CsvTable> miso = CsvTable::ReadFile(dir + "/miso_a100-40gb_train_per_slice.csv");
  if (miso.ok()) {
    const auto model_col = miso->Column("model");
    const auto batch_col = miso->Column("batch");
    const auto g3 = miso->Column("3g_ms");
    const auto g4 = miso->Column("4g_ms");
    for (size_t r = 0; model_col && batch_col && g3 && g4 && r < miso->rows(); ++r) {
      Result<double> t3 = miso->Number(r, *g3);
      Result<double> t4 = miso->Number(r, *g4);
      if (!t3.ok() || !t4.ok()) continue;
      const double ratio = *t4 / *t3;
      out["miso_training"].push_back(
          {{"model", miso->row(r)[*model_col]}, {"batch", miso->row(r)[*batch_col]}, {"ratio_4g_3g", ratio}});
      table.AddRow({"MISO " + miso->row(r)[*model_col], miso->row(r)[*batch_col], Fixed(ratio, 3)});
    }
  }
  return out;
}

int RunCrossValidate(const std::vector<model::Measurement>& data, const std::vector<model::RatioConstraint>& ratios,
                     bool json_output) {
  Result<model::CrossValidation> cv = model::CrossValidate(data, ratios);
  if (!cv.ok()) return Fail(cv.status(), kExitFailure);
  if (json_output) {
    json folds = json::array();
    for (const model::HeldOut& f : cv->folds) {
      folds.push_back({{"held_out", f.kind},
                       {"name", f.name},
                       {"points", f.points},
                       {"median_error", f.median_error},
                       {"worst_error", f.worst_error}});
    }
    std::cout << json{{"folds", folds},
                      {"leave_one_profile_out_median_error", cv->profile_median_error},
                      {"leave_one_model_out_median_error", cv->model_median_error}}
                     .dump(2)
              << '\n';
    return kExitOk;
  }
  Table table({"held out", "", ">points", ">median error", ">worst error"});
  for (const model::HeldOut& f : cv->folds) {
    table.AddRow({f.kind, f.name, std::to_string(f.points), Fixed(100 * f.median_error, 1) + "%",
                  Fixed(100 * f.worst_error, 1) + "%"});
  }
  table.Print(std::cout);
  std::cout << "\nleave-one-profile-out: median error " << Fixed(100 * cv->profile_median_error, 1)
            << "%; leave-one-model-out: median error " << Fixed(100 * cv->model_median_error, 1)
            << "% (each fold refits the parameters without the held-out points)\n";
  return kExitOk;
}

int RunCalibrate(const ZooOptions& o) {
  Result<std::vector<model::Measurement>> data = model::ReadMeasurements(o.data_dir);
  if (!data.ok()) return Fail(data.status());
  model::LatencyModelParams params;
  const std::vector<model::RatioConstraint> ratios = model::DefaultRatioConstraints();
  if (o.cross_validate) return RunCrossValidate(*data, ratios, o.json_output);
  if (o.fit) {
    Result<model::LatencyModelParams> fitted = model::Fit(*data, params, ratios);
    if (!fitted.ok()) return Fail(fitted.status(), kExitFailure);
    params = *fitted;
  }
  const model::LatencyModel lm(params);
  Result<model::CalibrationSummary> s = model::Evaluate(lm, *data, ratios);
  if (!s.ok()) return Fail(s.status(), kExitFailure);
  json ratio_json = json::array();
  Table ratio_table({"constraint", ">batch", ">modelled", "held-out range", "ok"});
  for (const model::RatioCheck& r : s->ratios) {
    const bool ok = r.modelled >= r.c.lo && r.modelled <= r.c.hi;
    ratio_json.push_back({{"model", r.c.model},
                          {"ratio", r.c.profile + "/" + r.c.over_profile},
                          {"batch", r.c.batch},
                          {"modelled", r.modelled},
                          {"lo", r.c.lo},
                          {"hi", r.c.hi},
                          {"ok", ok}});
    ratio_table.AddRow({r.c.model + " " + r.c.profile + "/" + r.c.over_profile, std::to_string(r.c.batch),
                        Fixed(r.modelled, 3), Fixed(r.c.lo, 2) + "-" + Fixed(r.c.hi, 2), ok ? "yes" : "NO"});
  }

  Table four_g({"4g/3g latency", ">batch", ">ratio"});
  const json four = FourGComparison(lm, o.data_dir, four_g);
  const json fitted_params = {{"launch_us", params.launch_us},
                              {"kernel_overhead_us", params.kernel_overhead_us},
                              {"fp32_matmul_efficiency", params.fp32_matmul_efficiency},
                              {"tf32_conv_efficiency", params.tf32_conv_efficiency},
                              {"memory_efficiency", params.memory_efficiency},
                              {"sm_bandwidth_gbs", params.sm_bandwidth_gbs}};
  if (o.json_output) {
    json points = json::array();
    for (const model::CalibrationPoint& p : s->points) {
      points.push_back({{"file", p.m.file},
                        {"model", p.m.model},
                        {"profile", p.m.profile},
                        {"batch", p.m.batch},
                        {"seq_len", p.m.seq_len},
                        {"measured_ms", p.m.measured_ms},
                        {"modelled_ms", p.modelled_ms},
                        {"error", p.error},
                        {"acceptance", p.m.acceptance}});
    }
    std::cout << json{{"points", points},
                      {"median_error", s->median_error},
                      {"worst_error", s->worst_error},
                      {"acceptance_points", s->acceptance_points},
                      {"seq_sweep_median_error", s->seq_median_error},
                      {"seq_sweep_worst_error", s->seq_worst_error},
                      {"params", fitted_params},
                      {"ratio_constraints", ratio_json},
                      {"four_g", four}}
                     .dump(2)
              << '\n';
    return kExitOk;
  }
  Table table({"model", "profile", ">batch", ">seq", ">measured ms", ">modelled ms", ">error", "set"});
  for (const model::CalibrationPoint& p : s->points) {
    table.AddRow({p.m.model, p.m.profile, std::to_string(p.m.batch), p.m.seq_len ? std::to_string(p.m.seq_len) : "-",
                  Fixed(p.m.measured_ms, 2), Fixed(p.modelled_ms, 2), Fixed(100 * p.error, 1) + "%",
                  p.m.acceptance                              ? "acceptance"
                  : p.m.file.find("seq") != std::string::npos ? "seq sweep"
                                                              : "batch > 128"});
  }
  table.Print(std::cout);
  std::cout << "\nparameters" << (o.fit ? " (fitted)" : "") << ": " << fitted_params.dump() << "\n\n";
  ratio_table.Print(std::cout);
  std::cout << '\n';
  four_g.Print(std::cout);
  std::cout << "\nacceptance set (" << s->acceptance_points << " points: batch 1..128 on 1g, 2g, 3g, 7g): median error "
            << Fixed(100 * s->median_error, 1) << "%, worst " << Fixed(100 * s->worst_error, 1) << "%\n"
            << "sequence sweep (bert-base, batch 32, 32..512 tokens): median " << Fixed(100 * s->seq_median_error, 1)
            << "%, worst " << Fixed(100 * s->seq_worst_error, 1) << "% (measured latency stops growing past 256)\n";
  return kExitOk;
}

int RunProfile(const ZooOptions& o) {
  Result<Target> t = ResolveTarget(o, false);
  if (!t.ok()) return Fail(t.status());
  const model::FunctionProfile p = model::MakeModelledProfile(t->f, model::LatencyModel(), {t->gpu});
  if (o.out.empty() || o.out == "-") {
    std::cout << model::ProfileToJson(p).dump(1) << '\n';
    return kExitOk;
  }
  if (Status s = model::SaveProfile(p, o.out); !s.ok()) return Fail(s, kExitFailure);
  std::cerr << "wrote " << p.entries.size() << " entries to " << o.out << '\n';
  return kExitOk;
}

void AddModelOptions(CLI::App* cmd, ZooOptions& o, bool required) {
  auto* opt = cmd->add_option("--model", o.model, "Zoo model (fluidfaas zoo list)");
  if (required) opt->required();
  cmd->add_option("--gpu", o.gpu, "GPU type")->capture_default_str();
  cmd->add_option("--seq", o.seq, "Sequence (prompt) length of a transformer; default: the model's own");
}

}  // namespace

void AddZooCommands(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ZooOptions>();
  CLI::App* zoo = app.add_subcommand("zoo", "Built-in models, their blocks, and the latency model");
  zoo->require_subcommand(1);

  CLI::App* list = zoo->add_subcommand(
      "list", "List the zoo's models (GFLOPs counted as model zoos do: one multiply-add is one operation)");
  list->add_flag("--json", o->json_output, "Print JSON");
  list->callback([o, &exit_code] { exit_code = RunList(*o); });

  CLI::App* blocks = zoo->add_subcommand("blocks", "A model's blocks; with --profile, their latency and memory");
  AddModelOptions(blocks, *o, true);
  blocks->add_option("--profile", o->profile, "Slice profile, e.g. 2g.20gb");
  blocks->add_option("--batch", o->batch, "Batch size")->capture_default_str();
  blocks->add_flag("--json", o->json_output, "Print JSON");
  blocks->callback([o, &exit_code] { exit_code = RunBlocks(*o); });

  CLI::App* latency = zoo->add_subcommand("latency", "A model's latency and memory on one slice");
  AddModelOptions(latency, *o, true);
  latency->add_option("--profile", o->profile, "Slice profile, e.g. 2g.20gb")->required();
  latency->add_option("--batch", o->batch, "Batch size")->capture_default_str();
  latency->add_option("--measured", o->measured, "Block profile JSON whose figures replace the model's")
      ->check(CLI::ExistingFile);
  latency->add_flag("--json", o->json_output, "Print JSON: {latency_ms, memory_mib, fits, source}");
  latency->callback([o, &exit_code] { exit_code = RunLatency(*o); });

  CLI::App* generation = zoo->add_subcommand(
      "generation",
      "A language model generating on each slice profile: cache room, time to first token, time per token");
  generation->add_option("--model", o->model, "Zoo model that generates (zoo list: generates)")->required();
  generation->add_option("--gpu", o->gpu, "GPU type")->capture_default_str();
  generation->add_option("--prompt", o->prompt, "Prompt tokens")->capture_default_str();
  generation->add_option("--output", o->output, "Generated tokens per sequence")->capture_default_str();
  generation->add_option("--batch", o->batches, "Sequences per decode step (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  generation->add_flag("--json", o->json_output, "Print JSON");
  generation->callback([o, &exit_code] { exit_code = RunGeneration(*o); });

  CLI::App* calibrate = zoo->add_subcommand(
      "calibrate", "The latency model against measured MIG latencies: error table, median and worst error");
  calibrate->add_option("--data", o->data_dir, "Folder with the a100-80gb_*.csv files")->capture_default_str();
  calibrate->add_flag("--fit", o->fit, "Refit the model's parameters first");
  calibrate->add_flag("--json", o->json_output, "Print JSON");
  calibrate->add_flag("--cross-validate", o->cross_validate,
                      "Out-of-sample errors: refit leaving out each profile, then each model, and price the held-out "
                      "points");
  calibrate->callback([o, &exit_code] { exit_code = RunCalibrate(*o); });

  CLI::App* profile = zoo->add_subcommand(
      "profile", "Write a model's modelled block profile (JSON), to edit or replace with measured figures");
  AddModelOptions(profile, *o, true);
  profile->add_option("--out", o->out, "Output file (default: stdout)");
  profile->callback([o, &exit_code] { exit_code = RunProfile(*o); });
}

}  // namespace fluidfaas::cli
