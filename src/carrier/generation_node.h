// GenerationNode: language-model functions served on a node's MIG slices, written once for the generation
// simulator (sim/generation.h) and the node daemon.
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
//     fluidfaas also routes by prompt (`prompt_routing`, the design's urgency routing for the TTFT objective): a
//     sequence goes to the least loaded of the instances whose slices prefill its prompt within the objective,
//     and if none does, an instance starts on the smallest free single slice that does (an extra, which drains
//     when a function without an instance waits for its slices);
//   - exclusive: single slices only, the same smallest-adequate rule: one engine per slice with continuous
//     batching and a keep-alive, what an operator running vLLM per MIG slice deploys; routed by load alone.
// Both scale out alike: a function gets another instance when a sequence routed to its least loaded one leaves
// that one with more sequences than the design batch its placement was checked for, or short of cache for those
// waiting, and the free slices allow one; on a single slice while it has an instance on one (a pipeline is for a
// function no free slice holds alone). `fit_longest_prompt` (either policy) places a new instance first on the
// smallest single slice that also prefills the function's longest prompt within its TTFT objective.
//
// fluidfaas also displaces idle instances (the design's eviction to host memory, for generation): when a function
// has sequences waiting for an instance and another function's instance holds, idle (no sequence), slices that would
// let one start, that instance gives them up, the longest idle first. Its weights stay in host memory (no KV: it
// has no sequence) until its keep-alive would have ended, within `warm_host_bytes`; its function's next instance
// then loads by a host-to-device copy instead of a cold start. An instance is displaced when it goes idle if a
// waiting function needs its slices, or when such a function's sequence arrives.
//
// The node's slices may be shared with another tenant (the daemon's single-pass scheduler): a SliceLease says
// which slices are free, and hears which ones an instance takes and gives back.
//
// Every sequence ends exactly once (Listener::Ended): completed, cancelled by its caller, refused with a reason
// (fits_no_slice: no placement even on the empty node; too_long: longer than any instance's cache), or failed with
// its instance (Lost: the engine's reason, e.g. a worker that died).
//
// What carries out an instance is its function's engine (GenEngine): the node decides, the engine loads, steps and
// frees, and reports back (Loaded, Stepped, Lost). The node's own engine, the default, prices loads and steps by the
// latency model and reports them when due (the simulator, the daemon's zoo functions); the daemon's worker engine
// runs a TorchScript function's stages in the slices' workers (daemon/gen_engine.h).
//
// Thread safety: none; one thread drives it. It reads no clock and does no I/O: every call carries `now`, in
// seconds on the caller's timeline.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "model/generation.h"
#include "policy/continuous_batcher.h"
#include "policy/generative_placer.h"
#include "policy/scheduler.h"

