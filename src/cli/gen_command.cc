// fluidfaas sim-gen: the generation simulator (sim/generation.h) on a preset, each policy on the same arrivals.
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/limits.h"
#include "common/strings.h"
#include "sim/experiment.h"
#include "sim/generation.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;

struct TokenRangeFlag {
  int lo, hi;
};

struct GenFlags {
  std::string preset = "gen-fragmented";
  std::string load = "medium";
  std::string policies = "fluidfaas,exclusive,exclusive:fit-longest-prompt";
  double duration_s = 600;
  std::vector<uint64_t> seeds = {1};
  double keep_alive_s = 60;
  int max_batch = 32;
  double slo_scale = 5;
  int prefill_chunk = 0;
  std::string trace;        // an LLM inference trace (Azure's format) instead of Poisson arrivals
  std::string llm_lengths;  // "prompt=LO-HI,output=LO-HI"
  bool json_output = false;
};

// light 0.4, medium 1, heavy 1.6 of the preset's rates, or a number.
Result<double> GenLoad(const std::string& load) {
  if (load == "light") return 0.4;
  if (load == "medium") return 1.0;
  if (load == "heavy") return 1.6;
  const std::optional<double> x = ParseFiniteDouble(load);
  if (!x) return Status::InvalidArgument("--load: '" + load + "' is not light, medium, heavy or a number");
  FF_RETURN_IF_ERROR(CheckRange("--load", *x, 0.01, 100.0));
  return *x;
}

// "LO-HI" or "N" as a token range of at least 1.
Result<TokenRangeFlag> ParseRange(const std::string& text, const std::string& what) {
  const size_t dash = text.find('-');
  const std::optional<double> lo = ParseFiniteDouble(text.substr(0, dash));
  const std::optional<double> hi = dash == std::string::npos ? lo : ParseFiniteDouble(text.substr(dash + 1));
  if (!lo || !hi || *lo < 1 || *hi < *lo || *hi > 1e6 || *lo != std::floor(*lo) || *hi != std::floor(*hi)) {
    return Status::InvalidArgument("--llm-lengths: " + what + " '" + text + "' is not LO-HI with 1 <= LO <= HI");
  }
  return TokenRangeFlag{static_cast<int>(*lo), static_cast<int>(*hi)};
}

// "prompt=LO-HI,output=LO-HI" (either part may be left out) applied to every function of the scenario.
Status ApplyLengths(const std::string& spec, sim::GenScenario& s) {
  for (const std::string& part : Split(spec, ',')) {
    const size_t eq = part.find('=');
    const std::string key = part.substr(0, eq);
    if (eq == std::string::npos || (key != "prompt" && key != "output")) {
      return Status::InvalidArgument("--llm-lengths: '" + part + "' is not prompt=LO-HI or output=LO-HI");
    }
    FF_ASSIGN_OR_RETURN(const TokenRangeFlag r, ParseRange(part.substr(eq + 1), key));
    for (sim::GenFunction& f : s.functions) (key == "prompt" ? f.prompt : f.output) = sim::TokenRange{r.lo, r.hi};
  }
  return Status::Ok();
}

json FunctionJson(const sim::GenFunctionResult& f) {
  return {{"function", f.name},
          {"requests", f.requests},
          {"completed", f.completed},
          {"met", f.met},
          {"attainment", f.attainment()},
          {"refused", f.refused},
          {"ttft_p50_ms", f.ttft_p50_ms},
          {"ttft_p99_ms", f.ttft_p99_ms},
          {"tpot_p50_ms", f.tpot_p50_ms},
          {"tpot_p99_ms", f.tpot_p99_ms},
          {"tokens", f.tokens},
          {"preemptions", f.preemptions},
          {"instances", f.instances},
          {"pipelined", f.pipelined},
          {"max_stages", f.max_stages},
          {"migrations", f.migrations},
          {"displaced", f.displaced},
          {"warm_starts", f.warm_starts},
          {"prompt_routed", f.prompt_routed},
          {"placements", f.placements}};
}

std::string Refusals(const std::map<std::string, int64_t>& refused) {
  std::string out;
  for (const auto& [reason, n] : refused) out += (out.empty() ? "" : " ") + reason + "=" + std::to_string(n);
  return out.empty() ? "-" : out;
}

