#include "carrier/generation_node.h"

#include <algorithm>
#include <cmath>

#include "model/load_cost.h"

namespace fluidfaas::carrier {

namespace {
constexpr int kBlockTokens = 16;
}  // namespace

std::string ToString(GenPolicy p) {
  return p == GenPolicy::kFluidFaaS ? "fluidfaas" : "exclusive";
}

Result<GenPolicy> ParseGenPolicy(const std::string& text) {
  if (text == "fluidfaas") return GenPolicy::kFluidFaaS;
  if (text == "exclusive") return GenPolicy::kExclusive;
  return Status::InvalidArgument("unknown generation policy '" + text + "' (fluidfaas, exclusive)");
}

Status Validate(const GenNodeOptions& o) {
  if (o.max_batch < 1 || o.design_batch < 1 || o.max_stages < 1 || o.prefill_chunk < 0) {
    return Status::InvalidArgument("generation options: batches and stages must be >= 1, the prefill chunk >= 0");
  }
  if (!(o.keep_alive_s >= 0) || !std::isfinite(o.keep_alive_s)) {
    return Status::InvalidArgument("generation options: the keep-alive must be a finite time >= 0");
  }
  return Status::Ok();
}

size_t GenerationNode::Inst::Load() const {
  size_t n = 0;
  for (const Lane& l : lanes) n += l.Load();
  return n;
}

bool GenerationNode::Inst::Idle() const {
  return std::all_of(lanes.begin(), lanes.end(), [](const Lane& l) { return !l.busy && l.Load() == 0; });
}

GenerationNode::GenerationNode(std::vector<policy::ClusterSlice> slices, GenNodeOptions options, SliceLease& lease,
                               GenListener& listener)
    : slices_(std::move(slices)), options_(options), lease_(lease), listener_(listener) {
  for (const policy::ClusterSlice& c : slices_) {
    if (std::find(kinds_.begin(), kinds_.end(), c.kind) == kinds_.end()) kinds_.push_back(c.kind);
  }
}

Result<size_t> GenerationNode::AddFunction(const GenSpec& spec, std::optional<model::GenerationCosts> costs,
                                           GenEngine* engine) {
  Fn fn;
  fn.spec = spec;
  fn.engine = engine != nullptr ? engine : &modelled_;
  if (!costs) {
    FF_ASSIGN_OR_RETURN(model::GenerationCosts zoo, model::GenerationCosts::Build(spec.model));
    costs = std::move(zoo);
  }
  fn.costs = std::make_unique<model::GenerationCosts>(std::move(*costs));
  if (spec.max_prompt < 1 || spec.design_context < 1 || spec.design_context >= fn.costs->max_positions() ||
      !(spec.tpot_slo_ms > 0) || !std::isfinite(spec.tpot_slo_ms) || !(spec.time_scale > 0) ||
      !std::isfinite(spec.time_scale)) {
    return Status::InvalidArgument(spec.name + ": the design context must be within 1.." +
                                   std::to_string(fn.costs->max_positions() - 1) +
                                   " tokens, the longest prompt >= 1, the TPOT objective and the time scale positive");
  }
  const policy::GenerativeTarget target{.design_batch = options_.design_batch,
                                        .design_context = spec.design_context,
                                        .max_prompt = spec.max_prompt,
                                        .tpot_slo_ms = spec.tpot_slo_ms};
  FF_ASSIGN_OR_RETURN(policy::GenerativePlacer placer, policy::GenerativePlacer::Build(*fn.costs, target, kinds_));
  fn.placer = std::make_unique<policy::GenerativePlacer>(std::move(placer));
  fn.placeable = fn.placer->FitsSomewhere(Free(/*everything=*/true).first, max_stages());
  fns_.push_back(std::move(fn));
  return fns_.size() - 1;
}

std::pair<std::vector<policy::FreeSlice>, std::vector<size_t>> GenerationNode::Free(bool everything) const {
  std::vector<policy::FreeSlice> free;
  std::vector<size_t> index;
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!everything && !lease_.IsFree(i)) continue;
    const policy::ClusterSlice& c = slices_[i];
    free.push_back({.id = c.id, .gpu = c.gpu, .kind = c.kind, .free_mib = c.kind.profile->memory_mib});
    index.push_back(i);
  }
  return {std::move(free), std::move(index)};
}

void GenerationNode::Push(double t, Event::Kind kind, size_t id, uint64_t stamp) {
  events_.push(Event{t, order_++, kind, id, stamp});
}

