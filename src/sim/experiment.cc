#include "sim/experiment.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "common/limits.h"
#include "common/strings.h"
#include "gpu/layout.h"
#include "model/zoo.h"
#include "policy/factory.h"
#include "policy/serve_function.h"
#include "sim/capacity.h"

namespace fluidfaas::sim {

namespace {

// A preset over `slices` (A100-80GB) serving `functions` (zoo models) with the given popularity shares.
Result<std::unique_ptr<Preset>> BuildPreset(std::string name, std::vector<policy::ClusterSlice> slices,
                                            const std::vector<NodeFunction>& functions,
                                            const std::vector<double>& weights, double slo_scale) {
  if (!(slo_scale > 0)) return Status::InvalidArgument("preset: slo scale must be positive");
  if (slices.empty()) return Status::InvalidArgument("preset: no slices");
  if (functions.empty()) return Status::InvalidArgument("preset: no functions");
  auto p = std::make_unique<Preset>();
  p->name = std::move(name);
  p->slices = std::move(slices);
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  p->mps_shares = std::make_unique<gpu::MpsShares>(a100);
  const gpu::MpsShares& shares = *p->mps_shares;
  int gpus = 0;
  for (const policy::ClusterSlice& s : p->slices) gpus = std::max(gpus, s.gpu + 1);
  for (int g = 0; g < gpus; ++g) {
    p->whole_gpus.push_back(policy::ClusterSlice{std::to_string(g) + ":mps", g,
                                                 policy::SliceKind{&a100, &shares.profile(shares.size() - 1)}, true});
  }
  double weight_sum = 0;
  // One set of cost tables per model (they do not depend on the function's name); one spec per function.
  std::map<std::string, policy::ServedFunction> by_model;
  for (size_t i = 0; i < functions.size(); ++i) {
    auto it = by_model.find(functions[i].model);
    if (it == by_model.end()) {
      FF_ASSIGN_OR_RETURN(model::FunctionSpec spec, model::BuildZooModel(functions[i].model));
      FF_ASSIGN_OR_RETURN(policy::ServedFunction served,
                          policy::ServeZooModel(0, std::make_shared<const model::FunctionSpec>(std::move(spec)),
                                                p->latency, shares, slo_scale));
      it = by_model.emplace(functions[i].model, std::move(served)).first;
    }
    policy::ServedFunction served = it->second;
    served.id = static_cast<policy::FunctionId>(i);
    if (!functions[i].name.empty() && functions[i].name != served.spec->name) served.name = functions[i].name;
    if (functions[i].slo_ms > 0) served.slo_ms = functions[i].slo_ms;
    p->specs.push_back(served.spec);
    p->costs.push_back(served.costs);
    p->batched.push_back(served.batched);
    p->mps.push_back(served.mps);
    p->functions.push_back(SimFunction{served.spec.get(), served.costs.get(), served.slo_ms, served.batched.get(),
                                       served.mps.get(), served.name});
    p->served.push_back(std::move(served));
    p->models.push_back(functions[i].model);
    p->popularity.push_back(weights.at(i));
    weight_sum += p->popularity.back();
  }
  for (double& w : p->popularity) w /= weight_sum;
  // What one slice of each kind serves of the mix, worked out once per kind (a node has a few kinds, and may have
  // thousands of functions).
  std::map<int, double> per_kind;
  for (const policy::ClusterSlice& s : p->slices) {
    const int k = p->costs.front()->KindIndex(s.kind);
    auto [it, fresh] = per_kind.try_emplace(k, 0.0);
    if (fresh) {
      double share = 0;
      double ms = 0;
      for (size_t i = 0; i < p->functions.size(); ++i) {
        const policy::StageCostTable& c = *p->costs[i];
        const size_t last = p->specs[i]->blocks.size() - 1;
        if (c.MemoryMib(k, 0, last) > s.kind.profile->memory_mib) continue;
        share += p->popularity[i];
        ms += p->popularity[i] * c.ComputeMs(k, 0, last);
      }
      it->second = share > 0 ? 1000.0 / (ms / share) : 0;
    }
    p->capacity_rps += it->second;
  }
  p->fluid_capacity_rps = FluidBound(*p, p->slices);
  return p;
}

}  // namespace

Result<std::vector<policy::ClusterSlice>> LayoutSlices(const std::vector<std::string>& per_gpu) {
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  std::vector<policy::ClusterSlice> slices;
  for (size_t g = 0; g < per_gpu.size(); ++g) {
    FF_ASSIGN_OR_RETURN(gpu::Layout layout, gpu::ParseLayout(a100, per_gpu[g]));
    for (const gpu::PlacedSlice& s : layout.slices()) {
      slices.push_back(policy::ClusterSlice{std::to_string(g) + ":" + s.ToString(), static_cast<int>(g),
                                            policy::SliceKind{&a100, s.profile}, true});
    }
  }
  return slices;
}

double FluidBound(const Preset& preset, const std::vector<policy::ClusterSlice>& slices) {
  if (slices.empty()) return 0;
  // By model and slice kind.
  std::vector<std::string> models;
  std::vector<size_t> model_of;
  for (const std::string& m : preset.models) {
    auto it = std::find(models.begin(), models.end(), m);
    model_of.push_back(static_cast<size_t>(it - models.begin()));
    if (it == models.end()) models.push_back(m);
  }
  std::vector<int> kinds;  // cost-table kind indices present in the cluster
  std::vector<double> count;
  for (const policy::ClusterSlice& s : slices) {
    const int k = preset.costs.front()->KindIndex(s.kind);
    auto it = std::find(kinds.begin(), kinds.end(), k);
    if (it == kinds.end()) {
      kinds.push_back(k);
      count.push_back(1);
    } else {
      count[static_cast<size_t>(it - kinds.begin())] += 1;
    }
  }
  std::vector<double> share(models.size(), 0);
  std::vector<std::vector<double>> seconds(models.size(), std::vector<double>(kinds.size(), 0));
  for (size_t i = 0; i < preset.functions.size(); ++i) {
    share[model_of[i]] += preset.popularity[i];
    const policy::StageCostTable& c = *preset.costs[i];
    const size_t last = preset.specs[i]->blocks.size() - 1;
    for (size_t j = 0; j < kinds.size(); ++j) {
      const int64_t mib = slices.front().kind.gpu->profiles[static_cast<size_t>(kinds[j])].memory_mib;
      seconds[model_of[i]][j] = c.MemoryMib(kinds[j], 0, last) > mib ? std::numeric_limits<double>::infinity()
                                                                     : c.ComputeMs(kinds[j], 0, last) / 1000;
    }
  }
  return MixCapacity(share, seconds, count);
}

// Deals `n` functions to the mix's models by smooth weighted round robin: at each step every model gains its
// weight, the one with the most credit (the first listed on a tie) gets the function and pays the total. Counts
// are within one of n x weight / total and each model's functions are spread evenly over the order.
std::vector<std::string> DealFunctions(const std::vector<std::pair<std::string, double>>& mix, int n) {
  double total = 0;
  for (const auto& [model, w] : mix) total += w;
  std::vector<double> credit(mix.size(), 0);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    size_t best = 0;
    for (size_t m = 0; m < mix.size(); ++m) {
      credit[m] += mix[m].second;
      if (credit[m] > credit[best]) best = m;
    }
    credit[best] -= total;
    out.push_back(mix[best].first);
  }
  return out;
}

