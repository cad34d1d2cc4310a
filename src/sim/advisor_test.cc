#include "sim/advisor.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "gpu/gpu_type.h"
#include "gpu/node_config.h"

namespace fluidfaas::sim {
namespace {

// A small search: 2 GPUs of the paper preset, short horizons, one seed.
AdviseOptions Small() {
  AdviseOptions o;
  o.preset = "paper";
  o.preset_options.gpus = 2;
  o.load_share = 0.5;
  o.short_s = 20;
  o.full_s = 40;
  o.seeds = {1};
  o.finalists = 2;
  o.budget_s = 60;
  return o;
}

TEST(AdvisorTest, TheRankingPutsTheBestFinalistFirstAndAlwaysRunsTheAnchors) {
  auto advice = AdviseLayouts(Small());
  ASSERT_TRUE(advice.ok()) << advice.status().message();
  ASSERT_FALSE(advice->ranking.empty());
  EXPECT_EQ(advice->candidates, static_cast<int>(advice->ranking.size()));
  EXPECT_GT(advice->rate_rps, 0);
  // Every candidate is two placeable layouts, each GPU list once.
  std::set<std::vector<std::string>> lists;
  for (const LayoutCandidate& c : advice->ranking) {
    ASSERT_EQ(c.per_gpu.size(), 2u) << c.label;
    for (const std::string& l : c.per_gpu) {
      EXPECT_TRUE(gpu::ParseLayout(gpu::GetGpuType(gpu::GpuModel::kA100_80GB), l).ok()) << l;
    }
    EXPECT_TRUE(lists.insert(c.per_gpu).second) << c.label;
  }
  // The three anchors ran in full, and so did at most `finalists` others.
  int anchors = 0, others = 0;
  for (const LayoutCandidate& c : advice->ranking) {
    if (c.anchor) {
      ++anchors;
      EXPECT_TRUE(c.full_hit.has_value()) << c.label;
    } else if (c.full_hit) {
      ++others;
    }
  }
  EXPECT_EQ(anchors, 3);
  EXPECT_LE(others, 2);
  EXPECT_EQ(advice->finalists, anchors + others);
  // Finalists first, by hit rate: the first is at least as good as every anchor.
  const LayoutCandidate& best = advice->ranking.front();
  ASSERT_TRUE(best.full_hit.has_value());
  for (size_t i = 1; i < advice->ranking.size(); ++i) {
    const LayoutCandidate& c = advice->ranking[i];
    if (c.full_hit) {
      EXPECT_LE(*c.full_hit, *best.full_hit) << c.label;
    }
    if (c.full_hit && i + 1 < advice->ranking.size() && advice->ranking[i + 1].full_hit) {
      EXPECT_GE(*c.full_hit, *advice->ranking[i + 1].full_hit);
    }
  }
  // All 1g: seven 1g.10gb use 7 of a GPU's 8 memory slices, and llama2-13b fits none of them alone.
  const auto all_1g = std::find_if(advice->ranking.begin(), advice->ranking.end(),
                                   [](const LayoutCandidate& c) { return c.origin == "all 1g (anchor)"; });
  ASSERT_NE(all_1g, advice->ranking.end());
  EXPECT_EQ(all_1g->stranded_mib, 2 * (gpu::GetGpuType(gpu::GpuModel::kA100_80GB).memory_mib / 8));
  EXPECT_EQ(all_1g->bound_rps, 0);
  EXPECT_NE(all_1g->note.find("llama2-13b"), std::string::npos) << all_1g->note;
}

TEST(AdvisorTest, ATracesRowsAreTheFunctionsAndItsArrivalsTheLoad) {
  // Three functions over two minutes, 40 invocations a minute in all; the mix maps them onto resnet50 alone.
  const std::string path = ::testing::TempDir() + "/advisor_trace.csv";
  {
    std::ofstream out(path);
    out << "HashOwner,HashApp,HashFunction,Trigger,1,2\n"
           "o,a,f1,http,30,30\no,a,f2,http,9,9\no,a,f3,http,1,1\n";
  }
  AdviseOptions o = Small();
  o.trace = path;
  o.trace_options.mix = {{"resnet50", 1}};
  Result<Advice> a = AdviseLayouts(o);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_NEAR(a->rate_rps, 80.0 / 120, 1e-9);  // the trace's own rate, not a share of a capacity
  ASSERT_FALSE(a->ranking.empty());
  EXPECT_TRUE(a->ranking.front().full_hit.has_value());
  // Every anchor served the same 80 requests in full: a light load of small models, all of them met somewhere.
  EXPECT_GT(*a->ranking.front().full_hit, 0.5);
  o.trace = ::testing::TempDir() + "/no_such_trace.csv";
  EXPECT_FALSE(AdviseLayouts(o).ok());
}

TEST(AdvisorTest, WholeGpuPoliciesAndBadOptionsAreRefused) {
  AdviseOptions o = Small();
  o.policy = "infless";
  auto advice = AdviseLayouts(o);
  ASSERT_FALSE(advice.ok());
  EXPECT_NE(advice.status().message().find("whole GPUs"), std::string::npos);
  o = Small();
  o.load_share = 0;
  EXPECT_FALSE(AdviseLayouts(o).ok());
  o = Small();
  o.preset = "nope";
  EXPECT_FALSE(AdviseLayouts(o).ok());
}

TEST(AdvisorTest, TheWinnerIsWrittenAsAMigPartedConfigAndANodeConfigTheDaemonReads) {
  LayoutCandidate c;
  c.per_gpu = {"4g.40gb+3g.40gb", "4g.40gb+3g.40gb", "3g.40gb+2g.20gb+1g.10gb+1g.10gb"};
  const YAML::Node parted = YAML::Load(MigPartedConfig(c, "advised"));
  EXPECT_EQ(parted["version"].as<std::string>(), "v1");
  const YAML::Node groups = parted["mig-configs"]["advised"];
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0]["devices"].size(), 2u);
  EXPECT_EQ(groups[0]["devices"][1].as<int>(), 1);
  EXPECT_TRUE(groups[0]["mig-enabled"].as<bool>());
  EXPECT_EQ(groups[0]["mig-devices"]["4g.40gb"].as<int>(), 1);
  EXPECT_EQ(groups[1]["devices"][0].as<int>(), 2);
  EXPECT_EQ(groups[1]["mig-devices"]["1g.10gb"].as<int>(), 2);
  // One layout on every GPU: "devices: all".
  c.per_gpu = {"7g.80gb", "7g.80gb"};
  EXPECT_EQ(YAML::Load(MigPartedConfig(c, "x"))["mig-configs"]["x"][0]["devices"].as<std::string>(), "all");