int Run(const GenFlags& f) {
  auto fail = [](const Status& s) {
    std::cerr << "fluidfaas sim-gen: " << s.message() << '\n';
    return kExitBadInput;
  };
  Result<double> load = GenLoad(f.load);
  if (!load.ok()) return fail(load.status());
  if (Status s = CheckRange("--duration", f.duration_s, 1.0, 86400.0); !s.ok()) return fail(s);
  if (Status s = CheckRange("--keep-alive", f.keep_alive_s, 0.0, 86400.0); !s.ok()) return fail(s);
  if (Status s = CheckRange("--max-batch", int64_t{f.max_batch}, 1, 256); !s.ok()) return fail(s);
  Result<sim::GenScenario> scenario = sim::GenPreset(f.preset, *load, f.slo_scale);
  if (!scenario.ok()) return fail(scenario.status());
  if (!f.llm_lengths.empty()) {
    if (Status st = ApplyLengths(f.llm_lengths, *scenario); !st.ok()) return fail(st);
  }
  std::optional<sim::TraceArrivals> trace;
  if (!f.trace.empty()) {
    Result<sim::TraceArrivals> t = sim::ReadLlmTrace(f.trace, *scenario, f.duration_s);
    if (!t.ok()) return fail(t.status());
    trace = std::move(t).value();
    std::cerr << "trace " << f.trace << ": " << trace->arrivals.size() << " requests over " << Fixed(trace->span_s, 0)
              << " s, dealt to the functions by rate; " << trace->clipped << " cut to the models' lengths\n";
  }
  // Each policy spec: fluidfaas or exclusive; fluidfaas:MECHANISM=off for an ablation; POLICY:fit-longest-prompt
  // places new instances where the longest prompt meets its TTFT objective first.
  std::vector<std::pair<std::string, sim::GenOptions>> policies;
  for (const std::string& spec : Split(f.policies, ',')) {
    const size_t colon = spec.find(':');
    Result<sim::GenPolicy> parsed = sim::ParseGenPolicy(spec.substr(0, colon));
    if (!parsed.ok()) return fail(parsed.status());
    sim::GenOptions o{.node = {.policy = *parsed,
                               .keep_alive_s = f.keep_alive_s,
                               .max_batch = f.max_batch,
                               .prefill_chunk = f.prefill_chunk}};
    if (colon != std::string::npos) {
      // The ablations: each mechanism of fluidfaas's off, one per spec.
      const std::string option = spec.substr(colon + 1);
      const bool fluidfaas = *parsed == sim::GenPolicy::kFluidFaaS;
      bool* off = !fluidfaas                       ? nullptr
                  : option == "migration=off"      ? &o.node.migrate_back
                  : option == "displace=off"       ? &o.node.displace
                  : option == "prompt-routing=off" ? &o.node.prompt_routing
                                                   : nullptr;
      if (option == "fit-longest-prompt") {
        o.node.fit_longest_prompt = true;
      } else if (off != nullptr) {
        *off = false;
      } else {
        return fail(Status::InvalidArgument("--policies: '" + spec +
                                            "': the options are fluidfaas:migration=off, fluidfaas:displace=off, "
                                            "fluidfaas:prompt-routing=off and POLICY:fit-longest-prompt"));
      }
    }
    policies.emplace_back(spec, o);
  }
  json runs = json::array();
  Table table({"policy", ">seed", "function", ">requests", ">met %", ">TTFT p50", ">p99 ms", ">TPOT p50", ">p99 ms",
               ">tokens/s", ">preempt", ">inst", ">pipes", ">migr", ">displ", ">prompt", ">warm", "refused"});
  Table totals({"policy", ">seed", ">requests", ">SLO met %", ">per-function mean %", ">tokens/s", ">goodput req/s",
                ">met tokens/s"});
  for (uint64_t seed : f.seeds) {
    const std::vector<sim::GenArrival> arrivals =
        trace ? trace->arrivals : sim::GenArrivals(*scenario, f.duration_s, seed);
    for (const auto& [label, options] : policies) {
      Result<sim::GenResult> r = sim::SimulateGeneration(*scenario, arrivals, f.duration_s, options);
      if (!r.ok()) {
        std::cerr << "fluidfaas sim-gen: " << r.status().message() << '\n';
        return kExitFailure;
      }
      r->policy = label;
      json fns = json::array();
      for (const sim::GenFunctionResult& fr : r->functions) {
        fns.push_back(FunctionJson(fr));
        table.AddRow({r->policy, std::to_string(seed), fr.name, std::to_string(fr.requests),
                      Fixed(100 * fr.attainment(), 1), Fixed(fr.ttft_p50_ms, 0), Fixed(fr.ttft_p99_ms, 0),
                      Fixed(fr.tpot_p50_ms, 1), Fixed(fr.tpot_p99_ms, 1),
                      Fixed(static_cast<double>(fr.tokens) / f.duration_s, 1), std::to_string(fr.preemptions),
                      std::to_string(fr.instances), std::to_string(fr.pipelined), std::to_string(fr.migrations),
                      std::to_string(fr.displaced), std::to_string(fr.prompt_routed), std::to_string(fr.warm_starts),
                      Refusals(fr.refused)});
      }
      totals.AddRow({r->policy, std::to_string(seed), std::to_string(r->requests), Fixed(100 * r->attainment(), 1),
                     Fixed(100 * r->function_mean_attainment(), 1), Fixed(r->tokens_per_s(), 1),
                     Fixed(r->goodput_rps(), 2), Fixed(r->met_tokens_per_s(), 1)});
      runs.push_back({{"policy", r->policy},
                      {"seed", seed},
                      {"requests", r->requests},
                      {"attainment", r->attainment()},
                      {"function_mean_attainment", r->function_mean_attainment()},
                      {"tokens_per_s", r->tokens_per_s()},
                      {"goodput_rps", r->goodput_rps()},
                      {"met_tokens_per_s", r->met_tokens_per_s()},
                      {"functions", fns}});
    }
  }
  if (f.json_output) {
    json functions = json::array();
    for (const sim::GenFunction& fn : scenario->functions) {
      functions.push_back({{"name", fn.name},
                           {"rate_per_s", fn.rate_per_s},
                           {"ttft_slo_ms", fn.ttft_slo_ms},
                           {"tpot_slo_ms", fn.tpot_slo_ms}});
    }
    std::cout << json{{"preset", f.preset},
                      {"load", *load},
                      {"duration_s", f.duration_s},
                      {"functions", functions},
                      {"runs", runs}}
                     .dump(2)
              << '\n';
    return kExitOk;
  }
  std::cout << f.preset << ", load " << f.load << ", " << f.duration_s << " s of arrivals; objectives:";
  for (const sim::GenFunction& fn : scenario->functions) {
    std::cout << "\n  " << fn.name << ": " << Fixed(fn.rate_per_s, 2) << " req/s, TTFT " << Fixed(fn.ttft_slo_ms, 0)
              << " ms, TPOT " << Fixed(fn.tpot_slo_ms, 1) << " ms, prompt " << fn.prompt.lo << "-" << fn.prompt.hi
              << ", output " << fn.output.lo << "-" << fn.output.hi << " tokens";
  }
  std::cout << "\n\n";
  table.Print(std::cout);
  std::cout << '\n';
  totals.Print(std::cout);
  std::cout << "\nmet: TTFT and TPOT both within their objectives, of all requests (refused ones count as missed); "
               "per-function mean: each function's share met, averaged with every function counting once\n";
  return kExitOk;
}

}  // namespace

void AddGenCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<GenFlags>();
  CLI::App* cmd = app.add_subcommand(
      "sim-gen", "Simulate language-model functions generating tokens on MIG slices: TTFT, TPOT, SLO attainment");
  cmd->add_option("--preset", f->preset, "gen-fragmented or gen-mixed")->capture_default_str();
  cmd->add_option("--load", f->load, "light (0.4), medium (1), heavy (1.6) of the preset's rates, or a number")
      ->capture_default_str();
  cmd->add_option("--policies", f->policies,
                  "Comma-separated: fluidfaas, exclusive; fluidfaas's ablations fluidfaas:migration=off, "
                  "fluidfaas:displace=off, fluidfaas:prompt-routing=off; POLICY:fit-longest-prompt (new instances "
                  "first on a slice that prefills the longest prompt within the TTFT objective)")
      ->capture_default_str();
  cmd->add_option("--duration", f->duration_s, "Seconds of arrivals")->capture_default_str();
  cmd->add_option("--seed", f->seeds, "Seeds (comma-separated); each policy runs on the same arrivals")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--keep-alive", f->keep_alive_s, "Seconds an idle instance is kept")->capture_default_str();
  cmd->add_option("--max-batch", f->max_batch, "Sequences per step")->capture_default_str();
  cmd->add_option("--trace", f->trace,
                  "An LLM inference trace (CSV: TIMESTAMP,ContextTokens,GeneratedTokens, as Azure's public ones) "
                  "instead of Poisson arrivals; rows dealt to the functions by rate")
      ->check(CLI::ExistingFile);
  cmd->add_option("--llm-lengths", f->llm_lengths,
                  "Prompt and output lengths drawn uniformly: prompt=LO-HI,output=LO-HI (default 128-1024, 32-256)");
  cmd->add_option("--prefill-chunk", f->prefill_chunk,
                  "Chunked prefill: tokens per step, decodes included (Sarathi-Serve); 0: whole prefills that stall "
                  "decoding")
      ->check(CLI::Range(0, 65536))
      ->capture_default_str();
  cmd->add_option("--slo-scale", f->slo_scale,
                  "TTFT and TPOT objectives as multiples of each model's batch-1 figures on a 7g.80gb")
      ->capture_default_str();
  cmd->add_flag("--json", f->json_output, "Print JSON");
  cmd->callback([f, &exit_code] { exit_code = Run(*f); });
}

}  // namespace fluidfaas::cli