std::vector<std::pair<std::string, double>> PresetMix(const std::string& name) {
  std::vector<std::pair<std::string, double>> mix;
  for (const char* m : {"resnet50", "vit-b16", "bert-base", "bert-large", "gpt2-xl", "llama2-7b"}) {
    mix.emplace_back(m, 1.0);
  }
  // serverless and tenants: as many llama2-13b functions as all the others.
  mix.emplace_back("llama2-13b", name == "serverless" || name == "tenants" ? 6.0 : 1.0);
  return mix;
}

Result<std::unique_ptr<Preset>> MakePreset(const std::string& name, const PresetOptions& options) {
  std::string layout_text;
  if (name == "paper" || name == "serverless" || name == "tenants") layout_text = "1g.10gb+2g.20gb+4g.40gb";
  if (name == "fragmented") layout_text = "2g.20gb+2g.20gb+2g.20gb+1g.10gb";
  if (layout_text.empty()) {
    return Status::InvalidArgument("unknown preset '" + name + "' (presets: paper, fragmented, serverless, tenants)");
  }
  if (options.gpus < 1 || options.gpus > 64) return Status::InvalidArgument("preset: gpus must be in 1..64");
  const size_t given = options.layouts.size();
  if (given > 1 && given != static_cast<size_t>(options.gpus)) {
    return Status::InvalidArgument("preset: " + std::to_string(given) + " layouts for " + std::to_string(options.gpus) +
                                   " GPUs (one for all, or one per GPU)");
  }
  std::vector<std::string> per_gpu = options.layouts;  // one per GPU, unless one or none is given
  if (given <= 1) per_gpu.assign(static_cast<size_t>(options.gpus), given == 0 ? layout_text : options.layouts[0]);
  FF_ASSIGN_OR_RETURN(std::vector<policy::ClusterSlice> slices, LayoutSlices(per_gpu));
  // The preset's own workload, then the knobs.
  std::vector<std::pair<std::string, double>> mix = PresetMix(name);
  int count = 7;
  double zipf = 1.0;
  double cv = 2.0;
  double active = 1.0;
  double mean_on = 60;
  if (name == "serverless" || name == "tenants") {
    count = name == "serverless" ? 96 : 24;
    zipf = 0;
    active = name == "serverless" ? 0.16 : 0.5;
  }
  const bool reshaped = options.functions > 0 || !options.mix.empty() || !options.models.empty();
  if (!options.mix.empty()) mix = options.mix;
  if (options.functions > 0) count = options.functions;
  if (count < 1 || count > kMaxFunctions) {
    return Status::InvalidArgument("--functions: must be in 1.." + std::to_string(kMaxFunctions));
  }
  zipf = options.zipf_s.value_or(zipf);
  cv = options.cv.value_or(cv);
  active = options.active_share.value_or(active);
  mean_on = options.mean_on_s.value_or(mean_on);
  // Without knobs, paper and fragmented keep their order: the seven models, most popular first.
  const std::vector<std::string> models = !options.models.empty() ? options.models
                                          : reshaped || name == "serverless" || name == "tenants"
                                              ? DealFunctions(mix, count)
                                              : [&] {
                                                  std::vector<std::string> m;
                                                  m.reserve(mix.size());
                                                  for (const auto& entry : mix) m.push_back(entry.first);
                                                  return m;
                                                }();
  if (models.empty() || models.size() > static_cast<size_t>(kMaxFunctions)) {
    return Status::InvalidArgument("preset: 1.." + std::to_string(kMaxFunctions) + " functions, not " +
                                   std::to_string(models.size()));
  }
  std::map<std::string, int> seen;
  std::map<std::string, int> per_model;
  for (const std::string& m : models) ++per_model[m];
  std::vector<NodeFunction> functions;
  std::vector<double> weights;
  if (!options.weights.empty() && (options.weights.size() != models.size() || options.models.empty())) {
    return Status::InvalidArgument("preset: weights are given with the functions' models, one each");
  }
  for (const std::string& m : models) {
    const int k = seen[m]++;
    functions.push_back(NodeFunction{m, 0, per_model[m] > 1 ? m + "." + std::to_string(k) : m});
    if (options.weights.empty()) {
      weights.push_back(1.0 / std::pow(static_cast<double>(weights.size()) + 1.0, zipf));
    } else {
      const double w = options.weights[weights.size()];
      if (!(w > 0) || !std::isfinite(w)) return Status::InvalidArgument("preset: a function's weight must be > 0");
      weights.push_back(w);
    }
  }
  FF_ASSIGN_OR_RETURN(auto preset, BuildPreset(name, std::move(slices), functions, weights, options.slo_scale));
  preset->cv = cv;
  preset->active_share = active;
  preset->mean_on_s = mean_on;
  // Loads are shares of capacity. paper and fragmented keep the per-slice estimate their published tables use;
  // serverless and reshaped mixes use the fluid bound, which the per-slice estimate overstates wherever big models
  // carry much of the load (serverless: 392 against 78 req/s). Without a bound (a model that no single slice
  // holds), the estimate stays.
  if ((name == "serverless" || name == "tenants" || reshaped) && preset->fluid_capacity_rps > 0) {
    preset->capacity_rps = preset->fluid_capacity_rps;
  }
  if (name == "tenants") preset->take = SliceTaking{Seconds(30), Seconds(240)};
  return preset;
}

