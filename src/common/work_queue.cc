#include "common/work_queue.h"

#include "common/wake_round.h"

namespace fluidfaas {

WorkQueue::WorkQueue() : thread_([this] { Run(); }) {}

WorkQueue::~WorkQueue() {
  Stop();
}

bool WorkQueue::Push(std::function<void()> job) {
  {
    MutexLock lock(mu_);
    if (stop_) return false;
    jobs_.push_back(std::move(job));
  }
  DeferWake(this, [](void* q) { static_cast<WorkQueue*>(q)->wake_.notify_one(); });
  return true;
}

void WorkQueue::Stop() {
  {
    MutexLock lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void WorkQueue::Run() {
  for (;;) {
    std::deque<std::function<void()>> ready;
    {
      MutexLock lock(mu_);
      lock.Wait(wake_, [this] {
        mu_.AssertHeld();
        return stop_ || !jobs_.empty();
      });
      if (jobs_.empty()) return;  // stopped, and every job queued before has run
      ready.swap(jobs_);
    }
    for (auto& job : ready) job();
  }
}

}  // namespace fluidfaas
