#include "sim/generation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <sstream>

#include "common/csv.h"
#include "common/stats.h"
#include "common/strings.h"
#include "model/generation.h"
#include "model/load_cost.h"
#include "policy/continuous_batcher.h"
#include "policy/generative_placer.h"
#include "sim/experiment.h"

namespace fluidfaas::sim {

std::string ToString(GenPolicy p) {
  return p == GenPolicy::kFluidFaaS ? "fluidfaas" : "exclusive";
}

Result<GenPolicy> ParseGenPolicy(const std::string& text) {
  if (text == "fluidfaas") return GenPolicy::kFluidFaaS;
  if (text == "exclusive") return GenPolicy::kExclusive;
  return Status::InvalidArgument("unknown generation policy '" + text + "' (fluidfaas, exclusive)");
}

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

constexpr int kBlockTokens = 16;

struct Fn {
  const GenFunction* spec = nullptr;
  std::unique_ptr<model::GenerationCosts> costs;
  std::unique_ptr<policy::GenerativePlacer> placer;
  bool placeable = false;      // on the empty node
  std::deque<size_t> pending;  // sequences waiting for an instance
  std::vector<size_t> instances;
  GenFunctionResult result;
};

// A lane: one batch of sequences stepping through the instance's stages. A pipeline of S stages runs S lanes, so
// that each stage works on one lane's step while the next stage works on another's (the stages are processes on
// their own slices), as pipeline-parallel engines run one scheduler per stage (vLLM's virtual engines).
struct Lane {
  policy::ContinuousBatcher batcher;
  bool busy = false;
  policy::GenStep step;
  size_t Load() const { return batcher.waiting() + batcher.running(); }
};

struct Inst {
  size_t fn = 0;
  std::vector<policy::PlanStage> stages;  // slice: index into the node's slices
  std::vector<Lane> lanes;
  std::vector<double> stage_free;  // when each stage has finished the steps given to it so far
  double ready_at = 0;
  bool ready = false;
  bool alive = true;
  bool draining = false;  // migrated away: takes no new sequence, released once its own have finished
  uint64_t idle_stamp = 0;
  size_t Load() const {
    size_t n = 0;
    for (const Lane& l : lanes) n += l.Load();
    return n;
  }
  bool Idle() const {
    return std::all_of(lanes.begin(), lanes.end(), [](const Lane& l) { return !l.busy && l.Load() == 0; });
  }
};

struct Seq {
  size_t fn = 0;
  double arrival = 0;
  int prompt = 0, output = 0;
  double first = -1, finish = -1;
  std::string refused;
  int ends = 0;
};

struct Event {
  double t;
  uint64_t order;
  enum Kind { kArrival, kReady, kStepDone, kIdleCheck } kind;
  size_t id;
  uint64_t stamp;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : order > o.order; }
};

class GenSim {
 public:
  GenSim(const GenScenario& s, const std::vector<GenArrival>& arrivals, double duration_s, const GenOptions& o)
      : s_(s), arrivals_(arrivals), duration_s_(duration_s), o_(o), busy_(s.slices.size(), false) {}

  Result<GenResult> Run() {
    FF_RETURN_IF_ERROR(Prepare());
    for (size_t i = 0; i < arrivals_.size(); ++i) Push(arrivals_[i].t_s, Event::kArrival, i);
    const double end = duration_s_ + o_.drain_s;
    while (!events_.empty() && events_.top().t <= end) {
      const Event e = events_.top();
      events_.pop();
      now_ = e.t;
      switch (e.kind) {
        case Event::kArrival: Arrive(e.id); break;
        case Event::kReady: Ready(e.id); break;
        case Event::kStepDone: StepDone(e.id, e.stamp); break;
        case Event::kIdleCheck: IdleCheck(e.id, e.stamp); break;
      }
    }
    return Summarise();
  }

 private:
  int max_stages() const { return o_.policy == GenPolicy::kExclusive ? 1 : o_.max_stages; }