WorkloadSpec PresetWorkload(const Preset& preset, double rate_rps, Duration duration, uint64_t seed) {
  WorkloadSpec w;
  w.rate_rps = rate_rps;
  w.cv = preset.cv;
  w.functions = static_cast<uint32_t>(preset.functions.size());
  w.weights = preset.popularity;
  w.duration = duration;
  w.seed = seed;
  w.active_share = preset.active_share;
  w.mean_on_s = preset.mean_on_s;
  return w;
}

Result<std::vector<std::pair<std::string, double>>> ParseMix(const std::string& text) {
  std::vector<std::pair<std::string, double>> mix;
  const auto zoo = model::ZooModels();
  for (const std::string& item : Split(text, ',')) {
    const size_t colon = item.find(':');
    const std::string model = item.substr(0, colon);
    if (std::none_of(zoo.begin(), zoo.end(), [&](const model::ZooEntry& e) { return e.name == model; })) {
      return Status::InvalidArgument("--mix: '" + Printable(model, 40) + "' is not a zoo model (fluidfaas zoo list)");
    }
    double w = 1;
    if (colon != std::string::npos) {
      const std::optional<double> v = ParseFiniteDouble(item.substr(colon + 1));
      if (!v || !(*v > 0 && *v <= 1e6)) {
        return Status::InvalidArgument("--mix: the weight of " + model + " must be a number in (0, 1e6]");
      }
      w = *v;
    }
    if (std::any_of(mix.begin(), mix.end(), [&](const auto& e) { return e.first == model; })) {
      return Status::InvalidArgument("--mix: " + model + " is listed twice");
    }
    mix.emplace_back(model, w);
  }
  if (mix.empty()) return Status::InvalidArgument("--mix: expected MODEL[:WEIGHT],...");
  return mix;
}

