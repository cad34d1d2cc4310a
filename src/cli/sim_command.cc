// fluidfaas sim: the evaluation grid (policies x loads) in the simulator, with a summary table and files.
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/limits.h"
#include "common/strings.h"
#include "policy/cluster_router.h"
#include "sim/azure_trace.h"
#include "sim/experiment.h"
#include "sim/plots.h"

namespace fluidfaas::cli {

// "A..B" (1 <= A <= B <= kMaxTraceMinute) into the trace's options.
Status ParseMinutes(const std::string& text, sim::TraceOptions& t) {
  const size_t dots = text.find("..");
  auto bad = Status::InvalidArgument("--minutes: '" + Printable(text, 30) +
                                     "' is not A..B with 1 <= A <= B <= " + std::to_string(kMaxTraceMinute));
  if (dots == std::string::npos) return bad;
  const std::optional<double> a = ParseFiniteDouble(text.substr(0, dots));
  const std::optional<double> b = ParseFiniteDouble(text.substr(dots + 2));
  if (!a || !b || *a != std::floor(*a) || *b != std::floor(*b) || *a < 1 || *a > *b || *b > kMaxTraceMinute) {
    return bad;
  }
  t.first_minute = static_cast<int>(*a);
  t.last_minute = static_cast<int>(*b);
  return Status::Ok();
}

namespace {

using nlohmann::json;

struct SimOptions {
  std::string preset = "paper";
  std::vector<std::string> layouts;  // --layout, one for every GPU or one per GPU
  std::vector<std::string> policies = sim::PolicyNames();
  std::vector<std::string> loads = {"light", "medium", "heavy"};
  std::string trace;
  double rate_scale = 1.0;
  std::vector<std::string> seed_texts = {"1"};
  std::vector<uint64_t> seeds;  // parsed from seed_texts
  bool duration_given = false;
  bool load_given = false;
  bool rate_scale_given = false;
  double duration_s = 600;
  double slo_scale = 5.0;
  int gpus = 8;
  std::string out = "out/sim";
  std::string records;  // --records FILE: every request's record, as CSV
  bool json_output = false;
  std::string faults;  // "load=P,stage=P,worker=P"
  double exec_noise = 0;
  double mps_interference = 0.3;
  std::string take_slices;  // "EVERY_S:HOLD_S"
  // Workload knobs (sim/experiment.h); empty or 0: the preset's own.
  int functions = 0;
  std::string mix;
  std::string popularity;
  std::string arrivals;
  std::string minutes;  // a trace's "A..B"
  bool lenient = false;
  // The cluster: the preset's GPUs split over this many nodes, each with its own scheduler, behind each routing.
  int nodes = 1;
  std::vector<std::string> routings = policy::RoutingNames();
};

// The preset's options from the flags.
Result<sim::PresetOptions> PresetOptionsFrom(const SimOptions& o) {
  sim::PresetOptions p{.slo_scale = o.slo_scale, .gpus = o.gpus};
  p.layouts = o.layouts;
  if (o.functions != 0) {
    FF_RETURN_IF_ERROR(CheckRange("--functions", int64_t{o.functions}, 1, sim::kMaxFunctions));
    p.functions = o.functions;
  }
  if (!o.mix.empty()) {
    FF_ASSIGN_OR_RETURN(p.mix, sim::ParseMix(o.mix));
  }
  if (!o.popularity.empty()) {
    FF_ASSIGN_OR_RETURN(p.zipf_s, sim::ParsePopularity(o.popularity));
  }
  if (!o.arrivals.empty()) {
    FF_ASSIGN_OR_RETURN(sim::ArrivalShape a, sim::ParseArrivals(o.arrivals));
    p.cv = a.cv;
    p.active_share = a.active_share;
    p.mean_on_s = a.mean_on_s;
  }
  return p;
}

// "load=0.05,stage=0.001,worker=0.0005": each a probability in [0, 1] (worker: per second of a slice in use).
Result<sim::Faults> ParseFaults(const std::string& text) {
  sim::Faults f;
  if (text.empty()) return f;
  for (const std::string& item : Split(text, ',')) {
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    double* field = key == "load" ? &f.load : key == "stage" ? &f.stage : key == "worker" ? &f.worker : nullptr;
    if (eq == std::string::npos || field == nullptr) {
      return Status::InvalidArgument("--faults: '" + item + "' is not load=P, stage=P or worker=P");
    }
    const std::optional<double> v = ParseFiniteDouble(item.substr(eq + 1));
    if (!v || !(*v >= 0 && *v <= 1)) {
      return Status::InvalidArgument("--faults: " + key + " must be a probability in [0, 1], not '" +
                                     item.substr(eq + 1) + "'");
    }
    *field = *v;
  }
  return f;
}

// "EVERY_S:HOLD_S": a slice taken every EVERY_S seconds on average, for HOLD_S seconds; both in (0, 1e6].
Result<sim::SliceTaking> ParseTakeSlices(const std::string& text) {
  sim::SliceTaking t;
  if (text.empty()) return t;
  const std::vector<std::string> parts = Split(text, ':');
  const auto bad =
      Status::InvalidArgument("--take-slices: '" + text + "' is not EVERY_S:HOLD_S with both in (0, 1000000]");
  if (parts.size() != 2) return bad;
  const std::optional<double> every = ParseFiniteDouble(parts[0]);
  const std::optional<double> hold = ParseFiniteDouble(parts[1]);
  if (!every || !hold || !(*every > 0 && *every <= 1e6) || !(*hold > 0 && *hold <= 1e6)) return bad;
  t.every = SecondsF(*every);
  t.hold = SecondsF(*hold);
  return t;
}

json ToJson(const sim::RunSummary& s) {
  json functions = json::array();
  for (const sim::FunctionSummary& f : s.functions) {
    functions.push_back(
        {{"name", f.name},
         {"model", f.model},
         {"requests", f.requests},
         {"hits", f.hits},
         {"rejected", f.rejected},
         {"failed", f.failed},
         {"slo_hit_rate", f.requests > 0 ? static_cast<double>(f.hits) / static_cast<double>(f.requests) : 0.0},
         {"mean_ms", f.mean_ms}});
  }
  return {{"policy", s.policy},
          {"load", s.load},
          {"seed", s.seed},
          {"load_share", s.load_share},
          {"rate_rps", s.rate_rps},
          {"requests", s.requests},
          {"hits", s.hits},
          {"late", s.late},
          {"rejected", s.rejected},
          {"failed", s.failed},
          {"slo_hit_rate", s.hit_rate},
          {"function_mean_hit_rate", s.function_mean_hit_rate},
          {"functions_at_90", s.functions_at_90},
          {"jain_index", s.jain_index},
          {"mean_ms", s.mean_ms},
          {"mean_all_ms", s.mean_all_ms},
          {"p50_ms", s.p50_ms},
          {"p99_ms", s.p99_ms},
          {"queue_ms", s.queue_ms},
          {"load_ms", s.load_ms},
          {"compute_ms", s.compute_ms},
          {"transfer_ms", s.transfer_ms},
          {"throughput_rps", s.throughput_rps},
          {"slice_utilization", s.utilization},
          {"active_fraction", s.active_fraction},
          {"pipelines", s.pipelines},
          {"migrations", s.migrations},
          {"evictions", s.evictions},
          {"load_failures", s.load_failures},
          {"stage_failures", s.stage_failures},
          {"workers_lost", s.workers_lost},
          {"slices_taken", s.slices_taken},
          {"wall_seconds", s.wall_seconds},
          {"simulated_requests", s.simulated_requests},
          {"functions", functions}};
}

Status WriteFiles(const std::string& dir, const std::vector<sim::RunSummary>& runs) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create '" + dir + "': " + ec.message());
  json all = json::array();
  for (const sim::RunSummary& s : runs) all.push_back(ToJson(s));
  std::ofstream js(dir + "/summary.json");
  js << all.dump(2) << '\n';
  std::ofstream csv(dir + "/summary.csv");
  bool header = true;
  for (const json& row : all) {
    if (header) {
      std::string line;
      for (auto it = row.begin(); it != row.end(); ++it) {
        if (!it->is_array()) line += (line.empty() ? "" : ",") + it.key();
      }
      csv << line << '\n';
      header = false;
    }
    std::string line;
    for (auto it = row.begin(); it != row.end(); ++it) {
      if (it->is_array()) continue;  // per-function figures go to functions.csv
      if (!line.empty()) line += ",";
      line += it->is_string() ? it->get<std::string>() : it->dump();
    }
    csv << line << '\n';
  }
  std::ofstream per_fn(dir + "/functions.csv");
  per_fn << "policy,load,seed,function,model,requests,hits,rejected,failed,slo_hit_rate,mean_ms\n";
  for (const sim::RunSummary& s : runs) {
    for (const sim::FunctionSummary& f : s.functions) {
      per_fn << s.policy << ',' << s.load << ',' << s.seed << ',' << f.name << ',' << f.model << ',' << f.requests
             << ',' << f.hits << ',' << f.rejected << ',' << f.failed << ','
             << (f.requests > 0 ? static_cast<double>(f.hits) / static_cast<double>(f.requests) : 0.0) << ','
             << f.mean_ms << '\n';
    }
  }
  std::ofstream rej(dir + "/rejections.csv");
  rej << "policy,load,seed,function,outcome,code,count,example\n";
  for (const sim::RunSummary& s : runs) {
    for (const auto& e : s.ends) {
      std::string example = e.example;
      std::replace(example.begin(), example.end(), '"', '\'');
      rej << s.policy << ',' << s.load << ',' << s.seed << ',' << e.function << ',' << e.outcome << ',' << e.code << ','
          << e.count << ",\"" << example << "\"\n";
    }
  }
  std::ofstream timeline(dir + "/slice_timeline.csv");  // busy buckets only: idle ones are left out
  timeline << "policy,load,seed,slice,start_s,busy_fraction\n";
  for (const sim::RunSummary& s : runs) {
    for (size_t i = 0; i < s.slice_timeline.size(); ++i) {
      for (size_t b = 0; b < s.slice_timeline[i].size(); ++b) {
        if (s.slice_timeline[i][b] <= 0) continue;
        timeline << s.policy << ',' << s.load << ',' << s.seed << ',' << i << ','
                 << static_cast<double>(b) * s.timeline_bucket_s << ',' << s.slice_timeline[i][b] << '\n';
      }
    }
  }
  std::ofstream cdf(dir + "/slice_utilization.csv");
  cdf << "policy,load,seed,slice,utilization\n";
  for (const sim::RunSummary& s : runs) {
    for (size_t i = 0; i < s.slice_utilization.size(); ++i) {
      cdf << s.policy << ',' << s.load << ',' << s.seed << ',' << i << ',' << s.slice_utilization[i] << '\n';
    }
  }
  if (!js || !csv || !cdf || !per_fn || !rej || !timeline)
    return Status::IoError("cannot write the summary files in '" + dir + "'");
  return Status::Ok();
}

// Seeds: unsigned decimal integers, at most 100 of them.
Result<std::vector<uint64_t>> ParseSeeds(const std::vector<std::string>& texts) {
  if (texts.empty() || texts.size() > 100) return Status::InvalidArgument("--seed: give 1..100 seeds");
  std::vector<uint64_t> seeds;
  for (const std::string& t : texts) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
      return Status::InvalidArgument("--seed: '" + Printable(t, 30) + "' is not an unsigned integer in 0.." +
                                     std::to_string(UINT64_MAX));
    }
    seeds.push_back(v);
  }
  return seeds;
}

