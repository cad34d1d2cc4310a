// Generative functions on the node: the GenerationNode (carrier/generation_node.h, the one sim-gen runs) driven on
// the control thread at the clock's time, and the node's slices leased to it from the single-pass scheduler's.
//
// The lease: a slice is free for a generative instance when the generation node does not hold it and no
// single-pass instance is on it (loading, hot, time-sharing or draining: an evicted one has left it). Taking it
// tells the scheduler the slice was taken by another tenant (SliceLost, kSliceTaken: nothing of its own is there);
// giving it back, that it is free again (OnSliceFreed). Generative instances wait for slices the single-pass side
// holds until it lets them go, and are retried each tick.
//
// Engines: a zoo function's instances run on the node's own engine, whose tokens are deterministic: a stream of
// words drawn from the prompt's hash, byte by byte (the byte-level tokenizer's ids), at the times the latency model
// gives each step (the function's time scale applied). A repository's TorchScript generative function runs in the
// workers (WorkerGenEngine, gen_engine.h): its steps end when its stages have run them, and its tokens are the
// model's.
#include "model/generation.h"

#include <array>

#include "common/splitmix.h"
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

struct Controller::Impl::GenBridge final : carrier::SliceLease, carrier::GenListener {
  explicit GenBridge(Impl& i) : impl(i) {}
  Impl& impl;

  bool IsFree(size_t slice) const override {
    if (impl.gen_taken[slice]) return false;
    for (const auto& [id, inst] : impl.carrier->instances()) {
      using S = policy::InstanceState;
      if (inst.state == S::kWarm || inst.state == S::kCold || inst.state == S::kRetired) continue;
      for (const policy::StagePlacement& st : inst.stages) {
        if (st.slice == slice) return false;
      }
    }
    return true;
  }
  void Take(size_t slice) override {
    impl.gen_taken[slice] = true;
    impl.carrier->SliceLost(slice, Reason::kSliceTaken, "a generative instance took it", impl.clock->Now());
    impl.CountViolations();
  }
  void Give(size_t slice) override {
    impl.gen_taken[slice] = false;
    impl.carrier->SliceFreed(slice, impl.clock->Now());
    impl.CountViolations();
  }
  void Token(uint64_t seq, int index, double, int64_t token) override { impl.GenToken(seq, index, token); }
  void Ended(uint64_t seq, std::string_view refusal, double) override { impl.GenEnded(seq, refusal); }
};

namespace {

// The first draw of a SplitMix64 stream seeded with `x`.
uint64_t Draw(uint64_t x) {
  return SplitMix64(x).Next();
}

constexpr std::array<std::string_view, 32> kWords = {
    "the",   "a",     "slice", "model",  "token", "cache", "stage", "batch", "node",    "serves", "fast",
    "light", "warm",  "cold",  "pipe",   "gpu",   "block", "step",  "time",  "request", "text",   "memory",
    "host",  "share", "queue", "answer", "idle",  "hot",   "load",  "split", "bytes",   "flows"};

// Token `index` (a byte) of the emulated executor's text for a prompt: words from the prompt's seed, each
// followed by a space.
int EmulatedToken(uint64_t seed, int index) {
  uint64_t word = 0;
  int at = 0;
  for (;;) {
    const std::string_view w = kWords[Draw(seed + word) % kWords.size()];
    if (index < at + static_cast<int>(w.size())) return static_cast<unsigned char>(w[index - at]);
    at += static_cast<int>(w.size());
    if (index == at) return ' ';
    ++at;
    ++word;
  }
}

}  // namespace

void Controller::Impl::StartGeneration() {
  gen_bridge = std::make_shared<GenBridge>(*this);
  gen_taken.assign(cluster.size(), false);
  gen = std::make_unique<carrier::GenerationNode>(cluster, carrier::GenNodeOptions{}, *gen_bridge, *gen_bridge);
  gen_engine = std::make_unique<WorkerGenEngine>(
      *runtime, [this](std::function<void()> task) { Post(std::move(task)); },
      [this] { return GenSeconds(clock->Now()); });
  gen_engine->Attach(gen.get());
}