Result<double> ParsePopularity(const std::string& text) {
  if (text == "uniform") return 0.0;
  if (text.rfind("zipf:", 0) == 0) {
    const std::optional<double> s = ParseFiniteDouble(text.substr(5));
    if (s && *s >= 0 && *s <= 10) return *s;
  }
  return Status::InvalidArgument("--popularity: '" + Printable(text, 40) + "' is not zipf:S (S in [0, 10]) or uniform");
}

Result<ArrivalShape> ParseArrivals(const std::string& text) {
  const std::vector<std::string> parts = Split(text, ':');
  ArrivalShape a;
  if (parts.size() == 2 && parts[0] == "gamma") {
    const std::optional<double> cv = ParseFiniteDouble(parts[1]);
    if (cv && *cv > 0 && *cv <= 20) {
      a.cv = *cv;
      a.active_share = 1.0;
      return a;
    }
  }
  if ((parts.size() == 2 || parts.size() == 3) && parts[0] == "onoff") {
    const std::optional<double> share = ParseFiniteDouble(parts[1]);
    const std::optional<double> mean = parts.size() == 3 ? ParseFiniteDouble(parts[2]) : std::optional<double>(60);
    if (share && *share > 0 && *share <= 1 && mean && *mean > 0 && *mean <= 86400) {
      a.active_share = *share;
      a.mean_on_s = *mean;
      return a;
    }
  }
  return Status::InvalidArgument("--arrivals: '" + Printable(text, 40) +
                                 "' is not gamma:CV (CV in (0, 20]) or onoff:ACTIVE_SHARE[:MEAN_ON_S] (share in "
                                 "(0, 1], mean in (0, 86400] s)");
}

