#include "daemon/lateness.h"

#include <gtest/gtest.h>

#include <limits>

namespace fluidfaas::daemon {
namespace {

TimePoint At(double s) {
  return TimePoint{} + SecondsF(s);
}

TEST(LatenessMarginTest, StaysZeroWhilePlansHold) {
  LatenessMargin m(0.3, 64);
  for (int i = 0; i < 1000; ++i) m.Observe(At(i * 0.01), -0.5 + 0.4 * (i % 10) / 10.0);  // every one early
  EXPECT_EQ(m.learned(), 0.0);
  EXPECT_EQ(m.At(At(10)), 0.0);
}

TEST(LatenessMarginTest, LearnsTheQuantileOfTheOvershootAndForgetsIt) {
  LatenessMargin m(0.3, 100, 0.9);
  // 20% of completions run 0.1 of their SLO late, the rest early: the 90th percentile is 0.1.
  for (int i = 0; i < 100; ++i) m.Observe(At(i * 0.001), i % 5 == 0 ? 0.1 : -0.2);
  EXPECT_DOUBLE_EQ(m.learned(), 0.1);
  EXPECT_DOUBLE_EQ(m.At(At(0.099)), 0.1);
  // Not before window / 8 observations since the last update: a single late one does not move it at once.
  m.Observe(At(0.1), 0.25);
  EXPECT_DOUBLE_EQ(m.learned(), 0.1);
  // Once the node keeps its plans again, a window of early completions brings it back to 0.
  for (int i = 0; i < 100; ++i) m.Observe(At(0.2 + i * 0.001), -0.3);
  EXPECT_EQ(m.learned(), 0.0);
}

TEST(LatenessMarginTest, IsNotAppliedAfterAHoldWithoutACompletion) {
  // A margin so wide that nothing is admitted would never see the completion that lowers it: after `hold`
  // without one it is not applied, and admission resumes.
  LatenessMargin m(0.5, 16, 0.99, Seconds(2));
  for (int i = 0; i < 16; ++i) m.Observe(At(10), 0.4);
  ASSERT_DOUBLE_EQ(m.learned(), 0.4);
  EXPECT_DOUBLE_EQ(m.At(At(10)), 0.4);
  EXPECT_DOUBLE_EQ(m.At(At(12)), 0.4);
  EXPECT_EQ(m.At(At(12.001)), 0.0);
  EXPECT_DOUBLE_EQ(m.learned(), 0.4) << "what was learned stays until completions say otherwise";
  m.Observe(At(20), 0.4);  // completions again: applied again
  EXPECT_DOUBLE_EQ(m.At(At(20.5)), 0.4);
}

TEST(LatenessMarginTest, ForgetsWhatIsOlderThanTheHorizon) {
  LatenessMargin m(0.5, 1024, 0.999, Seconds(2), Seconds(5));
  for (int i = 0; i < 512; ++i) m.Observe(At(i * 0.01), 0.3);  // an overload: every completion late
  ASSERT_DOUBLE_EQ(m.learned(), 0.3);
  // A calm node at 100 completions/s: the overload's are in the window for another five seconds, then gone.
  for (int i = 0; i < 128; ++i) m.Observe(At(6 + i * 0.01), -0.4);
  EXPECT_DOUBLE_EQ(m.learned(), 0.3);
  for (int i = 0; i < 256; ++i) m.Observe(At(11 + i * 0.01), -0.4);
  EXPECT_EQ(m.learned(), 0.0);
}

TEST(LatenessMarginTest, IsCappedAndIgnoresWhatIsNotFinite) {
  LatenessMargin m(0.3, 16, 0.99);
  for (int i = 0; i < 16; ++i) m.Observe(At(1), 5.0);
  EXPECT_DOUBLE_EQ(m.learned(), 0.3);
  for (int i = 0; i < 16; ++i) m.Observe(At(2), std::numeric_limits<double>::quiet_NaN());
  for (int i = 0; i < 16; ++i) m.Observe(At(2), std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(m.learned(), 0.3) << "nothing finite observed since";
  EXPECT_EQ(m.last_observed(), At(1));
}

}  // namespace
}  // namespace fluidfaas::daemon