  Status Prepare() {
    std::vector<policy::SliceKind> kinds;
    for (const policy::ClusterSlice& c : s_.slices) {
      if (std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end()) kinds.push_back(c.kind);
    }
    const std::vector<policy::FreeSlice> all = Free(/*everything=*/true).first;
    for (const GenFunction& f : s_.functions) {
      Fn fn;
      fn.spec = &f;
      fn.result.name = f.name;
      FF_ASSIGN_OR_RETURN(model::GenerationCosts costs, model::GenerationCosts::Build(f.model));
      fn.costs = std::make_unique<model::GenerationCosts>(std::move(costs));
      if (f.prompt.lo < 1 || f.prompt.hi < f.prompt.lo || f.output.lo < 1 || f.output.hi < f.output.lo ||
          f.prompt.hi + f.output.hi > fn.costs->max_positions()) {
        return Status::InvalidArgument(f.name + ": prompt and output ranges must be non-empty and together within " +
                                       std::to_string(fn.costs->max_positions()) + " tokens");
      }
      const policy::GenerativeTarget target{
          .design_batch = o_.design_batch,
          .design_context = (f.prompt.lo + f.prompt.hi) / 2 + (f.output.lo + f.output.hi) / 2,
          .max_prompt = f.prompt.hi,
          .tpot_slo_ms = f.tpot_slo_ms};
      FF_ASSIGN_OR_RETURN(policy::GenerativePlacer placer, policy::GenerativePlacer::Build(*fn.costs, target, kinds));
      fn.placer = std::make_unique<policy::GenerativePlacer>(std::move(placer));
      fn.placeable = fn.placer->FitsSomewhere(all, max_stages());
      fns_.push_back(std::move(fn));
    }
    for (const GenArrival& a : arrivals_) {
      if (a.function < 0 || static_cast<size_t>(a.function) >= fns_.size()) {
        return Status::InvalidArgument("an arrival names function " + std::to_string(a.function) +
                                       ", which does not exist");
      }
    }
    return Status::Ok();
  }

  // The free slices (all of them with `everything`), and their indices in the node's slices.
  std::pair<std::vector<policy::FreeSlice>, std::vector<size_t>> Free(bool everything = false) const {
    std::vector<policy::FreeSlice> free;
    std::vector<size_t> index;
    for (size_t i = 0; i < s_.slices.size(); ++i) {
      if (!everything && busy_[i]) continue;
      const policy::ClusterSlice& c = s_.slices[i];
      free.push_back({.id = c.id, .gpu = c.gpu, .kind = c.kind, .free_mib = c.kind.profile->memory_mib});
      index.push_back(i);
    }
    return {std::move(free), std::move(index)};
  }

  void Push(double t, Event::Kind kind, size_t id, uint64_t stamp = 0) {
    events_.push(Event{t, order_++, kind, id, stamp});
  }

  void End(size_t seq, const std::string& refused) {
    Seq& q = seqs_[seq];
    ++q.ends;
    if (refused.empty()) {
      q.finish = now_;
    } else {
      q.refused = refused;
    }
  }

  void Arrive(size_t i) {
    const GenArrival& a = arrivals_[i];
    const size_t id = seqs_.size();
    seqs_.push_back(
        Seq{.fn = static_cast<size_t>(a.function), .arrival = now_, .prompt = a.prompt, .output = a.output});
    Fn& fn = fns_[seqs_[id].fn];
    if (!fn.placeable) return End(id, "fits_no_slice");
    Route(id);
  }

  // To the least loaded instance that can hold the sequence; another instance when it cannot start at once.
  void Route(size_t id) {
    Seq& q = seqs_[id];
    Fn& fn = fns_[q.fn];
    std::optional<size_t> best;
    const int64_t tokens = int64_t{q.prompt} + q.output;
    for (size_t i : fn.instances) {
      const Inst& inst = insts_[i];
      if (inst.draining) continue;
      const policy::ContinuousBatcher& b = inst.lanes.front().batcher;
      if (b.BlocksFor(tokens) > b.options().kv_blocks) continue;
      if (!best || inst.Load() < insts_[*best].Load()) best = i;
    }
    if (!best) {
      fn.pending.push_back(id);
      if (fn.instances.empty()) {
        ScaleOut(q.fn);  // else the sequence waits for slices to free
      } else if (!ScaleOut(q.fn)) {
        // Instances run, none can hold it, and no new one fits now: too long for this node's caches.
        fn.pending.pop_back();
        End(id, "too_long");
      }
      return;
    }
    Inst& inst = insts_[*best];
    const size_t lane = LeastLoadedLane(inst);
    policy::ContinuousBatcher& b = inst.lanes[lane].batcher;
    b.Enqueue({.id = id, .prompt = q.prompt, .output = q.output});
    // Past the batch its placement was checked for (its TPOT objective holds up to there), or short of cache for
    // what waits: another instance, if the free slices allow one.
    const bool crowded = b.waiting() + b.running() > static_cast<size_t>(o_.design_batch) || !b.AdmitsAllWaiting();
    Kick(*best, lane);
    if (crowded) ScaleOut(q.fn);
  }

