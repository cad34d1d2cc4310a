#include "common/wake_round.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace fluidfaas {
namespace {

struct Counter {
  int wakes = 0;
  std::vector<int>* order = nullptr;
  int name = 0;
};

void Wake(void* c) {
  auto* counter = static_cast<Counter*>(c);
  ++counter->wakes;
  if (counter->order != nullptr) counter->order->push_back(counter->name);
}

TEST(WakeRoundTest, OutsideARoundAWakeUpRunsAtOnce) {
  Counter c;
  DeferWake(&c, Wake);
  EXPECT_EQ(c.wakes, 1);
  EXPECT_EQ(WakeRound::held(), 0u);
}

TEST(WakeRoundTest, InsideARoundWakeUpsRunOncePerContextWhenItEndsInTheOrderFirstAsked) {
  std::vector<int> order;
  Counter a{0, &order, 1}, b{0, &order, 2};
  {
    WakeRound round;
    DeferWake(&b, Wake);
    DeferWake(&a, Wake);
    DeferWake(&b, Wake);
    EXPECT_EQ(a.wakes + b.wakes, 0);
    EXPECT_EQ(WakeRound::held(), 2u);
  }
  EXPECT_EQ(a.wakes, 1);
  EXPECT_EQ(b.wakes, 1);
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
  DeferWake(&a, Wake);  // the round is over
  EXPECT_EQ(a.wakes, 2);
}

TEST(WakeRoundTest, OnlyTheOutermostRoundRunsTheWakeUps) {
  Counter c;
  {
    WakeRound outer;
    {
      WakeRound inner;
      DeferWake(&c, Wake);
    }
    EXPECT_EQ(c.wakes, 0);
  }
  EXPECT_EQ(c.wakes, 1);
}

TEST(WakeRoundTest, ARoundHoldsOnlyItsOwnThreadsWakeUps) {
  Counter mine, theirs;
  WakeRound round;
  std::thread([&] { DeferWake(&theirs, Wake); }).join();
  EXPECT_EQ(theirs.wakes, 1);
  DeferWake(&mine, Wake);
  EXPECT_EQ(mine.wakes, 0);
  EXPECT_EQ(WakeRound::held(), 1u);
}

}  // namespace
}  // namespace fluidfaas
