#include "common/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

namespace fluidfaas {
namespace {

TEST(TimeTest, ConversionsAndFormatting) {
  EXPECT_EQ(ToMicros(Millis(3)), 3000);
  EXPECT_EQ(ToMicros(MillisF(1.2345)), 1235);
  EXPECT_EQ(ToMicros(SecondsF(0.5)), 500000);
  EXPECT_DOUBLE_EQ(ToMillis(Micros(1500)), 1.5);
  EXPECT_EQ(FormatDuration(Micros(250)), "250us");
  EXPECT_EQ(FormatDuration(Micros(1500)), "1.5ms");
  EXPECT_EQ(FormatDuration(Seconds(2)), "2.000s");
  EXPECT_EQ(AtMicros(10) + Micros(5), AtMicros(15));
}

// FormatDuration writes printf's text: %g to three digits in milliseconds, %.3f in seconds; at the unit boundaries,
// at halves that round either way, negative, and over a spread of magnitudes.
TEST(TimeTest, FormatDurationWritesPrintfsText) {
  const auto printf_text = [](int64_t us) {
    char text[64];
    const int64_t mag = us < 0 ? -us : us;
    if (mag < 1000) {
      std::snprintf(text, sizeof text, "%lldus", static_cast<long long>(us));
    } else if (mag < 1'000'000) {
      std::snprintf(text, sizeof text, "%.3gms", static_cast<double>(us) / 1e3);
    } else {
      std::snprintf(text, sizeof text, "%.3fs", static_cast<double>(us) / 1e6);
    }
    return std::string(text);
  };
  std::vector<int64_t> cases = {0,         1,         999,       1000,        1005,         1015,    1025,
                                1234,      9995,      99'950,    999'499,     999'500,      999'999, 1'000'000,
                                1'000'500, 1'001'500, 2'345'500, 123'456'789, INT64_MAX / 2};
  uint64_t x = 12345;
  for (int i = 0; i < 20'000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    cases.push_back(static_cast<int64_t>(x >> (20 + x % 40)));
  }
  for (int64_t us : cases) {
    for (int64_t v : {us, -us}) EXPECT_EQ(FormatDuration(Micros(v)), printf_text(v)) << v << " us";
  }
}

TEST(ManualClockTest, CallbacksFireInTimeOrderNotScheduleOrder) {
  ManualClock clock;
  std::vector<std::string> fired;
  clock.ScheduleAt(AtMicros(300), [&] { fired.push_back("c@" + std::to_string(ToMicros(clock.Now()))); });
  clock.ScheduleAt(AtMicros(100), [&] { fired.push_back("a@" + std::to_string(ToMicros(clock.Now()))); });
  clock.ScheduleAt(AtMicros(200), [&] { fired.push_back("b@" + std::to_string(ToMicros(clock.Now()))); });
  EXPECT_EQ(clock.pending(), 3u);
  EXPECT_EQ(clock.AdvanceTo(AtMicros(250)), 2u);
  EXPECT_EQ(fired, (std::vector<std::string>{"a@100", "b@200"}));
  EXPECT_EQ(clock.Now(), AtMicros(250));
  EXPECT_EQ(clock.RunUntilIdle(), 1u);
  EXPECT_EQ(fired.back(), "c@300");
  EXPECT_EQ(clock.Now(), AtMicros(300));
  EXPECT_EQ(clock.pending(), 0u);
}

TEST(ManualClockTest, SameTimeRunsInScheduleOrder) {
  ManualClock clock;
  std::string order;
  for (char c : std::string("abcde")) clock.ScheduleAt(AtMicros(10), [&order, c] { order += c; });
  clock.RunUntilIdle();
  EXPECT_EQ(order, "abcde");
}

TEST(ManualClockTest, CallbacksScheduledFromCallbacksRunInOrder) {
  ManualClock clock;
  std::vector<int64_t> times;
  // a@10 schedules b@15 and c@40; d@20 was there before. Order must be 10, 15, 20, 40.
  clock.ScheduleAt(AtMicros(10), [&] {
    times.push_back(ToMicros(clock.Now()));
    clock.ScheduleAfter(Micros(5), [&] { times.push_back(ToMicros(clock.Now())); });
    clock.ScheduleAt(AtMicros(40), [&] { times.push_back(ToMicros(clock.Now())); });
  });
  clock.ScheduleAt(AtMicros(20), [&] { times.push_back(ToMicros(clock.Now())); });
  EXPECT_EQ(clock.AdvanceTo(AtMicros(30)), 3u);  // the nested callback due at 15 ran within the same advance
  EXPECT_EQ(times, (std::vector<int64_t>{10, 15, 20}));
  clock.RunUntilIdle();
  EXPECT_EQ(times, (std::vector<int64_t>{10, 15, 20, 40}));
}

TEST(ManualClockTest, PastTimesRunNowNotBefore) {
  ManualClock clock(AtMicros(1000));
  int64_t fired_at = -1;
  clock.ScheduleAt(AtMicros(5), [&] { fired_at = ToMicros(clock.Now()); });
  clock.RunUntilIdle();
  EXPECT_EQ(fired_at, 1000);
}

TEST(ManualClockTest, CancelStopsPendingCallbackOnly) {
  ManualClock clock;
  int a = 0;
  int b = 0;
  const TimerId ida = clock.ScheduleAt(AtMicros(10), [&] { ++a; });
  const TimerId idb = clock.ScheduleAt(AtMicros(20), [&] { ++b; });
  EXPECT_NE(ida, idb);
  EXPECT_TRUE(clock.Cancel(ida));
  EXPECT_FALSE(clock.Cancel(ida));  // twice
  EXPECT_EQ(clock.pending(), 1u);
  EXPECT_EQ(clock.NextDue(), AtMicros(20));
  clock.RunUntilIdle();
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_FALSE(clock.Cancel(idb));  // already ran
  EXPECT_FALSE(clock.Cancel(0));
  EXPECT_FALSE(clock.Cancel(12345));
}

TEST(ManualClockTest, StaleIdDoesNotCancelSlotReuser) {
  ManualClock clock;
  int fired = 0;
  const TimerId old_id = clock.ScheduleAt(AtMicros(10), [] {});
  ASSERT_TRUE(clock.Cancel(old_id));
  clock.ScheduleAt(AtMicros(10), [&] { ++fired; });  // reuses the freed slot
  EXPECT_FALSE(clock.Cancel(old_id));
  clock.RunUntilIdle();
  EXPECT_EQ(fired, 1);
}

TEST(ManualClockTest, CallbackCanCancelALaterOne) {
  ManualClock clock;
  int later = 0;
  const TimerId victim = clock.ScheduleAt(AtMicros(50), [&] { ++later; });
  clock.ScheduleAt(AtMicros(10), [&] { EXPECT_TRUE(clock.Cancel(victim)); });
  EXPECT_EQ(clock.RunUntilIdle(), 1u);
  EXPECT_EQ(later, 0);
}

TEST(ManualClockTest, RunUntilIdleHonoursLimit) {
  ManualClock clock;
  std::function<void()> forever = [&] { clock.ScheduleAfter(Micros(1), forever); };
  clock.ScheduleAt(AtMicros(0), forever);
  EXPECT_EQ(clock.RunUntilIdle(100), 100u);
  EXPECT_EQ(clock.pending(), 1u);
}

TEST(RealClockTest, RunsCallbacksInTimeOrder) {
  RealClock clock;
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> done;
  const TimePoint t0 = clock.Now();
  clock.ScheduleAt(t0 + Millis(30), [&] {
    std::lock_guard lock(mu);
    order.push_back(3);
    done.set_value();
  });
  clock.ScheduleAt(t0 + Millis(10), [&] {
    std::lock_guard lock(mu);
    order.push_back(1);
  });
  clock.ScheduleAt(t0 + Millis(20), [&] {
    std::lock_guard lock(mu);
    order.push_back(2);
  });
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(clock.Now() - t0, Millis(30));  // never early
}

TEST(RealClockTest, CancelledCallbackNeverRuns) {
  RealClock clock;
  std::atomic<int> cancelled_ran{0};
  std::promise<void> done;
  const TimerId id = clock.ScheduleAfter(Millis(20), [&] { ++cancelled_ran; });
  EXPECT_TRUE(clock.Cancel(id));
  EXPECT_FALSE(clock.Cancel(id));
  clock.ScheduleAfter(Millis(40), [&] { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(cancelled_ran.load(), 0);
}

TEST(RealClockTest, DestructionWithPendingCallbacksDoesNotRunThem) {
  std::atomic<int> ran{0};
  {
    RealClock clock;
    clock.ScheduleAfter(Seconds(60), [&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 0);
}

}  // namespace
}  // namespace fluidfaas