std::optional<double> GenerationNode::NextDue() const {
  if (events_.empty()) return std::nullopt;
  return events_.top().t;
}

void GenerationNode::Advance(double now) {
  while (!events_.empty() && events_.top().t <= now) {
    const Event e = events_.top();
    events_.pop();
    now_ = e.t;
    switch (e.kind) {
      case Event::kReady: Ready(e.id); break;
      case Event::kStepDone: StepDone(e.id, e.stamp, {}); break;
      case Event::kIdleCheck: IdleCheck(e.id, e.stamp); break;
    }
  }
  now_ = std::max(now_, now);
}

void GenerationNode::End(uint64_t seq, std::string_view refusal) {
  seqs_.erase(seq);
  listener_.Ended(seq, refusal, now_);
}

uint64_t GenerationNode::Arrive(double now, size_t f, int prompt, int output) {
  now_ = std::max(now_, now);
  const uint64_t id = next_seq_++;
  seqs_.emplace(id, Seq{.fn = f, .prompt = prompt, .output = output});
  if (!fns_[f].placeable) {
    End(id, "fits_no_slice");
  } else {
    Route(id);
  }
  return id;
}

bool GenerationNode::Cancel(double now, uint64_t seq) {
  now_ = std::max(now_, now);
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return false;
  const Seq q = it->second;
  if (!q.inst) {
    std::erase(fns_[q.fn].pending, seq);
    End(seq, "cancelled");
    return true;
  }
  // Out of its batcher at once, even from a step in flight (the step's end passes over it): its blocks serve the
  // lane's next step.
  insts_[*q.inst].lanes[q.lane].batcher.Cancel(seq);
  End(seq, "cancelled");
  EngineOf(*q.inst).Free(*q.inst, {seq});
  Kick(*q.inst, q.lane);  // a waiting sequence may now be admitted, or the lane is idle
  return true;
}

// To the least loaded instance that can hold the sequence (of those that prefill it in time, under prompt routing);
// another instance when it cannot start at once.
void GenerationNode::Route(uint64_t id) {
  const std::vector<size_t> fits = PromptFits(id);
  const Seq& q = seqs_.at(id);
  const size_t f = q.fn;
  const int prompt = q.prompt;  // `q` may end (and go) once it is enqueued
  Fn& fn = fns_[f];
  std::optional<size_t> best;
  const int64_t tokens = int64_t{q.prompt} + q.output;
  const auto least_loaded = [&](const std::vector<size_t>& candidates) {
    for (size_t i : candidates) {
      const Inst& inst = insts_[i];
      if (inst.draining) continue;
      const policy::ContinuousBatcher& b = inst.lanes.front().batcher;
      if (b.BlocksFor(tokens) > b.options().kv_blocks) continue;
      if (!best || inst.Load() < insts_[*best].Load()) best = i;
    }
  };
  least_loaded(fits);
  if (!best) least_loaded(fn.instances);  // none of those holds it: any instance that can
  if (!best) {
    fn.pending.push_back(id);
    if (fn.instances.empty()) {
      if (!ScaleOut(f)) DisplaceFor(f);  // else the sequence waits for slices to free
    } else if (!ScaleOut(f)) {
      // Instances run, none can hold it, and no new one fits now: too long for this node's caches.
      fn.pending.pop_back();
      End(id, "too_long");
    }
    return;
  }
  const size_t lane = LeastLoadedLane(insts_[*best]);
  Enqueue(*best, lane, id);
  const policy::ContinuousBatcher& b = insts_[*best].lanes[lane].batcher;
  // Past the batch its placement was checked for (its TPOT objective holds up to there), or short of cache for what
  // waits: another instance, if the free slices allow one.
  const bool crowded = b.waiting() + b.running() > static_cast<size_t>(options_.design_batch) || !b.AdmitsAllWaiting();
  Kick(*best, lane);
  // Not displacement: an instance's idle moment between a steady function's sequences is no sign it is cold (giving
  // those slices to the crowded function cost 1.3 points on gen-fragmented at medium load).
  if (!crowded) return;
  // A long prompt that only some instances prefill in time crowds those: the next one goes where it would fit too.
  const bool long_prompt = !fits.empty() && std::any_of(fn.instances.begin(), fn.instances.end(), [&](size_t i) {
    return !insts_[i].draining && std::find(fits.begin(), fits.end(), i) == fits.end();
  });
  if (long_prompt && StartForPrompt(f, prompt)) return;
  ScaleOut(f, HasSingleSlice(f) ? 1 : 0);
}