bool Controller::Impl::GenRuntimeEvent(runtime::RuntimeEvent& e) {
  return std::visit(
      [this](auto& event) -> bool {
        using T = std::decay_t<decltype(event)>;
        if constexpr (std::is_same_v<T, runtime::WorkerLost>) {
          for (uint64_t id : event.instances) {
            if (WorkerGenEngine::Owns(id)) gen_engine->OnInstanceLost(id, event.detail);
          }
          // A slice the generation node holds is the scheduler's only once given back.
          return event.slice < gen_taken.size() && gen_taken[event.slice];
        } else {
          if (!WorkerGenEngine::Owns(event.instance)) return false;
          if constexpr (std::is_same_v<T, runtime::BatchCompleted>) gen_engine->OnBatchCompleted(event);
          if constexpr (std::is_same_v<T, runtime::BatchFailed>) gen_engine->OnBatchFailed(event);
          if constexpr (std::is_same_v<T, runtime::LoadDone>) gen_engine->OnLoadDone(event);
          return true;  // StageReleased: nothing more to do
        }
      },
      e);
}

std::optional<TimePoint> Controller::Impl::GenNextDue() const {
  const std::optional<double> due = gen->NextDue();
  if (!due) return std::nullopt;
  return AtMicros(static_cast<int64_t>(std::ceil(*due * 1e6)));
}

// A generative function's spec for the generation node, and its description: a zoo model on the node's own
// engine, or a repository directory's TorchScript decoder run in the workers.
// NOLINTNEXTLINE(readability-make-member-function-const): it adds the function to the node and the engine it owns
Result<Controller::Impl::GenFunction> Controller::Impl::AddGenerative(const FunctionConfig& c,
                                                                      const InspectedGenerative* directory) {
  std::optional<model::GenerationCosts> costs;
  if (directory != nullptr) {
    const model::GenerativeManifest& m = directory->manifest;
    const model::DecoderShape shape{.name = c.name,
                                    .d = m.d_model,
                                    .heads = m.heads,
                                    .ffn = m.ffn,
                                    .layers = static_cast<int64_t>(m.blocks.size()) - 2,
                                    .vocab = m.vocab,
                                    .max_positions = m.max_positions,
                                    .dtype = model::DType::kFp32};
    FF_ASSIGN_OR_RETURN(costs, model::GenerationCosts::Build(shape, latency));
  } else {
    if (!model::IsGenerativeZooModel(c.model)) {
      return Status::InvalidArgument("'" + Printable(c.model) +
                                     "' does not generate (generative zoo models: fluidfaas zoo list, 'generates')");
    }
    FF_ASSIGN_OR_RETURN(costs, model::GenerationCosts::Build(c.model));
  }
  // The design the placement checks, as sim-gen's presets have it: prompts up to 1,024 tokens (half the model's
  // positions at most), 576 on average, and a quarter of that again generated.
  const int positions = costs->max_positions();
  const int max_prompt = std::min(1024, positions / 2);
  const int mean_prompt = std::min(576, max_prompt);
  const int design_context = std::min(mean_prompt + std::max(1, mean_prompt / 4), positions - 1);
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  const gpu::MigProfile& whole = *a100.FindProfile("7g.80gb");
  const size_t last = costs->spec().blocks.size() - 1;
  const double manifest_ttft = directory != nullptr ? directory->manifest.slo_ms : 0;
  const double manifest_tpot = directory != nullptr ? directory->manifest.tpot_ms : 0;
  const double ttft = c.slo_ms > 0        ? c.slo_ms
                      : manifest_ttft > 0 ? manifest_ttft
                                          : kDefaultSloScale * costs->PrefillMs(0, last, a100, whole, mean_prompt, 1);
  const double tpot = c.tpot_ms > 0 ? c.tpot_ms
                      : manifest_tpot > 0
                          ? manifest_tpot
                          : kDefaultSloScale * costs->DecodeStepMs(0, last, a100, whole, 1, mean_prompt + 72.0);
  const double time_scale = directory != nullptr ? 1.0 : c.time_scale;  // real blocks run at their own speed
  FF_ASSIGN_OR_RETURN(const size_t index,
                      gen->AddFunction({.name = c.name,
                                        .model = directory != nullptr ? directory->manifest.name : c.model,
                                        .tpot_slo_ms = tpot,
                                        .ttft_slo_ms = ttft,
                                        .design_context = design_context,
                                        .max_prompt = max_prompt,
                                        .time_scale = time_scale},
                                       std::move(costs), directory != nullptr ? gen_engine.get() : nullptr));
  if (directory != nullptr) {
    gen_engine->AddFunction(index, {.name = c.name, .dir = directory->dir, .manifest = directory->manifest});
  }
  FunctionInfo info{.name = c.name,
                    .model = directory != nullptr ? "" : c.model,
                    .directory = directory != nullptr ? directory->name : "",
                    .slo_ms = ttft,
                    .max_batch = carrier::GenNodeOptions{}.max_batch,
                    .time_scale = time_scale,
                    .datatype = "BYTES",
                    .input_shape = {-1},
                    .output_shape = {-1},
                    .generative = true,
                    .tpot_ms = tpot,
                    .max_positions = positions,
                    .design_context = design_context,
                    .max_prompt = max_prompt,
                    .tokenizer = directory != nullptr && directory->tokenizer != nullptr
                                     ? directory->tokenizer
                                     : model::Tokenizer::SharedBytes()};
  return GenFunction{.index = index,
                     .info = std::make_shared<const FunctionInfo>(std::move(info)),
                     .in_workers = directory != nullptr};
}

