#include "gpu/topology.h"

#include <gtest/gtest.h>

#include <set>

namespace fluidfaas::gpu {
namespace {

TEST(SliceIdTest, FormatsAndParses) {
  SliceId id{3, "2g.20gb", 4};
  EXPECT_EQ(id.ToString(), "3:2g.20gb@4");
  Result<SliceId> parsed = SliceId::Parse("3:2g.20gb@4");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, id);
  EXPECT_EQ(SliceId::Parse("0:1g.10gb+me@2")->profile, "1g.10gb+me");
}

TEST(SliceIdTest, RejectsMalformedIds) {
  for (const char* bad :
       {"", "2g.20gb@4", "0:2g.20gb", "x:2g.20gb@4", "0:@4", "0:2g.20gb@", "0:2g.20gb@a", "-1:2g.20gb@4", "0@4:2g"}) {
    Result<SliceId> r = SliceId::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("expected gpu:profile@start"), std::string::npos) << bad;
  }
}

GpuInfo MakeGpu(int index, std::string_view layout, bool mig = true) {
  const GpuType& type = GetGpuType(GpuModel::kA100_80GB);
  GpuInfo g;
  g.index = index;
  g.type = &type;
  g.uuid = MakeUpUuid("GPU", "test/" + std::to_string(index));
  g.mig_enabled = mig;
  g.layout = *ParseLayout(type, layout);
  return g;
}

TEST(TopologyTest, SlicesHaveStableIdsMemoryAndUuids) {
  NodeTopology node =
      MakeNodeTopology("n1", true, "emulated", {MakeGpu(0, "1g.10gb+2g.20gb+4g.40gb"), MakeGpu(1, "3g.40gb+3g.40gb")});
  ASSERT_EQ(node.slices.size(), 5u);
  EXPECT_EQ(node.slices[0].id, "0:4g.40gb@0");
  EXPECT_EQ(node.slices[1].id, "0:2g.20gb@4");
  EXPECT_EQ(node.slices[2].id, "0:1g.10gb@6");
  EXPECT_EQ(node.slices[3].id, "1:3g.40gb@0");
  EXPECT_EQ(node.slices[4].id, "1:3g.40gb@4");
  EXPECT_EQ(node.slices[1].memory_mib, 19968);
  EXPECT_EQ(node.slices[1].sms, 28);
  EXPECT_EQ(node.slices[4].gpu, 1);
  EXPECT_EQ(node.slices[4].gpu_instance_id, -1);
  std::set<std::string> uuids;
  for (const Slice& s : node.slices) {
    EXPECT_EQ(s.uuid.rfind("MIG-", 0), 0u) << s.uuid;
    EXPECT_EQ(s.uuid.size(), 4 + 36u) << s.uuid;
    uuids.insert(s.uuid);
  }
  EXPECT_EQ(uuids.size(), 5u);
  EXPECT_EQ(node.FindSlice("1:3g.40gb@4"), &node.slices[4]);
  EXPECT_EQ(node.FindSlice("1:3g.40gb@2"), nullptr);
}

TEST(TopologyTest, MadeUpUuidsAreDeterministic) {
  EXPECT_EQ(MakeUpUuid("MIG", "a/0:1g.10gb@6"), MakeUpUuid("MIG", "a/0:1g.10gb@6"));
  EXPECT_NE(MakeUpUuid("MIG", "a/0:1g.10gb@6"), MakeUpUuid("MIG", "b/0:1g.10gb@6"));
}

TEST(TopologyTest, GpuWithMigDisabledIsOneFullSliceWithTheGpuUuid) {
  NodeTopology node = MakeNodeTopology("n1", true, "emulated", {MakeGpu(0, "7g.80gb", /*mig=*/false)});
  ASSERT_EQ(node.slices.size(), 1u);
  EXPECT_EQ(node.slices[0].id, "0:7g.80gb@0");
  EXPECT_EQ(node.slices[0].uuid, node.gpus[0].uuid);
  EXPECT_EQ(node.slices[0].memory_mib, 80384);
}

}  // namespace
}  // namespace fluidfaas::gpu