bool GenerationNode::StartForPrompt(size_t f, int prompt) {
  // A function waiting for its first instance comes first: such an instance is an extra.
  if (Waiting() || !ScaleOut(f, 1, prompt)) return false;
  Fn& fn = fns_[f];
  insts_[fn.instances.back()].for_prompts = true;
  ++fn.stats.prompt_routed;
  return true;
}

bool GenerationNode::Waiting() const {
  return std::any_of(fns_.begin(), fns_.end(), [](const Fn& g) { return !g.pending.empty(); });
}

double GenerationNode::PrefillMs(const Inst& inst, int prompt) const {
  const model::GenerationCosts& costs = *fns_[inst.fn].costs;
  double ms = 0;
  for (const policy::PlanStage& st : inst.stages) {
    const policy::SliceKind& kind = slices_[st.slice].kind;
    ms += costs.PrefillMs(st.first_block, st.last_block, *kind.gpu, *kind.profile, prompt, 1);
  }
  return ms;
}

std::vector<size_t> GenerationNode::PromptFits(uint64_t id) {
  const Seq& q = seqs_.at(id);
  Fn& fn = fns_[q.fn];
  if (options_.policy != GenPolicy::kFluidFaaS || !options_.prompt_routing || !(fn.spec.ttft_slo_ms > 0) ||
      fn.instances.empty()) {
    return {};
  }
  std::vector<size_t> fits;
  for (size_t i : fn.instances) {
    if (!insts_[i].draining && PrefillMs(insts_[i], q.prompt) <= fn.spec.ttft_slo_ms) fits.push_back(i);
  }
  if (fits.empty() && StartForPrompt(q.fn, q.prompt)) fits.push_back(fn.instances.back());
  return fits;
}

bool GenerationNode::HasSingleSlice(size_t f) const {
  return std::any_of(fns_[f].instances.begin(), fns_[f].instances.end(),
                     [&](size_t i) { return !insts_[i].draining && insts_[i].stages.size() == 1; });
}

void GenerationNode::Enqueue(size_t inst, size_t lane, uint64_t seq) {
  Seq& q = seqs_.at(seq);
  if (!insts_[inst].lanes[lane].batcher.Enqueue({.id = seq, .prompt = q.prompt, .output = q.output})) {
    return End(seq, "too_long");
  }
  q.inst = inst;
  q.lane = lane;
}

size_t GenerationNode::LeastLoadedLane(const Inst& inst) {
  size_t best = 0;
  for (size_t l = 1; l < inst.lanes.size(); ++l) {
    if (inst.lanes[l].Load() < inst.lanes[best].Load()) best = l;
  }
  return best;
}

