// The generation simulator: language-model functions that prefill a prompt and decode tokens, served on a node's
// MIG slices, judged by time to first token (TTFT) and time per output token (TPOT).
//
// Each instance runs iteration-level batching over a paged KV cache (policy/continuous_batcher.h) on the slices
// the placement rule gives it (policy/generative_placer.h); a step is priced by the latency model
// (model/generation.h): a prefill of the admitted prompts, or a decode step of the running sequences at their mean
// context, through every stage in turn, with the hops between stages. A pipeline of S stages runs S lanes (batches
// with their own batcher and 1/S of the cache), so each stage steps one lane while the next steps another, as
// pipeline-parallel engines do (vLLM's virtual engines); a lane's step enters each stage once that stage has
// finished the steps given to it before. Instances start cold (model/load_cost.h: a process, the largest stage's
// weights read and copied) and are released after `keep_alive_s` without a sequence.
//
// Policies, one rule each for every function:
//   - fluidfaas: the smallest single free slice that holds the instance and meets the TPOT objective, else a
//     pipeline over free slices (the design's first point, applied to generation); when slices free, a pipeline
//     that one of them now holds alone migrates back to it (`migrate_back`): a single-slice instance starts there,
//     cold, and the pipeline drains, its live sequences finishing where they are (a sequence lasts seconds and its
//     cache is spread over the stages; moving it would cost a copy of every stage's share);
//   - exclusive: single slices only, the same smallest-adequate rule: one engine per slice with continuous
//     batching and a keep-alive, what an operator running vLLM per MIG slice deploys.
// Both scale out alike: a function gets another instance when a sequence routed to its least loaded one leaves
// that one with more sequences than the design batch its placement was checked for, or short of cache for those
// waiting, and the free slices allow one. Time sharing and eviction to host memory are not applied to generative
// functions yet.
//
// Every sequence ends exactly once: completed, or refused with a reason (fits_no_slice: no placement even on the
// empty node; too_long: longer than any instance's cache; unserved: still waiting when the run's drain ends). A
// sequence is met when its TTFT and TPOT are both within their objectives.
//
// Thread safety: plain values and functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/scheduler.h"

