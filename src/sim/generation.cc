#include "sim/generation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "carrier/generation_node.h"
#include "common/csv.h"
#include "common/stats.h"
#include "common/strings.h"
#include "model/generation.h"
#include "sim/experiment.h"

namespace fluidfaas::sim {

std::vector<GenArrival> GenArrivals(const GenScenario& s, double duration_s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<GenArrival> out;
  for (size_t f = 0; f < s.functions.size(); ++f) {
    const GenFunction& fn = s.functions[f];
    if (!(fn.rate_per_s > 0)) continue;
    std::exponential_distribution<double> gap(fn.rate_per_s);
    std::uniform_int_distribution<int> prompt(fn.prompt.lo, fn.prompt.hi);
    std::uniform_int_distribution<int> output(fn.output.lo, fn.output.hi);
    for (double t = gap(rng); t < duration_s; t += gap(rng)) {
      out.push_back({.t_s = t, .function = static_cast<int>(f), .prompt = prompt(rng), .output = output(rng)});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const GenArrival& a, const GenArrival& b) { return a.t_s < b.t_s; });
  return out;
}

namespace {

// Days from 1970-01-01 to the civil date y-m-d (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "YYYY-MM-DD HH:MM:SS[.fraction]" (or with a T) as seconds since the epoch, or a plain number of seconds.
std::optional<double> TraceSeconds(std::string_view text) {
  if (std::optional<double> plain = ParseFiniteDouble(text)) return plain;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double sec = 0;
  char sep = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2d%c%2d:%2d:%lf", &y, &mo, &d, &sep, &h, &mi, &sec) != 7) return std::nullopt;
  if ((sep != ' ' && sep != 'T') || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || !(sec >= 0) ||
      !(sec < 61)) {
    return std::nullopt;
  }
  return static_cast<double>(DaysFromCivil(y, mo, d)) * 86400 + h * 3600 + mi * 60 + sec;
}

}  // namespace

Result<TraceArrivals> ParseLlmTrace(std::string_view text, const std::string& source, const GenScenario& s,
                                    double duration_s) {
  FF_ASSIGN_OR_RETURN(const CsvTable t, CsvTable::Parse(text, source));
  FF_ASSIGN_OR_RETURN(const size_t time_col, t.RequireColumn("TIMESTAMP"));
  FF_ASSIGN_OR_RETURN(const size_t context_col, t.RequireColumn("ContextTokens"));
  FF_ASSIGN_OR_RETURN(const size_t generated_col, t.RequireColumn("GeneratedTokens"));
  if (s.functions.empty()) return Status::InvalidArgument(source + ": the scenario has no functions");
  std::vector<int> limit;
  double total_rate = 0;
  for (const GenFunction& f : s.functions) {
    limit.push_back(model::ZooMaxPositions(f.model));
    total_rate += std::max(f.rate_per_s, 0.0);
  }
  std::vector<double> credit(s.functions.size(), 0.0);
  TraceArrivals out;
  double first = 0, last = 0;
  for (size_t r = 0; r < t.rows(); ++r) {
    const std::string where = source + ":" + std::to_string(t.line(r)) + ": ";
    const std::optional<double> at = TraceSeconds(t.row(r)[time_col]);
    if (!at) return Status::InvalidArgument(where + "TIMESTAMP '" + t.row(r)[time_col] + "' is not a date and time");
    FF_ASSIGN_OR_RETURN(const double context, t.Number(r, context_col));
    FF_ASSIGN_OR_RETURN(const double generated, t.Number(r, generated_col));
    if (context < 0 || generated < 0) return Status::InvalidArgument(where + "a negative token count");
    if (r == 0) first = *at;
    if (*at < last) return Status::InvalidArgument(where + "the timestamps go back in time");
    last = *at;
    const double t_s = *at - first;
    if (t_s >= duration_s) break;
    // Smooth weighted round robin over the functions' rates (equal shares when no rate is given).
    size_t pick = 0;
    for (size_t f = 0; f < credit.size(); ++f) {
      credit[f] += total_rate > 0 ? std::max(s.functions[f].rate_per_s, 0.0) : 1.0;
      if (credit[f] > credit[pick]) pick = f;
    }
    credit[pick] -= total_rate > 0 ? total_rate : static_cast<double>(credit.size());
    const int max_output = std::max(limit[pick] - 1, 1);
    const int output = std::clamp(static_cast<int>(generated), 1, max_output);
    const int prompt = std::clamp(static_cast<int>(context), 1, std::max(limit[pick] - output, 1));
    if (output != generated || prompt != context) ++out.clipped;
    out.arrivals.push_back({.t_s = t_s, .function = static_cast<int>(pick), .prompt = prompt, .output = output});
    out.span_s = t_s;
  }
  return out;
}

Result<TraceArrivals> ReadLlmTrace(const std::string& path, const GenScenario& s, double duration_s) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open the trace '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return ParseLlmTrace(text.str(), path, s, duration_s);
}