// A new instance of function `f` on the free slices (of at most `stages` stages; 0: the policy's), taking its
// pending sequences. False when none fits now.
bool GenerationNode::ScaleOut(size_t f, int stages, int prompt) {
  Fn& fn = fns_[f];
  auto [free, index] = Free(/*everything=*/false);
  const size_t last = fn.costs->spec().blocks.size() - 1;
  if (prompt == 0 && options_.fit_longest_prompt && fn.spec.ttft_slo_ms > 0 && ScaleOut(f, 1, fn.spec.max_prompt)) {
    return true;
  }
  Result<policy::GenerativePlacement> p =
      prompt > 0 ? fn.placer->PlaceAlone(free,
                                         [&](const policy::FreeSlice& s) {
                                           return fn.costs->PrefillMs(0, last, *s.kind.gpu, *s.kind.profile, prompt,
                                                                      1) <= fn.spec.ttft_slo_ms;
                                         })
                 : fn.placer->Place(free, stages > 0 ? stages : max_stages());
  if (!p.ok()) return false;
  const size_t id = insts_.size();
  int64_t largest_stage = 0;
  for (policy::PlanStage& st : p->stages) {
    st.slice = index[st.slice];
    lease_.Take(st.slice);
    largest_stage = std::max(largest_stage, fn.costs->WeightBytes(st.first_block, st.last_block));
  }
  const size_t lanes = p->stages.size();
  // Capped at what a lane can ever hold: a full batch of sequences of the model's whole length (the engine backs
  // these books with a real pool: a tiny model on a large slice would otherwise allocate gigabytes it never uses).
  const int64_t most = int64_t{options_.max_batch} * ((fn.costs->max_positions() + kBlockTokens) / kBlockTokens + 1);
  const int64_t blocks =
      std::clamp<int64_t>(p->kv_tokens / kBlockTokens / static_cast<int64_t>(lanes), 1, std::max<int64_t>(most, 1));
  insts_.push_back(Inst{.fn = f, .stages = std::move(p->stages)});
  Inst& inst = insts_.back();
  inst.stage_free.assign(inst.stages.size(), now_);
  for (size_t l = 0; l < lanes; ++l) {
    inst.lanes.push_back(Lane{.batcher = policy::ContinuousBatcher({.kv_blocks = blocks,
                                                                    .block_tokens = kBlockTokens,
                                                                    .max_batch = options_.max_batch,
                                                                    .prefill_chunk = options_.prefill_chunk})});
  }
  ++fn.stats.instances;
  if (inst.stages.size() > 1) ++fn.stats.pipelined;
  fn.stats.max_stages = std::max(fn.stats.max_stages, static_cast<int>(inst.stages.size()));
  fn.instances.push_back(id);
  std::string where;
  for (const policy::PlanStage& st : inst.stages) where += (where.empty() ? "" : "+") + slices_[st.slice].id;
  fn.stats.placements.push_back(where + " at " + std::to_string(static_cast<int64_t>(now_)) + " s");
  const bool warm = fn.warm_until >= now_;
  if (warm) ++fn.stats.warm_starts;
  std::deque<uint64_t> pending;
  pending.swap(fn.pending);
  for (uint64_t q : pending) Enqueue(id, LeastLoadedLane(insts_[id]), q);
  fn.engine->Load(id, GenLaunch{.function = f,
                                .stages = insts_[id].stages,
                                .lanes = lanes,
                                .kv_blocks_per_lane = blocks,
                                .block_tokens = kBlockTokens,
                                .modelled_load_s = fn.spec.time_scale *
                                                   ToSeconds(model::LoadCostModel().LoadTime(largest_stage, warm))});
  return true;
}

void GenerationNode::Ready(size_t i) {
  insts_[i].ready = true;
  for (size_t l = 0; l < insts_[i].lanes.size(); ++l) Kick(i, l);
}

// Lane `l` of instance `i` takes its next step if it is free.
void GenerationNode::Kick(size_t i, size_t l) {
  Inst& inst = insts_[i];
  Lane& lane = inst.lanes[l];
  if (!inst.alive || !inst.ready || lane.busy) return;
  lane.step = lane.batcher.Next();
  if (lane.step.kind == policy::GenStep::Kind::kIdle) {
    if (inst.Idle() && inst.draining) return Release(i);
    if (inst.Idle()) {
      inst.idle_since = now_;
      if (WaitingFor(i)) return Displace(i);
      Push(now_ + options_.keep_alive_s, Event::kIdleCheck, i, ++inst.idle_stamp);
    }
    return;
  }
  ++inst.idle_stamp;
  lane.busy = true;
  EngineOf(i).Step(i, l, lane.step);
}

void GenerationNode::Modelled::Load(size_t inst, const GenLaunch& launch) {
  node_.Push(node_.now_ + launch.modelled_load_s, Event::kReady, inst);
}

// Through every stage in turn, each stage starting the step once it has finished the steps of other lanes given to
// it before.
void GenerationNode::Modelled::Step(size_t i, size_t l, const policy::GenStep& step) {
  Inst& inst = node_.insts_[i];
  double t = node_.now_;
  const double scale = node_.fns_[inst.fn].spec.time_scale;  // of the modelled milliseconds
  for (size_t k = 0; k < inst.stages.size(); ++k) {
    const double start = std::max(t, inst.stage_free[k]);
    inst.stage_free[k] = start + node_.StageMs(inst, step, k) * scale / 1e3;
    t = inst.stage_free[k] + node_.HopMs(inst, step, k) * scale / 1e3;
  }
  node_.Push(t, Event::kStepDone, i, l);
}

namespace {

// A step's batch and its mean tokens (prompt tokens of a prefill, context of a decode step).
std::pair<int, double> Shape(const policy::GenStep& step) {
  double tokens = 0;
  for (int t : step.tokens) tokens += t;
  const int batch = static_cast<int>(step.sequences.size());
  return {batch, tokens / batch};
}

// Tokens a step's chunks of prefills carry.
int ChunkTokens(const policy::GenStep& step) {
  int n = 0;
  for (const policy::GenStep::Chunk& c : step.chunks) n += c.tokens;
  return n;
}

}  // namespace

