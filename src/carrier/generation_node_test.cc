#include "carrier/generation_node.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "gpu/topology.h"

namespace fluidfaas::carrier {
namespace {

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

policy::ClusterSlice Slice(const std::string& id) {
  const gpu::SliceId sid = *gpu::SliceId::Parse(id);
  return policy::ClusterSlice{id, sid.gpu, policy::SliceKind{&A100(), A100().FindProfile(sid.profile)}, true};
}

// A lease over the test's slices, some of them held by "another tenant"; and a listener that records everything.
struct Recorder : SliceLease, GenListener {
  std::set<size_t> other;  // held by the other tenant
  std::set<size_t> taken;  // by the generation node
  std::map<uint64_t, std::vector<std::pair<int, double>>> tokens;
  std::map<uint64_t, std::vector<int64_t>> ids;  // the token ids, as an engine gave them
  std::map<uint64_t, std::vector<std::string>> ends;
  bool IsFree(size_t s) const override { return !other.contains(s) && !taken.contains(s); }
  void Take(size_t s) override {
    EXPECT_TRUE(IsFree(s)) << "slice " << s << " taken while not free";
    taken.insert(s);
  }
  void Give(size_t s) override {
    EXPECT_TRUE(taken.contains(s)) << "slice " << s << " given back but not taken";
    taken.erase(s);
  }
  void Token(uint64_t seq, int index, double t, int64_t token) override {
    tokens[seq].emplace_back(index, t);
    ids[seq].push_back(token);
  }
  void Ended(uint64_t seq, std::string_view refusal, double) override { ends[seq].emplace_back(refusal); }
};

GenSpec Tiny() {
  return {.name = "tiny", .model = "tinyllama-1.1b", .tpot_slo_ms = 200, .design_context = 512, .max_prompt = 256};
}

// Runs the node until nothing is due, or `until`.
void Drain(GenerationNode& node, double until = 1e9) {
  while (node.NextDue() && *node.NextDue() <= until) node.Advance(*node.NextDue());
}

TEST(GenerationNodeTest, GeneratesEveryTokenInOrderAndEndsEachSequenceOnce) {
  Recorder r;
  GenerationNode node({Slice("0:1g.10gb@6"), Slice("0:2g.20gb@4")}, {.keep_alive_s = 5}, r, r);
  ASSERT_TRUE(node.AddFunction(Tiny()).ok());
  std::vector<uint64_t> ids;
  ids.reserve(20);
  for (int i = 0; i < 20; ++i) ids.push_back(node.Arrive(0.05 * i, 0, 100 + i, 10 + i));
  Drain(node);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(r.ends[ids[i]], std::vector<std::string>{""}) << "sequence " << i;
    const auto& t = r.tokens[ids[i]];
    ASSERT_EQ(t.size(), 10 + i);
    for (size_t k = 0; k < t.size(); ++k) {
      EXPECT_EQ(t[k].first, static_cast<int>(k));
      if (k > 0) {
        EXPECT_GT(t[k].second, t[k - 1].second);
      }
    }
  }
  EXPECT_EQ(node.open_sequences(), 0u);
  EXPECT_TRUE(r.taken.empty()) << "the idle instance is released after its keep-alive";
  EXPECT_GE(node.Stats(0).instances, 1);
}

TEST(GenerationNodeTest, TakesOnlyWhatTheLeaseFreesAndStartsWhenASliceIsGivenBack) {
  Recorder r;
  r.other = {0, 1};
  GenerationNode node({Slice("0:1g.10gb@6"), Slice("0:2g.20gb@4")}, {.keep_alive_s = 5}, r, r);
  ASSERT_TRUE(node.AddFunction(Tiny()).ok());
  const uint64_t id = node.Arrive(0, 0, 64, 4);
  EXPECT_FALSE(node.NextDue()) << "no slice is free: the sequence waits, nothing starts";
  EXPECT_TRUE(r.taken.empty());
  r.other.erase(1);
  node.SlicesFreed(1.0);
  EXPECT_EQ(r.taken, std::set<size_t>{1});
  Drain(node, 100);
  EXPECT_EQ(r.ends[id], std::vector<std::string>{""});
  ASSERT_FALSE(r.tokens[id].empty());
  EXPECT_GT(r.tokens[id].front().second, 1.0) << "it waited for the slice and the cold start";
}

TEST(GenerationNodeTest, CancelEndsASequenceOnceWhereverItIs) {
  Recorder r;
  GenerationNode node({Slice("0:2g.20gb@4")}, {.keep_alive_s = 5}, r, r);
  ASSERT_TRUE(node.AddFunction(Tiny()).ok());
  const uint64_t running = node.Arrive(0, 0, 64, 500);
  const uint64_t other = node.Arrive(0, 0, 64, 20);
  // Into the generation: some tokens, then the caller goes.
  while (r.tokens[running].size() < 5) node.Advance(*node.NextDue());
  EXPECT_TRUE(node.Cancel(node.NextDue().value(), running));
  EXPECT_FALSE(node.Cancel(node.NextDue().value(), running)) << "a second cancel finds it ended";
  const size_t tokens_at_cancel = r.tokens[running].size();
  Drain(node);
  EXPECT_EQ(r.ends[running], std::vector<std::string>{"cancelled"});
  EXPECT_EQ(r.tokens[running].size(), tokens_at_cancel) << "no token after the cancel";
  EXPECT_EQ(r.ends[other], std::vector<std::string>{""});
  EXPECT_EQ(r.tokens[other].size(), 20u);
  EXPECT_TRUE(r.taken.empty());
}

// One slice, two functions taking turns: each waits for the other's instance to go idle, not for its keep-alive,
// and comes back from host memory faster than it first started.
TEST(GenerationNodeTest, AnIdleInstanceGivesItsSliceToAWaitingFunctionAndComesBackWarm) {
  for (const bool displace : {true, false}) {
    Recorder r;
    GenerationNode node({Slice("0:2g.20gb@4")}, {.keep_alive_s = 60, .displace = displace}, r, r);
    ASSERT_TRUE(node.AddFunction(Tiny()).ok());
    GenSpec other = Tiny();
    other.name = "other";
    ASSERT_TRUE(node.AddFunction(other).ok());
    const uint64_t a1 = node.Arrive(0, 0, 64, 8);
    Drain(node, 10);
    const double a1_first = r.tokens[a1].front().second;  // a cold start
    const uint64_t b = node.Arrive(10, 1, 64, 8);
    Drain(node, 30);
    const uint64_t a2 = node.Arrive(30, 0, 64, 8);
    Drain(node, 200);
    ASSERT_EQ(r.ends[b], std::vector<std::string>{""});
    ASSERT_EQ(r.ends[a2], std::vector<std::string>{""});
    if (displace) {
      EXPECT_LT(r.tokens[b].front().second, 20) << "b started on a's slice at once";
      EXPECT_LT(r.tokens[a2].front().second - 30, a1_first) << "a came back from host memory, faster than cold";
      EXPECT_EQ(node.Stats(0).displaced, 1);
      EXPECT_EQ(node.Stats(0).warm_starts, 1);
    } else {
      EXPECT_GT(r.tokens[b].front().second, 60) << "b waited out a's keep-alive";
      EXPECT_EQ(node.Stats(0).warm_starts + node.Stats(1).warm_starts, 0);
    }
  }
}

TEST(GenerationNodeTest, RefusesWhatNoSliceOfTheNodeCanServe) {
  Recorder r;
  GenerationNode node({Slice("0:1g.10gb@6")}, {}, r, r);
  ASSERT_TRUE(
      node.AddFunction(
              {.name = "big", .model = "llama2-13b", .tpot_slo_ms = 100, .design_context = 640, .max_prompt = 1024})
          .ok());
  const uint64_t id = node.Arrive(0, 0, 100, 10);
  EXPECT_EQ(r.ends[id], std::vector<std::string>{"fits_no_slice"});
  EXPECT_FALSE(node.AddFunction({.name = "x", .model = "bert-base", .tpot_slo_ms = 1, .design_context = 10}).ok());
}

// A crowded function with an instance on one slice waits for it rather than pipelining over the small slices the
// others need (a pipeline there met fewer objectives than the queue: docs/generation.md); with no slice to hold
// it alone, the pipeline is what serves it.
TEST(GenerationNodeTest, ACrowdedFunctionOnOneSliceDoesNotScaleOutIntoAPipeline) {
  for (const bool big_slice_free : {true, false}) {
    Recorder r;
    if (!big_slice_free) r.other = {0};
    GenerationNode node({Slice("0:3g.40gb@4"), Slice("0:2g.20gb@0"), Slice("0:2g.20gb@2")}, {.keep_alive_s = 5}, r, r);
    ASSERT_TRUE(
        node.AddFunction(
                {.name = "big", .model = "llama2-13b", .tpot_slo_ms = 250, .design_context = 640, .max_prompt = 1024})
            .ok());
    std::vector<uint64_t> ids;
    for (int i = 0; i < 24; ++i) ids.push_back(node.Arrive(0.01 * i, 0, 256, 16));
    Drain(node);
    for (uint64_t id : ids) ASSERT_EQ(r.ends[id], std::vector<std::string>{""});
    if (big_slice_free) {
      EXPECT_EQ(node.Stats(0).instances, 1) << "the 3g instance took them all, in turn";
      EXPECT_EQ(node.Stats(0).pipelined, 0);
    } else {
      EXPECT_EQ(node.Stats(0).pipelined, 1) << "no slice holds it alone: a pipeline over the two 2g";
    }
  }
}

GenSpec TinyWithTtft() {
  return {.name = "tiny",
          .model = "tinyllama-1.1b",
          .tpot_slo_ms = 100,
          .ttft_slo_ms = 132,
          .design_context = 640,
          .max_prompt = 1024};
}

// A 1g.10gb prefills tinyllama's 1,000-token prompt in about 170 ms, a 2g.20gb in about 85: with prompt routing a
// long prompt gets an instance on the 2g while the short ones stay on the 1g; without it, everything shares the 1g.
TEST(GenerationNodeTest, PromptRoutingStartsALargerSliceForAPromptTheSmallOneCannotPrefillInTime) {
  for (const bool routing : {true, false}) {
    Recorder r;
    GenerationNode node({Slice("0:1g.10gb@6"), Slice("0:2g.20gb@4")}, {.keep_alive_s = 60, .prompt_routing = routing},
                        r, r);
    ASSERT_TRUE(node.AddFunction(TinyWithTtft()).ok());
    ASSERT_GT(node.costs(0).PrefillMs(0, node.costs(0).spec().blocks.size() - 1, A100(), *A100().FindProfile("1g.10gb"),
                                      1000, 1),
              132);
    const uint64_t short1 = node.Arrive(0, 0, 200, 8);
    Drain(node, 10);  // loaded, served
    const uint64_t long1 = node.Arrive(10, 0, 1000, 8);
    const uint64_t short2 = node.Arrive(10, 0, 200, 8);
    bool long_on_2g = false;
    for (const GenInstanceView& v : node.Instances()) {
      if (v.sequences > 0 && v.slices == std::vector<size_t>{1}) long_on_2g = true;
    }
    Drain(node);
    for (uint64_t id : {short1, long1, short2}) ASSERT_EQ(r.ends[id], std::vector<std::string>{""});
    if (routing) {
      EXPECT_TRUE(long_on_2g) << "the long prompt went to a new instance on the 2g";
      EXPECT_EQ(node.Stats(0).prompt_routed, 1);
      EXPECT_EQ(node.Stats(0).instances, 2);
    } else {
      EXPECT_FALSE(long_on_2g);
      EXPECT_EQ(node.Stats(0).prompt_routed, 0);
      EXPECT_EQ(node.Stats(0).instances, 1) << "by load alone: the 1g instance takes both";
    }
  }
}

// Long prompts that crowd the instance started for them get the next one where they fit too, not on the smallest
// free slice (a 1g.10gb here, which would prefill them too slowly).
TEST(GenerationNodeTest, LongPromptsThatCrowdTheirInstanceScaleOutWhereTheyFit) {
  Recorder r;
  GenerationNode node({Slice("0:1g.10gb@6"), Slice("0:1g.10gb@5"), Slice("0:2g.20gb@0"), Slice("0:2g.20gb@2")},
                      {.keep_alive_s = 60}, r, r);
  ASSERT_TRUE(node.AddFunction(TinyWithTtft()).ok());
  node.Arrive(0, 0, 200, 8);
  Drain(node, 10);
  for (int i = 0; i < 12; ++i) node.Arrive(10, 0, 1000, 64);  // past the design batch of 8
  std::set<size_t> slices;
  for (const GenInstanceView& v : node.Instances()) slices.insert(v.slices.begin(), v.slices.end());
  EXPECT_EQ(slices, (std::set<size_t>{0, 2, 3})) << "the short prompt's 1g, and both 2g for the long ones";
  EXPECT_EQ(node.Stats(0).prompt_routed, 2);
  Drain(node);
  EXPECT_EQ(node.open_sequences(), 0u);
}

// An instance prompt routing started is an extra: a function that has no instance and needs its slice gets it
// once the extra's sequences have finished, even while long prompts keep coming.
TEST(GenerationNodeTest, AnInstanceStartedForLongPromptsDrainsForAFunctionWaitingForItsSlice) {
  Recorder r;
  GenerationNode node({Slice("0:1g.10gb@6"), Slice("0:2g.20gb@4")}, {.keep_alive_s = 60}, r, r);
  ASSERT_TRUE(node.AddFunction(TinyWithTtft()).ok());
  ASSERT_TRUE(
      node.AddFunction(
              {.name = "seven", .model = "llama2-7b", .tpot_slo_ms = 250, .design_context = 640, .max_prompt = 1024})
          .ok());
  node.Arrive(0, 0, 200, 8);
  Drain(node, 10);
  const uint64_t long1 = node.Arrive(10, 0, 1000, 64);
  ASSERT_EQ(node.Stats(0).prompt_routed, 1);
  const uint64_t seven = node.Arrive(10.5, 1, 200, 8);
  // Long prompts keep coming: the extra instance would never go idle (displacement takes idle ones only).
  for (double t = 11; t < 60; t += 0.5) {
    Drain(node, t);
    node.Arrive(t, 0, 1000, 64);
  }
  Drain(node);
  ASSERT_EQ(r.ends[long1], std::vector<std::string>{""});
  ASSERT_EQ(r.ends[seven], std::vector<std::string>{""});
  const double long_done = r.tokens[long1].back().second;
  EXPECT_GT(r.tokens[seven].front().second, long_done) << "it started on the 2g after the long sequence";
  EXPECT_LT(r.tokens[seven].front().second, long_done + 30) << "... at once, not after a 60 s keep-alive";
  EXPECT_EQ(node.Stats(1).instances, 1);
}

// An engine that runs nothing by itself: the test reports its loads and steps, as the daemon's worker engine does.
struct ScriptedEngine : GenEngine {
  std::vector<std::pair<size_t, GenLaunch>> loads;
  std::vector<std::tuple<size_t, size_t, policy::GenStep>> steps;  // not yet reported
  std::vector<uint64_t> freed;
  std::vector<size_t> released;
  void Load(size_t inst, const GenLaunch& launch) override { loads.emplace_back(inst, launch); }
  void Step(size_t inst, size_t lane, const policy::GenStep& step) override { steps.emplace_back(inst, lane, step); }
  void Free(size_t, const std::vector<uint64_t>& seqs) override { freed.insert(freed.end(), seqs.begin(), seqs.end()); }
  void Release(size_t inst) override { released.push_back(inst); }
};

TEST(GenerationNodeTest, AnEngineRunsTheStepsItsTokensReachTheListenerAndALostInstanceEndsItsSequencesOnce) {
  Recorder r;
  ScriptedEngine engine;
  GenerationNode node({Slice("0:1g.10gb@6"), Slice("0:2g.20gb@4")}, {.keep_alive_s = 5}, r, r);
  auto costs = model::GenerationCosts::Build("tinyllama-1.1b");
  ASSERT_TRUE(costs.ok());
  ASSERT_TRUE(node.AddFunction(Tiny(), std::move(*costs), &engine).ok());
  const uint64_t a = node.Arrive(0, 0, 10, 3);
  ASSERT_EQ(engine.loads.size(), 1u);
  EXPECT_GT(engine.loads[0].second.kv_blocks_per_lane, 0);
  EXPECT_EQ(engine.loads[0].second.block_tokens, 16);
  EXPECT_FALSE(node.NextDue()) << "the engine times the load, not the node";
  node.Loaded(0.5, engine.loads[0].first);
  ASSERT_EQ(engine.steps.size(), 1u);
  EXPECT_EQ(std::get<2>(engine.steps[0]).kind, policy::GenStep::Kind::kPrefill);
  // Three steps (the prefill, two decodes), each reported with the token the engine computed.
  for (int64_t token = 100; token < 103; ++token) {
    ASSERT_EQ(engine.steps.size(), 1u);
    const auto [inst, lane, step] = engine.steps.front();
    engine.steps.clear();
    node.Stepped(1.0 + static_cast<double>(token - 100), inst, lane, {token});
  }
  EXPECT_EQ(r.ids[a], (std::vector<int64_t>{100, 101, 102}));
  EXPECT_EQ(r.ends[a], std::vector<std::string>{""});
  EXPECT_EQ(engine.freed, std::vector<uint64_t>{a}) << "a finished sequence's cache is freed in the engine";
  // A second sequence, then the instance is lost mid-step: it ends once, with the reason; the slice is free.
  const uint64_t b = node.Arrive(5, 0, 10, 50);
  ASSERT_EQ(engine.steps.size(), 1u);
  const size_t inst = std::get<0>(engine.steps.front());
  node.Lost(5.5, inst, "worker_lost");
  EXPECT_EQ(r.ends[b], std::vector<std::string>{"worker_lost"});
  EXPECT_EQ(engine.released, std::vector<size_t>{inst});
  EXPECT_TRUE(r.taken.empty());
  node.Stepped(6, inst, 0, {7});  // a late report of the lost instance's step: passed over
  node.Lost(6, inst, "worker_lost");
  EXPECT_EQ(r.ends[b].size(), 1u);
  EXPECT_EQ(node.open_sequences(), 0u);
}

}  // namespace
}  // namespace fluidfaas::carrier