// The flags that do not go together, checked before anything is read.
Status ValidateFlags(const SimOptions& o) {
  if (!o.trace.empty()) {
    if (o.duration_given)
      return Status::InvalidArgument("--duration is for synthetic loads: a trace sets its own span");
    if (o.load_given) return Status::InvalidArgument("--load is for synthetic loads: a trace sets its own rates");
    if (!o.popularity.empty() || !o.arrivals.empty()) {
      return Status::InvalidArgument("--popularity and --arrivals shape synthetic loads: a trace sets its own");
    }
    return Status::Ok();
  }
  if (o.rate_scale_given) return Status::InvalidArgument("--rate-scale scales a trace's rates: give --trace");
  if (!o.minutes.empty() || o.lenient) {
    return Status::InvalidArgument("--minutes and --lenient read a trace: give --trace");
  }
  return Status::Ok();
}

// Every number the command takes, against the ranges in common/limits.h; and the flags that do not go together.
Status Validate(const SimOptions& o, double capacity_rps) {
  FF_RETURN_IF_ERROR(CheckRange("--slo-scale", o.slo_scale, 0, 1000, /*open_low=*/true));
  FF_RETURN_IF_ERROR(CheckRange("--exec-noise", o.exec_noise, 0, 10));
  FF_RETURN_IF_ERROR(CheckRange("--mps-interference", o.mps_interference, 0, 2));
  FF_RETURN_IF_ERROR(ValidateFlags(o));
  FF_RETURN_IF_ERROR(CheckRange("--nodes", int64_t{o.nodes}, 1, int64_t{o.gpus}));
  for (const std::string& r : o.routings) FF_RETURN_IF_ERROR(policy::ParseRouting(r).status());
  if (!o.trace.empty()) return CheckRange("--rate-scale", o.rate_scale, 0, 1e6, /*open_low=*/true);
  FF_RETURN_IF_ERROR(CheckRange("--duration", o.duration_s, 0, kMaxSimDurationS, /*open_low=*/true));
  for (const std::string& load : o.loads) {
    FF_ASSIGN_OR_RETURN(double share, sim::LoadShare(load));
    const double expected = share * capacity_rps * o.duration_s;
    if (expected > static_cast<double>(kMaxRequestsPerRun)) {
      return Status::InvalidArgument("--duration " + Fixed(o.duration_s, 0) + " at load " + load + " is about " +
                                     Fixed(expected / 1e6, 1) + "M requests per run, over the limit of " +
                                     std::to_string(kMaxRequestsPerRun / 1000000) + "M");
    }
  }
  return Status::Ok();
}

