// The worker engine against a scripted runtime whose "worker" keeps a cache per sequence, as a stage does: it
// refuses a prefill of a sequence it still holds and a decode of one it does not. Its model is a function of the
// whole sequence (the sum of its tokens), so a token is right only when the engine sent the prompt, every
// generated token, and each decode's last token in order.
#include "daemon/gen_engine.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <numeric>

#include "gpu/topology.h"
#include "model/block.h"
#include "runtime/generative_step.h"

namespace fluidfaas::daemon {
namespace {

using runtime::GenStepMessage;

class ScriptedRuntime final : public runtime::NodeMechanism {
 public:
  size_t ring_slots = 4;
  std::vector<runtime::PipelineSpec> launched;
  std::deque<std::pair<uint64_t, GenStepMessage>> ring;  // (message id, message) in flight, in order
  std::vector<GenStepMessage::Kind> kinds;               // every message taken, in order
  std::vector<uint64_t> evicted;
  std::map<uint64_t, std::vector<int64_t>> cache;  // the stage's caches: each sequence's tokens
  uint64_t instance = 0;
  bool fail_next = false;      // the stage refuses the next message
  bool refuse_submit = false;  // the runtime refuses submits (its worker restarting)

  Status Launch(const runtime::PipelineSpec& spec) override {
    launched.push_back(spec);
    instance = spec.instance;
    return Status::Ok();
  }
  Status Submit(uint64_t, uint64_t batch, std::span<const uint64_t>, const runtime::TensorView& input) override {
    if (refuse_submit) return Status::Unavailable("the slice's worker is restarting");
    if (ring.size() >= ring_slots) return Status::ResourceExhausted("ring full");
    auto m = runtime::DecodeStep(input.bytes);
    if (!m.ok()) return m.status();
    kinds.push_back(m->kind);
    ring.emplace_back(batch, std::move(*m));
    return Status::Ok();
  }
  Status Evict(uint64_t id, bool) override {
    evicted.push_back(id);
    return Status::Ok();
  }
  runtime::RuntimeStats Stats() const override { return {}; }

  // The stage runs the oldest message: a completion, or a failure when its cache disagrees.
  runtime::RuntimeEvent RunOne() {
    const uint64_t id = ring.front().first;
    const GenStepMessage m = std::move(ring.front().second);
    ring.pop_front();
    GenStepMessage out{.kind = m.kind, .sequences = m.sequences};
    const auto fail = [&](const std::string& why) {
      return runtime::RuntimeEvent(runtime::BatchFailed{instance, 0, id, {id}, why});
    };
    if (fail_next) {
      fail_next = false;
      return fail("refused");
    }
    if (m.kind == GenStepMessage::Kind::kFree) {
      for (uint64_t s : m.sequences) cache.erase(s);
    } else if (m.kind == GenStepMessage::Kind::kPrefill) {
      if (cache.contains(m.sequences[0])) return fail("sequence is prefilled");
      cache[m.sequences[0]] = m.tokens;
    } else {
      for (size_t k = 0; k < m.sequences.size(); ++k) {
        auto c = cache.find(m.sequences[k]);
        if (c == cache.end()) return fail("decode of an unknown sequence");
        c->second.push_back(m.tokens[k]);
      }
    }
    for (uint64_t s : m.kind == GenStepMessage::Kind::kFree ? std::vector<uint64_t>{} : m.sequences) {
      const auto& t = cache[s];
      out.tokens.push_back(std::accumulate(t.begin(), t.end(), int64_t{0}) % 251);
    }
    runtime::BatchCompleted done;
    done.instance = instance;
    done.batch = id;
    done.requests = {id};
    done.output = runtime::EncodeStep(out);
    return done;
  }
};

// What the model generates after `prompt`, `count` tokens.
std::vector<int64_t> Expected(std::vector<int64_t> seq, int count) {
  std::vector<int64_t> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(std::accumulate(seq.begin(), seq.end(), int64_t{0}) % 251);
    seq.push_back(out.back());
  }
  return out;
}

struct Harness : carrier::SliceLease, carrier::GenListener {
  ScriptedRuntime runtime;
  std::deque<std::function<void()>> posted;
  double now = 0;
  WorkerGenEngine engine{runtime, [this](std::function<void()> t) { posted.push_back(std::move(t)); },
                         [this] { return now; }};
  std::unique_ptr<carrier::GenerationNode> node;
  std::map<uint64_t, std::vector<int64_t>> tokens;
  std::map<uint64_t, std::vector<std::string>> ends;