  static size_t LeastLoadedLane(const Inst& inst) {
    size_t best = 0;
    for (size_t l = 1; l < inst.lanes.size(); ++l) {
      if (inst.lanes[l].Load() < inst.lanes[best].Load()) best = l;
    }
    return best;
  }

  // A new instance of function `f` on the free slices (of at most `stages` stages; 0: the policy's), taking its
  // pending sequences. False when none fits now.
  bool ScaleOut(size_t f, int stages = 0) {
    Fn& fn = fns_[f];
    auto [free, index] = Free();
    Result<policy::GenerativePlacement> p = fn.placer->Place(free, stages > 0 ? stages : max_stages());
    if (!p.ok()) return false;
    const size_t id = insts_.size();
    int64_t largest_stage = 0;
    for (policy::PlanStage& st : p->stages) {
      st.slice = index[st.slice];
      busy_[st.slice] = true;
      largest_stage = std::max(largest_stage, fn.costs->WeightBytes(st.first_block, st.last_block));
    }
    const size_t lanes = p->stages.size();
    const int64_t blocks = std::max<int64_t>(p->kv_tokens / kBlockTokens / static_cast<int64_t>(lanes), 1);
    insts_.push_back(Inst{.fn = f, .stages = std::move(p->stages)});
    Inst& inst = insts_.back();
    inst.stage_free.assign(inst.stages.size(), now_);
    for (size_t l = 0; l < lanes; ++l) {
      inst.lanes.push_back(Lane{.batcher = policy::ContinuousBatcher({.kv_blocks = blocks,
                                                                      .block_tokens = kBlockTokens,
                                                                      .max_batch = o_.max_batch,
                                                                      .prefill_chunk = o_.prefill_chunk})});
    }
    ++fn.result.instances;
    if (inst.stages.size() > 1) ++fn.result.pipelined;
    fn.result.max_stages = std::max(fn.result.max_stages, static_cast<int>(inst.stages.size()));
    fn.instances.push_back(id);
    std::string where;
    for (const policy::PlanStage& st : inst.stages) where += (where.empty() ? "" : "+") + s_.slices[st.slice].id;
    fn.result.placements.push_back(where + " at " + std::to_string(static_cast<int64_t>(now_)) + " s");
    inst.ready_at = now_ + ToSeconds(model::LoadCostModel().LoadTime(largest_stage, /*from_warm=*/false));
    Push(inst.ready_at, Event::kReady, id);
    std::deque<size_t> pending;
    pending.swap(fn.pending);
    for (size_t q : pending) {
      Lane& lane = inst.lanes[LeastLoadedLane(inst)];
      if (!lane.batcher.Enqueue({.id = q, .prompt = seqs_[q].prompt, .output = seqs_[q].output})) End(q, "too_long");
    }
    return true;
  }

  void Ready(size_t i) {
    insts_[i].ready = true;
    for (size_t l = 0; l < insts_[i].lanes.size(); ++l) Kick(i, l);
  }