int RunSim(SimOptions o) {
  const auto fail = [](const Status& s, int code) {
    std::cerr << "fluidfaas: " << s.message() << '\n';
    return code;
  };
  Result<std::vector<uint64_t>> seeds = ParseSeeds(o.seed_texts);
  if (!seeds.ok()) return fail(seeds.status(), kExitBadInput);
  o.seeds = *seeds;
  if (Status st = CheckRange("--slo-scale", o.slo_scale, 0, 1000, /*open_low=*/true); !st.ok())
    return fail(st, kExitBadInput);
  if (Status st = ValidateFlags(o); !st.ok()) return fail(st, kExitBadInput);
  Result<sim::PresetOptions> preset_options = PresetOptionsFrom(o);
  if (!preset_options.ok()) return fail(preset_options.status(), kExitBadInput);
  // A trace: each of its busiest rows is a function, its model by a rule of the row alone (sim/azure_trace.h).
  sim::TraceOptions trace_options;
  if (!o.trace.empty()) {
    trace_options.mix = preset_options->mix.empty() ? sim::PresetMix(o.preset) : preset_options->mix;
    trace_options.max_functions = o.functions > 0 ? static_cast<size_t>(o.functions) : 512;
    trace_options.rate_scale = o.rate_scale;
    trace_options.lenient = o.lenient;
    if (!o.minutes.empty()) {
      if (Status st = ParseMinutes(o.minutes, trace_options); !st.ok()) return fail(st, kExitBadInput);
    }
    if (Status st = CheckRange("--rate-scale", o.rate_scale, 0, 1e6, /*open_low=*/true); !st.ok()) {
      return fail(st, kExitBadInput);
    }
    trace_options.seed = o.seeds.front();
    sim::TraceOptions header_options = trace_options;
    header_options.materialize = false;  // its functions and counts only
    Result<sim::Trace> first = sim::ReadAzureTrace(o.trace, header_options);
    if (!first.ok()) return fail(first.status(), kExitBadInput);
    preset_options->models.clear();
    preset_options->weights.clear();
    for (const sim::TraceFunction& f : first->functions) {
      preset_options->models.push_back(f.model);
      preset_options->weights.push_back(static_cast<double>(f.invocations));  // the capacity is of the trace's mix
    }
    std::cerr << "trace " << o.trace << ": " << first->rows << " function rows, " << first->functions.size()
              << " kept as functions (the busiest; --functions)";
    if (first->dropped_rows > 0) {
      std::cerr << ", " << first->dropped_rows << " dropped with " << first->dropped_invocations << " invocations";
    }
    if (first->skipped_rows > 0)
      std::cerr << ", " << first->skipped_rows << " malformed skipped (" << first->first_skip << ")";
    std::cerr << '\n';
  }
  Result<std::unique_ptr<sim::Preset>> preset = sim::MakePreset(o.preset, *preset_options);
  if (!preset.ok()) return fail(preset.status(), kExitBadInput);
  sim::SimOptions sim_options;
  if (Status st = Validate(o, (*preset)->capacity_rps); !st.ok()) return fail(st, kExitBadInput);
  {
    Result<sim::Faults> faults = ParseFaults(o.faults);
    if (!faults.ok()) return fail(faults.status(), kExitBadInput);
    Result<sim::SliceTaking> take = ParseTakeSlices(o.take_slices);
    if (!take.ok()) return fail(take.status(), kExitBadInput);
    sim_options.faults = *faults;
    sim_options.take = o.take_slices.empty() ? (*preset)->take : *take;
    sim_options.exec_noise_cv = o.exec_noise;
    sim_options.mps_interference = o.mps_interference;
  }
  for (const std::string& p : o.policies) {
    Result<std::unique_ptr<policy::Scheduler>> s = sim::MakeScheduler(p, **preset);
    if (!s.ok()) return fail(s.status(), kExitBadInput);
  }

  const bool progress = isatty(STDERR_FILENO) != 0 && !o.json_output;
  std::ofstream records;
  if (!o.records.empty()) {
    records.open(o.records);
    if (!records) return fail(Status::IoError("--records: cannot write " + o.records), kExitFailure);
    records << "policy,load,seed,function,arrival_ms,deadline_ms,finished_ms,outcome,code,queue_ms,load_ms,compute_ms,"
               "transfer_ms,routes\n";
  }
  std::vector<sim::RunSummary> runs;
  // A cluster run is (policy, routing): shown as "policy@routing".
  const std::vector<std::string> routings = o.nodes > 1 ? o.routings : std::vector<std::string>{""};
  const size_t per_seed = o.policies.size() * routings.size() * (o.trace.empty() ? o.loads.size() : 1);
  double trace_span_s = 0;
  double trace_rate_rps = 0;
  for (uint64_t seed : o.seeds) {
    // A trace gives one workload, the synthetic loads one each. A synthetic one on one node is generated as the
    // run goes (a stream: memory follows the open requests, not the duration); a trace, or a cluster's, is a vector.
    struct Workload {
      std::string name;
      std::optional<sim::WorkloadSpec> spec;    // synthetic
      std::shared_ptr<const sim::Trace> trace;  // a trace's cells
      std::vector<sim::Arrival> arrivals;       // a cluster's: the trace's or the synthetic ones
    };
    std::vector<Workload> workloads;
    std::vector<double> shares;
    std::vector<double> spans;  // seconds of arrivals in each workload
    if (!o.trace.empty()) {
      sim::TraceOptions t = trace_options;
      t.seed = seed;  // spreads each minute's invocations; the functions and their models stay
      t.materialize = o.nodes > 1;
      Result<sim::Trace> trace = sim::ReadAzureTrace(o.trace, t);
      if (!trace.ok()) return fail(trace.status(), kExitBadInput);
      spans.push_back(ToSeconds(trace->span()));  // first to last minute with an invocation
      trace_span_s = spans.back();
      trace_rate_rps = static_cast<double>(trace->invocations) / trace_span_s;
      std::vector<sim::Arrival> arrivals = std::move(trace->arrivals);  // a cluster's; empty otherwise
      workloads.push_back(Workload{"trace", std::nullopt, std::make_shared<const sim::Trace>(std::move(trace).value()),
                                   std::move(arrivals)});
      shares.push_back(0);
    } else {
      for (const std::string& load : o.loads) {
        Result<double> share = sim::LoadShare(load);
        if (!share.ok()) return fail(share.status(), kExitBadInput);
        const sim::WorkloadSpec w =
            sim::PresetWorkload(**preset, *share * (*preset)->capacity_rps, SecondsF(o.duration_s), seed);
        workloads.push_back(
            Workload{load, w, nullptr, o.nodes > 1 ? sim::GenerateWorkload(w) : std::vector<sim::Arrival>{}});
        shares.push_back(*share);
        spans.push_back(o.duration_s);
      }
    }
    for (size_t w = 0; w < workloads.size(); ++w) {
      for (const std::string& p : o.policies) {
        for (const std::string& routing : routings) {
          std::string label = p;
          if (!routing.empty()) label.append("@").append(routing);
          if (progress) {
            std::cerr << "\r[" << runs.size() + 1 << "/" << per_seed * o.seeds.size() << "] seed " << seed << " "
                      << label << " " << workloads[w].name << "   " << std::flush;
          }
          sim::SimOptions run_options = sim_options;
          run_options.seed = seed;
          run_options.take = sim::TakingFor(p, **preset, run_options.take);
          run_options.keep_records = false;
          if (records.is_open()) {  // (an ofstream never opened still tests true)
            run_options.on_record = [&records, &preset, label, load = workloads[w].name,
                                     seed](const sim::RequestRecord& r) {
              const auto ms = [](Duration d) { return ToMillis(d); };
              const sim::SimFunction& f = (*preset)->functions[r.function];
              const bool ended = r.outcome != sim::Outcome::kPending;
              records << label << ',' << load << ',' << seed << ',' << f.Name() << ',' << ms(r.arrival - TimePoint{})
                      << ',' << ms(r.deadline - TimePoint{}) << ',';
              if (ended) records << ms(r.finished - TimePoint{});
              records << ',' << sim::ToString(r.outcome) << ','
                      << (r.outcome == sim::Outcome::kRejected || r.outcome == sim::Outcome::kFailed
                              ? policy::ToString(r.code)
                              : "")
                      << ',' << ms(r.queue) << ',' << ms(r.load) << ',' << ms(r.compute) << ',' << ms(r.transfer) << ','
                      << r.routes << '\n';
            };
          }
          const auto t0 = std::chrono::steady_clock::now();
          sim::SimResult r;
          if (routing.empty()) {
            std::unique_ptr<policy::Scheduler> scheduler = std::move(sim::MakeScheduler(p, **preset)).value();
            sim::ArrivalStream stream;
            if (workloads[w].spec) {
              stream = [generator = std::make_shared<sim::WorkloadGenerator>(*workloads[w].spec)] {
                return generator->Next();
              };
            } else {
              stream = [arrivals = std::make_shared<sim::AzureArrivals>(*workloads[w].trace)] {
                return arrivals->Next();
              };
            }
            r = sim::Simulate(sim::ClusterFor(p, **preset), (*preset)->functions, stream, *scheduler, run_options);
          } else {
            const auto nodes = sim::SplitIntoNodes(sim::ClusterFor(p, **preset), o.nodes);
            std::vector<std::unique_ptr<policy::Scheduler>> owned;
            std::vector<policy::Scheduler*> schedulers;
            for (const auto& slices : nodes) {
              Result<std::unique_ptr<policy::Scheduler>> made = sim::MakeNodeScheduler(p, **preset, slices, o.nodes);
              if (!made.ok()) return fail(made.status(), kExitBadInput);
              owned.push_back(std::move(made).value());
              schedulers.push_back(owned.back().get());
            }
            r = sim::SimulateCluster(nodes, (*preset)->functions, workloads[w].arrivals, schedulers,
                                     *policy::ParseRouting(routing), run_options);
          }
          const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (!r.errors.empty()) return fail(Status::Internal(label + ": " + r.errors.front()), kExitFailure);
          sim::RunSummary s = sim::Summarize(r, wall, (*preset)->functions);
          for (size_t f = 0; f < s.functions.size(); ++f) s.functions[f].model = (*preset)->models[f];
          s.policy = label;
          s.load = workloads[w].name;
          s.seed = seed;
          s.load_share = shares[w];
          s.rate_rps = static_cast<double>(r.totals.requests) / spans[w];
          runs.push_back(std::move(s));
        }
      }
    }
  }
  if (progress) std::cerr << "\r" << std::string(60, ' ') << "\r";
  if (records.is_open() && !records.flush()) {
    return fail(Status::IoError("--records: writing " + o.records + " failed"), kExitFailure);
  }
  if (Status s = WriteFiles(o.out, runs); !s.ok()) return fail(s, kExitFailure);
  // Tables and plots show one row per (policy, load): the mean over the seeds when there are several.
  const std::vector<sim::RunSummary> shown = o.seeds.size() > 1 ? sim::MeanOverSeeds(runs) : runs;
  const Status plots = sim::WritePlots(o.out, shown);
  if (!plots.ok()) std::cerr << "fluidfaas: plots: " << plots.message() << '\n';

  if (o.json_output) {
    json all = json::array();
    for (const sim::RunSummary& s : runs) all.push_back(ToJson(s));
    std::cout << all.dump(2) << '\n';
    return kExitOk;
  }
  std::cout << "preset " << o.preset << ": " << (*preset)->slices.size() << " slices, " << (*preset)->functions.size()
            << " functions, capacity ~" << Fixed((*preset)->capacity_rps, 0) << " req/s (fluid bound "
            << ((*preset)->fluid_capacity_rps > 0 ? Fixed((*preset)->fluid_capacity_rps, 0) : std::string("none"))
            << "); "
            << (o.trace.empty()
                    ? Fixed(o.duration_s, 0) + " s per run, "
                    : "trace " + o.trace + ", " + Fixed(trace_span_s, 0) +
                          " s of arrivals (first to last minute with one), " + Fixed(trace_rate_rps, 1) + " req/s, " +
                          Fixed(trace_rate_rps / std::max((*preset)->capacity_rps, 1e-9) * 100, 0) + "% of capacity, ")
            << (o.seeds.size() > 1 ? "mean over seeds " : "seed ")
            << Join(o.seeds, ",", [](uint64_t s) { return std::to_string(s); }) << "\n\n";
  std::cout
      << "| policy | load | req/s | requests | SLO hit rate | rejected | failed | mean ms | mean all | p50 ms | "
         "p99 ms | "
         "queue | load | compute | transfer | throughput | util | active | pipelines | migrations | evictions | "
         "wall s | per-function mean | functions >= 90% | Jain | hit rate 95% interval |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const sim::RunSummary& s : shown) {
    std::cout << "| " << s.policy << " | " << s.load << " | " << Fixed(s.rate_rps, 1) << " | " << s.requests << " | "
              << Fixed(100 * s.hit_rate, 1) << "% | " << s.rejected << " | " << s.failed << " | " << Fixed(s.mean_ms, 1)
              << " | " << Fixed(s.mean_all_ms, 1) << " | " << Fixed(s.p50_ms, 1) << " | " << Fixed(s.p99_ms, 1) << " | "
              << Fixed(s.queue_ms, 1) << " | " << Fixed(s.load_ms, 1) << " | " << Fixed(s.compute_ms, 1) << " | "
              << Fixed(s.transfer_ms, 2) << " | " << Fixed(s.throughput_rps, 1) << " | " << Fixed(s.utilization, 3)
              << " | " << Fixed(s.active_fraction, 3) << " | " << s.pipelines << " | " << s.migrations << " | "
              << s.evictions << " | " << Fixed(s.wall_seconds, 2) << " | " << Fixed(100 * s.function_mean_hit_rate, 1)
              << "% | " << Fixed(100 * s.functions_at_90, 1) << "% | " << Fixed(s.jain_index, 3) << " | "
              << (s.seeds > 1 ? "+/- " + Fixed(100 * s.hit_rate_ci95, 1) : std::string("-")) << " |\n";
  }
  // Several seeds: the first policy against each other one, paired by seed (the same arrivals for every policy).
  if (o.seeds.size() > 1 && !runs.empty()) {
    const std::string reference = runs.front().policy;
    const std::vector<sim::PairedDifference> paired = sim::PairedAgainst(runs, reference);
    if (!paired.empty()) {
      std::cout << "\n" << reference << "'s lead in SLO hit rate, paired by seed (95% interval):\n";
      for (const sim::PairedDifference& p : paired) {
        const bool clear = p.seeds > 1 && std::abs(p.mean) > p.ci95;
        // Points with their sign, and a zero as 0.0 (not "+-0.0": a lead of exactly nothing, as migration's where
        // no migration happens).
        const auto points = [](double share) {
          const double v = std::round(-1000 * share) / 10 + 0.0;  // + 0.0: no negative zero
          return (v > 0 ? "+" : "") + Fixed(v, 1);
        };
        std::cout << "  " << p.load << ", over " << p.policy << ": " << points(p.mean) << " +/- "
                  << Fixed(100 * p.ci95, 1) << " points (per seed " << points(p.max) << " to " << points(p.min) << ", "
                  << p.seeds << " seeds)" << (clear ? "" : "; the interval includes zero") << "\n";
      }
    }
  }
  // SLO hit rate per function (per model when there are more functions than models): where a policy wins and
  // loses.
  const bool by_model = shown.front().functions.size() > 12;
  std::vector<std::string> columns;
  for (const sim::FunctionSummary& f : shown.front().functions) {
    const std::string& c = by_model ? f.model : f.name;
    if (std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
  }
  std::cout << "\n| policy | load |";
  for (const std::string& c : columns) std::cout << ' ' << c << (by_model ? " (all)" : "") << " |";
  std::cout << "\n|---|---|";
  for (size_t i = 0; i < columns.size(); ++i) std::cout << "---|";
  std::cout << '\n';
  for (const sim::RunSummary& s : shown) {
    std::cout << "| " << s.policy << " | " << s.load << " |";
    for (const std::string& c : columns) {
      int64_t requests = 0;
      int64_t hits = 0;
      for (const sim::FunctionSummary& f : s.functions) {
        if ((by_model ? f.model : f.name) != c) continue;
        requests += f.requests;
        hits += f.hits;
      }
      std::cout << ' '
                << (requests > 0 ? Fixed(100.0 * static_cast<double>(hits) / static_cast<double>(requests), 1) + "%"
                                 : "-")
                << " |";
    }
    std::cout << '\n';
  }
  std::cout << "\nwrote " << o.out
            << "/summary.csv, summary.json, functions.csv, rejections.csv, slice_utilization.csv,\n  slice_timeline.csv"
            << (plots.ok() ? ", plots/*.svg and *.png" : "") << '\n';
  return kExitOk;
}

}  // namespace

void AddSimCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<SimOptions>();
  CLI::App* sim = app.add_subcommand(
      "sim", "Simulate policies x loads on a preset cluster; print a markdown table, write summary files");
  sim->add_option("--preset", o->preset,
                  "Cluster and workload: paper (8 x A100-80GB, 1g+2g+4g each, 7 busy functions), fragmented "
                  "(2g+2g+2g+1g each), serverless (paper's GPUs, 96 functions active 16% of the time, half "
                  "llama2-13b) or tenants (paper's GPUs, other tenants take a third of the slices over time)")
      ->capture_default_str();
  sim->add_option("--policies", o->policies,
                  "Comma-separated policy specs: fluidfaas, esg, infless, exclusive, with options as in "
                  "exclusive:keep_alive=60s or fluidfaas:keep_alive=5m:idle_evict=30s")
      ->delimiter(',')
      ->capture_default_str();
  sim->add_option("--load", o->loads, "Comma-separated: light, medium, heavy, or shares of capacity")
      ->delimiter(',')
      ->capture_default_str();
  sim->add_option("--trace", o->trace, "Azure Functions 2019 invocations CSV instead of synthetic loads")
      ->check(CLI::ExistingFile);
  sim->add_option("--rate-scale", o->rate_scale, "Multiply the trace's rates")->capture_default_str();
  sim->add_option("--minutes", o->minutes, "A..B: the trace's minute columns to use (default: all)");
  sim->add_flag("--lenient", o->lenient, "Skip a trace's malformed rows (counted) instead of failing");
  sim->add_option("--seed", o->seed_texts,
                  "Random seed, or comma-separated seeds: every run repeats per seed, the files "
                  "keep each, the tables and plots show the means")
      ->delimiter(',')
      ->capture_default_str();
  sim->add_option("--functions", o->functions,
                  "Functions, each its own deployment, dealt to the mix's models (default: the preset's); with "
                  "--trace, the busiest rows kept (default 512)")
      ->check(CLI::Range(1, sim::kMaxFunctions));
  sim->add_option("--mix", o->mix,
                  "Model mix as MODEL[:WEIGHT],... (weights: shares of the functions), e.g. llama2-13b:3,resnet50:1");
  sim->add_option("--popularity", o->popularity, "zipf:S or uniform (default: the preset's)");
  sim->add_option("--arrivals", o->arrivals,
                  "gamma:CV, or onoff:ACTIVE_SHARE[:MEAN_ON_S] (each function active that share of the time)");
  sim->add_option("--duration", o->duration_s, "Seconds of arrivals per run (synthetic loads)")->capture_default_str();
  sim->add_option("--slo-scale", o->slo_scale, "SLO = this x batch-1 latency on a full GPU")->capture_default_str();
  sim->add_option("--gpus", o->gpus, "GPUs in the preset cluster")->capture_default_str();
  sim->add_option("--layout", o->layouts,
                  "MIG layout instead of the preset's (A100-80GB): once for every GPU, or once per GPU, in order "
                  "(fluidfaas mig advise suggests one; loads stay shares of the capacity on the given layout)");
  sim->add_option("--out", o->out, "Output folder")->capture_default_str();
  sim->add_option("--records", o->records,
                  "Write every request's record to this CSV file as the runs go (policy, load, seed, function, "
                  "times in ms, outcome, code); the simulator keeps none in memory otherwise");
  sim->add_option("--faults", o->faults,
                  "Inject faults: load=P (a load fails), stage=P (a stage's batch fails), worker=P (per second of "
                  "a slice in use, its worker dies); e.g. load=0.05,stage=0.001,worker=0.0005");
  sim->add_option("--exec-noise", o->exec_noise,
                  "Multiply every batch's time by a lognormal factor of mean 1 and this coefficient of variation")
      ->capture_default_str();
  sim->add_option("--mps-interference", o->mps_interference,
                  "Slowdown of an MPS batch while the rest of its GPU is busy (INFless; a sensitivity knob)")
      ->capture_default_str();
  sim->add_option("--take-slices", o->take_slices,
                  "EVERY_S:HOLD_S: another tenant takes a random slice every EVERY_S seconds on average and gives "
                  "it back after HOLD_S");
  sim->add_option("--nodes", o->nodes,
                  "Split the preset's GPUs over this many nodes, each with its own scheduler, behind a gateway's "
                  "routing (docs/cluster.md); rows are POLICY@ROUTING")
      ->capture_default_str();
  sim->add_option("--routing", o->routings,
                  "With --nodes: comma-separated routings: warm-first (the design), hash-home (OpenWhisk), "
                  "least-loaded")
      ->delimiter(',')
      ->capture_default_str();
  sim->add_flag("--json", o->json_output, "Print JSON");
  sim->callback([o, sim, &exit_code] {
    o->duration_given = sim->count("--duration") > 0;
    o->load_given = sim->count("--load") > 0;
    o->rate_scale_given = sim->count("--rate-scale") > 0;
    exit_code = RunSim(*o);
  });
}

}  // namespace fluidfaas::cli
