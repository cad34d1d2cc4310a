#include "policy/load_tracker.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace fluidfaas::policy {
namespace {

TEST(LoadTrackerTest, SteadyRateConvergesAndDecaysWhenIdle) {
  LoadTracker t;
  TimePoint now{};
  for (int i = 0; i < 600; ++i) {  // 5 requests per second for two minutes
    now += Millis(200);
    t.OnArrival(now);
  }
  EXPECT_NEAR(t.RateShort(now), 5.0, 0.5);
  EXPECT_NEAR(t.RateLong(now), 5.0 * (1 - std::exp(-1.0)), 0.5);  // one long time constant in
  const double short_later = t.RateShort(now + Seconds(10));
  EXPECT_NEAR(short_later, t.RateShort(now) * std::exp(-1.0), 1e-9);
  EXPECT_GT(t.RateLong(now + Seconds(10)) / t.RateLong(now), short_later / t.RateShort(now));
}

TEST(LoadTrackerTest, BusyFractionOverTheWindow) {
  LoadTracker t;
  const TimePoint t0 = AtMicros(0) + Seconds(100);
  t.OnBusy(t0, t0 + Seconds(2));
  t.OnBusy(t0 + Seconds(5), t0 + Seconds(6));
  EXPECT_NEAR(t.BusyFraction(t0 + Seconds(10)), 0.3, 1e-9);
  EXPECT_NEAR(t.BusyFraction(t0 + Seconds(11)), 0.2, 1e-9);  // the first second fell out of the window
  EXPECT_NEAR(t.BusyFraction(t0 + Seconds(30)), 0.0, 1e-9);
}

TEST(LoadTrackerTest, ABatchCountsItsBusyTimeOnce) {
  // Eight requests in one 1 s batch, and two overlapping stages of a pipeline: busy time is their union.
  LoadTracker t;
  const TimePoint t0 = AtMicros(0) + Seconds(100);
  t.OnBusy(t0, t0 + Seconds(1));
  EXPECT_NEAR(t.BusyFraction(t0 + Seconds(1)), 0.1, 1e-9);
  t.OnBusy(t0 + Millis(500), t0 + Millis(1500));  // overlaps the first by 0.5 s
  EXPECT_NEAR(t.BusyFraction(t0 + Seconds(2)), 0.15, 1e-9);
}

// The O(1) busy fraction equals an independent oracle: the union of all intervals reported (sorted and swept),
// clipped to the window. Intervals are reported as batches finish: ends never go back, starts may (a later
// stage's batch can start before an earlier one ends).
RC_GTEST_PROP(LoadTrackerProperty, BusyFractionIsTheUnionOverTheWindow, ()) {
  LoadTracker t;
  std::vector<std::pair<TimePoint, TimePoint>> all;
  TimePoint end = AtMicros(0) + Seconds(50);
  const int n = *rc::gen::inRange(0, 60);
  for (int i = 0; i < n; ++i) {
    end += Millis(*rc::gen::inRange(0, 3000));
    const TimePoint start = end - Millis(*rc::gen::inRange(0, 8000));
    t.OnBusy(start, end);
    all.emplace_back(start, end);
  }
  const TimePoint now = end + Millis(*rc::gen::inRange(0, 25000));
  const TimePoint from = now - Seconds(10);
  std::sort(all.begin(), all.end());
  Duration busy{0};
  TimePoint covered = from;  // the union so far reaches here
  for (const auto& [s, e] : all) {
    const TimePoint a = std::max(s, covered), b = std::min(e, now);
    if (b > a) busy += b - a;
    covered = std::max(covered, std::min(e, now));
  }
  RC_ASSERT(std::abs(t.BusyFraction(now) - std::clamp(ToSeconds(busy) / 10.0, 0.0, 1.0)) < 1e-9);
}

}  // namespace
}  // namespace fluidfaas::policy
