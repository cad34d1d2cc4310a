#include "common/rate_meter.h"

#include <gtest/gtest.h>

namespace fluidfaas {
namespace {

TimePoint At(double seconds) {
  return AtMicros(static_cast<int64_t>(seconds * 1e6));
}

TEST(RateMeterTest, ASteadyRateIsReadBackOverTheWindow) {
  RateMeter m;
  for (int i = 0; i < 300; ++i) m.Add(At(10 + i * 0.05));  // 20 per second for 15 s
  EXPECT_DOUBLE_EQ(m.PerSecond(At(24.99)), 20.0);
  EXPECT_EQ(m.PerSecond(At(0)), 0.0);  // before anything that is kept
}

TEST(RateMeterTest, ABurstShowsAtOnceAndFadesAfterTheWindow) {
  RateMeter m;
  m.Add(At(100.2), 50);
  EXPECT_DOUBLE_EQ(m.PerSecond(At(100.3)), 5.0);
  EXPECT_DOUBLE_EQ(m.PerSecond(At(109.9)), 5.0);
  EXPECT_EQ(m.PerSecond(At(110.0)), 0.0);
  // A long silence clears every bucket before the next event counts.
  m.Add(At(500));
  EXPECT_DOUBLE_EQ(m.PerSecond(At(500.5)), 0.1);
}

TEST(RateMeterTest, TheFirstSecondsOfAClockAreCounted) {
  RateMeter m;
  m.Add(At(0.5), 3);
  m.Add(At(2.5), 7);
  EXPECT_DOUBLE_EQ(m.PerSecond(At(0.6)), 0.3);
  EXPECT_DOUBLE_EQ(m.PerSecond(At(3)), 1.0);
}

TEST(RateMeterTest, EventsOlderThanTheWindowAreDropped) {
  RateMeter m;
  m.Add(At(50), 10);
  m.Add(At(30), 1000);  // late by 20 s: dropped
  m.Add(At(45), 10);    // late by 5 s: counted
  EXPECT_DOUBLE_EQ(m.PerSecond(At(50)), 2.0);
  EXPECT_DOUBLE_EQ(m.PerSecond(At(55.5)), 1.0);  // the one at 45 has left the window
}

}  // namespace
}  // namespace fluidfaas
