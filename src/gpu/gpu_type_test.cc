#include "gpu/gpu_type.h"

#include <gtest/gtest.h>

namespace fluidfaas::gpu {
namespace {

TEST(GpuTypeTest, EveryTypeHasTheSevenProfilesOfTheMigGuide) {
  for (const GpuType& type : AllGpuTypes()) {
    SCOPED_TRACE(std::string(type.name));
    ASSERT_EQ(type.profiles.size(), 7u);
    const int ids[] = {19, 20, 15, 14, 9, 5, 0};
    const int sm[] = {1, 1, 1, 2, 3, 4, 7};
    const int mem[] = {1, 1, 2, 2, 4, 4, 8};
    const int max[] = {7, 1, 4, 3, 2, 1, 1};
    const uint8_t starts[] = {0x7f, 0x7f, 0x55, 0x15, 0x11, 0x01, 0x01};
    for (size_t i = 0; i < 7; ++i) {
      const MigProfile& p = type.profiles[i];
      EXPECT_EQ(p.id, ids[i]);
      EXPECT_EQ(p.sm_slices, sm[i]) << p.name;
      EXPECT_EQ(p.memory_slices, mem[i]) << p.name;
      EXPECT_EQ(p.max_count, max[i]) << p.name;
      EXPECT_EQ(p.placement_mask, starts[i]) << p.name;
      EXPECT_EQ(p.media_extensions, p.id == 20);
      EXPECT_LE(p.memory_mib, type.memory_mib);
      EXPECT_LE(p.sms, type.sms);
      // No placement may run past the last memory slice.
      for (int s = 0; s < kMemorySlices; ++s) {
        if (p.AllowsStart(s)) {
          EXPECT_LE(s + p.memory_slices, kMemorySlices) << p.name << "@" << s;
        }
      }
    }
    EXPECT_EQ(&type.FullProfile(), &type.profiles[6]);
  }
}

TEST(GpuTypeTest, A100_80GBFiguresMatchNvml) {
  const GpuType& a100 = GetGpuType(GpuModel::kA100_80GB);
  EXPECT_EQ(a100.FindProfile("1g.10gb")->memory_mib, 9856);
  EXPECT_EQ(a100.FindProfile("2g.20gb")->memory_mib, 19968);
  EXPECT_EQ(a100.FindProfile("3g.40gb")->memory_mib, 40192);
  EXPECT_EQ(a100.FindProfile("4g.40gb")->memory_mib, 40192);
  EXPECT_EQ(a100.FindProfile("7g.80gb")->memory_mib, 80384);
  EXPECT_EQ(a100.FindProfile("1g.10gb")->sms, 14);
  EXPECT_EQ(a100.FindProfile("7g.80gb")->sms, 98);
  EXPECT_EQ(GetGpuType(GpuModel::kH100_80GB).FindProfile("7g.80gb")->sms, 132);
  EXPECT_EQ(GetGpuType(GpuModel::kH100_80GB).FindProfile("3g.40gb")->sms, 60);
}

TEST(GpuTypeTest, ProfileNamesDifferByType) {
  // The same name is a different profile on A100-40GB (two memory slices) and A100-80GB (one).
  EXPECT_EQ(GetGpuType(GpuModel::kA100_40GB).FindProfile("1g.10gb")->id, 15);
  EXPECT_EQ(GetGpuType(GpuModel::kA100_80GB).FindProfile("1g.10gb")->id, 19);
  EXPECT_EQ(GetGpuType(GpuModel::kA100_80GB).FindProfile("3g.20gb"), nullptr);
  EXPECT_EQ(GetGpuType(GpuModel::kH200_141GB).FindProfileById(9)->name, "3g.71gb");
  EXPECT_NE(GetGpuType(GpuModel::kA100_80GB).FindProfile("1G.10GB"), nullptr);
}

TEST(GpuTypeTest, FindByNameIsCaseInsensitiveAndListsKnownNames) {
  Result<const GpuType*> t = FindGpuType("A100-80GB");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->model, GpuModel::kA100_80GB);
  Result<const GpuType*> bad = FindGpuType("v100");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown GPU type 'v100' (known: a100-40gb, a100-80gb, h100-80gb, h200-141gb)");
}

TEST(GpuTypeTest, ProductNamesMapToTypes) {
  EXPECT_EQ((*GpuTypeFromProductName("NVIDIA A100-SXM4-80GB", 81920))->model, GpuModel::kA100_80GB);
  EXPECT_EQ((*GpuTypeFromProductName("NVIDIA A100 80GB PCIe", 81920))->model, GpuModel::kA100_80GB);
  EXPECT_EQ((*GpuTypeFromProductName("NVIDIA A100-SXM4-40GB", 40960))->model, GpuModel::kA100_40GB);
  EXPECT_EQ((*GpuTypeFromProductName("NVIDIA A100-PCIE-40GB", 40536))->model, GpuModel::kA100_40GB);
  EXPECT_EQ((*GpuTypeFromProductName("NVIDIA H100 80GB HBM3", 81559))->model, GpuModel::kH100_80GB);
  EXPECT_EQ((*GpuTypeFromProductName("NVIDIA H200", 143771))->model, GpuModel::kH200_141GB);
  EXPECT_EQ(GpuTypeFromProductName("NVIDIA H100 NVL", 95830).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(GpuTypeFromProductName("Tesla V100-SXM2-32GB", 32768).status().code(), StatusCode::kUnimplemented);
}

TEST(GpuTypeTest, PlacementsPrintLikeTheMigGuide) {
  const GpuType& a100 = GetGpuType(GpuModel::kA100_80GB);
  EXPECT_EQ(a100.FindProfile("2g.20gb")->PlacementsToString(), "{0,2,4}:2");
  EXPECT_EQ(a100.FindProfile("3g.40gb")->PlacementsToString(), "{0,4}:4");
  EXPECT_EQ(a100.FindProfile("1g.20gb")->MemoryMask(6), 0b1100'0000);
}

}  // namespace
}  // namespace fluidfaas::gpu