Result<std::unique_ptr<Preset>> MakeNodePreset(std::vector<policy::ClusterSlice> slices,
                                               const std::vector<NodeFunction>& functions, double slo_scale) {
  for (const policy::ClusterSlice& s : slices) {
    if (s.kind.gpu == nullptr || s.kind.gpu->model != gpu::GpuModel::kA100_80GB) {
      return Status::Unimplemented("the cost tables are built for A100-80GB slices; slice " + s.id + " is not one");
    }
  }
  return BuildPreset("node", std::move(slices), functions, std::vector<double>(functions.size(), 1.0), slo_scale);
}

Result<double> LoadShare(const std::string& load) {
  if (load == "light") return 0.2;
  if (load == "medium") return 0.5;
  if (load == "heavy") return 0.8;
  double v = 0;
  const auto [end, ec] = std::from_chars(load.data(), load.data() + load.size(), v);
  if (ec == std::errc() && end == load.data() + load.size() && v > 0 && v <= 4) return v;
  return Status::InvalidArgument("load '" + load + "' is not light, medium, heavy or a share of capacity in (0, 4]");
}

namespace {
// Half-width of the two-sided 95% interval of the mean of `x` (Student's t, n - 1 degrees of freedom; the normal's
// 1.96 beyond 30); 0 for fewer than two values.
double Interval95(const std::vector<double>& x) {
  if (x.size() < 2) return 0;
  constexpr double kT95[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                             2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  const double n = static_cast<double>(x.size());
  double sum = 0;
  for (double v : x) sum += v;
  const double mean = sum / n;
  double squares = 0;
  for (double v : x) squares += (v - mean) * (v - mean);
  const size_t df = x.size() - 1;
  const double t = df <= 30 ? kT95[df - 1] : 1.96;
  return t * std::sqrt(squares / static_cast<double>(df)) / std::sqrt(n);
}
}  // namespace

std::vector<PairedDifference> PairedAgainst(const std::vector<RunSummary>& runs, const std::string& reference) {
  std::map<std::pair<std::string, uint64_t>, double> ref;  // (load, seed) -> hit rate
  for (const RunSummary& r : runs) {
    if (r.policy == reference) ref[{r.load, r.seed}] = r.hit_rate;
  }
  std::vector<PairedDifference> out;
  std::vector<std::vector<double>> diffs;
  for (const RunSummary& r : runs) {
    if (r.policy == reference) continue;
    const auto base = ref.find({r.load, r.seed});
    if (base == ref.end()) continue;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const PairedDifference& p) { return p.policy == r.policy && p.load == r.load; });
    if (it == out.end()) {
      out.push_back(PairedDifference{.policy = r.policy, .load = r.load});
      diffs.emplace_back();
      it = out.end() - 1;
    }
    diffs[static_cast<size_t>(it - out.begin())].push_back(r.hit_rate - base->second);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    PairedDifference stats = Difference(diffs[i]);
    stats.policy = std::move(out[i].policy);
    stats.load = std::move(out[i].load);
    out[i] = std::move(stats);
  }
  return out;
}

PairedDifference Difference(const std::vector<double>& d) {
  PairedDifference p;
  p.seeds = static_cast<int>(d.size());
  double sum = 0;
  for (double v : d) sum += v;
  p.mean = sum / static_cast<double>(d.size());
  p.ci95 = Interval95(d);
  p.min = *std::min_element(d.begin(), d.end());
  p.max = *std::max_element(d.begin(), d.end());
  return p;
}

