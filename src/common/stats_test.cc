#include "common/stats.h"

#include <gtest/gtest.h>

namespace fluidfaas {
namespace {

TEST(PercentileTest, NearestRankOfTheSortedValues) {
  EXPECT_EQ(Percentile({}, 0.5), 0);
  EXPECT_EQ(Percentile({7}, 0.99), 7);
  const std::vector<double> v = {5, 1, 4, 2, 3};  // sorted: 1 2 3 4 5
  EXPECT_EQ(Percentile(v, 0.0), 1);
  EXPECT_EQ(Percentile(v, 0.5), 3);
  EXPECT_EQ(Percentile(v, 0.99), 5);
  EXPECT_EQ(Percentile(v, 1.0), 5);
  EXPECT_EQ(Percentile(v, 0.3), 2);  // rank 1.2 rounds to 1
  EXPECT_EQ(Percentile(v, 7.0), 5);  // clamped
}

}  // namespace
}  // namespace fluidfaas
