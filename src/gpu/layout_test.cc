#include "gpu/layout.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

namespace fluidfaas::gpu {
namespace {

const GpuType& A100() {
  return GetGpuType(GpuModel::kA100_80GB);
}

std::string Placed(std::string_view spec, LayoutRules rules = {}) {
  Result<Layout> l = ParseLayout(A100(), spec, rules);
  return l.ok() ? l->ToString() : "error: " + l.status().message();
}

TEST(LayoutTest, AssignsPlacementsLargestFirst) {
  EXPECT_EQ(Placed("1g.10gb+2g.20gb+4g.40gb"), "4g.40gb@0+2g.20gb@4+1g.10gb@6");
  EXPECT_EQ(Placed("3g.40gb+3g.40gb"), "3g.40gb@0+3g.40gb@4");
  EXPECT_EQ(Placed("2g.20gb+1g.10gb"), "2g.20gb@0+1g.10gb@2");
  EXPECT_EQ(Placed("7g.80gb"), "7g.80gb@0");
  EXPECT_EQ(Placed("1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb"),
            "1g.10gb@0+1g.10gb@1+1g.10gb@2+1g.10gb@3+1g.10gb@4+1g.10gb@5+1g.10gb@6");
}

TEST(LayoutTest, KeepsGivenPlacementsAndPlacesTheRestAround) {
  EXPECT_EQ(Placed("4g.40gb@0+2g.20gb@4+1g.10gb@6"), "4g.40gb@0+2g.20gb@4+1g.10gb@6");
  EXPECT_EQ(Placed("1g.10gb@0+2g.20gb"), "1g.10gb@0+2g.20gb@2");
  // Backtracking: 2g cannot go first at 0 because the 1g.20gb pinned at 0 is there; it must find 2 or 4.
  EXPECT_EQ(Placed("1g.20gb@0+2g.20gb+2g.20gb+1g.10gb"), "1g.20gb@0+2g.20gb@2+2g.20gb@4+1g.10gb@6");
  // 3g must take 4 when 0..3 are used by given slices.
  EXPECT_EQ(Placed("2g.20gb@0+2g.20gb@2+3g.40gb"), "2g.20gb@0+2g.20gb@2+3g.40gb@4");
}

TEST(LayoutTest, MediaExtensionProfilesParse) {
  EXPECT_EQ(Placed("1g.10gb+me+2g.20gb"), "2g.20gb@0+1g.10gb+me@2");
  EXPECT_EQ(Placed("1g.10gb+me@5+4g.40gb"), "4g.40gb@0+1g.10gb+me@5");
}

TEST(LayoutTest, ToStringParsesBackToTheSameLayout) {
  Result<Layout> a = ParseLayout(A100(), "1g.10gb+me+1g.20gb+3g.40gb");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  Result<Layout> b = ParseLayout(A100(), a->ToString());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->sm_slices_used(), 5);
  EXPECT_EQ(a->memory_slices_used(), 7);
}

// One test per validation error: each input breaks exactly one rule, and the reason says which.
TEST(LayoutValidationTest, UnknownProfileOnThisGpuType) {
  EXPECT_EQ(Placed("3g.20gb+1g.10gb"),
            "error: profile '3g.20gb' does not exist on a100-80gb (profiles: 1g.10gb, 1g.10gb+me, 1g.20gb, "
            "2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb)");
  // 3g.20gb is an A100-40GB profile.
  EXPECT_TRUE(ParseLayout(GetGpuType(GpuModel::kA100_40GB), "3g.20gb+1g.10gb").ok());
}

TEST(LayoutValidationTest, PlacementNotAllowed) {
  EXPECT_EQ(Placed("2g.20gb@1"), "error: 2g.20gb cannot start at memory slice 1 (allowed placements {0,2,4}:2)");
  EXPECT_EQ(Placed("4g.40gb@4"), "error: 4g.40gb cannot start at memory slice 4 (allowed placements {0}:4)");
  EXPECT_EQ(Placed("1g.10gb@7"),
            "error: 1g.10gb cannot start at memory slice 7 (allowed placements {0,1,2,3,4,5,6}:1)");
}

TEST(LayoutValidationTest, Overlap) {
  EXPECT_EQ(Placed("4g.40gb@0+2g.20gb@2"), "error: 2g.20gb@2 overlaps 4g.40gb@0 on memory slices 2-3");
  EXPECT_EQ(Placed("2g.20gb@4+1g.10gb@5"), "error: 1g.10gb@5 overlaps 2g.20gb@4 on memory slice 5");
}

TEST(LayoutValidationTest, OverSevenSmSlices) {
  EXPECT_EQ(Placed("4g.40gb+2g.20gb+2g.20gb"), "error: the layout uses 8 SM slices; a GPU has 7");
}

TEST(LayoutValidationTest, MoreThanOneMediaExtensionProfile) {
  EXPECT_EQ(Placed("1g.10gb+me+1g.10gb+me"), "error: at most one +me profile per GPU; the layout has 2");
}

TEST(LayoutValidationTest, TooManyOfOneProfile) {
  EXPECT_EQ(Placed("1g.20gb+1g.20gb+1g.20gb+1g.20gb+1g.20gb"), "error: 5 x 1g.20gb: at most 4 per a100-80gb GPU");
  EXPECT_EQ(Placed("3g.40gb+3g.40gb+3g.40gb"), "error: 3 x 3g.40gb: at most 2 per a100-80gb GPU");
}

TEST(LayoutValidationTest, FourGPlusThreeGNeedsDriverR510) {
  EXPECT_EQ(Placed("4g.40gb+3g.40gb"), "4g.40gb@0+3g.40gb@4");
  EXPECT_EQ(Placed("4g.40gb+3g.40gb", LayoutRules{.driver_before_r510 = true}),
            "error: 4g.40gb + 3g.40gb on one GPU needs driver R510 or later");
  EXPECT_EQ(Placed("4g.40gb@0+3g.40gb@4", LayoutRules{.driver_before_r510 = true}),
            "error: 4g.40gb + 3g.40gb on one GPU needs driver R510 or later");
}

TEST(LayoutValidationTest, NoRoomForUnplacedSlices) {
  // 7 SM slices, but 9 memory slices.
  EXPECT_EQ(Placed("3g.40gb+3g.40gb+1g.10gb"),
            "error: no placement fits 3g.40gb + 3g.40gb + 1g.10gb in 8 memory slices");
  EXPECT_EQ(Placed("2g.20gb@2+4g.40gb"), "error: no placement fits 4g.40gb beside 2g.20gb@2 in 8 memory slices");
}

TEST(LayoutValidationTest, MalformedText) {
  EXPECT_EQ(Placed(""), "error: empty layout");
  EXPECT_EQ(Placed("1g.10gb++2g.20gb"), "error: layout '1g.10gb++2g.20gb' has an empty part");
  EXPECT_EQ(Placed("2g.20gb@x"), "error: '2g.20gb@x': placement must be a memory slice number after '@'");
  EXPECT_EQ(Placed("2g.20gb@"), "error: '2g.20gb@': placement must be a memory slice number after '@'");
  EXPECT_EQ(Placed("2g.20gb@-2"), "error: '2g.20gb@-2': placement must be a memory slice number after '@'");
}

// Brute force: does any choice of allowed starts place every profile without overlap?
bool SomePlacementExists(const std::vector<const MigProfile*>& profiles, size_t i, uint8_t used) {
  if (i == profiles.size()) return true;
  for (int s = 0; s < kMemorySlices; ++s) {
    if (profiles[i]->AllowsStart(s) && (profiles[i]->MemoryMask(s) & used) == 0 &&
        SomePlacementExists(profiles, i + 1, used | profiles[i]->MemoryMask(s))) {
      return true;
    }
  }
  return false;
}

RC_GTEST_PROP(LayoutPropertyTest, PlacementSucceedsExactlyWhenALegalPlacementExists, ()) {
  const GpuType& type = **rc::gen::elementOf(
      std::vector<const GpuType*>{&GetGpuType(GpuModel::kA100_40GB), &GetGpuType(GpuModel::kA100_80GB),
                                  &GetGpuType(GpuModel::kH100_80GB), &GetGpuType(GpuModel::kH200_141GB)});
  const auto indexes = *rc::gen::container<std::vector<int>>(
      *rc::gen::inRange(1, 6), rc::gen::inRange(0, static_cast<int>(type.profiles.size())));
  std::vector<SliceRequest> requests;
  std::vector<const MigProfile*> profiles;
  for (int i : indexes) {
    requests.push_back(SliceRequest{&type.profiles[i], std::nullopt});
    profiles.push_back(&type.profiles[i]);
  }
  Result<Layout> layout = PlaceLayout(type, requests);

  int sm = 0;
  int me = 0;
  std::map<int, int> count;
  for (const MigProfile* p : profiles) {
    sm += p->sm_slices;
    me += p->media_extensions;
    ++count[p->id];
  }
  bool counts_ok = sm <= kSmSlices && me <= 1;
  for (const auto& [id, n] : count) counts_ok = counts_ok && n <= type.FindProfileById(id)->max_count;
  const bool expect_ok = counts_ok && SomePlacementExists(profiles, 0, 0);
  RC_ASSERT(layout.ok() == expect_ok);
  if (layout.ok()) {
    RC_ASSERT(layout->slices().size() == profiles.size());
    // The placed layout revalidates and round-trips through text.
    Result<Layout> again = ParseLayout(type, layout->ToString());
    RC_ASSERT(again.ok());
    RC_ASSERT(*again == *layout);
  }
}

}  // namespace
}  // namespace fluidfaas::gpu
