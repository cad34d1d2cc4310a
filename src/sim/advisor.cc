#include "sim/advisor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "gpu/gpu_type.h"
#include "sim/workload.h"

namespace fluidfaas::sim {
namespace {

using Clock = std::chrono::steady_clock;

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

// "4g.40gb+2g.20gb+1g.10gb": the profiles, largest first, without their starts.
std::string Names(const gpu::Layout& layout) {
  std::vector<const gpu::MigProfile*> profiles;
  for (const gpu::PlacedSlice& s : layout.slices()) profiles.push_back(s.profile);
  std::stable_sort(profiles.begin(), profiles.end(), [](const gpu::MigProfile* a, const gpu::MigProfile* b) {
    return a->sm_slices > b->sm_slices || (a->sm_slices == b->sm_slices && a->memory_mib > b->memory_mib);
  });
  std::string out;
  for (const gpu::MigProfile* p : profiles) {
    if (!out.empty()) out += '+';
    out += p->name;
  }
  return out;
}

// The GPUs grouped by layout, each layout with its GPUs' indices, in first appearance.
std::vector<std::pair<std::string, std::vector<size_t>>> Groups(const std::vector<std::string>& per_gpu) {
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  for (size_t g = 0; g < per_gpu.size(); ++g) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == per_gpu[g]; });
    if (it == groups.end()) {
      groups.push_back({per_gpu[g], {g}});
    } else {
      it->second.push_back(g);
    }
  }
  return groups;
}

// "A x8", or "A x4 + B x4".
std::string Label(const std::vector<std::string>& per_gpu) {
  std::string out;
  for (const auto& [layout, gpus] : Groups(per_gpu)) {
    if (!out.empty()) out += " + ";
    out += layout + " x" + std::to_string(gpus.size());
  }
  return out;
}

// The preset's models that fit no slice of `slices` alone.
std::vector<std::string> Homeless(const Preset& preset, const std::vector<policy::ClusterSlice>& slices) {
  std::vector<std::string> out;
  for (size_t i = 0; i < preset.functions.size(); ++i) {
    if (std::find(out.begin(), out.end(), preset.models[i]) != out.end()) continue;
    const policy::StageCostTable& c = *preset.costs[i];
    const size_t last = preset.specs[i]->blocks.size() - 1;
    const bool fits = std::any_of(slices.begin(), slices.end(), [&](const policy::ClusterSlice& s) {
      return c.MemoryMib(c.KindIndex(s.kind), 0, last) <= s.kind.profile->memory_mib;
    });
    if (!fits) out.push_back(preset.models[i]);
  }
  return out;
}

// The greedy layout: from empty GPUs, the slice that most improves (fewest models that fit no slice alone, then the
// fluid bound) is added, one at a time, until no profile fits any GPU. Ties go to the smaller profile, then the lower
// GPU.
std::vector<std::string> GreedyLayout(const Preset& preset, int gpus, gpu::ProfileSet set) {
  std::vector<std::vector<const gpu::MigProfile*>> chosen(static_cast<size_t>(gpus));
  const auto text = [](const std::vector<const gpu::MigProfile*>& profiles) {
    std::string out;
    for (const gpu::MigProfile* p : profiles) out += (out.empty() ? "" : "+") + std::string(p->name);
    return out;
  };
  for (;;) {
    std::pair<int, double> best_score{0, -1};
    std::optional<std::pair<size_t, const gpu::MigProfile*>> best;
    for (size_t g = 0; g < chosen.size(); ++g) {
      // GPUs with the same slices so far are alike: try the first of them only.
      if (std::find(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(g), chosen[g]) !=
          chosen.begin() + static_cast<std::ptrdiff_t>(g)) {
        continue;
      }
      for (const gpu::MigProfile& p : A100().profiles) {
        if (set == gpu::ProfileSet::kClassic && !p.classic()) continue;
        auto trial = chosen;
        trial[g].push_back(&p);
        if (!gpu::ParseLayout(A100(), text(trial[g])).ok()) continue;
        std::vector<std::string> placed;  // the GPUs with slices so far
        for (const auto& profiles : trial) {
          if (!profiles.empty()) placed.push_back(text(profiles));
        }
        const auto slices = LayoutSlices(placed);
        if (!slices.ok()) continue;
        const std::pair<int, double> score{-static_cast<int>(Homeless(preset, *slices).size()),
                                           FluidBound(preset, *slices)};
        const bool smaller = best && p.sm_slices < best->second->sm_slices;
        if (!best || score > best_score || (score == best_score && smaller)) {
          best_score = score;
          best = std::pair{g, &p};
        }
      }
    }
    if (!best) break;
    chosen[best->first].push_back(best->second);
  }
  std::vector<std::string> out;
  for (const auto& profiles : chosen) {
    if (profiles.empty()) return {};  // a GPU with nothing: no layout (cannot happen with 1g available)
    out.push_back(Names(*gpu::ParseLayout(A100(), text(profiles))));
  }
  return out;
}