FairFigures Fairness(const std::vector<FunctionSummary>& functions) {
  FairFigures f;
  double sum = 0, squares = 0;
  for (const FunctionSummary& fs : functions) {
    if (fs.requests <= 0) continue;
    const double x = static_cast<double>(fs.hits) / static_cast<double>(fs.requests);
    ++f.functions;
    sum += x;
    squares += x * x;
    f.at_90 += x >= 0.9 ? 1 : 0;
  }
  if (f.functions == 0) return f;
  const double n = f.functions;
  f.mean_hit_rate = sum / n;
  f.at_90 /= n;
  f.jain = squares > 0 ? sum * sum / (n * squares) : 1;
  return f;
}

namespace {
void SetFairness(RunSummary& s) {
  const FairFigures f = Fairness(s.functions);
  s.function_mean_hit_rate = f.mean_hit_rate;
  s.functions_at_90 = f.at_90;
  s.jain_index = f.jain;
}
}  // namespace

RunSummary Summarize(const SimResult& r, double wall_seconds, const std::vector<SimFunction>& functions) {
  RunSummary s;
  for (const SimFunction& f : functions) s.functions.push_back(FunctionSummary{std::string(f.Name())});
  const RequestTotals& t = r.totals;
  for (size_t i = 0; i < s.functions.size() && i < t.functions.size(); ++i) {
    const FunctionTotals& ft = t.functions[i];
    FunctionSummary& fs = s.functions[i];
    fs.requests = ft.requests;
    fs.hits = ft.hits;
    fs.rejected = ft.rejected;
    fs.failed = ft.failed;
    const int64_t completed = ft.requests - ft.rejected - ft.failed;
    fs.mean_ms = completed > 0 ? ft.completed_ms / static_cast<double>(completed) : 0;
  }
  s.requests = t.requests;
  s.hits = t.hits;
  s.late = t.late;
  s.rejected = t.rejected;
  s.failed = t.failed;
  s.hit_rate = s.requests > 0 ? static_cast<double>(s.hits) / static_cast<double>(s.requests) : 0;
  SetFairness(s);
  s.mean_all_ms = s.requests > 0 ? t.all_ms / static_cast<double>(s.requests) : 0;
  if (const int64_t served = t.completed.count(); served > 0) {
    const auto n = static_cast<double>(served);
    s.mean_ms = t.completed_ms / n;
    s.p50_ms = ToMillis(t.completed.Quantile(0.5));
    s.p99_ms = ToMillis(t.completed.Quantile(0.99));
    s.queue_ms = t.queue_ms / n;
    s.load_ms = t.load_ms / n;
    s.compute_ms = t.compute_ms / n;
    s.transfer_ms = t.transfer_ms / n;
  }
  // Throughput and utilization are over the arrivals' span (the drain after the last arrival would dilute
  // them); the active fraction is over the whole horizon, since instances stay resident through the drain.
  const double horizon = ToSeconds(r.horizon);
  const double span = r.arrival_span > Duration{0} ? ToSeconds(r.arrival_span) : horizon;
  s.throughput_rps = span > 0 ? static_cast<double>(s.hits) / span : 0;
  double busy = 0, active = 0;
  for (size_t i = 0; i < r.slice_busy.size(); ++i) {
    Duration in_span = r.slice_busy[i];  // without a timeline: the whole busy time
    if (i < r.slice_timeline.size() && r.timeline_bucket > Duration{0}) {
      in_span = Duration{0};
      const std::vector<Duration>& line = r.slice_timeline[i];
      for (size_t b = 0; b < line.size() && r.timeline_bucket * static_cast<int64_t>(b) < r.arrival_span; ++b) {
        in_span += line[b];
      }
    }
    const double u = span > 0 ? std::min(1.0, ToSeconds(in_span) / span) : 0;
    s.slice_utilization.push_back(u);
    busy += u;
    active += horizon > 0 ? ToSeconds(r.slice_active[i]) / horizon : 0;
  }
  s.timeline_bucket_s = ToSeconds(r.timeline_bucket);
  for (const std::vector<Duration>& line : r.slice_timeline) {
    std::vector<float>& out = s.slice_timeline.emplace_back();
    for (Duration d : line) out.push_back(static_cast<float>(ToSeconds(d) / s.timeline_bucket_s));
  }
  const double n = static_cast<double>(std::max<size_t>(1, r.slice_busy.size()));
  s.utilization = busy / n;
  s.active_fraction = active / n;
  s.pipelines = r.pipelines;
  s.migrations = r.migrations;
  s.evictions = r.evictions;
  s.load_failures = r.load_failures;
  s.stage_failures = r.stage_failures;
  s.workers_lost = r.workers_lost;
  s.slices_taken = r.slices_taken;
  for (const auto& [key, end] : r.ends) {
    const auto& [function, outcome, code] = key;
    const std::string name = function < functions.size() ? std::string(functions[function].Name()) : "?";
    s.ends.push_back(RunSummary::End{name, outcome == Outcome::kFailed ? "failed" : "rejected",
                                     std::string(policy::ToString(code)), end.count, end.example});
  }
  s.wall_seconds = wall_seconds;
  s.simulated_requests = s.requests;
  return s;
}