  // Lane `l` of instance `i` takes its next step if it is free: through every stage in turn, each stage starting
  // it once that stage has finished the steps of other lanes given to it before.
  void Kick(size_t i, size_t l) {
    Inst& inst = insts_[i];
    Lane& lane = inst.lanes[l];
    if (!inst.alive || !inst.ready || lane.busy) return;
    lane.step = lane.batcher.Next();
    if (lane.step.kind == policy::GenStep::Kind::kIdle) {
      if (inst.Idle() && inst.draining) return Release(i);
      if (inst.Idle()) Push(now_ + o_.keep_alive_s, Event::kIdleCheck, i, ++inst.idle_stamp);
      return;
    }
    ++inst.idle_stamp;
    lane.busy = true;
    double t = now_;
    for (size_t k = 0; k < inst.stages.size(); ++k) {
      const double start = std::max(t, inst.stage_free[k]);
      inst.stage_free[k] = start + StageMs(inst, lane.step, k) / 1e3;
      t = inst.stage_free[k] + HopMs(inst, lane.step, k) / 1e3;
    }
    Push(t, Event::kStepDone, i, l);
  }

  // A step's batch and its mean tokens (prompt tokens of a prefill, context of a decode step).
  static std::pair<int, double> Shape(const policy::GenStep& step) {
    double tokens = 0;
    for (int t : step.tokens) tokens += t;
    const int batch = static_cast<int>(step.sequences.size());
    return {batch, tokens / batch};
  }

  // Tokens a step's chunks of prefills carry.
  static int ChunkTokens(const policy::GenStep& step) {
    int n = 0;
    for (const policy::GenStep::Chunk& c : step.chunks) n += c.tokens;
    return n;
  }

  double StageMs(const Inst& inst, const policy::GenStep& step, size_t k) const {
    const model::GenerationCosts& c = *fns_[inst.fn].costs;
    const policy::PlanStage& st = inst.stages[k];
    const policy::SliceKind& kind = s_.slices[st.slice].kind;
    if (step.kind == policy::GenStep::Kind::kMixed) {
      // One fused pass: the GEMMs take the chunks' tokens and one row per decoding sequence, as a prefill of that
      // many tokens; the decoding sequences read their caches besides. (The prefill's attention over all of those
      // tokens at once overstates a chunk's; its attention to its earlier chunks is left out.)
      const int decoding = static_cast<int>(step.sequences.size());
      const int rows = std::clamp(ChunkTokens(step) + decoding, 1, c.max_positions());
      double ms = c.PrefillMs(st.first_block, st.last_block, *kind.gpu, *kind.profile, rows, 1);
      if (decoding > 0) {
        const double context = std::min(Shape(step).second, c.max_positions() - 1.0);
        ms += c.DecodeStepMs(st.first_block, st.last_block, *kind.gpu, *kind.profile, decoding, context) -
              c.DecodeStepMs(st.first_block, st.last_block, *kind.gpu, *kind.profile, decoding, 0);
      }
      return ms;
    }
    const auto [batch, mean] = Shape(step);
    if (step.kind == policy::GenStep::Kind::kPrefill) {
      const int p = std::clamp(static_cast<int>(std::lround(mean)), 1, c.max_positions());
      return c.PrefillMs(st.first_block, st.last_block, *kind.gpu, *kind.profile, p, batch);
    }
    return c.DecodeStepMs(st.first_block, st.last_block, *kind.gpu, *kind.profile, batch,
                          std::min(mean, c.max_positions() - 1.0));
  }

  // The hop after stage `k` (none after the last).
  double HopMs(const Inst& inst, const policy::GenStep& step, size_t k) const {
    if (k + 1 >= inst.stages.size()) return 0;
    const double per_token = static_cast<double>(fns_[inst.fn].costs->StepHandoffBytes(inst.stages[k].last_block));
    // Tokens whose hidden states cross: a whole prefill's prompts, one per decoding sequence, the chunks' tokens.
    double tokens = ChunkTokens(step);
    for (int t : step.tokens) tokens += step.kind == policy::GenStep::Kind::kPrefill ? t : 1;
    return policy::TransferModel().HopMs(static_cast<int64_t>(per_token * tokens));
  }

  void StepDone(size_t i, size_t l) {
    Lane& lane = insts_[i].lanes[l];
    lane.busy = false;
    for (uint64_t id : lane.step.sequences) {
      Seq& q = seqs_[id];
      if (q.first < 0) q.first = now_;
    }
    for (const policy::GenStep::Chunk& c : lane.step.chunks) {
      Seq& q = seqs_[c.sequence];
      if (c.last && q.first < 0) q.first = now_;
    }
    for (uint64_t done : lane.batcher.Complete(lane.step)) End(done, "");
    Kick(i, l);
  }