namespace fluidfaas::carrier {

enum class GenPolicy { kFluidFaaS, kExclusive };
std::string ToString(GenPolicy p);
Result<GenPolicy> ParseGenPolicy(const std::string& text);

struct GenNodeOptions {
  GenPolicy policy = GenPolicy::kFluidFaaS;
  double keep_alive_s = 60;
  int max_batch = 32;        // sequences per step
  int design_batch = 8;      // sequences an instance's cache must hold (placement)
  int max_stages = 4;        // pipelines (fluidfaas); exclusive uses 1
  bool migrate_back = true;  // fluidfaas: a pipeline moves to one slice when one frees (exclusive has none)
  // fluidfaas: an idle instance gives its slices to another function that waits for them (displacement), its
  // weights kept warm in host memory until its keep-alive would have ended (exclusive has none)
  bool displace = true;
  // fluidfaas: a prompt that the function's instances could not prefill within its TTFT objective goes to one that
  // can, started on a larger free slice if none runs (prompt-aware routing; exclusive routes by load alone)
  bool prompt_routing = true;
  // Every policy: a new instance goes first to the smallest single slice that also prefills the function's longest
  // prompt within its TTFT objective, and only if none is free to the smallest that meets the TPOT objective
  bool fit_longest_prompt = false;
  int64_t warm_host_bytes = int64_t{128} << 30;  // host memory for those warm copies
  int prefill_chunk = 0;  // chunked prefill's token budget per step (policy/continuous_batcher.h); 0: off
};
// InvalidArgument when a batch or stage count is < 1, or a time is negative or not finite.
Status Validate(const GenNodeOptions& o);

// A generating function as the node serves it.
struct GenSpec {
  std::string name;
  std::string model;       // a zoo model that generates
  double tpot_slo_ms = 0;  // > 0: the placement's objective
  double ttft_slo_ms = 0;  // >= 0: the time to first token it is judged by (0: none; prompt routing then off)
  int design_context = 0;  // tokens (prompt and output) its instances' caches are sized for, < the model's positions
  int max_prompt = 1;      // the longest prompt its placement must prefill, >= 1
  double time_scale = 1;   // its steps and loads take this times the modelled time (the daemon's emulation), > 0
};

// Which of the node's slices the generation node may take. The simulator's gives it every slice; the daemon's
// shares them with the single-pass scheduler.
class SliceLease {
 public:
  virtual ~SliceLease() = default;
  virtual bool IsFree(size_t slice) const = 0;
  virtual void Take(size_t slice) = 0;  // an instance starts on it
  virtual void Give(size_t slice) = 0;  // ... and has left it
};

class GenListener {
 public:
  virtual ~GenListener() = default;
  // Sequence `seq` generated its token number `index` (0: the first, from its prefill) at `t`: `token`, the id its
  // engine computed, or -1 from an engine that prices steps without computing them.
  virtual void Token(uint64_t seq, int index, double t, int64_t token) = 0;
  // It ended: `refusal` empty when it completed, else "cancelled", "fits_no_slice", "too_long" or the reason its
  // instance was lost.
  virtual void Ended(uint64_t seq, std::string_view refusal, double t) = 0;
};

// An instance as its engine starts it.
struct GenLaunch {
  size_t function = 0;
  std::vector<policy::PlanStage> stages;  // slice: an index into the node's slices
  size_t lanes = 1;                       // steps in flight at once, one per lane
  int64_t kv_blocks_per_lane = 0;         // the cache its lanes' batchers keep the books of
  int block_tokens = 16;
  double modelled_load_s = 0;  // the load cost model's time for it (the function's time scale applied)
};

// What carries out a function's instances. Each call returns at once; the engine reports back through the node
// (Loaded, Stepped, Lost), on the node's thread, never from inside a call.
class GenEngine {
 public:
  virtual ~GenEngine() = default;
  virtual void Load(size_t inst, const GenLaunch& launch) = 0;
  // Lane `lane` of the instance runs `step` (after freeing its `preempted`); Stepped reports it.
  virtual void Step(size_t inst, size_t lane, const policy::GenStep& step) = 0;
  // Sequences that left the instance (finished or cancelled): what they held is free.
  virtual void Free(size_t inst, const std::vector<uint64_t>& sequences) = 0;
  // The instance gave its slices back (idle, displaced, drained, or lost).
  virtual void Release(size_t inst) = 0;
};

// What happened to a function's instances.
struct GenInstanceStats {
  int instances = 0;  // started
  int pipelined = 0;  // of which pipelines
  int max_stages = 0;
  int migrations = 0;     // pipelines moved back to one slice
  int displaced = 0;      // idle instances that gave their slices to another function
  int prompt_routed = 0;  // instances started for prompts the others could not prefill in time
  int warm_starts = 0;    // instances loaded from a warm copy in host memory
  int64_t preemptions = 0;
  std::vector<std::string> placements;  // each instance's slices, "0:2g.20gb@0+0:2g.20gb@2", and its start time
};

// One live instance, for a node's report.
struct GenInstanceView {
  size_t function = 0;
  std::vector<size_t> slices;
  bool ready = false;
  bool draining = false;
  size_t sequences = 0;  // waiting and running
};

class GenerationNode {
 public:
  // `slices` are the node's; the lease and the listener must outlive the node.
  GenerationNode(std::vector<policy::ClusterSlice> slices, GenNodeOptions options, SliceLease& lease,
                 GenListener& listener);
  GenerationNode(const GenerationNode&) = delete;
  GenerationNode& operator=(const GenerationNode&) = delete;

  // Adds a function; its index. InvalidArgument when its model does not generate or the spec is out of range.
  // `costs`: its model's (none: the zoo's spec.model); `engine`: what runs its instances (none: the node's own,
  // which prices them by the latency model). The engine must outlive the node.
  Result<size_t> AddFunction(const GenSpec& spec, std::optional<model::GenerationCosts> costs = std::nullopt,
                             GenEngine* engine = nullptr);
  size_t functions() const { return fns_.size(); }
  const GenSpec& spec(size_t f) const { return fns_[f].spec; }
  const model::GenerationCosts& costs(size_t f) const { return *fns_[f].costs; }

  // A sequence arrives; its id (0, 1, 2, ... in arrival order). It may end at once (Ended, inside this call).
  // REQUIRES: f < functions(), prompt >= 1, output >= 1.
  uint64_t Arrive(double now, size_t f, int prompt, int output);
  // Its caller gave up on it: it ends "cancelled" now, and its cache is free for the next step. False when it
  // has ended.
  bool Cancel(double now, uint64_t seq);

  // When the next internal event is due (a load finished, a step done, a keep-alive run out), if any.
  std::optional<double> NextDue() const;
  // Runs every internal event due at or before `now`, in order.
  void Advance(double now);
  // The lease freed slices (another tenant gave them back): waiting functions may start instances, and pipelines
  // may migrate.
  void SlicesFreed(double now);

  // An engine's reports. Instance `inst` has loaded (ok), or could not (Lost follows from the caller).
  void Loaded(double now, size_t inst);
  // Its lane `lane` ran the step it was given: `tokens`, one per sequence that yielded a token (the step's
  // sequences, then its chunks that end a prefill), or empty from an engine that computes none.
  void Stepped(double now, size_t inst, size_t lane, const std::vector<int64_t>& tokens);
  // It is gone (a worker died, a step failed): each of its sequences ends with `reason`, its slices are free.
  void Lost(double now, size_t inst, std::string_view reason);