Result<GenScenario> GenPreset(const std::string& name, double load, double slo_scale) {
  if (!(load > 0) || !std::isfinite(load)) return Status::InvalidArgument("load must be a positive number");
  if (!(slo_scale >= 1) || !std::isfinite(slo_scale)) return Status::InvalidArgument("the SLO scale must be >= 1");
  std::vector<std::string> layouts;
  if (name == "gen-fragmented") {
    layouts = {"2g.20gb+2g.20gb+2g.20gb+1g.10gb"};
  } else if (name == "gen-mixed") {
    layouts = {"2g.20gb+2g.20gb+2g.20gb+1g.10gb", "3g.40gb+2g.20gb+1g.10gb+1g.10gb"};
  } else {
    return Status::InvalidArgument("unknown generation preset '" + name + "' (gen-fragmented, gen-mixed)");
  }
  GenScenario s;
  s.name = name;
  FF_ASSIGN_OR_RETURN(s.slices, LayoutSlices(layouts));
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  const gpu::MigProfile& whole = *a100.FindProfile("7g.80gb");
  const double gpus = static_cast<double>(layouts.size());
  // Medium-load rates per GPU: about half of what each model's instance on its smallest slice gets through.
  const std::pair<const char*, double> mix[] = {{"llama2-13b", 0.25}, {"llama2-7b", 0.35}, {"tinyllama-1.1b", 0.8}};
  for (const auto& [model, rate] : mix) {
    FF_ASSIGN_OR_RETURN(const model::GenerationCosts costs, model::GenerationCosts::Build(model));
    const size_t last = costs.spec().blocks.size() - 1;
    GenFunction f{.name = model, .model = model, .rate_per_s = rate * gpus * load};
    const int mean_prompt = (f.prompt.lo + f.prompt.hi) / 2;
    const double mean_context = mean_prompt + (f.output.lo + f.output.hi) / 4.0;
    f.ttft_slo_ms = slo_scale * costs.PrefillMs(0, last, a100, whole, mean_prompt, 1);
    f.tpot_slo_ms = slo_scale * costs.DecodeStepMs(0, last, a100, whole, 1, mean_context);
    s.functions.push_back(std::move(f));
  }
  return s;
}

namespace {

struct Seq {
  size_t fn = 0;
  double arrival = 0;
  int prompt = 0, output = 0;
  double first = -1, finish = -1;
  std::string refused;
  int ends = 0;
};

// The simulated node: a GenerationNode (carrier/generation_node.h) that owns every slice, driven by the arrivals
// in simulated time; it records each sequence's first token and end.
class GenSim : public carrier::SliceLease, public carrier::GenListener {
 public:
  GenSim(const GenScenario& s, const std::vector<GenArrival>& arrivals, double duration_s, const GenOptions& o)
      : s_(s),
        arrivals_(arrivals),
        duration_s_(duration_s),
        o_(o),
        busy_(s.slices.size(), false),
        node_(s.slices, o.node, *this, *this) {}

  Result<GenResult> Run() {
    for (const GenFunction& f : s_.functions) {
      if (f.prompt.lo < 1 || f.prompt.hi < f.prompt.lo || f.output.lo < 1 || f.output.hi < f.output.lo) {
        return Status::InvalidArgument(f.name + ": prompt and output ranges must be non-empty");
      }
      FF_ASSIGN_OR_RETURN(model::GenerationCosts costs, model::GenerationCosts::Build(f.model));
      if (f.prompt.hi + f.output.hi > costs.max_positions()) {
        return Status::InvalidArgument(f.name + ": prompt and output ranges must be together within " +
                                       std::to_string(costs.max_positions()) + " tokens");
      }
      FF_RETURN_IF_ERROR(
          node_
              .AddFunction({.name = f.name,
                            .model = f.model,
                            .tpot_slo_ms = f.tpot_slo_ms,
                            .ttft_slo_ms = f.ttft_slo_ms,
                            .design_context = (f.prompt.lo + f.prompt.hi) / 2 + (f.output.lo + f.output.hi) / 2,
                            .max_prompt = f.prompt.hi})
              .status());
    }
    for (const GenArrival& a : arrivals_) {
      if (a.function < 0 || static_cast<size_t>(a.function) >= s_.functions.size()) {
        return Status::InvalidArgument("an arrival names function " + std::to_string(a.function) +
                                       ", which does not exist");
      }
    }
    const double end = duration_s_ + o_.drain_s;
    size_t next = 0;
    for (;;) {
      const std::optional<double> due = node_.NextDue();
      const bool arrival = next < arrivals_.size() && (!due || arrivals_[next].t_s <= *due);
      const double t = arrival ? arrivals_[next].t_s : due.value_or(end + 1);
      if (t > end) break;
      if (!arrival) {
        node_.Advance(t);
        continue;
      }
      const GenArrival& a = arrivals_[next++];
      seqs_.push_back(Seq{.fn = static_cast<size_t>(a.function), .arrival = t, .prompt = a.prompt, .output = a.output});
      node_.Arrive(t, seqs_.back().fn, a.prompt, a.output);  // its id is its index
    }
    return Summarise();
  }

