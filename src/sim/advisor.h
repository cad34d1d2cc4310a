// The MIG layout advisor (fluidfaas mig advise): which layout per GPU serves a workload best under a policy, found
// by simulation within a time budget.
//
// The workload is fixed first: the preset's functions and arrivals at `load_share` of its capacity on its own
// layout, or a trace's functions and arrivals, so every candidate serves the same requests. Then:
//
//   candidates  every maximal A100-80GB layout on all GPUs (19 classic, 239 with every profile); the anchors an
//               operator would type (the seed's 1g.10gb+2g.20gb+4g.40gb, all 7g.80gb, all 1g.10gb); a greedy
//               layout that adds, one slice at a time, the slice that most raises the fluid bound, as MIG-serving's
//               greedy phase does (Tan et al., arXiv 2109.11067); and mixes of two of the 8 best uniform ones by bound,
//               each on half the GPUs.
//   prune       each candidate's fluid bound (sim/capacity.h: the most requests per second of the mix its slices
//               could serve, one slice per request) ranks them; a candidate where some model fits no slice alone
//               has no bound (it leans on pipelines) and comes after the bounded ones;
//   short       the anchors, then candidates in that order, simulated on a short horizon (one seed) until half the
//               budget is spent;
//   full        the anchors, then the best `finalists` of the short round whose cost (estimated from their short
//               run) fits in the budget left, simulated on the full horizon over the seeds; the ranking is by their
//               mean SLO hit rate.
//
// Thread safety: pure function of its options (it simulates, nothing else).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "gpu/layout.h"
#include "sim/azure_trace.h"
#include "sim/experiment.h"

namespace fluidfaas::sim {

struct AdviseOptions {
  std::string preset = "serverless";
  PresetOptions preset_options;  // gpus, and the workload knobs; its layouts are the advisor's to set
  std::string policy = "fluidfaas";
  double load_share = 0.5;  // of the preset's capacity on its own layout
  gpu::ProfileSet profiles = gpu::ProfileSet::kClassic;
  double budget_s = 60;  // wall-clock seconds for the whole search (the anchors' runs are always made)
  double short_s = 180;  // seconds of arrivals in the short round
  double full_s = 600;   // in the finalists' runs
  int finalists = 5;     // from the short round, besides the anchors
  std::vector<uint64_t> seeds = {1, 2, 3, 4};  // of the finalists' runs; the short round uses the first
  // An Azure Functions trace instead of the preset's synthetic load (sim/azure_trace.h): its busiest rows are the
  // functions (models by the trace rule, popularity their invocations), its arrivals the load (the first `short_s`
  // and `full_s` seconds of them; each seed spreads them within their minutes). `load_share` is then unused.
  std::string trace;
  TraceOptions trace_options;  // mix, functions, minutes, rate scale; its seed is the run's
};

struct LayoutCandidate {
  std::string label;                 // "4g.40gb+3g.40gb x8", or "A x4 + B x4"
  std::vector<std::string> per_gpu;  // one layout per GPU
  std::string origin;                // "seed's (anchor)", "all 7g (anchor)", "all 1g (anchor)", "greedy", "uniform",
                                     // "mixed"
  bool anchor = false;
  double bound_rps = 0;      // 0: some model fits no slice alone
  int64_t stranded_mib = 0;  // memory no slice holds, over all GPUs
  std::string note;          // why it ranks where it does, for people
  std::optional<double> short_hit;
  double short_run_s = 0;          // wall clock of its short run
  std::optional<double> full_hit;  // mean over the seeds
  std::vector<double> full_hits;   // per seed, in AdviseOptions::seeds' order (same arrivals for every candidate)
};

struct Advice {
  std::string preset;
  std::string policy;
  int gpus = 0;
  double rate_rps = 0;
  int candidates = 0;          // generated, duplicates removed
  int simulated_short = 0;     // run in the short round
  int finalists = 0;           // run on the full horizon
  double seconds = 0;          // wall clock
  double slowest_short_s = 0;  // the slowest run of the short round, and its layout: a run is never cut short, so
  std::string slowest_label;   // the budget is exceeded by up to one run per round
  std::vector<LayoutCandidate> ranking;  // by full hit rate, then short, then bound
};

// InvalidArgument for a policy without MIG slices (infless: whole GPUs), an unknown preset, a bad option.
Result<Advice> AdviseLayouts(const AdviseOptions& options);

// The candidate as a mig-parted config (version v1) named `name`, GPUs with the same layout grouped by index.
std::string MigPartedConfig(const LayoutCandidate& c, const std::string& name);
// The candidate as a node config for the emulated node (fluidfaas serve --config).
std::string NodeConfigYaml(const LayoutCandidate& c, const std::string& node_name);

}  // namespace fluidfaas::sim
