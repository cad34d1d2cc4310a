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

TEST(DurationHistogramTest, QuantilesAreWithinAHalfPerMilleOfTheExactOnes) {
  DurationHistogram h;
  EXPECT_EQ(h.Quantile(0.5), Duration{0});
  std::vector<int64_t> samples;
  uint64_t x = 12345;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    samples.push_back(static_cast<int64_t>((x >> 20) % 400'000'000));  // up to 0.4 s in ns
  }
  for (int64_t v : samples) h.Add(Duration(v));
  std::sort(samples.begin(), samples.end());
  EXPECT_EQ(h.count(), 20000);
  for (double q : {0.0, 0.1, 0.5, 0.9, 0.99, 1.0}) {
    const auto rank = std::min<size_t>(samples.size() - 1, static_cast<size_t>(q * 20000));
    const double exact = static_cast<double>(samples[rank]);
    EXPECT_NEAR(static_cast<double>(h.Quantile(q).count()), exact, exact * 5e-4 + 1) << q;
  }
}

TEST(DurationHistogramTest, SmallValuesAreExactAndMergingAddsCounts) {
  DurationHistogram a, b;
  for (int v : {3, 1, 2}) a.Add(Duration(v));
  for (int v : {5, 4}) b.Add(Duration(v));
  a.Merge(b);
  EXPECT_EQ(a.count(), 5);
  EXPECT_EQ(a.Quantile(0.0), Duration(1));
  EXPECT_EQ(a.Quantile(0.5), Duration(3));
  EXPECT_EQ(a.Quantile(1.0), Duration(5));
  a.Add(Duration(-7));  // clamped to 0
  EXPECT_EQ(a.Quantile(0.0), Duration(0));
}

}  // namespace
}  // namespace fluidfaas