  Harness() {
    const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
    const policy::ClusterSlice slice{"0:1g.10gb@6", 0, policy::SliceKind{&a100, a100.FindProfile("1g.10gb")}, true};
    node = std::make_unique<carrier::GenerationNode>(std::vector<policy::ClusterSlice>{slice},
                                                     carrier::GenNodeOptions{.keep_alive_s = 100}, *this, *this);
    engine.Attach(node.get());
    model::GenerativeManifest m{
        .name = "toy", .vocab = 256, .d_model = 32, .heads = 4, .ffn = 64, .max_positions = 256};
    auto costs = model::GenerationCosts::Build(model::DecoderShape{
        .name = "toy", .d = 32, .heads = 4, .ffn = 64, .layers = 4, .vocab = 256, .max_positions = 256});
    EXPECT_TRUE(costs.ok());
    auto f =
        node->AddFunction({.name = "toy", .model = "toy", .tpot_slo_ms = 50, .design_context = 160, .max_prompt = 128},
                          std::move(*costs), &engine);
    EXPECT_TRUE(f.ok()) << f.status().message();
    engine.AddFunction(*f, {.name = "toy", .dir = "/nowhere", .manifest = m});
  }
  uint64_t Arrive(const std::vector<int64_t>& prompt, int output) {
    const uint64_t seq = node->next_sequence();
    engine.SetPrompt(seq, prompt);
    return node->Arrive(now, 0, static_cast<int>(prompt.size()), output);
  }
  // Runs the stage and the posted reports until nothing is left.
  void Run() {
    while (!runtime.ring.empty() || !posted.empty()) {
      while (!posted.empty()) {
        auto t = std::move(posted.front());
        posted.pop_front();
        t();
      }
      if (runtime.ring.empty()) continue;
      now += 0.001;
      runtime::RuntimeEvent e = runtime.RunOne();
      if (auto* done = std::get_if<runtime::BatchCompleted>(&e)) engine.OnBatchCompleted(*done);
      if (auto* failed = std::get_if<runtime::BatchFailed>(&e)) engine.OnBatchFailed(*failed);
    }
  }

  bool taken = false;  // the one slice
  bool IsFree(size_t) const override { return !taken; }
  void Take(size_t) override { taken = true; }
  void Give(size_t) override { taken = false; }
  void Token(uint64_t seq, int, double, int64_t token) override { tokens[seq].push_back(token); }
  void Ended(uint64_t seq, std::string_view why, double) override { ends[seq].emplace_back(why); }
};

TEST(WorkerGenEngineTest, TwelveSequencesAtOnceGoThroughAFourSlotRingInOrderAndGenerateTheModelsTokens) {
  Harness h;
  std::vector<std::pair<uint64_t, std::vector<int64_t>>> seqs;
  seqs.emplace_back(h.Arrive({5, 6, 7}, 6), std::vector<int64_t>{5, 6, 7});
  EXPECT_EQ(h.runtime.launched[0].stages.at(0).spec.executor, "torchscript-generative");
  EXPECT_EQ(h.runtime.launched[0].stages.at(0).spec.kv_page_tokens, 16);
  for (int i = 1; i < 12; ++i) {
    std::vector<int64_t> p(static_cast<size_t>(i), i);
    seqs.emplace_back(h.Arrive(p, 4 + i), p);
  }
  ASSERT_EQ(h.runtime.launched.size(), 1u) << "one slice: one instance";
  h.engine.OnLoadDone({.instance = h.runtime.instance, .ok = true});
  // The first step prefills every waiting sequence: twelve messages through four slots.
  EXPECT_EQ(h.runtime.ring.size(), 4u);
  h.Run();
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto& [id, prompt] = seqs[i];
    EXPECT_EQ(h.ends[id], std::vector<std::string>{""}) << i;
    EXPECT_EQ(h.tokens[id], Expected(prompt, i == 0 ? 6 : 4 + static_cast<int>(i))) << "sequence " << i;
  }
  EXPECT_TRUE(h.runtime.cache.empty()) << "every finished sequence was freed in the stage";
  EXPECT_EQ(h.node->open_sequences(), 0u);
}

