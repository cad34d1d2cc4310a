// Counts of maximal MIG layouts: the enumerator against the MIG guide's figures (19 classic layouts, 18 before
// R510) and, for all profiles, against an independent count by dynamic programming over subsets.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "gpu/layout.h"

namespace fluidfaas::gpu {
namespace {

// Independent count: every subset of the candidate (profile, start) pairs, as a bit mask, is valid or not;
// valid(m) follows from valid(m without its lowest bit) in O(1), so all 2^n subsets take O(2^n) time. A
// subset is maximal when it is valid and adding any one candidate makes it invalid.
size_t CountMaximalBySubsets(const GpuType& type, ProfileSet set, bool before_r510) {
  struct Candidate {
    uint8_t memory;
    int sm;
    int profile_index;
  };
  std::vector<Candidate> cands;
  std::vector<int> max_count;
  std::vector<uint32_t> profile_bits;  // candidates of each profile
  uint32_t me_bits = 0;
  uint32_t bits_4g = 0;
  uint32_t bits_3g = 0;
  for (const MigProfile& p : type.profiles) {
    if (set == ProfileSet::kClassic && !p.classic()) continue;
    const int pi = static_cast<int>(max_count.size());
    max_count.push_back(p.max_count);
    profile_bits.push_back(0);
    for (int s = 0; s < kMemorySlices; ++s) {
      if (!p.AllowsStart(s)) continue;
      const uint32_t bit = 1u << cands.size();
      profile_bits[pi] |= bit;
      if (p.media_extensions) me_bits |= bit;
      if (p.id == 5) bits_4g |= bit;
      if (p.id == 9) bits_3g |= bit;
      cands.push_back(Candidate{p.MemoryMask(s), p.sm_slices, pi});
    }
  }
  const size_t n = cands.size();
  EXPECT_LE(n, 26u);
  // memory[m]: memory slices used by subset m, or 0xff... marker via `ok` when two candidates overlap or
  // the SM budget is exceeded. sm[m]: SM slices used.
  const size_t subsets = size_t{1} << n;
  std::vector<uint8_t> memory(subsets, 0);
  std::vector<uint8_t> sm(subsets, 0);
  std::vector<bool> fits(subsets, false);  // no overlap and SM <= 7
  fits[0] = true;
  for (size_t m = 1; m < subsets; ++m) {
    const size_t low = static_cast<size_t>(__builtin_ctzll(m));
    const size_t rest = m & (m - 1);
    if (!fits[rest] || (memory[rest] & cands[low].memory) != 0) continue;
    memory[m] = memory[rest] | cands[low].memory;
    sm[m] = static_cast<uint8_t>(sm[rest] + cands[low].sm);
    fits[m] = sm[m] <= kSmSlices;
  }
  const auto valid = [&](uint32_t m) {
    if (!fits[m]) return false;
    for (size_t p = 0; p < profile_bits.size(); ++p) {
      if (__builtin_popcount(m & profile_bits[p]) > max_count[p]) return false;
    }
    if (__builtin_popcount(m & me_bits) > 1) return false;
    return !(before_r510 && (m & bits_4g) != 0 && (m & bits_3g) != 0);
  };
  size_t maximal = 0;
  for (uint32_t m = 1; m < subsets; ++m) {
    if (!valid(m)) continue;
    bool extendable = false;
    for (size_t c = 0; c < n && !extendable; ++c) {
      const uint32_t bit = 1u << c;
      extendable = (m & bit) == 0 && valid(m | bit);
    }
    maximal += !extendable;
  }
  return maximal;
}

TEST(LayoutCountTest, ClassicProfilesGiveNineteenMaximalLayouts) {
  for (const GpuType& type : AllGpuTypes()) {
    EXPECT_EQ(EnumerateMaximalLayouts(type, ProfileSet::kClassic).size(), 19u) << type.name;
  }
}

TEST(LayoutCountTest, DriversBeforeR510GiveEighteen) {
  const GpuType& a100 = GetGpuType(GpuModel::kA100_80GB);
  const auto layouts = EnumerateMaximalLayouts(a100, ProfileSet::kClassic, LayoutRules{.driver_before_r510 = true});
  EXPECT_EQ(layouts.size(), 18u);
  for (const Layout& l : layouts) EXPECT_NE(l.ToString(), "4g.40gb@0+3g.40gb@4");
}

TEST(LayoutCountTest, ClassicMatchesIndependentCount) {
  const GpuType& a100 = GetGpuType(GpuModel::kA100_80GB);
  EXPECT_EQ(CountMaximalBySubsets(a100, ProfileSet::kClassic, false), 19u);
  EXPECT_EQ(CountMaximalBySubsets(a100, ProfileSet::kClassic, true), 18u);
}

TEST(LayoutCountTest, AllProfilesMatchIndependentCount) {
  const GpuType& a100 = GetGpuType(GpuModel::kA100_80GB);
  const size_t enumerated = EnumerateMaximalLayouts(a100, ProfileSet::kAll).size();
  EXPECT_GT(enumerated, 19u);
  EXPECT_EQ(enumerated, CountMaximalBySubsets(a100, ProfileSet::kAll, false));
  EXPECT_EQ(EnumerateMaximalLayouts(a100, ProfileSet::kAll, LayoutRules{.driver_before_r510 = true}).size(),
            CountMaximalBySubsets(a100, ProfileSet::kAll, true));
}

TEST(LayoutCountTest, EveryEnumeratedLayoutIsValidDistinctAndMaximal) {
  const GpuType& a100 = GetGpuType(GpuModel::kA100_80GB);
  std::set<std::string> seen;
  for (const Layout& layout : EnumerateMaximalLayouts(a100, ProfileSet::kAll)) {
    ASSERT_TRUE(seen.insert(layout.ToString()).second) << "duplicate " << layout.ToString();
    ASSERT_TRUE(ParseLayout(a100, layout.ToString()).ok()) << layout.ToString();
    for (const MigProfile& p : a100.profiles) {
      for (int s = 0; s < kMemorySlices; ++s) {
        if (!p.AllowsStart(s)) continue;
        std::vector<PlacedSlice> more = layout.slices();
        more.push_back(PlacedSlice{&p, s});
        EXPECT_FALSE(MakeLayout(a100, more).ok()) << layout.ToString() << " + " << p.name << "@" << s;
      }
    }
  }
}

TEST(LayoutCountTest, ClassicLayoutsAreTheMigGuideTable) {
  const GpuType& a100 = GetGpuType(GpuModel::kA100_80GB);
  std::set<std::string> got;
  for (const Layout& l : EnumerateMaximalLayouts(a100, ProfileSet::kClassic)) got.insert(l.ToString());
  // Left half (memory 0-3): 4g | 3g | 2g+2g | 2g+1g+1g | 1g+1g+2g | 4 x 1g; right half (4-7): 3g | 2g+1g |
  // 3 x 1g; 6 x 3 = 18, plus 7g alone.
  const std::vector<std::string> left = {"4g.40gb@0",
                                         "3g.40gb@0",
                                         "2g.20gb@0+2g.20gb@2",
                                         "2g.20gb@0+1g.10gb@2+1g.10gb@3",
                                         "1g.10gb@0+1g.10gb@1+2g.20gb@2",
                                         "1g.10gb@0+1g.10gb@1+1g.10gb@2+1g.10gb@3"};
  const std::vector<std::string> right = {"3g.40gb@4", "2g.20gb@4+1g.10gb@6", "1g.10gb@4+1g.10gb@5+1g.10gb@6"};
  std::set<std::string> want = {"7g.80gb@0"};
  for (const auto& l : left) {
    for (const auto& r : right) want.insert(std::string(l).append("+").append(r));
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace fluidfaas::gpu