std::vector<RunSummary> MeanOverSeeds(const std::vector<RunSummary>& runs) {
  std::vector<RunSummary> means;
  std::vector<std::vector<const RunSummary*>> groups;
  for (const RunSummary& r : runs) {
    size_t g = 0;
    while (g < means.size() && (means[g].policy != r.policy || means[g].load != r.load)) ++g;
    if (g == means.size()) {
      means.push_back(RunSummary{r.policy, r.load});
      groups.emplace_back();
    }
    groups[g].push_back(&r);
  }
  for (size_t g = 0; g < means.size(); ++g) {
    RunSummary& m = means[g];
    const double n = static_cast<double>(groups[g].size());
    const auto mean = [&](auto field) {
      double sum = 0;
      for (const RunSummary* r : groups[g]) sum += static_cast<double>(r->*field);
      return sum / n;
    };
    const auto mean_count = [&](auto field) { return static_cast<int64_t>(std::llround(mean(field))); };
    m.seeds = static_cast<int>(groups[g].size());
    m.seed = groups[g].front()->seed;
    m.load_share = mean(&RunSummary::load_share);
    m.rate_rps = mean(&RunSummary::rate_rps);
    m.requests = mean_count(&RunSummary::requests);
    m.hits = mean_count(&RunSummary::hits);
    m.late = mean_count(&RunSummary::late);
    m.rejected = mean_count(&RunSummary::rejected);
    m.failed = mean_count(&RunSummary::failed);
    m.hit_rate = mean(&RunSummary::hit_rate);
    std::vector<double> rates;
    for (const RunSummary* r : groups[g]) rates.push_back(r->hit_rate);
    m.hit_rate_ci95 = Interval95(rates);
    m.function_mean_hit_rate = mean(&RunSummary::function_mean_hit_rate);
    m.functions_at_90 = mean(&RunSummary::functions_at_90);
    m.jain_index = mean(&RunSummary::jain_index);
    m.mean_ms = mean(&RunSummary::mean_ms);
    m.mean_all_ms = mean(&RunSummary::mean_all_ms);
    m.p50_ms = mean(&RunSummary::p50_ms);
    m.p99_ms = mean(&RunSummary::p99_ms);
    m.queue_ms = mean(&RunSummary::queue_ms);
    m.load_ms = mean(&RunSummary::load_ms);
    m.compute_ms = mean(&RunSummary::compute_ms);
    m.transfer_ms = mean(&RunSummary::transfer_ms);
    m.throughput_rps = mean(&RunSummary::throughput_rps);
    m.utilization = mean(&RunSummary::utilization);
    m.active_fraction = mean(&RunSummary::active_fraction);
    m.pipelines = mean_count(&RunSummary::pipelines);
    m.migrations = mean_count(&RunSummary::migrations);
    m.evictions = mean_count(&RunSummary::evictions);
    m.load_failures = mean_count(&RunSummary::load_failures);
    m.stage_failures = mean_count(&RunSummary::stage_failures);
    m.workers_lost = mean_count(&RunSummary::workers_lost);
    m.slices_taken = mean_count(&RunSummary::slices_taken);
    for (const RunSummary* r : groups[g]) {
      m.wall_seconds += r->wall_seconds;
      m.simulated_requests += r->simulated_requests;
      if (m.slice_utilization.size() < r->slice_utilization.size())
        m.slice_utilization.resize(r->slice_utilization.size());
      for (size_t i = 0; i < r->slice_utilization.size(); ++i) m.slice_utilization[i] += r->slice_utilization[i] / n;
      if (m.functions.empty()) {
        for (const FunctionSummary& f : r->functions) {
          m.functions.push_back(FunctionSummary{.name = f.name, .model = f.model});
        }
      }
      for (size_t i = 0; i < r->functions.size() && i < m.functions.size(); ++i) {
        m.functions[i].requests += r->functions[i].requests;
        m.functions[i].hits += r->functions[i].hits;
        m.functions[i].rejected += r->functions[i].rejected;
        m.functions[i].failed += r->functions[i].failed;
        m.functions[i].mean_ms += r->functions[i].mean_ms / n;
      }
      for (const RunSummary::End& e : r->ends) {
        auto it = std::find_if(m.ends.begin(), m.ends.end(), [&](const RunSummary::End& x) {
          return x.function == e.function && x.outcome == e.outcome && x.code == e.code;
        });
        if (it == m.ends.end()) {
          m.ends.push_back(e);
        } else {
          it->count += e.count;
        }
      }
    }
  }
  return means;
}

