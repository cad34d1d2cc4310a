#include "policy/continuous_batcher.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>

namespace fluidfaas::policy {
namespace {

using Kind = GenStep::Kind;

// Runs steps until nothing is left; returns each sequence's tokens generated, checking the pool on the way.
std::map<uint64_t, int> Drain(ContinuousBatcher& b, int max_steps = 100000) {
  std::map<uint64_t, int> generated;
  for (int i = 0; i < max_steps; ++i) {
    const GenStep step = b.Next();
    if (step.kind == Kind::kIdle) break;
    EXPECT_LE(b.used_blocks(), b.options().kv_blocks);
    EXPECT_LE(step.sequences.size(), static_cast<size_t>(b.options().max_batch));
    for (uint64_t id : step.sequences) ++generated[id];
    b.Complete(step);
  }
  return generated;
}

TEST(ContinuousBatcherTest, PrefillsThenDecodesOneTokenPerStep) {
  ContinuousBatcher b({.kv_blocks = 100, .block_tokens = 16, .max_batch = 8});
  ASSERT_TRUE(b.Enqueue({.id = 1, .prompt = 20, .output = 3}));
  ASSERT_TRUE(b.Enqueue({.id = 2, .prompt = 40, .output = 2}));
  GenStep s = b.Next();
  EXPECT_EQ(s.kind, Kind::kPrefill);
  EXPECT_EQ(s.sequences, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(s.tokens, (std::vector<int>{20, 40}));
  EXPECT_EQ(b.used_blocks(), 2 + 3);  // 21 and 41 tokens' blocks
  EXPECT_TRUE(b.Complete(s).empty());
  s = b.Next();
  EXPECT_EQ(s.kind, Kind::kDecode);
  EXPECT_EQ(s.tokens, (std::vector<int>{21, 41}));  // contexts: prompt + the token the prefill made
  EXPECT_EQ(b.Complete(s), (std::vector<uint64_t>{2}));
  s = b.Next();
  EXPECT_EQ(s.sequences, (std::vector<uint64_t>{1}));
  EXPECT_EQ(b.Complete(s), (std::vector<uint64_t>{1}));
  EXPECT_EQ(b.used_blocks(), 0);
  EXPECT_EQ(b.Next().kind, Kind::kIdle);
}

TEST(ContinuousBatcherTest, JoinsAtAStepBoundaryWhileOthersDecode) {
  ContinuousBatcher b({.kv_blocks = 100, .block_tokens = 16, .max_batch = 8});
  b.Enqueue({.id = 1, .prompt = 10, .output = 10});
  b.Complete(b.Next());  // prefill 1
  b.Complete(b.Next());  // decode 1
  b.Enqueue({.id = 2, .prompt = 10, .output = 10});
  GenStep s = b.Next();
  EXPECT_EQ(s.kind, Kind::kPrefill);  // the newcomer's prefill goes first
  EXPECT_EQ(s.sequences, (std::vector<uint64_t>{2}));
  b.Complete(s);
  s = b.Next();
  EXPECT_EQ(s.kind, Kind::kDecode);
  EXPECT_EQ(s.sequences, (std::vector<uint64_t>{1, 2}));
}

TEST(ContinuousBatcherTest, RefusesWhatCanNeverFitOrIsEmpty) {
  ContinuousBatcher b({.kv_blocks = 4, .block_tokens = 16, .max_batch = 8});
  EXPECT_FALSE(b.Enqueue({.id = 1, .prompt = 60, .output = 5}));  // 65 tokens: 5 blocks
  EXPECT_TRUE(b.Enqueue({.id = 2, .prompt = 60, .output = 4}));   // 64: exactly the pool
  EXPECT_FALSE(b.Enqueue({.id = 3, .prompt = 0, .output = 4}));
  EXPECT_FALSE(b.Enqueue({.id = 4, .prompt = 4, .output = 0}));
  EXPECT_EQ(b.waiting(), 1u);
  EXPECT_EQ(Drain(b)[2], 4);
}

TEST(ContinuousBatcherTest, AShortPoolPreemptsTheYoungestWhichResumesAndFinishes) {
  // 4 blocks of 4 tokens. Two sequences of 5 prompt tokens take 2 blocks each at admission (6 tokens); at 9
  // tokens each needs a third, and the pool has none: the younger is preempted, recomputed later.
  ContinuousBatcher b({.kv_blocks = 4, .block_tokens = 4, .max_batch = 8});
  b.Enqueue({.id = 1, .prompt = 5, .output = 8});
  b.Enqueue({.id = 2, .prompt = 5, .output = 8});
  std::vector<uint64_t> preempted;
  std::map<uint64_t, int> generated;
  std::vector<uint64_t> finished;
  std::vector<int> prefills_of_2;  // the tokens of each prefill of sequence 2
  for (int i = 0; i < 100; ++i) {
    const GenStep s = b.Next();
    if (s.kind == Kind::kIdle) break;
    ASSERT_LE(b.used_blocks(), 4);
    preempted.insert(preempted.end(), s.preempted.begin(), s.preempted.end());
    for (size_t k = 0; k < s.sequences.size(); ++k) {
      ++generated[s.sequences[k]];
      if (s.kind == Kind::kPrefill && s.sequences[k] == 2) prefills_of_2.push_back(s.tokens[k]);
    }
    for (uint64_t id : b.Complete(s)) finished.push_back(id);
  }
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted.front(), 2u);  // the younger
  EXPECT_EQ(finished, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(b.preemptions(), preempted.size());
  // Recomputation: sequence 2 is prefilled again over its prompt and the tokens it had, and that prefill makes
  // its next token, so no token is lost or made twice.
  ASSERT_EQ(prefills_of_2.size(), 2u);
  EXPECT_EQ(prefills_of_2[0], 5);
  EXPECT_GT(prefills_of_2[1], 5);
  EXPECT_EQ(generated[2], 8);
  EXPECT_EQ(generated[1], 8);
  EXPECT_EQ(b.used_blocks(), 0);
}

TEST(ContinuousBatcherTest, ChunkedPrefillKeepsDecodingBesideALongPrompt) {
  ContinuousBatcher b({.kv_blocks = 1000, .block_tokens = 16, .max_batch = 8, .prefill_chunk = 256});
  b.Enqueue({.id = 1, .prompt = 10, .output = 50});
  GenStep s = b.Next();
  ASSERT_EQ(s.kind, Kind::kMixed);  // a short prompt: one chunk, and its first token
  ASSERT_EQ(s.chunks.size(), 1u);
  EXPECT_TRUE(s.chunks[0].last);
  b.Complete(s);
  b.Enqueue({.id = 2, .prompt = 1000, .output = 5});
  // Sequence 1 decodes every step while 2's 1,000 tokens go through in chunks of 255 (the budget less one decode).
  std::vector<int> chunks;
  for (int i = 0; i < 4; ++i) {
    s = b.Next();
    EXPECT_EQ(s.kind, Kind::kMixed);
    EXPECT_EQ(s.sequences, (std::vector<uint64_t>{1}));
    ASSERT_EQ(s.chunks.size(), 1u);
    chunks.push_back(s.chunks[0].tokens);
    EXPECT_EQ(s.chunks[0].last, i == 3);
    b.Complete(s);
  }
  EXPECT_EQ(chunks, (std::vector<int>{255, 255, 255, 235}));
  s = b.Next();
  EXPECT_EQ(s.kind, Kind::kDecode);
  EXPECT_EQ(s.sequences, (std::vector<uint64_t>{1, 2}));
}

TEST(ContinuousBatcherTest, CancelFreesTheBlocksAtOnce) {
  ContinuousBatcher b({.kv_blocks = 10, .block_tokens = 16, .max_batch = 8});
  b.Enqueue({.id = 1, .prompt = 100, .output = 50});
  b.Enqueue({.id = 2, .prompt = 10, .output = 5});
  b.Complete(b.Next());
  EXPECT_GT(b.used_blocks(), 0);
  EXPECT_TRUE(b.Cancel(1));
  EXPECT_TRUE(b.Cancel(2));
  EXPECT_FALSE(b.Cancel(3));
  EXPECT_EQ(b.used_blocks(), 0);
  EXPECT_EQ(b.Next().kind, Kind::kIdle);
}

TEST(ContinuousBatcherTest, TheBatchLimitHoldsAndTheRestWaitTheirTurn) {
  ContinuousBatcher b({.kv_blocks = 1000, .block_tokens = 16, .max_batch = 2});
  for (uint64_t id = 1; id <= 3; ++id) b.Enqueue({.id = id, .prompt = 8, .output = 3});
  const GenStep s = b.Next();
  EXPECT_EQ(s.sequences, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(b.waiting(), 1u);
}

// Any mix of sequences on any pool: every accepted one generates exactly its output tokens, finishes exactly once,
// and the pool is never overdrawn.
RC_GTEST_PROP(ContinuousBatcherProperty, EverySequenceFinishesExactlyOnce, ()) {
  const int block_tokens = *rc::gen::inRange(1, 33);
  const int64_t blocks = *rc::gen::inRange(1, 200);
  const int max_batch = *rc::gen::inRange(1, 17);
  const int chunk = *rc::gen::element(0, 1, 7, 64, 512);  // 0: whole prefills
  ContinuousBatcher b(
      {.kv_blocks = blocks, .block_tokens = block_tokens, .max_batch = max_batch, .prefill_chunk = chunk});
  const int n = *rc::gen::inRange(0, 40);
  std::map<uint64_t, int> accepted;  // id -> output tokens
  for (int i = 0; i < n; ++i) {
    const GenSequence s{
        .id = static_cast<uint64_t>(i), .prompt = *rc::gen::inRange(0, 300), .output = *rc::gen::inRange(0, 60)};
    const bool fits = s.prompt > 0 && s.output > 0 && b.BlocksFor(int64_t{s.prompt} + s.output) <= blocks;
    RC_ASSERT(b.Enqueue(s) == fits);
    if (fits) accepted[s.id] = s.output;
  }
  std::map<uint64_t, int> finished;
  std::map<uint64_t, int> tokens;
  for (int step = 0; step < 200000; ++step) {
    const GenStep s = b.Next();
    if (s.kind == Kind::kIdle) break;
    RC_ASSERT(b.used_blocks() <= blocks);
    RC_ASSERT(s.sequences.size() <= static_cast<size_t>(max_batch));
    for (uint64_t id : s.sequences) ++tokens[id];
    int step_tokens = static_cast<int>(s.sequences.size());
    for (const GenStep::Chunk& c : s.chunks) {
      if (c.last) ++tokens[c.sequence];
      step_tokens += c.tokens;
    }
    // A chunked step holds its budget, or one prefill token beside the decodes when they alone fill it.
    if (chunk > 0 && !s.chunks.empty())
      RC_ASSERT(step_tokens <= std::max(chunk, static_cast<int>(s.sequences.size()) + 1));
    for (uint64_t id : b.Complete(s)) ++finished[id];
  }
  RC_ASSERT(b.waiting() == 0u);
  RC_ASSERT(b.running() == 0u);
  RC_ASSERT(b.used_blocks() == 0);
  RC_ASSERT(finished.size() == accepted.size());
  for (const auto& [id, times] : finished) {
    RC_ASSERT(accepted.count(id) == 1u);
    RC_ASSERT(times == 1);
    RC_ASSERT(tokens[id] == accepted[id]);  // each step of a sequence makes one token, recomputation included
  }
}

}  // namespace
}  // namespace fluidfaas::policy
