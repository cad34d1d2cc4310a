#include "policy/load_tracker.h"

#include <gtest/gtest.h>

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