  // SliceLease: every slice is the generation node's.
  bool IsFree(size_t slice) const override { return !busy_[slice]; }
  void Take(size_t slice) override { busy_[slice] = true; }
  void Give(size_t slice) override { busy_[slice] = false; }

  // GenListener
  void Token(uint64_t seq, int index, double t, int64_t /*token*/) override {
    if (index == 0) seqs_[seq].first = t;
  }
  void Ended(uint64_t seq, std::string_view refusal, double t) override {
    Seq& q = seqs_[seq];
    ++q.ends;
    if (refusal.empty()) {
      q.finish = t;
    } else {
      q.refused = refusal;
    }
  }

 private:
  Result<GenResult> Summarise() {
    GenResult r;
    r.policy = ToString(o_.node.policy);
    r.duration_s = duration_s_;
    const size_t n = s_.functions.size();
    std::vector<GenFunctionResult> results(n);
    std::vector<std::vector<double>> ttft(n), tpot(n);
    for (size_t f = 0; f < n; ++f) {
      static_cast<carrier::GenInstanceStats&>(results[f]) = node_.Stats(f);
      results[f].name = s_.functions[f].name;
    }
    for (Seq& q : seqs_) {
      if (q.ends == 0) {
        q.refused = "unserved";
        ++q.ends;
      }
      if (q.ends != 1) return Status::Internal("a sequence ended " + std::to_string(q.ends) + " times");
      GenFunctionResult& fr = results[q.fn];
      ++fr.requests;
      if (!q.refused.empty()) {
        ++fr.refused[q.refused];
        continue;
      }
      ++fr.completed;
      const double t1 = (q.first - q.arrival) * 1e3;
      const double tp = q.output > 1 ? (q.finish - q.first) * 1e3 / (q.output - 1) : 0;
      ttft[q.fn].push_back(t1);
      tpot[q.fn].push_back(tp);
      fr.tokens += q.output;
      const GenFunction& spec = s_.functions[q.fn];
      if (t1 <= spec.ttft_slo_ms && tp <= spec.tpot_slo_ms) {
        ++fr.met;
        fr.met_tokens += q.output;
      }
    }
    for (size_t f = 0; f < n; ++f) {
      GenFunctionResult& fr = results[f];
      if (!ttft[f].empty()) {
        fr.ttft_p50_ms = Percentile(ttft[f], 0.50);
        fr.ttft_p99_ms = Percentile(ttft[f], 0.99);
        fr.tpot_p50_ms = Percentile(tpot[f], 0.50);
        fr.tpot_p99_ms = Percentile(tpot[f], 0.99);
      }
      r.requests += fr.requests;
      r.met += fr.met;
      r.tokens += fr.tokens;
      r.met_tokens += fr.met_tokens;
      r.functions.push_back(fr);
    }
    return r;
  }

  const GenScenario& s_;
  const std::vector<GenArrival>& arrivals_;
  double duration_s_;
  GenOptions o_;
  std::vector<bool> busy_;
  std::vector<Seq> seqs_;
  carrier::GenerationNode node_;
};

}  // namespace

Result<GenResult> SimulateGeneration(const GenScenario& scenario, const std::vector<GenArrival>& arrivals,
                                     double duration_s, const GenOptions& options) {
  if (!(duration_s > 0) || !std::isfinite(duration_s)) return Status::InvalidArgument("duration must be positive");
  FF_RETURN_IF_ERROR(carrier::Validate(options.node));
  if (!(options.drain_s >= 0)) return Status::InvalidArgument("generation options: the drain must be >= 0");
  return GenSim(scenario, arrivals, duration_s, options).Run();
}

}  // namespace fluidfaas::sim