// Runs the policy on the candidate's slices with the advice's fixed arrivals; its SLO hit rate.
class Runner {
 public:
  Runner(const AdviseOptions& o, const Preset& base, double rate) : o_(o), base_(base), rate_(rate) {}

  Result<double> HitRate(const std::vector<std::string>& per_gpu, double seconds, uint64_t seed) {
    PresetOptions po = o_.preset_options;
    po.layouts = per_gpu;
    FF_ASSIGN_OR_RETURN(std::unique_ptr<Preset> preset, MakePreset(o_.preset, po));
    FF_ASSIGN_OR_RETURN(std::unique_ptr<policy::Scheduler> scheduler, MakeScheduler(o_.policy, *preset));
    SimOptions so;
    so.seed = seed;
    so.take = TakingFor(o_.policy, *preset, preset->take);
    so.keep_records = false;
    FF_ASSIGN_OR_RETURN(const std::vector<Arrival>* arrivals, Arrivals(seconds, seed));
    const SimResult r = Simulate(ClusterFor(o_.policy, *preset), preset->functions, *arrivals, *scheduler, so);
    if (!r.errors.empty()) return Status::Internal("simulating " + Label(per_gpu) + ": " + r.errors.front());
    return Summarize(r, 0, preset->functions).hit_rate;
  }

 private:
  // The same arrivals for every candidate: the functions and their popularity do not depend on the layout.
  Result<const std::vector<Arrival>*> Arrivals(double seconds, uint64_t seed) {
    auto& a = arrivals_[{seconds, seed}];
    if (!a.empty()) return &a;
    if (o_.trace.empty()) {
      a = GenerateWorkload(PresetWorkload(base_, rate_, SecondsF(seconds), seed));
    } else {
      TraceOptions t = o_.trace_options;
      t.seed = seed;
      FF_ASSIGN_OR_RETURN(Trace trace, ReadAzureTrace(o_.trace, t));
      a = std::move(trace.arrivals);
      std::erase_if(a, [&](const Arrival& x) { return x.at >= TimePoint{} + SecondsF(seconds); });
    }
    return &a;
  }
  const AdviseOptions& o_;
  const Preset& base_;
  const double rate_;
  std::map<std::pair<double, uint64_t>, std::vector<Arrival>> arrivals_;
};

}  // namespace

