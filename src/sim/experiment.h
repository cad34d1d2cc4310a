// Experiments: a preset cluster and function mix, loads as shares of the cluster's capacity, and the grid of
// (policy, load) runs with their summary metrics.
//
// The paper preset (ARCHITECTURE.md, evaluation protocol): 8 x A100-80GB, each 1g.10gb + 2g.20gb + 4g.40gb;
// functions resnet50, vit-b16, bert-base, bert-large, gpt2-xl, llama2-7b, llama2-13b (small models and ones too
// large for small slices), popularity Zipf(1) in that order; SLO = slo_scale (default 5) x the model's batch-1
// latency on a full GPU (7g). Arrivals: Gamma with CV 2 (bursty). Loads are shares of the cluster's capacity,
// estimated as the sum over slices of the requests per second the popularity-weighted mix would get through on
// that slice alone (functions that do not fit a slice are left out of its mix): light 20%, medium 50%, heavy
// 80%.
//
// The fragmented preset is the same with every GPU split 2g.20gb + 2g.20gb + 2g.20gb + 1g.10gb: no slice holds
// llama2-13b alone, so only a pipeline serves it (INFless, with MIG off, sees the same whole GPUs).
//
// Neither has the design's conditions (many mostly idle functions; big models on fragmented slices): 7 functions
// on 24 slices are all busy all the time. The serverless preset has them: the paper's hardware, 96 functions
// (each its own deployment: no two share an instance), half of them llama2-13b (which needs a 4g.40gb slice, or
// a 2g.20gb + 1g.10gb pipeline) and the rest the six smaller models, popularity uniform (so half the load is on
// llama2-13b), and on/off arrivals: each function active 16% of the time (the design's production trace: "average
// active percentage is 16.1%") in periods of 60 s on average, Gamma CV 2 while active.
//
// The tenants preset: the paper's hardware shared with other tenants, who take a random slice every 30 s on
// average and give it back after 240 s (about 8 of the 24 slices gone at any time, big ones included), so free
// capacity is fragmented and big slices come and go; 24 functions, half of them llama2-13b, uniform popularity,
// on/off arrivals active half the time.
//
// Capacity, for serverless, tenants and for presets reshaped by the knobs below, is the mix's fluid bound
// (sim/capacity.h: the most requests per second any policy could serve of that mix on those slices, one slice per
// request). paper and fragmented keep the estimate above, which their published tables use; it overstates
// mixes where big models carry much of the load (paper: 872 req/s against a bound of 578; serverless: 392
// against 78), and fragmented has no bound without pipelines.
//
// Workload knobs (PresetOptions) reshape any preset: the number of functions, the model mix (a weight per model:
// functions are dealt to models by smooth weighted round robin, so each model's functions spread over the
// popularity ranks; the rule does not depend on the seed), popularity (Zipf S or uniform), and the arrival
// process (Gamma CV, or on/off with an active share and a mean active period). With more functions than models,
// function k of model M is named "M.k".
//
// Thread safety: plain values and functions.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "gpu/mps.h"
#include "model/profile.h"
#include "policy/factory.h"
#include "sim/simulator.h"
#include "sim/workload.h"