  GenInstanceStats Stats(size_t f) const;
  std::vector<GenInstanceView> Instances() const;
  size_t open_sequences() const { return seqs_.size(); }
  uint64_t next_sequence() const { return next_seq_; }  // the id the next Arrive gives

 private:
  // The node's own engine: loads and steps priced by the latency model, reported when due.
  class Modelled final : public GenEngine {
   public:
    explicit Modelled(GenerationNode& node) : node_(node) {}
    void Load(size_t inst, const GenLaunch& launch) override;
    void Step(size_t inst, size_t lane, const policy::GenStep& step) override;
    void Free(size_t, const std::vector<uint64_t>&) override {}
    void Release(size_t) override {}

   private:
    GenerationNode& node_;
  };
  struct Fn {
    GenSpec spec;
    GenEngine* engine = nullptr;
    std::unique_ptr<model::GenerationCosts> costs;
    std::unique_ptr<policy::GenerativePlacer> placer;
    bool placeable = false;        // on the empty node
    double warm_until = -1;        // a warm copy of its weights is in host memory until then
    std::deque<uint64_t> pending;  // sequences waiting for an instance
    std::vector<size_t> instances;
    GenInstanceStats stats;
  };
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
    bool ready = false;
    bool alive = true;
    bool draining = false;     // migrated away: takes no new sequence, released once its own have finished
    bool for_prompts = false;  // started by prompt routing: it drains when a function waits for its slices
    uint64_t idle_stamp = 0;
    double idle_since = 0;  // when it last had no sequence
    size_t Load() const;
    bool Idle() const;
  };
  struct Seq {
    size_t fn = 0;
    int prompt = 0, output = 0;
    int generated = 0;
    std::optional<size_t> inst;  // where it was enqueued (none: pending an instance)
    size_t lane = 0;
  };
  struct Event {
    double t;
    uint64_t order;
    enum Kind { kReady, kStepDone, kIdleCheck } kind;
    size_t id;
    uint64_t stamp;
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : order > o.order; }
  };

  int max_stages() const { return options_.policy == GenPolicy::kExclusive ? 1 : options_.max_stages; }
  std::pair<std::vector<policy::FreeSlice>, std::vector<size_t>> Free(bool everything) const;
  void Push(double t, Event::Kind kind, size_t id, uint64_t stamp = 0);
  void End(uint64_t seq, std::string_view refusal);
  void Route(uint64_t id);
  // Whether any function has sequences waiting for an instance.
  bool Waiting() const;
  // Whether function `f` has a live instance on one slice (not draining).
  bool HasSingleSlice(size_t f) const;
  // A new instance of `f` on the free slices, taking its pending sequences: of at most `stages` stages (0: the
  // policy's); with `prompt` > 0, on one slice that prefills that many tokens within the TTFT objective. False
  // when none fits now.
  bool ScaleOut(size_t f, int stages = 0, int prompt = 0);
  // Modelled milliseconds to prefill one prompt of `prompt` tokens on instance `i`'s stages.
  double PrefillMs(const Inst& inst, int prompt) const;
  // An extra instance of `f` on a single free slice that prefills `prompt` tokens in time, unless a function waits
  // for its first instance; false when none starts.
  bool StartForPrompt(size_t f, int prompt);
  // Prompt routing: the instances of the sequence's function that prefill it within its TTFT objective, started
  // for it if none does and a free slice would; empty when routing by load alone.
  std::vector<size_t> PromptFits(uint64_t id);
  void Enqueue(size_t inst, size_t lane, uint64_t seq);
  void Ready(size_t i);
  void Kick(size_t i, size_t l);
  double StageMs(const Inst& inst, const policy::GenStep& step, size_t k) const;
  double HopMs(const Inst& inst, const policy::GenStep& step, size_t k) const;
  void StepDone(size_t i, size_t l, const std::vector<int64_t>& tokens);
  GenEngine& EngineOf(size_t i) { return *fns_[insts_[i].fn].engine; }
  void IdleCheck(size_t i, uint64_t stamp);
  void Release(size_t i);
  void MigrateBack();
  bool FreeingHelps(size_t i, size_t f) const;
  std::optional<size_t> WaitingFor(size_t i) const;
  void Displace(size_t i);
  bool DisplaceFor(size_t f);
  int64_t WarmBytes() const;
  static size_t LeastLoadedLane(const Inst& inst);

  std::vector<policy::ClusterSlice> slices_;
  std::vector<policy::SliceKind> kinds_;
  GenNodeOptions options_;
  SliceLease& lease_;
  GenListener& listener_;
  Modelled modelled_{*this};
  std::vector<Fn> fns_;
  std::vector<Inst> insts_;
  std::unordered_map<uint64_t, Seq> seqs_;  // open sequences
  uint64_t next_seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t order_ = 0;
  double now_ = 0;
};

}  // namespace fluidfaas::carrier