  void IdleCheck(size_t i, uint64_t stamp) {
    const Inst& inst = insts_[i];
    if (!inst.alive || stamp != inst.idle_stamp || !inst.Idle()) return;
    Release(i);
  }

  // Instance `i` gives its slices back. Then functions with sequences waiting for an instance may start one, and a
  // pipeline that a freed slice now holds alone migrates back to it.
  void Release(size_t i) {
    Inst& inst = insts_[i];
    inst.alive = false;
    Fn& fn = fns_[inst.fn];
    fn.result.preemptions += Preemptions(inst);
    std::erase(fn.instances, i);
    for (const policy::PlanStage& st : inst.stages) busy_[st.slice] = false;
    for (size_t f = 0; f < fns_.size(); ++f) {
      if (!fns_[f].pending.empty()) ScaleOut(f);
    }
    if (o_.migrate_back) MigrateBack();
  }

  // The design's migration, for generation: a pipeline whose function a free slice now serves alone gets a
  // single-slice instance there (loaded cold), and the pipeline drains: it takes no new sequence and is released
  // when its own have finished. Live sequences finish where they are rather than moving their caches: a sequence
  // lasts seconds, and its cache is spread over the pipeline's stages.
  void MigrateBack() {
    for (size_t f = 0; f < fns_.size(); ++f) {
      for (size_t i : std::vector<size_t>(fns_[f].instances)) {
        if (insts_[i].draining || insts_[i].stages.size() < 2) continue;
        if (!ScaleOut(f, /*stages=*/1)) break;  // no single slice serves it now
        ++fns_[f].result.migrations;
        insts_[i].draining = true;
        if (insts_[i].Idle()) Release(i);
      }
    }
  }

  static int64_t Preemptions(const Inst& inst) {
    int64_t n = 0;
    for (const Lane& l : inst.lanes) n += static_cast<int64_t>(l.batcher.preemptions());
    return n;
  }

  Result<GenResult> Summarise() {
    GenResult r;
    r.policy = ToString(o_.policy);
    r.duration_s = duration_s_;
    std::vector<std::vector<double>> ttft(fns_.size()), tpot(fns_.size());
    for (const Inst& inst : insts_) {
      if (inst.alive) fns_[inst.fn].result.preemptions += Preemptions(inst);
    }
    for (size_t id = 0; id < seqs_.size(); ++id) {
      Seq& q = seqs_[id];
      if (q.ends == 0) {
        q.refused = "unserved";
        ++q.ends;
      }
      if (q.ends != 1) return Status::Internal("a sequence ended " + std::to_string(q.ends) + " times");
      GenFunctionResult& fr = fns_[q.fn].result;
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
      const GenFunction& spec = *fns_[q.fn].spec;
      if (t1 <= spec.ttft_slo_ms && tp <= spec.tpot_slo_ms) {
        ++fr.met;
        fr.met_tokens += q.output;
      }
    }
    for (size_t f = 0; f < fns_.size(); ++f) {
      GenFunctionResult& fr = fns_[f].result;
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
  std::vector<Fn> fns_;
  std::vector<Inst> insts_;
  std::vector<Seq> seqs_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t order_ = 0;
  double now_ = 0;
};

}  // namespace

Result<GenResult> SimulateGeneration(const GenScenario& scenario, const std::vector<GenArrival>& arrivals,
                                     double duration_s, const GenOptions& options) {
  if (!(duration_s > 0) || !std::isfinite(duration_s)) return Status::InvalidArgument("duration must be positive");
  if (options.max_batch < 1 || options.design_batch < 1 || options.max_stages < 1 || !(options.keep_alive_s >= 0) ||
      !(options.drain_s >= 0)) {
    return Status::InvalidArgument("generation options: batches and stages must be >= 1, times >= 0");
  }
  return GenSim(scenario, arrivals, duration_s, options).Run();
}

}  // namespace fluidfaas::sim