namespace fluidfaas::sim {

struct Preset {
  std::string name;
  std::vector<policy::ClusterSlice> slices;      // the MIG slices
  std::vector<policy::ClusterSlice> whole_gpus;  // the same GPUs with MIG off (INFless: MPS shares of these)
  std::unique_ptr<gpu::MpsShares> mps_shares;
  std::vector<std::shared_ptr<const model::FunctionSpec>> specs;
  std::vector<std::shared_ptr<const policy::StageCostTable>> costs;  // MIG kinds, batch 1 (FluidFaaS, exclusive)
  std::vector<std::shared_ptr<const policy::BatchCosts>> batched;    // MIG kinds by batch (ESG)
  std::vector<std::shared_ptr<const policy::BatchCosts>> mps;        // MPS shares by batch (INFless)
  std::vector<SimFunction> functions;
  std::vector<policy::ServedFunction> served;  // the same functions, as schedulers hold them (id = index)
  std::vector<std::string> models;             // each function's zoo model
  std::vector<double> popularity;              // shares, summing to 1
  double capacity_rps = 0;                     // what loads are shares of, see above
  double fluid_capacity_rps = 0;               // the mix's fluid bound (sim/capacity.h)
  double cv = 2.0;                             // of inter-arrival gaps (while active, on/off)
  double active_share = 1;                     // < 1: on/off arrivals per function (sim/workload.h)
  double mean_on_s = 60;
  SliceTaking take;               // other tenants taking slices (the tenants preset); --take-slices replaces it
  double host_memory_gib = 1024;  // for warm copies, every policy alike: 1 TiB, a DGX A100's (8 GPUs)
  model::LatencyModel latency;
};

// The preset's arrivals at `rate_rps` for `duration`.
WorkloadSpec PresetWorkload(const Preset& preset, double rate_rps, Duration duration, uint64_t seed);

struct PresetOptions {
  double slo_scale = 5.0;
  int gpus = 8;
  // Workload knobs; unset: the preset's own.
  int functions = 0;                                // 1..kMaxFunctions
  std::vector<std::pair<std::string, double>> mix;  // zoo model and weight (> 0)
  std::optional<double> zipf_s;                     // 0: uniform
  std::optional<double> cv;
  std::optional<double> active_share;  // (0, 1]
  std::optional<double> mean_on_s;
  std::vector<std::string> models;  // each function's zoo model, given (a trace's rows); replaces functions and mix
  std::vector<double> weights;      // with `models`: each function's share of the requests (a trace's invocations,
                                    // > 0); replaces the popularity, so the capacity is the trace's mix's
  // The A100-80GB MIG layouts (gpu/layout.h's written form): none, the preset's own; one, every GPU's; `gpus` of
  // them, one per GPU. mig advise tries layouts this way.
  std::vector<std::string> layouts;
};

// The preset's model mix: its seven models, weight 1 each (serverless and tenants: llama2-13b 6).
std::vector<std::pair<std::string, double>> PresetMix(const std::string& name);
inline constexpr int kMaxFunctions = 100000;

// The model of each of `n` functions dealt from `mix` (see above). REQUIRES: mix not empty, weights > 0.
std::vector<std::string> DealFunctions(const std::vector<std::pair<std::string, double>>& mix, int n);

// "llama2-13b:3,resnet50:1" (a model without a weight has weight 1). InvalidArgument naming the part at fault.
Result<std::vector<std::pair<std::string, double>>> ParseMix(const std::string& text);
// "zipf:S" (S in [0, 10]) or "uniform" (zipf:0).
Result<double> ParsePopularity(const std::string& text);
// "gamma:CV" (CV in (0, 20]) or "onoff:ACTIVE_SHARE[:MEAN_ON_S]" (share in (0, 1], mean in (0, 86400]).
struct ArrivalShape {
  std::optional<double> cv;
  std::optional<double> active_share;
  std::optional<double> mean_on_s;
};
Result<ArrivalShape> ParseArrivals(const std::string& text);

Result<std::unique_ptr<Preset>> MakePreset(const std::string& name, const PresetOptions& options = {});

// A zoo model served on a node, with its SLO (0: slo_scale x its batch-1 latency on a full GPU, as presets).
struct NodeFunction {
  std::string model;
  double slo_ms = 0;
  std::string name;  // empty: the model's
};

// A node's own slices (A100-80GB) and functions as a preset named "node", popularity uniform: what the simulator
// needs to predict a load run against the daemon (`fluidfaas load`).
Result<std::unique_ptr<Preset>> MakeNodePreset(std::vector<policy::ClusterSlice> slices,
                                               const std::vector<NodeFunction>& functions, double slo_scale = 5.0);

// The slices of A100-80GB GPUs with one layout each (gpu/layout.h's written form), named "GPU:profile@start" as
// presets name them.
Result<std::vector<policy::ClusterSlice>> LayoutSlices(const std::vector<std::string>& per_gpu);

// The fluid bound (sim/capacity.h) of `preset`'s mix on `slices` instead of its own: the most requests per second any
// policy could serve of it, one slice per request (0 when some model fits no slice alone).
double FluidBound(const Preset& preset, const std::vector<policy::ClusterSlice>& slices);

// "light" 0.2, "medium" 0.5, "heavy" 0.8 of capacity, or a number ("0.35").
Result<double> LoadShare(const std::string& load);

struct FunctionSummary {
  std::string name;
  int64_t requests = 0;
  int64_t hits = 0;
  int64_t rejected = 0;
  int64_t failed = 0;
  double mean_ms = 0;  // completed requests
  std::string model;   // its zoo model
};

struct RunSummary {
  std::string policy;
  std::string load;
  uint64_t seed = 0;
  int seeds = 1;  // runs averaged into this one (MeanOf)
  double load_share = 0;
  double rate_rps = 0;
  int64_t requests = 0;      // = hits + late + rejected + failed
  int64_t hits = 0;          // completed within the SLO
  int64_t late = 0;          // completed after it
  int64_t rejected = 0;      // turned away before running
  int64_t failed = 0;        // accepted, then lost to a fault
  double hit_rate = 0;       // pooled: hits over requests, so the busiest functions weigh most
  double hit_rate_ci95 = 0;  // MeanOverSeeds: half-width of the 95% interval of the mean over seeds (Student's t); 0
                             // for one run
  // Per function (FairFigures, over the functions that had requests): the unweighted mean of their hit rates, the
  // share of them with at least 90% hits, and Jain's fairness index over their hit rates.
  double function_mean_hit_rate = 0;
  double functions_at_90 = 0;
  double jain_index = 0;
  double mean_ms = 0, p50_ms = 0, p99_ms = 0;  // completed requests (rejected and failed ones have none)
  double mean_all_ms = 0;  // every request: completed ones at their latency, rejected and failed at their deadline
                           // (a policy that turns more away does not look faster)
  double queue_ms = 0, load_ms = 0, compute_ms = 0, transfer_ms = 0;  // mean breakdown of completed requests
  double throughput_rps = 0;                                          // requests finished within their SLO, per second
  double utilization = 0;                                             // mean slice busy fraction
  double active_fraction = 0;                                         // mean share of time slices hold an instance
  int64_t pipelines = 0, migrations = 0, evictions = 0;
  int64_t load_failures = 0, stage_failures = 0, workers_lost = 0, slices_taken = 0;  // faults injected
  double wall_seconds = 0;
  int64_t simulated_requests = 0;
  std::vector<double> slice_utilization;           // per slice, for the CDF
  std::vector<std::vector<float>> slice_timeline;  // per slice, busy fraction of each timeline bucket
  double timeline_bucket_s = 0;
  std::vector<FunctionSummary> functions;  // per function, in the preset's order
  struct End {                             // rejections and failures of one function with one code
    std::string function;
    std::string outcome;  // "rejected" or "failed"
    std::string code;     // policy::ToString(Reason)
    int64_t count = 0;
    std::string example;  // the first one's detail
  };
  std::vector<End> ends;
};

// The per-function figures of RunSummary from its functions' counts. Jain's index, (sum x)^2 / (n sum x^2), is 1
// when every function gets the same hit rate and 1/n when one gets them all; 1 too when all get none (equal).
struct FairFigures {
  double mean_hit_rate = 0;
  double at_90 = 0;
  double jain = 0;
  int functions = 0;  // with requests
};
FairFigures Fairness(const std::vector<FunctionSummary>& functions);

// `functions` names the functions (Arrival::function indexes them).
RunSummary Summarize(const SimResult& r, double wall_seconds, const std::vector<SimFunction>& functions);

// Runs of the same (policy, load) with different seeds averaged into one per (policy, load), in the order of
// first appearance: rates, latencies, fractions and counts are means (wall time and simulated requests are
// totals); per-function and per-reason counts are summed (so their ratios are pooled); slice utilizations are
// averaged slice by slice; the timeline is left out. The hit rate's 95% interval over the seeds is kept
// (hit_rate_ci95).
std::vector<RunSummary> MeanOverSeeds(const std::vector<RunSummary>& runs);

// A policy against a reference, paired by seed: every policy of a run sees the same arrivals, so the difference of
// their hit rates seed by seed is far less noisy than the two means' intervals suggest.
struct PairedDifference {
  std::string policy;
  std::string load;
  int seeds = 0;            // seeds both ran
  double mean = 0;          // of (policy - reference) hit rate
  double ci95 = 0;          // half-width (Student's t); 0 with fewer than 2 seeds
  double min = 0, max = 0;  // over the seeds
};
// The mean, 95% interval and range of `differences` (one per seed; policy and load left empty). REQUIRES: not empty.
PairedDifference Difference(const std::vector<double>& differences);
// For each (load, policy other than `reference`) in `runs` (one per seed, as the grid makes them), in order of first
// appearance. Empty when the reference has no runs.
std::vector<PairedDifference> PairedAgainst(const std::vector<RunSummary>& runs, const std::string& reference);

using policy::PolicyNames;

// A policy (policy::PolicyNames) over the preset's cluster and functions; InvalidArgument naming the known
// ones otherwise.
Result<std::unique_ptr<policy::Scheduler>> MakeScheduler(const std::string& policy, const Preset& preset);

// Other tenants take the same share of the cluster from every policy: from a policy on whole GPUs (INFless) a GPU
// is taken as much less often as a GPU holds slices (taking a whole GPU as often as a slice would take a third of
// the GPUs away on paper's 3-slice GPUs, where MIG policies lose a third of the slices).
SliceTaking TakingFor(const std::string& policy, const Preset& preset, SliceTaking take);

// The cluster a policy runs on: the whole GPUs for INFless (MIG off), the MIG slices for the others.
const std::vector<policy::ClusterSlice>& ClusterFor(const std::string& policy, const Preset& preset);

// `slices` split over `nodes` nodes by GPU: node n gets GPUs [n G / N, (n + 1) G / N) of the G GPUs, with their
// slices in order. REQUIRES: 1 <= nodes <= G.
std::vector<std::vector<policy::ClusterSlice>> SplitIntoNodes(const std::vector<policy::ClusterSlice>& slices,
                                                              int nodes);

// A policy over one node's `slices` (the preset's functions and host memory, the node's share of the host memory).
Result<std::unique_ptr<policy::Scheduler>> MakeNodeScheduler(const std::string& policy, const Preset& preset,
                                                             const std::vector<policy::ClusterSlice>& slices,
                                                             int nodes);

}  // namespace fluidfaas::sim
