#include "model/torch_generative.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fluidfaas::model {
namespace {

class GenerativeTorchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("ff-gen-" + std::to_string(getpid()))).string();
    ASSERT_TRUE(WriteGenerativeExample(dir_, /*force=*/true).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Greedy generation of `count` tokens for each prompt through `stages` (block ranges), the prompts prefilled one
  // by one, then decoded together a step at a time, hidden states handed from stage to stage.
  std::vector<std::vector<int64_t>> Pipeline(const std::vector<std::pair<size_t, size_t>>& ranges,
                                             const std::vector<std::vector<int64_t>>& prompts, int count) {
    std::vector<std::unique_ptr<GenerativeStage>> stages;
    for (const auto& [first, last] : ranges) {
      auto s = GenerativeStage::Load(dir_, first, last, /*pages=*/64, /*page_tokens=*/8);
      EXPECT_TRUE(s.ok()) << s.status().ToString();
      if (!s.ok()) return {};
      stages.push_back(std::move(*s));
    }
    const auto through = [&](auto step) {  // step(stage, input) -> output, from tokens to tokens
      StageData data;
      for (size_t k = 0; k < stages.size(); ++k) {
        auto out = step(*stages[k], data, k);
        EXPECT_TRUE(out.ok()) << out.status().ToString();
        if (!out.ok()) return StageData{};
        data = std::move(*out);
      }
      return data;
    };
    std::vector<std::vector<int64_t>> out(prompts.size());
    std::vector<uint64_t> ids;
    for (size_t p = 0; p < prompts.size(); ++p) {
      ids.push_back(100 + p);
      const StageData last = through([&](GenerativeStage& s, const StageData& in, size_t k) {
        return s.Prefill(ids.back(), k == 0 ? StageData{.tokens = prompts[p]} : in);
      });
      out[p].push_back(last.tokens.at(0));
    }
    for (int i = 1; i < count; ++i) {
      std::vector<int64_t> next;
      for (const auto& o : out) next.push_back(o.back());
      const StageData last = through([&](GenerativeStage& s, const StageData& in, size_t k) {
        return s.Decode(ids, k == 0 ? StageData{.tokens = next} : in);
      });
      for (size_t p = 0; p < out.size(); ++p) out[p].push_back(last.tokens.at(p));
    }
    for (auto& s : stages) {
      for (uint64_t id : ids) s->Free(id);
      EXPECT_EQ(s->free_pages(), 64) << "every page back once the sequences are freed";
      EXPECT_EQ(s->sequences(), 0u);
    }
    return out;
  }

  std::string dir_;
};

TEST_F(GenerativeTorchTest, PipelinesOfTwoAndThreeStagesMatchOneProcessWithoutCacheTokenForToken) {
  const std::vector<std::vector<int64_t>> prompts = {
      {72, 101, 108, 108, 111}, {77, 73, 71}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  constexpr int kCount = 24;  // past a page boundary of the 8-token pages several times
  std::vector<std::vector<int64_t>> reference;
  for (const auto& p : prompts) {
    auto r = GenerateWithoutCache(dir_, p, kCount);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reference.push_back(*r);
  }
  // A decoder that ignored its input would pass trivially: the prompts lead to different texts.
  EXPECT_NE(reference[0], reference[1]);
  // embed, layer0..3, head: one stage, two, three.
  for (const auto& split : std::vector<std::vector<std::pair<size_t, size_t>>>{
           {{0, 5}}, {{0, 2}, {3, 5}}, {{0, 1}, {2, 3}, {4, 5}}, {{0, 0}, {1, 4}, {5, 5}}}) {
    EXPECT_EQ(Pipeline(split, prompts, kCount), reference) << split.size() << " stages";
  }
}

TEST_F(GenerativeTorchTest, AFullPoolRefusesWithAReasonAndFreedPagesServeAgain) {
  auto stage = GenerativeStage::Load(dir_, 0, 5, /*pages=*/2, /*page_tokens=*/4);
  ASSERT_TRUE(stage.ok());
  GenerativeStage& s = **stage;
  EXPECT_TRUE(s.Prefill(1, {.tokens = {1, 2, 3, 4, 5, 6}}).ok());  // two pages
  const auto full = s.Prefill(2, {.tokens = {1}});
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted) << full.status().ToString();
  EXPECT_EQ(s.sequences(), 1u) << "the refused sequence holds nothing";
  EXPECT_EQ(s.Decode({1}, {.tokens = {7, 8}}).status().code(), StatusCode::kInvalidArgument) << "two tokens, one row";
  s.Free(1);
  EXPECT_TRUE(s.Prefill(2, {.tokens = {1}}).ok());
  EXPECT_EQ(s.Decode({9}, {.tokens = {1}}).status().code(), StatusCode::kNotFound);
}

TEST_F(GenerativeTorchTest, ManifestErrorsNameTheField) {
  std::ofstream(std::filesystem::path(dir_) / "manifest.yaml")
      << "name: x\nkind: generative\nvocab: 256\nd_model: 32\nheads: 3\nmax_positions: 64\nblocks: []\n";
  const auto m = ReadGenerativeManifest(dir_);
  EXPECT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("heads"), std::string::npos) << m.status().ToString();
  std::ofstream(std::filesystem::path(dir_) / "manifest.yaml")
      << "name: x\nkind: generative\nvocab: 256\nd_model: 32\nheads: 4\nmax_positions: 64\nblocks:\n"
         "  - {name: a, file: embed.pt, kind: layer}\n  - {name: b, file: layer0.pt, kind: layer}\n"
         "  - {name: c, file: head.pt, kind: head}\n";
  const auto k = ReadGenerativeManifest(dir_);
  EXPECT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("blocks[0].kind"), std::string::npos) << k.status().ToString();
}

}  // namespace
}  // namespace fluidfaas::model