TEST(WorkerGenEngineTest, APreemptedSequenceIsFreedBeforeItsRecomputeAndAFailedStepEndsItsSequencesOnce) {
  Harness h;
  const uint64_t a = h.Arrive({1, 2, 3}, 50);
  h.engine.OnLoadDone({.instance = h.runtime.instance, .ok = true});
  h.now += 0.001;
  auto e = h.runtime.RunOne();  // its prefill
  h.engine.OnBatchCompleted(std::get<runtime::BatchCompleted>(e));
  ASSERT_EQ(h.tokens[a].size(), 1u);
  // A step that preempts it, given by hand with the node's reports held back: the engine frees the sequence, then
  // recomputes it from its prompt and its token.
  h.engine.Attach(nullptr);
  h.runtime.kinds.clear();
  h.engine.Step(0, 0, {.kind = policy::GenStep::Kind::kPrefill, .sequences = {a}, .tokens = {4}, .preempted = {a}});
  ASSERT_EQ(h.runtime.kinds.size(), 2u);
  EXPECT_EQ(h.runtime.kinds[0], GenStepMessage::Kind::kFree);
  EXPECT_EQ(h.runtime.kinds[1], GenStepMessage::Kind::kPrefill);
  EXPECT_EQ(h.runtime.ring.back().second.tokens, (std::vector<int64_t>{1, 2, 3, h.tokens[a][0]}));
  // The stage refuses the next message (the node's decode): the instance is lost, its sequence fails once, and it
  // is retired when nothing is in flight.
  h.engine.Attach(h.node.get());
  h.runtime.fail_next = true;
  h.Run();
  ASSERT_EQ(h.ends[a].size(), 1u);
  EXPECT_EQ(h.ends[a][0].rfind("step_failed", 0), 0u) << h.ends[a][0];
  EXPECT_EQ(h.runtime.evicted, std::vector<uint64_t>{h.runtime.instance});
  EXPECT_EQ(h.node->open_sequences(), 0u);
}

// A submit refused in the middle of a step's messages (the instance ends there and is retired at once, nothing
// being in flight): each sequence ends once with the reason, and the rest of the step is not sent.
TEST(WorkerGenEngineTest, ASubmitRefusedMidStepEndsTheInstanceAndEachSequenceOnce) {
  Harness h;
  const uint64_t a = h.Arrive({1, 2}, 4);
  const uint64_t b = h.Arrive({3, 4}, 4);
  const uint64_t c = h.Arrive({5, 6}, 4);
  h.runtime.refuse_submit = true;
  h.engine.OnLoadDone({.instance = h.runtime.instance, .ok = true});  // the prefill step of three: refused at once
  h.Run();
  for (uint64_t seq : {a, b, c}) {
    ASSERT_EQ(h.ends[seq].size(), 1u) << seq;
    EXPECT_EQ(h.ends[seq][0].rfind("step_failed", 0), 0u) << h.ends[seq][0];
  }
  EXPECT_EQ(h.runtime.evicted, std::vector<uint64_t>{h.runtime.instance});
  EXPECT_TRUE(h.runtime.ring.empty());
  EXPECT_EQ(h.node->open_sequences(), 0u);
}

}  // namespace
}  // namespace fluidfaas::daemon
