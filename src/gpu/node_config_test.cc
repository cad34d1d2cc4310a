#include "gpu/node_config.h"

#include <gtest/gtest.h>

#include "common/config.h"

namespace fluidfaas::gpu {
namespace {

Result<NodeConfig> ParseText(const std::string& text) {
  FF_ASSIGN_OR_RETURN(YAML::Node doc, config::ParseYaml(text, "test"));
  FF_ASSIGN_OR_RETURN(NodeConfig c, ParseNodeConfig(doc));
  FF_RETURN_IF_ERROR(ValidateNodeConfig(c));
  return c;
}

Result<NodeTopology> NoNvml() {
  return Status::NotFound("libnvidia-ml.so.1: cannot open shared object file");
}
Result<NodeTopology> FailingNvml() {
  return Status::Unimplemented("GPU 0: product 'NVIDIA V100' is not supported");
}

TEST(NodeConfigTest, EmbeddedDefaultIsOneA100WithThreeSlices) {
  Result<NodeConfig> config = LoadNodeConfig("");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Result<NodeTopology> node = ResolveNode(*config, NoNvml);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_TRUE(node->emulated);
  EXPECT_EQ(node->source, "emulated (NVML absent)");
  ASSERT_EQ(node->gpus.size(), 1u);
  EXPECT_EQ(node->gpus[0].type->model, GpuModel::kA100_80GB);
  ASSERT_EQ(node->slices.size(), 3u);
  EXPECT_EQ(node->slices[0].id, "0:4g.40gb@0");
  EXPECT_EQ(node->slices[1].id, "0:2g.20gb@4");
  EXPECT_EQ(node->slices[2].id, "0:1g.10gb@6");
}

TEST(NodeConfigTest, CountRepeatsGpus) {
  Result<NodeConfig> c = ParseText(R"(
node:
  name: paper
  discovery: emulated
  gpus:
    - {type: a100-80gb, layout: 1g.10gb+2g.20gb+4g.40gb, count: 8}
    - {type: h100-80gb, layout: 7g.80gb}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  bool discovered = false;
  Result<NodeTopology> node = ResolveNode(*c, [&]() -> Result<NodeTopology> {
    discovered = true;
    return Status::Unavailable("unused");
  });
  ASSERT_TRUE(node.ok());
  EXPECT_FALSE(discovered);  // emulated mode never touches NVML
  EXPECT_EQ(node->gpus.size(), 9u);
  EXPECT_EQ(node->slices.size(), 25u);
  EXPECT_EQ(node->slices[24].id, "8:7g.80gb@0");
  EXPECT_EQ(node->source, "emulated (discovery: emulated)");
}

TEST(NodeConfigTest, NvmlModeFailsWithoutNvml) {
  Result<NodeConfig> c = ParseText("node: {discovery: nvml}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Result<NodeTopology> node = ResolveNode(*c, NoNvml);
  EXPECT_EQ(node.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(node.status().message(), "NVML discovery: libnvidia-ml.so.1: cannot open shared object file");
  Result<NodeTopology> failing = ResolveNode(*c, FailingNvml);
  EXPECT_EQ(failing.status().code(), StatusCode::kUnimplemented);
}

// Regression (hardening issue: any NVML failure, an unsupported GPU included, silently became an emulated node,
// logged below the default level): absence and failure are told apart, and the failure is named.
TEST(NodeConfigTest, AutoModeTellsAnAbsentNvmlFromAFailingOne) {
  Result<NodeConfig> c = LoadNodeConfig("");
  ASSERT_TRUE(c.ok());
  Result<NodeTopology> absent = ResolveNode(*c, NoNvml);
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(absent->source, "emulated (NVML absent)");
  Result<NodeTopology> failing = ResolveNode(*c, FailingNvml);
  ASSERT_TRUE(failing.ok());
  EXPECT_EQ(failing->source, "emulated (NVML failed: GPU 0: product 'NVIDIA V100' is not supported)");
}

TEST(NodeConfigTest, AutoModePrefersDiscoveredNode) {
  Result<NodeConfig> c = LoadNodeConfig("");
  ASSERT_TRUE(c.ok());
  Result<NodeTopology> node =
      ResolveNode(*c, []() -> Result<NodeTopology> { return MakeNodeTopology("real", false, "nvml", {}); });
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node->source, "nvml");
}

TEST(NodeConfigTest, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"gpus: []\n", "config: missing the 'node' section"},
      {"node: {nmae: x, gpus: []}\n",
       "node: unknown key 'nmae' (known: name, discovery, driver_before_r510, gpus, host_memory_gib)"},
      {"node: {discovery: maybe}\n", "node.discovery: 'maybe' is not one of auto, nvml, emulated"},
      {"node: {gpus: [{type: v100, layout: 7g.80gb}]}\n",
       "node.gpus[0].type: unknown GPU type 'v100' (known: a100-40gb, a100-80gb, h100-80gb, h200-141gb)"},
      {"node: {gpus: [{type: a100-80gb}]}\n", "node.gpus[0]: missing required key 'layout'"},
      {"node: {gpus: [{type: a100-80gb, layout: 2g.20gb@1}]}\n",
       "node.gpus[0].layout: 2g.20gb cannot start at memory slice 1 (allowed placements {0,2,4}:2)"},
      {"node: {gpus: [{type: a100-80gb, layout: 7g.80gb, count: 0}]}\n", "node.gpus[0].count: 0 is not in 1..16"},
      {"node: {gpus: [{type: a100-80gb, layout: 7g.80gb, count: 9}, {type: a100-80gb, layout: 7g.80gb, count: 8}]}\n",
       "node.gpus: 17 GPUs; a node has at most 16"},
      {"node: {gpus: []}\n", "node.gpus: an emulated node needs at least one GPU"},
      {"node: {gpus: {type: a100-80gb}}\n", "node.gpus: expected a list"},
      {"node: {gpus: [{type: a100-80gb, layout: 7g.80gb, count: lots}]}\n",
       "node.gpus[0].count: cannot read 'lots' as the expected type"},
  };
  for (const auto& [text, want] : cases) {
    Result<NodeConfig> c = ParseText(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(c.status().message(), want) << text;
  }
}

TEST(NodeConfigTest, LoadNamesTheFile) {
  Result<NodeConfig> c = LoadNodeConfig("/nonexistent/node.yaml");
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fluidfaas::gpu

namespace fluidfaas::gpu {
namespace {

TEST(NodeConfigTest, HostMemoryBudgetIsOptionalAndRangeChecked) {
  const std::string gpus = "  gpus:\n    - {type: a100-80gb, layout: 7g.80gb}\n";
  Result<NodeConfig> c = ParseText("node:\n  host_memory_gib: 48\n" + gpus);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->host_memory_gib.has_value());
  EXPECT_DOUBLE_EQ(*c->host_memory_gib, 48.0);
  EXPECT_FALSE(ParseText("node:\n  name: n\n" + gpus)->host_memory_gib.has_value());
  for (const char* bad : {"0", "-1", ".nan", "1e9", "lots"}) {
    EXPECT_FALSE(ParseText(std::string("node:\n  host_memory_gib: ") + bad + "\n" + gpus).ok()) << bad;
  }
}

}  // namespace
}  // namespace fluidfaas::gpu
