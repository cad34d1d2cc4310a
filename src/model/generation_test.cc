#include "model/generation.h"

#include <gtest/gtest.h>

#include <cmath>

namespace fluidfaas::model {
namespace {

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}
const gpu::MigProfile& Slice(const char* name) {
  return *A100().FindProfile(name);
}

GenerationCosts Costs(const char* name) {
  Result<GenerationCosts> c = GenerationCosts::Build(name);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

TEST(DecodeStepTest, HasThePrefillsBlocksAndWeights) {
  for (const char* name : {"gpt2-xl", "llama2-7b", "llama2-13b", "tinyllama-1.1b"}) {
    const FunctionSpec prefill = *BuildZooModel(name);
    const FunctionSpec step = *BuildZooDecodeStep(name, 100);
    ASSERT_EQ(step.blocks.size(), prefill.blocks.size()) << name;
    for (size_t i = 0; i < step.blocks.size(); ++i) {
      EXPECT_EQ(step.blocks[i].name, prefill.blocks[i].name);
      EXPECT_EQ(step.blocks[i].params, prefill.blocks[i].params) << name << " " << step.blocks[i].name;
    }
    EXPECT_EQ(step.TotalParams(), prefill.TotalParams());
  }
}

TEST(DecodeStepTest, WorkIsAboutOneMultiplyAddPerWeightPerToken) {
  // A decode step multiplies every matrix once per token (the embedding is a gather): 2N FLOPs per token, the
  // usual rule, plus attention over the context.
  const FunctionSpec f = *BuildZooDecodeStep("llama2-7b", 0);
  const double matrices = static_cast<double>(f.TotalParams() - 32000LL * 4096);
  EXPECT_NEAR(f.TotalMacs() / matrices, 1.0, 0.01);
  // Attention over 4,000 cached tokens adds 2 x 4096 x 4000 multiply-adds per layer.
  const FunctionSpec late = *BuildZooDecodeStep("llama2-7b", 3999);
  EXPECT_NEAR(late.TotalMacs() - f.TotalMacs(), 32 * 2 * 4096.0 * 3999, 1e6);
}

TEST(DecodeStepTest, RefusesModelsThatDoNotGenerateAndContextsOutOfRange) {
  EXPECT_FALSE(BuildZooDecodeStep("bert-base", 10).ok());
  EXPECT_FALSE(BuildZooDecodeStep("resnet50", 10).ok());
  EXPECT_FALSE(BuildZooDecodeStep("llama2-7b", -1).ok());
  EXPECT_FALSE(BuildZooDecodeStep("llama2-7b", 4096).ok());  // 4,096 positions: contexts 0..4095
  EXPECT_TRUE(BuildZooDecodeStep("llama2-7b", 4095).ok());
  EXPECT_FALSE(BuildZooDecodeStep("llama2-7b", 10, ZooOptions{.seq_len = 64}).ok());
  EXPECT_TRUE(IsGenerativeZooModel("gpt2-xl"));
  EXPECT_FALSE(IsGenerativeZooModel("vit-b16"));
  EXPECT_FALSE(IsGenerativeZooModel("nope"));
}

TEST(GenerationCostsTest, KvCacheBytesPerTokenAreTheKnownFigures) {
  // 2 (keys, values) x layers x key/value width x 2 bytes (fp16).
  EXPECT_EQ(Costs("llama2-7b").KvBytesPerToken(0, 33), 2 * 32 * 4096 * 2);   // 0.5 MiB
  EXPECT_EQ(Costs("llama2-13b").KvBytesPerToken(0, 41), 2 * 40 * 5120 * 2);  // 0.78 MiB
  EXPECT_EQ(Costs("gpt2-xl").KvBytesPerToken(0, 49), 2 * 48 * 1600 * 2);
  EXPECT_EQ(Costs("tinyllama-1.1b").KvBytesPerToken(0, 23), 2 * 22 * 256 * 2);  // 4 key/value heads of 64
  // A stage holds its own layers' share; embeddings and heads hold none.
  const GenerationCosts c = Costs("llama2-7b");
  EXPECT_EQ(c.KvBytesPerToken(0, 0), 0);
  EXPECT_EQ(c.KvBytesPerToken(1, 16) + c.KvBytesPerToken(17, 33), c.KvBytesPerToken(0, 33));
  EXPECT_EQ(c.StepHandoffBytes(16), 4096 * 2);  // one token's hidden state
}

TEST(GenerationCostsTest, ADecodeStepIsBoundByReadingTheWeights) {
  const GenerationCosts c = Costs("llama2-7b");
  const size_t last = c.spec().blocks.size() - 1;
  const gpu::MigProfile& g7 = Slice("7g.80gb");
  const double one = c.DecodeStepMs(0, last, A100(), g7, 1, 128);
  // Never faster than the weights at the GPU's full bandwidth.
  const double floor_ms = static_cast<double>(c.WeightBytes(0, last)) / (A100().memory_bandwidth_gbs * 1e9) * 1e3;
  EXPECT_GT(one, floor_ms);
  // Eight sequences share the weights' read: the step costs far less than eight steps of one.
  const double eight = c.DecodeStepMs(0, last, A100(), g7, 8, 128);
  EXPECT_LT(eight, 1.5 * one);
  EXPECT_GT(eight, one);
  // A smaller slice has less bandwidth: a 3g's step is slower than a 7g's (where the ~1,000 kernel launches of an
  // eager step, 29 ms, hide much of the 13 ms of weight reads).
  EXPECT_GT(c.DecodeStepMs(0, last, A100(), Slice("3g.40gb"), 1, 128), 1.3 * one);
  // Longer contexts read more cache.
  EXPECT_GT(c.DecodeStepMs(0, last, A100(), g7, 32, 3000), 1.2 * c.DecodeStepMs(0, last, A100(), g7, 32, 100));
}

TEST(GenerationCostsTest, GridPricesMatchDirectOnesWithinOnePercent) {
  const GenerationCosts c = Costs("llama2-7b");
  const LatencyModel lm;
  const size_t last = c.spec().blocks.size() - 1;
  const gpu::MigProfile& g3 = Slice("3g.40gb");
  for (int ctx : {0, 1, 100, 1000, 2500, 4095}) {
    for (int batch : {1, 16}) {
      const double direct = lm.ModelMs(*BuildZooDecodeStep("llama2-7b", ctx), A100(), g3, batch);
      EXPECT_NEAR(c.DecodeStepMs(0, last, A100(), g3, batch, ctx) / direct, 1.0, 0.01) << ctx << " " << batch;
    }
  }
  for (int prompt : {2, 20, 100, 512, 700, 3000, 4096}) {
    const double direct = lm.ModelMs(*BuildZooModel("llama2-7b", ZooOptions{.seq_len = prompt}), A100(), g3, 1);
    EXPECT_NEAR(c.PrefillMs(0, last, A100(), g3, prompt, 1) / direct, 1.0, 0.01) << prompt;
  }
  // A one-token prompt is a decode step on an empty cache.
  EXPECT_DOUBLE_EQ(c.PrefillMs(0, last, A100(), g3, 1, 1), c.DecodeStepMs(0, last, A100(), g3, 1, 0));
}

TEST(GenerationCostsTest, Llama13BHasNoRoomOnA2gButAPipelineOverTwoDoes) {
  const GenerationCosts c = Costs("llama2-13b");
  const size_t last = c.spec().blocks.size() - 1;
  EXPECT_EQ(c.KvCapacityTokens(0, last, Slice("2g.20gb"), 512), 0);  // 26 GB of weights
  // On a 3g.40gb: 40 GB less ~27 GB of weights and reserve, at 0.78 MiB a token.
  const int64_t g3 = c.KvCapacityTokens(0, last, Slice("3g.40gb"), 512);
  EXPECT_GT(g3, 15000);
  EXPECT_LT(g3, 20000);
  EXPECT_GT(c.KvCapacityTokens(0, last, Slice("7g.80gb"), 512), 3 * g3);  // twice the memory, after the weights
  // Two 2g.20gb slices, cut after layer 19: each stage holds half the layers and their half of every token's cache.
  const int64_t front = c.KvCapacityTokens(0, 20, Slice("2g.20gb"), 512);
  const int64_t back = c.KvCapacityTokens(21, last, Slice("2g.20gb"), 512);
  EXPECT_GT(front, 4096);
  EXPECT_GT(back, 4096);
  // A longer prefill leaves less room for the cache.
  EXPECT_LT(c.KvCapacityTokens(0, 20, Slice("2g.20gb"), 4096), front);
}

TEST(GenerationCostsTest, RefusesModelsThatDoNotGenerate) {
  Result<GenerationCosts> bert = GenerationCosts::Build("bert-base");
  ASSERT_FALSE(bert.ok());
  EXPECT_NE(bert.status().message().find("does not generate"), std::string::npos);
  Result<GenerationCosts> unknown = GenerationCosts::Build("gpt5");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("zoo:"), std::string::npos);
}

// A decoder given by its dimensions is priced as the zoo's GPT-2 of the same dimensions.
TEST(GenerationCostsTest, ADecoderByItsDimensionsPricesAsTheZoosGpt2) {
  const DecoderShape xl{.name = "gpt2-xl-by-shape",
                        .d = 1600,
                        .heads = 25,
                        .ffn = 6400,
                        .layers = 48,
                        .vocab = 50257,
                        .max_positions = 1024,
                        .dtype = DType::kFp16};
  auto by_shape = GenerationCosts::Build(xl);
  auto zoo = GenerationCosts::Build("gpt2-xl");
  ASSERT_TRUE(by_shape.ok()) << by_shape.status().message();
  ASSERT_TRUE(zoo.ok());
  const size_t last = zoo->spec().blocks.size() - 1;
  ASSERT_EQ(by_shape->spec().blocks.size(), zoo->spec().blocks.size());
  EXPECT_EQ(by_shape->WeightBytes(0, last), zoo->WeightBytes(0, last));
  EXPECT_EQ(by_shape->KvBytesPerToken(0, last), zoo->KvBytesPerToken(0, last));
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  const gpu::MigProfile& g2 = *a100.FindProfile("2g.20gb");
  EXPECT_DOUBLE_EQ(by_shape->DecodeStepMs(0, last, a100, g2, 4, 300), zoo->DecodeStepMs(0, last, a100, g2, 4, 300));
  EXPECT_DOUBLE_EQ(by_shape->PrefillMs(0, last, a100, g2, 200, 1), zoo->PrefillMs(0, last, a100, g2, 200, 1));
  // A tiny one (the TorchScript example's dimensions) has a short grid and fits anywhere.
  auto tiny = GenerationCosts::Build(
      DecoderShape{.name = "tiny", .d = 32, .heads = 4, .ffn = 64, .layers = 4, .vocab = 256, .max_positions = 256});
  ASSERT_TRUE(tiny.ok()) << tiny.status().message();
  EXPECT_EQ(tiny->max_positions(), 256);
  EXPECT_GT(tiny->PrefillMs(0, 5, a100, g2, 256, 1), 0);
  EXPECT_FALSE(
      GenerationCosts::Build(
          DecoderShape{.name = "bad", .d = 30, .heads = 4, .ffn = 1, .layers = 1, .vocab = 256, .max_positions = 16})
          .ok());
}

}  // namespace
}  // namespace fluidfaas::model
