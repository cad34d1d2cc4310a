#include "model/profile.h"

#include <gtest/gtest.h>

#include "model/zoo.h"

namespace fluidfaas::model {
namespace {

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}
const gpu::MigProfile& P(std::string_view name) {
  return *A100().FindProfile(name);
}

TEST(ProfileTest, ModelledProfileRoundTripsThroughJson) {
  const FunctionSpec f = *BuildZooModel("resnet50");
  LatencyModel model;
  const FunctionProfile p = MakeModelledProfile(f, model, {&A100()});
  // 6 profiles (no +me) x batches 1, 2, 4, ..., 64.
  EXPECT_EQ(p.entries.size(), 6u * 7u);
  const std::string path = testing::TempDir() + "/resnet50.profile.json";
  ASSERT_TRUE(SaveProfile(p, path).ok());
  Result<FunctionProfile> loaded = LoadProfile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(CheckProfileMatches(*loaded, f).ok());
  ASSERT_EQ(loaded->entries.size(), p.entries.size());
  EXPECT_EQ(loaded->entries[5].block_ms, p.entries[5].block_ms);
}

TEST(ProfileTest, MeasuredFiguresReplaceModelledOnesWhereTheyExist) {
  const FunctionSpec f = *BuildZooModel("resnet50");
  LatencyModel model;
  ModelledBlockTimes modelled(f, model);
  FunctionProfile p;
  p.function = f.name;
  p.source = "measured on a test rig";
  for (const Block& b : f.blocks) p.blocks.push_back(b.name);
  p.entries.push_back({"a100-80gb", "2g.20gb", 1, std::vector<double>(f.blocks.size(), 1.0)});
  p.entries.push_back({"a100-80gb", "2g.20gb", 9, std::vector<double>(f.blocks.size(), 5.0)});
  ProfiledBlockTimes profiled(p, modelled);
  EXPECT_DOUBLE_EQ(profiled.BlockMs(3, A100(), P("2g.20gb"), 1), 1.0);
  EXPECT_DOUBLE_EQ(profiled.BlockMs(3, A100(), P("2g.20gb"), 5), 3.0);   // interpolated
  EXPECT_DOUBLE_EQ(profiled.BlockMs(3, A100(), P("2g.20gb"), 13), 7.0);  // extrapolated
  EXPECT_EQ(profiled.Source(A100(), P("2g.20gb")), "measured on a test rig");
  // Elsewhere the model answers.
  EXPECT_DOUBLE_EQ(profiled.BlockMs(3, A100(), P("1g.10gb"), 4), modelled.BlockMs(3, A100(), P("1g.10gb"), 4));
  EXPECT_EQ(profiled.Source(A100(), P("1g.10gb")), "calibrated");
  EXPECT_EQ(modelled.Source(gpu::GetGpuType(gpu::GpuModel::kH100_80GB), P("1g.10gb")), "modelled");
}

TEST(ProfileTest, MalformedProfilesAreRejectedWithTheField) {
  const auto error = [](const char* text) { return ProfileFromJson(nlohmann::json::parse(text)).status().message(); };
  EXPECT_EQ(error("[]"), "profile: expected a JSON object");
  EXPECT_NE(error(R"({"function":"f","dtype":"fp32","blocks":["a"]})").find("entries"), std::string::npos);
  EXPECT_EQ(error(R"({"function":"f","dtype":"fp8","blocks":["a"],"entries":[]})"),
            "unknown dtype 'fp8' (expected fp16 or fp32)");
  EXPECT_EQ(error(R"({"function":"f","dtype":"fp32","blocks":["a","b"],
                      "entries":[{"gpu":"a100-80gb","profile":"2g.20gb","batch":1,"block_ms":[1]}]})"),
            "profile.entries[0].block_ms: 1 times for 2 blocks");
  EXPECT_EQ(error(R"({"function":"f","dtype":"fp32","blocks":["a"],
                      "entries":[{"gpu":"a100-80gb","profile":"2g.20gb","batch":1,"block_ms":[-1]}]})"),
            "profile.entries[0].block_ms: times must be non-negative numbers");
  EXPECT_EQ(error(R"({"function":"f","dtype":"fp32","blocks":["a"],
                      "entries":[{"gpu":"a100-80gb","profile":"5g.50gb","batch":1,"block_ms":[1]}]})"),
            "profile.entries[0]: profile '5g.50gb' does not exist on a100-80gb");
  EXPECT_EQ(error(R"({"function":"f","dtype":"fp32","blocks":["a"],
                      "entries":[{"gpu":"a100-80gb","profile":"2g.20gb","batch":1,"block_ms":[1]},
                                 {"gpu":"a100-80gb","profile":"2g.20gb","batch":1,"block_ms":[2]}]})"),
            "profile.entries[1]: a second entry for a100-80gb 2g.20gb batch 1");
}

TEST(ProfileTest, ProfileOfAnotherFunctionDoesNotMatch) {
  const FunctionSpec f = *BuildZooModel("resnet50");
  FunctionProfile p = MakeModelledProfile(*BuildZooModel("resnet152"), LatencyModel(), {&A100()});
  EXPECT_EQ(CheckProfileMatches(p, f).message(), "profile is for 'resnet152', not 'resnet50'");
  p = MakeModelledProfile(*BuildZooModel("bert-base", {.seq_len = 64}), LatencyModel(), {&A100()});
  EXPECT_FALSE(CheckProfileMatches(p, *BuildZooModel("bert-base")).ok());
  EXPECT_EQ(LoadProfile("/nonexistent.json").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fluidfaas::model