Result<Advice> AdviseLayouts(const AdviseOptions& o) {
  const auto start = Clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  if (o.policy == "infless" || o.policy.rfind("infless:", 0) == 0) {
    return Status::InvalidArgument("mig advise: infless serves whole GPUs with MIG off: there is no layout to choose");
  }
  if (!(o.load_share > 0 && o.load_share <= 4)) return Status::InvalidArgument("mig advise: load must be in (0, 4]");
  if (!(o.budget_s > 0 && o.short_s > 0 && o.full_s > 0) || o.seeds.empty() || o.finalists < 1) {
    return Status::InvalidArgument("mig advise: budget, horizons, seeds and finalists must be positive");
  }
  PresetOptions base_options = o.preset_options;
  base_options.layouts.clear();
  double trace_rate = 0;
  if (!o.trace.empty()) {
    // The trace's busiest rows are the functions, their invocations the popularity, its arrivals the load.
    TraceOptions header_options = o.trace_options;
    header_options.materialize = false;  // its functions and counts only
    FF_ASSIGN_OR_RETURN(const Trace trace, ReadAzureTrace(o.trace, header_options));
    base_options.models.clear();
    base_options.weights.clear();
    for (const TraceFunction& f : trace.functions) {
      base_options.models.push_back(f.model);
      base_options.weights.push_back(static_cast<double>(f.invocations));
    }
    trace_rate = static_cast<double>(trace.invocations) / ToSeconds(trace.span());
  }
  FF_ASSIGN_OR_RETURN(std::unique_ptr<Preset> base, MakePreset(o.preset, base_options));
  FF_RETURN_IF_ERROR(MakeScheduler(o.policy, *base).status());
  const int gpus = o.preset_options.gpus;
  Advice advice;
  advice.preset = o.preset;
  advice.policy = o.policy;
  advice.gpus = gpus;
  advice.rate_rps = o.trace.empty() ? o.load_share * base->capacity_rps : trace_rate;

  // Candidates, each GPU list once (an anchor keeps its name when another rule finds it too).
  std::vector<LayoutCandidate> all;
  std::set<std::vector<std::string>> seen;
  const auto add = [&](std::vector<std::string> per_gpu, std::string origin, bool anchor) {
    if (per_gpu.empty() || !seen.insert(per_gpu).second) return;
    LayoutCandidate c;
    c.per_gpu = std::move(per_gpu);
    c.label = Label(c.per_gpu);
    c.origin = std::move(origin);
    c.anchor = anchor;
    all.push_back(std::move(c));
  };
  const auto uniform = [&](const std::string& layout) { return std::vector<std::string>(gpus, layout); };
  add(uniform("4g.40gb+2g.20gb+1g.10gb"), "seed's (anchor)", true);
  add(uniform("7g.80gb"), "all 7g (anchor)", true);
  add(uniform("1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb"), "all 1g (anchor)", true);
  add(GreedyLayout(*base, gpus, o.profiles), "greedy on the bound (MIG-serving)", false);
  std::vector<std::string> layouts;
  for (const gpu::Layout& l : gpu::EnumerateMaximalLayouts(A100(), o.profiles)) layouts.push_back(Names(l));
  for (const std::string& l : layouts) add(uniform(l), "uniform", false);

  // Mixes of two of the best uniform layouts by bound, half the GPUs each.
  const auto bound_of = [&](const std::vector<std::string>& per_gpu) -> Result<double> {
    FF_ASSIGN_OR_RETURN(auto slices, LayoutSlices(per_gpu));
    return FluidBound(*base, slices);
  };
  if (gpus >= 2) {
    std::vector<std::pair<double, std::string>> best_uniform;
    for (const std::string& l : layouts) {
      FF_ASSIGN_OR_RETURN(double bound, bound_of(uniform(l)));
      if (bound > 0) best_uniform.emplace_back(bound, l);
    }
    std::stable_sort(best_uniform.begin(), best_uniform.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    best_uniform.resize(std::min<size_t>(best_uniform.size(), 8));
    for (size_t i = 0; i < best_uniform.size(); ++i) {
      for (size_t j = i + 1; j < best_uniform.size(); ++j) {
        std::vector<std::string> per_gpu = uniform(best_uniform[i].second);
        for (int g = gpus / 2; g < gpus; ++g) per_gpu[static_cast<size_t>(g)] = best_uniform[j].second;
        add(std::move(per_gpu), "mixed", false);
      }
    }
  }
  // Bounds, stranded memory and what fits nowhere alone.
  const int64_t per_memory_slice = A100().memory_mib / 8;
  for (LayoutCandidate& c : all) {
    FF_ASSIGN_OR_RETURN(auto slices, LayoutSlices(c.per_gpu));
    c.bound_rps = FluidBound(*base, slices);
    int used = 0;
    for (const policy::ClusterSlice& s : slices) used += s.kind.profile->memory_slices;
    c.stranded_mib = (8 * static_cast<int64_t>(gpus) - used) * per_memory_slice;
    const std::vector<std::string> homeless = Homeless(*base, slices);
    if (!homeless.empty()) {
      std::string names;
      for (const std::string& m : homeless) names += (names.empty() ? "" : ", ") + m;
      c.note = names + (homeless.size() == 1 ? " fits" : " fit") + " no slice alone: pipelines only";
    } else if (c.bound_rps < advice.rate_rps) {
      c.note = "its bound is below the load";
    }
  }
  advice.candidates = static_cast<int>(all.size());

  // The order of the short round: anchors, then by bound (the unbounded last, by stranded memory).
  std::stable_sort(all.begin(), all.end(), [](const LayoutCandidate& a, const LayoutCandidate& b) {
    if (a.anchor != b.anchor) return a.anchor;
    if ((a.bound_rps > 0) != (b.bound_rps > 0)) return a.bound_rps > 0;
    if (a.bound_rps != b.bound_rps) return a.bound_rps > b.bound_rps;
    return a.stranded_mib < b.stranded_mib;
  });
  AdviseOptions run_options = o;
  run_options.preset_options.models = base_options.models;  // a trace's functions in every candidate's preset
  run_options.preset_options.weights = base_options.weights;
  Runner runner(run_options, *base, advice.rate_rps);
  for (LayoutCandidate& c : all) {
    if (!c.anchor && elapsed() > o.budget_s / 2) break;
    const auto t0 = Clock::now();
    FF_ASSIGN_OR_RETURN(double hit, runner.HitRate(c.per_gpu, o.short_s, o.seeds.front()));
    c.short_hit = hit;
    c.short_run_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (c.short_run_s > advice.slowest_short_s) {
      advice.slowest_short_s = c.short_run_s;
      advice.slowest_label = c.label;
    }
    ++advice.simulated_short;
  }
  // Finalists: the anchors and the best of the short round.
  std::vector<LayoutCandidate*> by_short;
  for (LayoutCandidate& c : all) {
    if (c.short_hit && !c.anchor) by_short.push_back(&c);
  }
  std::stable_sort(by_short.begin(), by_short.end(),
                   [](const LayoutCandidate* a, const LayoutCandidate* b) { return *a->short_hit > *b->short_hit; });
  std::vector<LayoutCandidate*> finalists;
  for (LayoutCandidate& c : all) {
    if (c.anchor) finalists.push_back(&c);
  }
  for (size_t i = 0; i < by_short.size() && i < static_cast<size_t>(o.finalists); ++i) finalists.push_back(by_short[i]);
  for (LayoutCandidate* c : finalists) {
    // The anchors come first and always run; another finalist runs if its cost, estimated from its short run,
    // fits in what is left of the budget (the planner's search makes layouts of many mixed small slices slow).
    const double estimate = c->short_run_s * (o.full_s / o.short_s) * static_cast<double>(o.seeds.size());
    if (!c->anchor && elapsed() + estimate > o.budget_s) {
      char text[96];
      std::snprintf(text, sizeof text, "left out of the finals: about %.0f s to run, past the budget", estimate);
      c->note = c->note.empty() ? text : c->note + "; " + text;
      continue;
    }
    double sum = 0;
    for (uint64_t seed : o.seeds) {
      FF_ASSIGN_OR_RETURN(double hit, runner.HitRate(c->per_gpu, o.full_s, seed));
      sum += hit;
      c->full_hits.push_back(hit);
    }
    c->full_hit = sum / static_cast<double>(o.seeds.size());
    ++advice.finalists;
  }
  std::stable_sort(all.begin(), all.end(), [](const LayoutCandidate& a, const LayoutCandidate& b) {
    if (a.full_hit.has_value() != b.full_hit.has_value()) return a.full_hit.has_value();
    if (a.full_hit && *a.full_hit != *b.full_hit) return *a.full_hit > *b.full_hit;
    if (a.short_hit.has_value() != b.short_hit.has_value()) return a.short_hit.has_value();
    if (a.short_hit && *a.short_hit != *b.short_hit) return *a.short_hit > *b.short_hit;
    return a.bound_rps > b.bound_rps;
  });
  advice.ranking = std::move(all);
  advice.seconds = elapsed();
  return advice;
}

std::string MigPartedConfig(const LayoutCandidate& c, const std::string& name) {
  std::ostringstream out;
  out << "version: v1\nmig-configs:\n  " << name << ":\n";
  const auto groups = Groups(c.per_gpu);
  for (const auto& [layout, devices] : groups) {
    out << "    - devices: ";
    if (groups.size() == 1) {
      out << "all";
    } else {
      out << "[";
      for (size_t i = 0; i < devices.size(); ++i) out << (i > 0 ? ", " : "") << devices[i];
      out << "]";
    }
    out << "\n      mig-enabled: true\n      mig-devices:\n";
    std::map<std::string, int> counts;
    std::vector<std::string> order;
    std::stringstream parts(layout);
    for (std::string p; std::getline(parts, p, '+');) {
      if (counts[p]++ == 0) order.push_back(p);
    }
    for (const std::string& p : order) out << "        \"" << p << "\": " << counts[p] << "\n";
  }
  return out.str();
}

std::string NodeConfigYaml(const LayoutCandidate& c, const std::string& node_name) {
  std::ostringstream out;
  out << "node:\n  name: " << node_name << "\n  discovery: auto\n  gpus:\n";
  for (size_t g = 0; g < c.per_gpu.size();) {
    size_t n = 1;
    while (g + n < c.per_gpu.size() && c.per_gpu[g + n] == c.per_gpu[g]) ++n;
    out << "    - type: a100-80gb\n      layout: " << c.per_gpu[g] << "\n      count: " << n << "\n";
    g += n;
  }
  return out.str();
}

}  // namespace fluidfaas::sim
