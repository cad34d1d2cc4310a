#include "common/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace fluidfaas {
namespace {

TEST(WorkQueueTest, RunsJobsInOrderOffThePushersThread) {
  WorkQueue q;
  std::vector<int> ran;  // written only by the queue's thread
  std::promise<std::thread::id> where;
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(q.Push([&ran, i] { ran.push_back(i); }));
  ASSERT_TRUE(q.Push([&where] { where.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
  q.Stop();
  ASSERT_EQ(ran.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ran[i], i);
}

TEST(WorkQueueTest, StopRunsWhatIsQueuedThenRefuses) {
  WorkQueue q;
  std::atomic<int> ran{0};
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  ASSERT_TRUE(q.Push([gate] { gate.wait(); }));  // holds the thread while more queue up behind it
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(q.Push([&ran] { ++ran; }));
  std::thread stopper([&q] { q.Stop(); });
  release.set_value();
  stopper.join();
  EXPECT_EQ(ran.load(), 10);
  EXPECT_FALSE(q.Push([&ran] { ++ran; }));
  q.Stop();  // idempotent
  EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace fluidfaas
