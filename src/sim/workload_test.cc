#include "sim/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

namespace fluidfaas::sim {
namespace {

double Cv(const std::vector<Arrival>& a) {
  std::vector<double> gaps;
  for (size_t i = 1; i < a.size(); ++i) gaps.push_back(ToSeconds(a[i].at - a[i - 1].at));
  const double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / static_cast<double>(gaps.size());
  double var = 0;
  for (double g : gaps) var += (g - mean) * (g - mean);
  return std::sqrt(var / static_cast<double>(gaps.size())) / mean;
}

TEST(WorkloadTest, PoissonHasTheRateAndUnitCv) {
  const auto a = GenerateWorkload({.rate_rps = 200, .duration = Seconds(500), .seed = 7});
  EXPECT_NEAR(static_cast<double>(a.size()) / 500, 200, 200 * 0.02);
  EXPECT_NEAR(Cv(a), 1.0, 0.03);
  for (size_t i = 1; i < a.size(); ++i) ASSERT_LE(a[i - 1].at, a[i].at);
}

TEST(WorkloadTest, GammaKeepsTheRateWithTheAskedCv) {
  for (double cv : {0.5, 2.0, 4.0}) {
    const auto a = GenerateWorkload({.rate_rps = 100, .cv = cv, .duration = Seconds(2000), .seed = 3});
    EXPECT_NEAR(static_cast<double>(a.size()) / 2000, 100, 100 * 0.05) << cv;
    EXPECT_NEAR(Cv(a), cv, cv * 0.08) << cv;
  }
}

TEST(WorkloadTest, DiurnalModulationFollowsTheSine) {
  // Amplitude 0.8 over a 100 s period: the first quarter is busy, the third quiet.
  const auto a = GenerateWorkload({.rate_rps = 100,
                                   .diurnal_amplitude = 0.8,
                                   .diurnal_period = Seconds(100),
                                   .duration = Seconds(1000),
                                   .seed = 5});
  size_t peak = 0;
  size_t trough = 0;
  for (const Arrival& x : a) {
    const double phase = std::fmod(ToSeconds(x.at), 100.0);
    peak += phase >= 15 && phase < 35;
    trough += phase >= 65 && phase < 85;
  }
  EXPECT_NEAR(static_cast<double>(a.size()) / 1000, 100, 4);
  EXPECT_GT(static_cast<double>(peak) / static_cast<double>(trough), 5.0);  // (1 + 0.76) / (1 - 0.76) = 7.3
}

TEST(WorkloadTest, ZipfPopularity) {
  const auto a =
      GenerateWorkload({.rate_rps = 1000, .functions = 4, .zipf_s = 1.0, .duration = Seconds(100), .seed = 9});
  std::vector<double> n(4);
  for (const Arrival& x : a) n[x.function] += 1;
  EXPECT_NEAR(n[0] / n[1], 2.0, 0.1);
  EXPECT_NEAR(n[0] / n[3], 4.0, 0.25);
}

TEST(WorkloadTest, SameSeedSameArrivals) {
  const WorkloadSpec spec{.rate_rps = 50, .cv = 2, .functions = 3, .duration = Seconds(60), .seed = 11};
  const auto a = GenerateWorkload(spec);
  const auto b = GenerateWorkload(spec);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].at, b[i].at);
    ASSERT_EQ(a[i].function, b[i].function);
  }
  WorkloadSpec other = spec;
  other.seed = 12;
  EXPECT_NE(GenerateWorkload(other).front().at, a.front().at);
}

TEST(WorkloadTest, ExplicitWeightsSetEachFunctionsShare) {
  const auto a =
      GenerateWorkload({.rate_rps = 1000, .functions = 3, .duration = Seconds(100), .seed = 4, .weights = {1, 0, 3}});
  std::vector<double> n(3);
  for (const Arrival& x : a) n[x.function] += 1;
  EXPECT_EQ(n[1], 0);
  EXPECT_NEAR(n[2] / n[0], 3.0, 0.15);
}

TEST(WorkloadTest, OnOffFunctionsAreActiveTheirShareOfTheTimeAtTheirMeanRate) {
  // 20 functions, uniform, active 16% of the time in periods of 30 s on average.
  const double duration = 6000;
  const WorkloadSpec spec{.rate_rps = 400,
                          .functions = 20,
                          .zipf_s = 0,
                          .duration = SecondsF(duration),
                          .seed = 8,
                          .active_share = 0.16,
                          .mean_on_s = 30};
  const auto a = GenerateWorkload(spec);
  for (size_t i = 1; i < a.size(); ++i) ASSERT_LE(a[i - 1].at, a[i].at);
  EXPECT_NEAR(static_cast<double>(a.size()) / duration, 400, 400 * 0.1);
  // A function is active in a second when it has a request in it (at 125 requests/s while active, a second
  // inside an active period always has some); active periods' edges add about 1 s per 30 s period.
  std::vector<std::vector<bool>> busy(20, std::vector<bool>(static_cast<size_t>(duration), false));
  for (const Arrival& x : a) busy[x.function][static_cast<size_t>(ToSeconds(x.at))] = true;
  double active = 0;
  size_t all_active_seconds = 0;
  for (size_t s = 0; s < static_cast<size_t>(duration); ++s) {
    size_t now = 0;
    for (size_t f = 0; f < 20; ++f) now += busy[f][s];
    active += static_cast<double>(now);
    all_active_seconds += now == 20;
  }
  EXPECT_NEAR(active / (20 * duration), 0.16 * (1 + 1.0 / 30), 0.025);
  EXPECT_EQ(all_active_seconds, 0U);  // independent: never all at once (0.16^20)
  // The same seed gives the same arrivals.
  const auto b = GenerateWorkload(spec);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i += 997) ASSERT_EQ(a[i].at, b[i].at);
}

TEST(WorkloadTest, InvalidSpecsNameTheField) {
  EXPECT_EQ(ValidateWorkload({.active_share = 0}).message(), "workload.active_share: must be in (0, 1]");
  EXPECT_EQ(ValidateWorkload({.mean_on_s = 0}).message(), "workload.mean_on_s: must be positive");
  EXPECT_EQ(ValidateWorkload({.functions = 2, .weights = {1}}).message(), "workload.weights: one per function (2)");
  EXPECT_EQ(ValidateWorkload({.functions = 2, .weights = {0, 0}}).message(),
            "workload.weights: at least one must be positive");
  EXPECT_EQ(ValidateWorkload({.rate_rps = 0}).message(), "workload.rate_rps: must be positive");
  EXPECT_EQ(ValidateWorkload({.cv = -1}).message(), "workload.cv: must be positive");
  EXPECT_EQ(ValidateWorkload({.diurnal_amplitude = 1}).message(), "workload.diurnal_amplitude: must be in [0, 1)");
  EXPECT_EQ(ValidateWorkload({.functions = 0}).message(), "workload.functions: must be at least 1");
  EXPECT_TRUE(ValidateWorkload({}).ok());
}

}  // namespace
}  // namespace fluidfaas::sim