Result<std::unique_ptr<policy::Scheduler>> MakeScheduler(const std::string& policy, const Preset& preset) {
  return policy::MakeScheduler(policy, ClusterFor(policy, preset), preset.served,
                               policy::NodeLimits{static_cast<int64_t>(preset.host_memory_gib * 1024)});
}

SliceTaking TakingFor(const std::string& policy, const Preset& preset, SliceTaking take) {
  if (!policy::UsesWholeGpus(policy) || preset.whole_gpus.empty() || take.every <= Duration{0}) return take;
  const double per_gpu = static_cast<double>(preset.slices.size()) / static_cast<double>(preset.whole_gpus.size());
  take.every = Duration(static_cast<int64_t>(static_cast<double>(take.every.count()) * per_gpu));
  return take;
}

const std::vector<policy::ClusterSlice>& ClusterFor(const std::string& policy, const Preset& preset) {
  return policy::UsesWholeGpus(policy) ? preset.whole_gpus : preset.slices;
}

std::vector<std::vector<policy::ClusterSlice>> SplitIntoNodes(const std::vector<policy::ClusterSlice>& slices,
                                                              int nodes) {
  int gpus = 0;
  for (const policy::ClusterSlice& s : slices) gpus = std::max(gpus, s.gpu + 1);
  std::vector<std::vector<policy::ClusterSlice>> out(static_cast<size_t>(std::max(1, nodes)));
  for (const policy::ClusterSlice& s : slices) {
    const size_t node = static_cast<size_t>(static_cast<int64_t>(s.gpu) * nodes / std::max(1, gpus));
    out[std::min(node, out.size() - 1)].push_back(s);
  }
  return out;
}

Result<std::unique_ptr<policy::Scheduler>> MakeNodeScheduler(const std::string& policy, const Preset& preset,
                                                             const std::vector<policy::ClusterSlice>& slices,
                                                             int nodes) {
  return policy::MakeScheduler(
      policy, slices, preset.served,
      policy::NodeLimits{static_cast<int64_t>(preset.host_memory_gib * 1024 / std::max(1, nodes))});
}

}  // namespace fluidfaas::sim