uint64_t Controller::Generate(const std::string& function, const std::vector<int>& prompt, int max_tokens,
                              GenerateCallbacks callbacks) {
  Impl& impl = *impl_;
  Impl::Generation g;
  g.handle = impl.next_gen_handle.fetch_add(1);
  g.name = function;
  g.prompt_tokens = static_cast<int>(prompt.size());
  g.callbacks = std::move(callbacks);
  GenerateEnd refusal{.outcome = Outcome::kRejected, .prompt_tokens = g.prompt_tokens};
  {
    MutexLock lock(impl.mu);
    const auto it = impl.gen_functions.find(function);
    const auto single = impl.functions.find(function);
    if (it == impl.gen_functions.end() || it->second.removed) {
      const bool other = single != impl.functions.end() && !single->second.removed;
      refusal.code = other ? "not_generative" : std::string(policy::ToString(Reason::kUnknownFunction));
      refusal.detail = other ? "'" + function + "' answers one forward pass (infer), not generate"
                             : "no generative function '" + function + "' is deployed";
    } else if (auto node = impl.NodeRefusal(/*input_bytes=*/0)) {
      std::tie(refusal.code, refusal.detail) = std::move(*node);
    } else if (prompt.empty() || max_tokens < 1 ||
               static_cast<int64_t>(prompt.size()) + max_tokens > it->second.info->max_positions) {
      refusal.code = "too_long";
      refusal.detail = "a prompt of " + std::to_string(prompt.size()) + " tokens and " + std::to_string(max_tokens) +
                       " to generate: '" + function + "' takes 1 or more of each, " +
                       std::to_string(it->second.info->max_positions) + " in all";
    } else {
      ++impl.open;
      g.function = it->second.index;
      g.arrival = impl.clock->Now();
      uint64_t seed = 0x5eed;
      for (int t : prompt) seed = Draw(seed ^ static_cast<uint64_t>(t));
      g.seed = seed;
      if (it->second.in_workers) g.prompt.assign(prompt.begin(), prompt.end());
      const uint64_t handle = g.handle;
      impl.PostLocked([&impl, g = std::move(g), n = static_cast<int>(prompt.size()), max_tokens]() mutable {
        impl.GenArrive(std::move(g), n, max_tokens);
      });
      return handle;
    }
    ++impl.ends[{impl.gen_functions.contains(function) || single != impl.functions.end() ? function : "unknown",
                 "rejected", refusal.code}];
  }
  if (g.callbacks.end) g.callbacks.end(std::move(refusal));
  return g.handle;
}

void Controller::Stop(uint64_t handle, bool completed) {
  impl_->Post([this, handle, completed] { impl_->GenStop(handle, completed); });
}

