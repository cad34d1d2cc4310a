#include "sim/capacity.h"

#include <gtest/gtest.h>

#include <limits>

namespace fluidfaas::sim {
namespace {

constexpr double kNo = std::numeric_limits<double>::infinity();

TEST(MixCapacityTest, OneModelOneKindIsSlicesOverTime) {
  EXPECT_NEAR(MixCapacity({1}, {{0.01}}, {4}), 400, 1e-9);
}

TEST(MixCapacityTest, EachModelGoesWhereItIsComparativelyFastest) {
  // Two kinds, one slice each; half the requests each. a: 1 s on kind 0, 2 s on kind 1; b: 1 s on either. Every
  // request takes at least 1 s of a slice, so lambda <= 2; a all on kind 0 and b all on kind 1 reaches it.
  EXPECT_NEAR(MixCapacity({0.5, 0.5}, {{1, 2}, {1, 1}}, {1, 1}), 2.0, 1e-9);
}

TEST(MixCapacityTest, AModelThatFitsOnlyBigSlicesBoundsTheMix) {
  // Big: 0.2 s, only on the one big slice; small: 0.01 s anywhere, 10 small slices. Half the requests each:
  // the big slice can take lambda/2 x 0.2 s <= 1, so lambda <= 10 however many small slices there are.
  EXPECT_NEAR(MixCapacity({0.5, 0.5}, {{kNo, 0.2}, {0.01, 0.01}}, {10, 1}), 10.0, 1e-9);
  // The paper-style estimate (each slice's own mix throughput) would say about 1,000 here.
}

TEST(MixCapacityTest, AModelThatFitsNothingGivesZero) {
  EXPECT_EQ(MixCapacity({0.5, 0.5}, {{kNo, kNo}, {0.01, 0.01}}, {1, 1}), 0);
  EXPECT_NEAR(MixCapacity({0, 1}, {{kNo, kNo}, {0.01, 0.01}}, {1, 1}), 200, 1e-9);  // no share: no bound
}

}  // namespace
}  // namespace fluidfaas::sim
