#include "policy/load_tracker.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>

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

// The O(1) busy fraction equals summing the clipped intervals, for intervals reported in order (as stages
// finish: starts and ends never go back) and asked at or after the last end.
RC_GTEST_PROP(LoadTrackerProperty, BusyFractionMatchesTheClippedSum, ()) {
  LoadTracker t;
  std::vector<std::pair<TimePoint, TimePoint>> all;
  TimePoint at = AtMicros(0) + Seconds(50);
  const int n = *rc::gen::inRange(0, 60);
  for (int i = 0; i < n; ++i) {
    at += Millis(*rc::gen::inRange(0, 3000));
    const TimePoint prev_end = all.empty() ? at : all.back().second;
    const TimePoint end = std::max(prev_end, at + Millis(*rc::gen::inRange(0, 15000)));  // may overlap the last
    t.OnBusy(at, end);
    all.emplace_back(at, end);
  }
  const TimePoint last = all.empty() ? at : all.back().second;
  const TimePoint now = last + Millis(*rc::gen::inRange(0, 25000));
  const TimePoint from = now - Seconds(10);
  Duration busy{0};
  for (const auto& [s, e] : all) {
    const TimePoint a = std::max(s, from), b = std::min(e, now);
    if (b > a) busy += b - a;
  }
  RC_ASSERT(std::abs(t.BusyFraction(now) - std::clamp(ToSeconds(busy) / 10.0, 0.0, 1.0)) < 1e-9);
}

TEST(LoadTrackerTest, ServiceTimeStartsFromThePrior) {
  LoadTracker t;
  EXPECT_EQ(t.ServiceTime(Millis(7)), Millis(7));
  t.OnServiceTime(Millis(10));
  EXPECT_EQ(t.ServiceTime(Millis(7)), Millis(10));
  t.OnServiceTime(Millis(20));
  EXPECT_EQ(t.ServiceTime(Millis(7)), Millis(12));
}

}  // namespace
}  // namespace fluidfaas::policy