double GenerationNode::StageMs(const Inst& inst, const policy::GenStep& step, size_t k) const {
  const model::GenerationCosts& c = *fns_[inst.fn].costs;
  const policy::PlanStage& st = inst.stages[k];
  const policy::SliceKind& kind = slices_[st.slice].kind;
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
double GenerationNode::HopMs(const Inst& inst, const policy::GenStep& step, size_t k) const {
  if (k + 1 >= inst.stages.size()) return 0;
  const double per_token = static_cast<double>(fns_[inst.fn].costs->StepHandoffBytes(inst.stages[k].last_block));
  // Tokens whose hidden states cross: a whole prefill's prompts, one per decoding sequence, the chunks' tokens.
  double tokens = ChunkTokens(step);
  for (int t : step.tokens) tokens += step.kind == policy::GenStep::Kind::kPrefill ? t : 1;
  return policy::TransferModel().HopMs(static_cast<int64_t>(per_token * tokens));
}

void GenerationNode::StepDone(size_t i, size_t l, const std::vector<int64_t>& tokens) {
  Lane& lane = insts_[i].lanes[l];
  lane.busy = false;
  size_t k = 0;  // into `tokens`
  const auto token = [&](uint64_t id) {
    const int64_t value = k < tokens.size() ? tokens[k] : -1;
    ++k;
    auto it = seqs_.find(id);
    if (it != seqs_.end()) listener_.Token(id, it->second.generated++, now_, value);  // else cancelled during the step
  };
  for (uint64_t id : lane.step.sequences) token(id);
  for (const policy::GenStep::Chunk& c : lane.step.chunks) {
    if (c.last) token(c.sequence);
  }
  const std::vector<uint64_t> finished = lane.batcher.Complete(lane.step);
  for (uint64_t done : finished) End(done, "");
  if (!finished.empty()) EngineOf(i).Free(i, finished);
  Kick(i, l);
}

void GenerationNode::Loaded(double now, size_t i) {
  now_ = std::max(now_, now);
  if (i < insts_.size() && insts_[i].alive && !insts_[i].ready) Ready(i);
}

void GenerationNode::Stepped(double now, size_t i, size_t l, const std::vector<int64_t>& tokens) {
  now_ = std::max(now_, now);
  if (i >= insts_.size() || !insts_[i].alive || l >= insts_[i].lanes.size() || !insts_[i].lanes[l].busy) return;
  StepDone(i, l, tokens);
}

void GenerationNode::Lost(double now, size_t i, std::string_view reason) {
  now_ = std::max(now_, now);
  if (i >= insts_.size() || !insts_[i].alive) return;
  std::vector<uint64_t> its;
  for (const auto& [id, q] : seqs_) {
    if (q.inst == i) its.push_back(id);
  }
  std::sort(its.begin(), its.end());
  for (uint64_t id : its) End(id, reason);
  Release(i);
}

void GenerationNode::IdleCheck(size_t i, uint64_t stamp) {
  const Inst& inst = insts_[i];
  if (!inst.alive || stamp != inst.idle_stamp || !inst.Idle()) return;
  Release(i);
}

// Instance `i` gives its slices back. Then functions with sequences waiting for an instance may start one, and a
// pipeline that a freed slice now holds alone migrates back to it.
void GenerationNode::Release(size_t i) {
  Inst& inst = insts_[i];
  inst.alive = false;
  Fn& fn = fns_[inst.fn];
  for (const Lane& l : inst.lanes) fn.stats.preemptions += static_cast<int64_t>(l.batcher.preemptions());
  std::erase(fn.instances, i);
  fn.engine->Release(i);
  for (const policy::PlanStage& st : inst.stages) lease_.Give(st.slice);
  SlicesFreed(now_);
}

void GenerationNode::SlicesFreed(double now) {
  now_ = std::max(now_, now);
  for (size_t f = 0; f < fns_.size(); ++f) {
    if (!fns_[f].pending.empty()) ScaleOut(f);
  }
  if (options_.migrate_back && options_.policy == GenPolicy::kFluidFaaS) MigrateBack();
}

// The design's migration, for generation: a pipeline whose function a free slice now serves alone gets a
// single-slice instance there (loaded cold), and the pipeline drains: it takes no new sequence and is released when
// its own have finished. Live sequences finish where they are rather than moving their caches: a sequence lasts
// seconds, and its cache is spread over the pipeline's stages.
void GenerationNode::MigrateBack() {
  for (size_t f = 0; f < fns_.size(); ++f) {
    for (size_t i : std::vector<size_t>(fns_[f].instances)) {
      if (insts_[i].draining || insts_[i].stages.size() < 2) continue;
      if (!ScaleOut(f, /*stages=*/1)) break;  // no single slice serves it now
      ++fns_[f].stats.migrations;
      insts_[i].draining = true;
      if (insts_[i].Idle()) Release(i);
    }
  }
}

// Whether function `f` could start an instance if instance `i`'s slices were free too.
bool GenerationNode::FreeingHelps(size_t i, size_t f) const {
  std::vector<policy::FreeSlice> free;
  for (size_t s = 0; s < slices_.size(); ++s) {
    const auto& st = insts_[i].stages;
    const bool its = std::any_of(st.begin(), st.end(), [s](const policy::PlanStage& p) { return p.slice == s; });
    if (!its && !lease_.IsFree(s)) continue;
    const policy::ClusterSlice& c = slices_[s];
    free.push_back({.id = c.id, .gpu = c.gpu, .kind = c.kind, .free_mib = c.kind.profile->memory_mib});
  }
  return fns_[f].placer->Place(free, max_stages()).ok();
}

// A function with sequences waiting for an instance that idle instance `i`'s slices would let start.
std::optional<size_t> GenerationNode::WaitingFor(size_t i) const {
  if (!options_.displace || options_.policy != GenPolicy::kFluidFaaS) return std::nullopt;
  for (size_t f = 0; f < fns_.size(); ++f) {
    if (f != insts_[i].fn && !fns_[f].pending.empty() && FreeingHelps(i, f)) return f;
  }
  return std::nullopt;
}

int64_t GenerationNode::WarmBytes() const {
  int64_t n = 0;
  for (const Fn& fn : fns_) {
    if (fn.warm_until >= now_) n += fn.costs->WeightBytes(0, fn.costs->spec().blocks.size() - 1);
  }
  return n;
}

// Idle instance `i` gives its slices up; its weights stay warm in host memory while there is room.
void GenerationNode::Displace(size_t i) {
  Fn& fn = fns_[insts_[i].fn];
  ++fn.stats.displaced;
  const int64_t bytes = fn.costs->WeightBytes(0, fn.costs->spec().blocks.size() - 1);
  if (fn.warm_until >= now_ || WarmBytes() + bytes <= options_.warm_host_bytes) {
    fn.warm_until = std::max(fn.warm_until, now_ + options_.keep_alive_s);
  }
  Release(i);  // the waiting function starts on the slices
}

// Function `f`'s sequences wait for slices: the longest-idle instance whose slices would let it start gives them up;
// if none is idle, an instance that prompt routing started drains.
bool GenerationNode::DisplaceFor(size_t f) {
  if (options_.policy != GenPolicy::kFluidFaaS) return false;
  std::optional<size_t> victim;
  for (size_t g = 0; g < fns_.size() && options_.displace; ++g) {
    if (g == f) continue;
    for (size_t i : fns_[g].instances) {
      const Inst& inst = insts_[i];
      if (!inst.ready || inst.draining || !inst.Idle() || !FreeingHelps(i, f)) continue;
      if (!victim || inst.idle_since < insts_[*victim].idle_since) victim = i;
    }
  }
  if (victim) {
    Displace(*victim);
    return true;
  }
  // None idle: an instance that prompt routing started drains (it takes no new sequence, and gives its slices up
  // once its own have finished), so that a function with none does not wait behind another's extra.
  for (size_t g = 0; g < fns_.size(); ++g) {
    if (g == f) continue;
    for (size_t i : fns_[g].instances) {
      Inst& inst = insts_[i];
      if (!inst.for_prompts || inst.draining || !FreeingHelps(i, f)) continue;
      inst.draining = true;
      if (inst.Idle()) Release(i);
      return true;
    }
  }
  return false;
}

GenInstanceStats GenerationNode::Stats(size_t f) const {
  GenInstanceStats s = fns_[f].stats;
  for (size_t i : fns_[f].instances) {
    for (const Lane& l : insts_[i].lanes) s.preemptions += static_cast<int64_t>(l.batcher.preemptions());
  }
  return s;
}

std::vector<GenInstanceView> GenerationNode::Instances() const {
  std::vector<GenInstanceView> out;
  for (const Inst& inst : insts_) {
    if (!inst.alive) continue;
    GenInstanceView v{.function = inst.fn, .ready = inst.ready, .draining = inst.draining, .sequences = inst.Load()};
    for (const policy::PlanStage& st : inst.stages) v.slices.push_back(st.slice);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace fluidfaas::carrier