  c.per_gpu = {"4g.40gb+3g.40gb", "4g.40gb+3g.40gb", "7g.80gb"};
  auto node = gpu::ParseNodeConfig(YAML::Load(NodeConfigYaml(c, "advised-node")));
  ASSERT_TRUE(node.ok()) << node.status().message();
  EXPECT_TRUE(gpu::ValidateNodeConfig(*node).ok());
  EXPECT_EQ(node->name, "advised-node");
  ASSERT_EQ(node->gpus.size(), 2u);  // alike GPUs side by side are one group
  EXPECT_EQ(node->gpus[0].layout, "4g.40gb+3g.40gb");
  EXPECT_EQ(node->gpus[0].count, 2);
  EXPECT_EQ(node->gpus[1].layout, "7g.80gb");
}

TEST(AdvisorTest, APresetTakesOneLayoutForAllGpusOrOnePerGpu) {
  PresetOptions o;
  o.gpus = 2;
  o.layouts = {"7g.80gb"};
  auto one = MakePreset("paper", o);
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ((*one)->slices.size(), 2u);
  o.layouts = {"7g.80gb", "4g.40gb+3g.40gb"};
  auto each = MakePreset("paper", o);
  ASSERT_TRUE(each.ok()) << each.status().message();
  EXPECT_EQ((*each)->slices.size(), 3u);
  EXPECT_EQ((*each)->slices[1].gpu, 1);
  // A bound over other slices than the preset's own: whole GPUs hold every model.
  EXPECT_GT(FluidBound(**one, (*one)->slices), 0);
  o.layouts = {"7g.80gb", "7g.80gb", "7g.80gb"};
  EXPECT_FALSE(MakePreset("paper", o).ok());
  o.layouts = {"8g.80gb"};
  EXPECT_FALSE(MakePreset("paper", o).ok());
}

}  // namespace
}  // namespace fluidfaas::sim
