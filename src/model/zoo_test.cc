#include "model/zoo.h"

#include <gtest/gtest.h>

#include <cmath>

namespace fluidfaas::model {
namespace {

TEST(ZooTest, ParameterCountsMatchPublishedWithinTwoPercent) {
  for (const ZooEntry& e : ZooModels()) {
    Result<FunctionSpec> f = BuildZooModel(e.name);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    const double params = static_cast<double>(f->TotalParams());
    EXPECT_LT(std::abs(params / e.published_params - 1), 0.02) << e.name << ": " << params;
  }
}

TEST(ZooTest, ExactCountsOfTheReferenceImplementations) {
  // torchvision and Hugging Face report these exact numbers.
  EXPECT_EQ(BuildZooModel("resnet50")->TotalParams(), 25557032);
  EXPECT_EQ(BuildZooModel("resnet152")->TotalParams(), 60192808);
  EXPECT_EQ(BuildZooModel("vit-b16")->TotalParams(), 86567656);
  EXPECT_EQ(BuildZooModel("vit-l16")->TotalParams(), 304326632);
  EXPECT_EQ(BuildZooModel("bert-base")->TotalParams(), 109482240);
  EXPECT_EQ(BuildZooModel("bert-large")->TotalParams(), 335141888);
  EXPECT_EQ(BuildZooModel("gpt2-xl")->TotalParams(), 1557611200);
  EXPECT_EQ(BuildZooModel("llama2-7b")->TotalParams(), 6738415616);
  EXPECT_EQ(BuildZooModel("llama2-13b")->TotalParams(), 13015864320);
  EXPECT_EQ(BuildZooModel("tinyllama-1.1b")->TotalParams(), 1100048384);  // grouped-query attention
}

TEST(ZooTest, WorkMatchesPublishedMultiplyAdds) {
  // torchvision: ResNet-50 4.09 GMACs ("GFLOPS"), ResNet-152 11.51, ViT-B/16 17.56, ViT-L/16 61.55.
  EXPECT_NEAR(BuildZooModel("resnet50")->TotalMacs() / 1e9, 4.09, 0.05);
  EXPECT_NEAR(BuildZooModel("resnet152")->TotalMacs() / 1e9, 11.51, 0.12);
  EXPECT_NEAR(BuildZooModel("vit-b16")->TotalMacs() / 1e9, 17.56, 0.2);
  EXPECT_NEAR(BuildZooModel("vit-l16")->TotalMacs() / 1e9, 61.55, 0.7);
}

TEST(ZooTest, BlockGranularity) {
  EXPECT_EQ(BuildZooModel("resnet50")->blocks.size(), 18u);  // stem, 16 bottlenecks, head
  EXPECT_EQ(BuildZooModel("resnet152")->blocks.size(), 52u);
  EXPECT_EQ(BuildZooModel("vit-b16")->blocks.size(), 14u);
  EXPECT_EQ(BuildZooModel("bert-large")->blocks.size(), 26u);
  EXPECT_EQ(BuildZooModel("llama2-13b")->blocks.size(), 42u);
  const FunctionSpec r = *BuildZooModel("resnet50");
  EXPECT_EQ(r.blocks[0].name, "stem");
  EXPECT_EQ(r.blocks[1].name, "layer1.0");
  EXPECT_EQ(r.blocks[17].name, "head");
  EXPECT_EQ(r.blocks[0].out_elems, 64 * 56 * 56);
  EXPECT_EQ(r.blocks[16].out_elems, 2048 * 7 * 7);
}

TEST(ZooTest, Llama13BNeedsMoreThanA2gSlice) {
  const FunctionSpec f = *BuildZooModel("llama2-13b");
  EXPECT_EQ(f.dtype, DType::kFp16);
  int64_t bytes = 0;
  for (const Block& b : f.blocks) bytes += b.ParamBytes(f.dtype);
  EXPECT_GT(bytes, int64_t{19968} << 20);  // more than a 2g.20gb slice holds
}

TEST(ZooTest, SequenceLengthChangesTransformerWork) {
  const double at64 = BuildZooModel("bert-base", {.seq_len = 64})->TotalMacs();
  const double at128 = BuildZooModel("bert-base", {.seq_len = 128})->TotalMacs();
  EXPECT_GT(at128, 2 * at64);  // linear layers double, attention quadruples
  EXPECT_LT(at128, 2.2 * at64);
  EXPECT_EQ(BuildZooModel("bert-base", {.seq_len = 64})->TotalParams(), 109482240);
  EXPECT_FALSE(BuildZooModel("bert-base", {.seq_len = 513}).ok());
  EXPECT_FALSE(BuildZooModel("resnet50", {.seq_len = 64}).ok());
}

TEST(ZooTest, GptHeadIsTiedToTheEmbedding) {
  const FunctionSpec f = *BuildZooModel("gpt2-xl");
  const Block& head = f.blocks.back();
  EXPECT_EQ(head.tied_to, 0);
  EXPECT_EQ(head.tied_params, 50257 * 1600);
}

TEST(ZooTest, UnknownModelListsTheZoo) {
  Result<FunctionSpec> f = BuildZooModel("alexnet");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("resnet50, resnet152, vit-b16"), std::string::npos);
}

}  // namespace
}  // namespace fluidfaas::model
