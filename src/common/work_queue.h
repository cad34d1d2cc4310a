// WorkQueue: one thread that runs jobs in the order they were pushed, off the pusher's thread. The node's HTTP API
// runs deploys on one (each takes about a second), so that none holds the edge's event loop.
//
// A push from inside an event loop's round wakes the thread once for the whole round (common/wake_round.h).
//
// Thread safety: Push and Stop from any thread but the queue's own.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>

#include "common/mutex.h"

namespace fluidfaas {

class WorkQueue {
 public:
  WorkQueue();
  ~WorkQueue();  // Stop
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job`. False once stopped: the job is not run.
  bool Push(std::function<void()> job);
  // Runs the jobs already queued, then ends the thread. Idempotent.
  void Stop();

 private:
  void Run();

  Mutex mu_;
  std::condition_variable_any wake_;
  std::deque<std::function<void()>> jobs_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace fluidfaas
