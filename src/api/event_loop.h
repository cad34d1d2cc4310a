// EventLoop: one thread running an Asio io_context, the edge's event loop, shareable: the HTTP server's
// connections and the node's controller (common/task_loop.h) run on the same thread, so an infer request is read,
// decided, handed to its worker and answered without waking another thread of this process.
//
// The loop runs in rounds of at most kRoundHandlers handlers (what is ready now, then what became ready meanwhile);
// the wake-ups of other threads that a round's handlers ask for are made once, when the round ends
// (common/wake_round.h), so a burst of requests reaches another thread as one batch. A handler that throws is
// logged and the loop goes on.
//
// Thread safety: Post, PostAfter and InLoop from any thread; Start and Stop from one thread, not the loop's.
#pragma once

#include <memory>

#include "common/task_loop.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace fluidfaas::api {

class EventLoop final : public TaskLoop {
 public:
  static constexpr int kRoundHandlers = 64;

  EventLoop();
  ~EventLoop() override;  // Stop
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Starts the loop's thread. Idempotent.
  void Start();
  // Drops the tasks waiting on a delay, lets the work already queued finish (a closed connection's last
  // handlers), then ends the thread; what is still queued after kStopGrace is dropped unrun. Later Posts return
  // false. Idempotent.
  static constexpr Duration kStopGrace = Seconds(2);
  void Stop();

  bool Post(std::function<void()> task) override;
  void PostAfter(Duration delay, std::function<void()> task) override;
  bool InLoop() const override;

  // For the objects that run on the loop (sockets, timers). REQUIRES: they are closed before Stop.
  boost::asio::io_context& io();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fluidfaas::api
