// The control thread: its task queues (the runtime's events first), its loop, and shutdown.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

bool Controller::Impl::Post(std::function<void()> task) {
  MutexLock lock(mu);
  if (stop) return false;
  PostLocked(std::move(task));
  return true;
}

void Controller::Impl::PostRuntime(std::function<void()> task) {
  MutexLock lock(mu);
  if (stop) return;  // the runtime's events after shutdown: every request was answered by Close
  runtime_tasks.push_back(std::move(task));
  if (options.loop != nullptr) return Kick();
  wake.notify_one();
}

void Controller::Impl::Kick() {
  if (turn_posted) return;
  turn_posted = true;
  if (!options.loop->Post([l = link] {
        if (l->impl != nullptr) l->impl->LoopTurn();
      })) {
    spdlog::error("controller: its event loop has stopped; what is queued waits for Shutdown");
  }
}

void Controller::Impl::LoopTurn() {
  Turn(/*wait=*/false);
  ArmTimer();
}

void Controller::Impl::ArmTimer() {
  // The same bound as the control thread's wait: at least one turn per 20 ms, and one at the next due batch.
  const TimePoint now = clock->Now();
  TimePoint due = std::min(next_tick, now + Millis(20));
  for (const std::optional<TimePoint> d : {carrier->NextDue(), GenNextDue()}) {
    if (d) due = std::min(due, *d);
  }
  if (timer_at && *timer_at <= due) return;  // a turn is already set for then or earlier
  timer_at = due;
  options.loop->PostAfter(std::max(Duration{0}, due - now), [l = link, due] {
    Impl* impl = l->impl;
    if (impl == nullptr || impl->timer_at != due) return;  // stopped, or set again since for another time
    impl->timer_at.reset();
    impl->LoopTurn();
  });
}

void Controller::Impl::RunRuntimeTasks() {
  std::deque<std::function<void()>> ready;
  {
    MutexLock lock(mu);
    ready.swap(runtime_tasks);
  }
  for (auto& t : ready) t();
}

void Controller::Impl::Loop() {
  while (Turn(/*wait=*/true)) {
  }
}

std::optional<size_t> Controller::Impl::Turn(bool wait) {
  std::deque<std::function<void()>> batch;
  {
    MutexLock lock(mu);
    if (wait) {
      auto timeout = std::chrono::milliseconds(20);
      for (const std::optional<TimePoint> due : {carrier->NextDue(), GenNextDue()}) {
        if (!due) continue;
        timeout =
            std::min(timeout, std::chrono::ceil<std::chrono::milliseconds>(std::max(Duration{0}, *due - clock->Now())));
      }
      lock.WaitFor(wake, timeout, [&] {
        mu.AssertHeld();
        return stop || !tasks.empty() || !runtime_tasks.empty();
      });
    }
    if (stop) return std::nullopt;
    batch.swap(tasks);
    turn_posted = false;
  }
  // What was posted since the last turn is delivered together: requests that arrived together leave as one batch.
  carrier->Hold();
  RunRuntimeTasks();
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]();
    if (i % 16 == 15) RunRuntimeTasks();
  }
  RunRuntimeTasks();
  const TimePoint now = clock->Now();
  carrier->Flush(now);
  carrier->DispatchDue(now);
  gen->Advance(GenSeconds(now));
  if (now >= next_tick) {
    next_tick = now + kTick;
    carrier->Tick(now);
    gen->SlicesFreed(GenSeconds(now));  // generative instances waiting for slices the single-pass side let go
    CountViolations();
    if (Status s = scheduler->Invariants(); !s.ok()) spdlog::error("scheduler invariants: {}", s.message());
    Snapshot();
  }
  return batch.size();
}

void Controller::Impl::Close() {
  MutexLock lock(closed_mu);
  closing = true;
  std::deque<std::function<void()>> left;
  {
    MutexLock lk(mu);
    left.swap(tasks);
    runtime_tasks.clear();
  }
  for (auto& t : left) t();
  std::vector<RequestId> open_ids;
  for (const auto& [id, r] : requests) open_ids.push_back(id);
  for (RequestId id : open_ids) {
    auto it = requests.find(id);
    Request r = std::move(it->second);
    requests.erase(it);
    AnswerShutdown(r);
  }
  CloseGenerations();
}

void Controller::Impl::AnswerShutdown(const Request& r) {
  InferResult result;
  result.outcome = Outcome::kFailed;
  result.code = "shutdown";
  result.detail = "the node stopped before the request was answered";
  Finish(r, std::move(result));
}

}  // namespace fluidfaas::daemon