void Controller::Impl::GenArrive(Generation g, int prompt_tokens, int max_tokens) {
  const double now = GenSeconds(clock->Now());
  gen->Advance(now);
  // Registered under the id the node gives it before it arrives: a refusal ends it inside Arrive.
  const uint64_t seq = gen->next_sequence();
  const size_t f = g.function;
  if (!g.prompt.empty()) gen_engine->SetPrompt(seq, std::move(g.prompt));
  gen_sequences[g.handle] = seq;
  generations.emplace(seq, std::move(g));
  gen->Arrive(now, f, prompt_tokens, max_tokens);
}

void Controller::Impl::GenStop(uint64_t handle, bool completed) {
  const auto it = gen_sequences.find(handle);
  if (it == gen_sequences.end()) return;
  auto g = generations.find(it->second);
  if (g == generations.end()) return;
  g->second.stop_completes = completed;
  gen->Cancel(GenSeconds(clock->Now()), it->second);
}

void Controller::Impl::GenToken(uint64_t seq, int index, int64_t token) {
  auto it = generations.find(seq);
  if (it == generations.end()) return;
  Generation& g = it->second;
  if (!g.first) g.first = clock->Now();
  ++g.generated;
  if (token < 0) token = EmulatedToken(g.seed, index);  // the node's own engine computes none
  if (g.callbacks.token) g.callbacks.token(static_cast<int>(token), index);
}

void Controller::Impl::GenEnded(uint64_t seq, std::string_view refusal) {
  auto it = generations.find(seq);
  if (it == generations.end()) return;
  Generation g = std::move(it->second);
  generations.erase(it);
  gen_sequences.erase(g.handle);
  GenerateEnd end;
  if (refusal.empty() || (refusal == "cancelled" && g.stop_completes)) {
    end.outcome = Outcome::kCompleted;
  } else if (refusal == "cancelled") {
    end.outcome = Outcome::kFailed;
    end.code = "cancelled";
    end.detail = "the caller went away";
  } else if (refusal == "fits_no_slice" || refusal == "too_long") {
    end.outcome = Outcome::kRejected;
    end.code = std::string(refusal);
    end.detail = refusal == "fits_no_slice" ? "no slice of this node, nor a pipeline over them, holds the model"
                                            : "longer than any instance's cache holds";
  } else {
    // Its instance was lost: "worker_lost: ...", "step_failed: ...", "load_failed: ..." (gen_engine.h).
    const size_t colon = refusal.find(':');
    end.outcome = Outcome::kFailed;
    end.code = std::string(refusal.substr(0, colon));
    std::string_view detail = colon == std::string_view::npos ? refusal : refusal.substr(colon + 1);
    while (!detail.empty() && detail.front() == ' ') detail.remove_prefix(1);
    end.detail = std::string(detail);
  }
  FinishGeneration(g, std::move(end));
}

void Controller::Impl::FinishGeneration(Generation& g, GenerateEnd end) {
  const TimePoint now = clock->Now();
  end.prompt_tokens = g.prompt_tokens;
  end.generated = g.generated;
  end.total_ms = ToMillis(now - g.arrival);
  if (g.first) end.ttft_ms = ToMillis(*g.first - g.arrival);
  {
    MutexLock lock(mu);
    ++ends[{g.name, std::string(daemon::ToString(end.outcome)), end.code}];
    gen_tokens[g.name] += static_cast<uint64_t>(g.generated);
    if (g.first) {
      ttft_hist[g.name].Observe(end.ttft_ms / 1000.0);
      if (g.generated > 1) tpot_hist[g.name].Observe(ToMillis(now - *g.first) / (g.generated - 1) / 1000.0);
    }
    --open;
    if (open == 0) idle.notify_all();
  }
  if (g.callbacks.end) g.callbacks.end(std::move(end));
}

void Controller::Impl::CloseGenerations() {
  std::vector<uint64_t> open_ids;
  for (const auto& [seq, g] : generations) open_ids.push_back(seq);
  for (uint64_t seq : open_ids) {
    Generation g = std::move(generations.at(seq));
    generations.erase(seq);
    FinishGeneration(
        g, {.outcome = Outcome::kFailed, .code = "shutdown", .detail = "the node stopped before the generation ended"});
  }
  gen_sequences.clear();
}

}  // namespace fluidfaas::daemon
