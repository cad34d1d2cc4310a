#include "api/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "api/test_client.h"

namespace fluidfaas::api {
namespace {

// Runs `f` on the loop and waits for it.
template <typename F>
void OnLoop(EventLoop& loop, F f) {
  std::promise<void> done;
  ASSERT_TRUE(loop.Post([&] {
    f();
    done.set_value();
  }));
  done.get_future().wait();
}

TEST(EventLoopTest, PostedTasksRunOnTheLoopThreadInOrder) {
  EventLoop loop;
  loop.Start();
  EXPECT_FALSE(loop.InLoop());
  std::vector<int> ran;
  std::thread::id where;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(loop.Post([&ran, i] { ran.push_back(i); }));
  OnLoop(loop, [&] {
    where = std::this_thread::get_id();
    EXPECT_TRUE(loop.InLoop());
  });
  EXPECT_NE(where, std::this_thread::get_id());
  ASSERT_EQ(ran.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[i], i);
}

TEST(EventLoopTest, DelayedTasksRunAfterTheirDelayEarliestFirst) {
  EventLoop loop;
  loop.Start();
  std::mutex mu;
  std::vector<int> ran;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::chrono::steady_clock::duration> at(3);
  std::promise<void> last;
  loop.PostAfter(Millis(60), [&] {
    std::lock_guard<std::mutex> lock(mu);
    ran.push_back(60);
    at[2] = std::chrono::steady_clock::now() - start;
    last.set_value();
  });
  loop.PostAfter(Millis(20), [&] {
    std::lock_guard<std::mutex> lock(mu);
    ran.push_back(20);
    at[0] = std::chrono::steady_clock::now() - start;
  });
  loop.PostAfter(Millis(40), [&] {
    std::lock_guard<std::mutex> lock(mu);
    ran.push_back(40);
    at[1] = std::chrono::steady_clock::now() - start;
  });
  ASSERT_EQ(last.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(ran, (std::vector<int>{20, 40, 60}));
  EXPECT_GE(at[0], std::chrono::milliseconds(20));
  EXPECT_GE(at[1], std::chrono::milliseconds(40));
  EXPECT_GE(at[2], std::chrono::milliseconds(60));
}

TEST(EventLoopTest, StopFinishesQueuedWorkDropsDelayedTasksThenRefusesMore) {
  EventLoop loop;
  loop.Start();
  std::atomic<int> ran{0};
  std::atomic<bool> delayed_ran{false};
  loop.PostAfter(Seconds(30), [&] { delayed_ran = true; });
  for (int i = 0; i < 10; ++i) loop.Post([&] { ++ran; });
  const auto start = std::chrono::steady_clock::now();
  loop.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));  // not held by the 30 s task
  EXPECT_EQ(ran.load(), 10);
  EXPECT_FALSE(delayed_ran.load());
  EXPECT_FALSE(loop.Post([&] { ++ran; }));
  loop.Stop();  // idempotent
  EXPECT_EQ(ran.load(), 10);
}

TEST(EventLoopTest, AServerStoppedOnASharedLoopLeavesTheLoopRunning) {
  EventLoop loop;
  loop.Start();
  auto server = std::make_unique<HttpServer>(
      HttpLimits{}, [](HttpRequest&&, Responder r) { r.Send(HttpResponse{.body = "ok"}); }, nullptr, &loop);
  auto port = server->Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  std::thread::id served_on;
  {
    testing::RawClient c(*port);
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.Request(testing::RawClient::Get("/"), 5).body, "ok");
    testing::RawClient held(*port);  // open (idle) when the server stops: closed by Stop
    ASSERT_TRUE(held.connected());
    server->Stop();
    EXPECT_TRUE(held.ClosedWithin(2));
  }
  server.reset();
  OnLoop(loop, [&] { served_on = std::this_thread::get_id(); });  // the loop still runs other work
  EXPECT_NE(served_on, std::thread::id());
  loop.Stop();
}

}  // namespace
}  // namespace fluidfaas::api