namespace fluidfaas::sim {

struct TokenRange {
  int lo = 1;
  int hi = 1;  // inclusive. REQUIRES: 1 <= lo <= hi
};

struct GenFunction {
  std::string name;
  std::string model;  // a zoo model that generates
  double rate_per_s = 0;
  TokenRange prompt{128, 1024};
  TokenRange output{32, 256};
  double ttft_slo_ms = 0;  // > 0
  double tpot_slo_ms = 0;  // > 0
};

struct GenArrival {
  double t_s = 0;
  int function = 0;
  int prompt = 0;
  int output = 0;
};

struct GenScenario {
  std::string name;
  std::vector<policy::ClusterSlice> slices;
  std::vector<GenFunction> functions;
};

// Poisson arrivals of every function over [0, duration_s), lengths uniform in their ranges.
std::vector<GenArrival> GenArrivals(const GenScenario& s, double duration_s, uint64_t seed);

// Arrivals from a trace in the format of Azure's public LLM inference traces: a CSV with columns TIMESTAMP
// ("2023-11-16 18:15:46.6805900", or seconds as a number), ContextTokens and GeneratedTokens. Times are taken from
// the first row's; rows at or past `duration_s` are left out. Rows are dealt to the scenario's functions in
// proportion to their rates (smooth weighted round robin: no randomness), and each row's lengths are cut to what
// its function's model takes (prompt and output within its positions, each at least 1); `clipped` counts the rows
// that were. InvalidArgument naming the file and line for a row that does not parse, an unordered timestamp, or a
// negative count.
struct TraceArrivals {
  std::vector<GenArrival> arrivals;
  int64_t clipped = 0;
  double span_s = 0;  // from the first row to the last one kept
};
Result<TraceArrivals> ReadLlmTrace(const std::string& path, const GenScenario& s, double duration_s);
// The same from the file's text; `source` names it in errors.
Result<TraceArrivals> ParseLlmTrace(std::string_view text, const std::string& source, const GenScenario& s,
                                    double duration_s);

// A preset: "gen-fragmented" (one A100-80GB as 2g.20gb x3 + 1g.10gb: llama2-13b fits no slice alone) or
// "gen-mixed" (two A100-80GB, 2g.20gb x3 + 1g.10gb and 3g.40gb + 2g.20gb + 1g.10gb x2). Functions llama2-13b,
// llama2-7b and tinyllama-1.1b; objectives: TTFT and TPOT `slo_scale` x the model's batch-1 figures on a whole GPU
// (7g.80gb), at a 576-token prompt and the mean context (5, as the single-pass presets' SLO). `load` scales every
// function's rate (1 = medium).
Result<GenScenario> GenPreset(const std::string& name, double load = 1.0, double slo_scale = 5.0);

enum class GenPolicy { kFluidFaaS, kExclusive };
std::string ToString(GenPolicy p);
Result<GenPolicy> ParseGenPolicy(const std::string& text);

struct GenOptions {
  GenPolicy policy = GenPolicy::kFluidFaaS;
  double keep_alive_s = 60;
  int max_batch = 32;        // sequences per step
  int design_batch = 8;      // sequences an instance's cache must hold (placement)
  int max_stages = 4;        // pipelines (fluidfaas); exclusive uses 1
  double drain_s = 600;      // after the last arrival, how long sequences may still finish
  bool migrate_back = true;  // fluidfaas: a pipeline moves to one slice when one frees (exclusive has none)
  int prefill_chunk = 0;     // chunked prefill's token budget per step (policy/continuous_batcher.h); 0: off
};

struct GenFunctionResult {
  std::string name;
  int64_t requests = 0, completed = 0, met = 0;
  std::map<std::string, int64_t> refused;  // reason -> count
  double ttft_p50_ms = 0, ttft_p99_ms = 0, tpot_p50_ms = 0, tpot_p99_ms = 0;
  int64_t tokens = 0;      // generated by completed sequences
  int64_t met_tokens = 0;  // ... by those that met both objectives
  int64_t preemptions = 0;
  int instances = 0;  // started over the run
  int pipelined = 0;  // of which pipelines
  int max_stages = 0;
  int migrations = 0;                   // pipelines moved back to one slice
  std::vector<std::string> placements;  // each instance's slices, "0:2g.20gb@0+0:2g.20gb@2", and its start time
  double attainment() const { return requests ? static_cast<double>(met) / static_cast<double>(requests) : 0; }
};

struct GenResult {
  std::string policy;
  double duration_s = 0;
  std::vector<GenFunctionResult> functions;
  int64_t requests = 0, met = 0, tokens = 0, met_tokens = 0;
  double attainment() const { return requests ? static_cast<double>(met) / static_cast<double>(requests) : 0; }
  // The unweighted mean of the functions' attainments: every function counts once, however busy (the pooled
  // figure is mostly the busiest function's; sim::RunSummary reports both for the same reason).
  double function_mean_attainment() const {
    double sum = 0;
    for (const GenFunctionResult& f : functions) sum += f.attainment();
    return functions.empty() ? 0 : sum / static_cast<double>(functions.size());
  }
  double tokens_per_s() const { return duration_s > 0 ? static_cast<double>(tokens) / duration_s : 0; }
  // Goodput as the field counts it: requests per second that met both objectives (DistServe, OSDI'24).
  double goodput_rps() const { return duration_s > 0 ? static_cast<double>(met) / duration_s : 0; }
  // The tokens of those requests, per second.
  double met_tokens_per_s() const { return duration_s > 0 ? static_cast<double>(met_tokens) / duration_s : 0; }
};

// Runs the arrivals on the scenario's slices. InvalidArgument for a function whose model does not generate, or
// arrivals naming an unknown function; Internal if a sequence did not end exactly once (a defect).
Result<GenResult> SimulateGeneration(const GenScenario& scenario, const std::vector<GenArrival>& arrivals,
                                     double duration_s, const GenOptions& options);

}  // namespace fluidfaas::sim
