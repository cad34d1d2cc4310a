#include "common/clock.h"

#include <cassert>
#include <cerrno>
#include <ctime>

namespace fluidfaas {

// ---------------------------------------------------------------------------------------------- ManualClock

TimerId ManualClock::ScheduleAt(TimePoint when, Callback callback) {
  if (when < now_) when = now_;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.callback = std::move(callback);
  s.armed = true;
  heap_.push(Entry{when, next_sequence_++, slot, s.generation});
  ++pending_;
  return MakeId(slot, s.generation);
}

bool ManualClock::Cancel(TimerId id) {
  const uint64_t low = id & 0xffffffffu;
  if (low == 0 || low > slots_.size()) return false;
  const auto slot = static_cast<uint32_t>(low - 1);
  Slot& s = slots_[slot];
  if (!s.armed || s.generation != static_cast<uint32_t>(id >> 32)) return false;
  FreeSlot(slot);
  --pending_;
  return true;
}

void ManualClock::FreeSlot(uint32_t slot) {
  Slot& s = slots_[slot];
  s.callback = nullptr;
  s.armed = false;
  ++s.generation;
  free_slots_.push_back(slot);
}

void ManualClock::DropStaleTop() {
  while (!heap_.empty()) {
    const Entry& top = heap_.top();
    const Slot& s = slots_[top.slot];
    if (s.armed && s.generation == top.generation) return;
    heap_.pop();
  }
}

TimePoint ManualClock::NextDue() {
  DropStaleTop();
  return heap_.empty() ? now_ : heap_.top().when;
}

bool ManualClock::RunNext() {
  DropStaleTop();
  if (heap_.empty()) return false;
  const Entry top = heap_.top();
  heap_.pop();
  now_ = top.when;
  // Free the slot before running, so the callback sees itself as no longer pending (Cancel returns false) and
  // may reuse the slot for what it schedules.
  Callback callback = std::move(slots_[top.slot].callback);
  FreeSlot(top.slot);
  --pending_;
  callback();
  return true;
}

size_t ManualClock::AdvanceTo(TimePoint when) {
  assert(when >= now_);
  size_t ran = 0;
  while (true) {
    DropStaleTop();
    if (heap_.empty() || heap_.top().when > when) break;
    RunNext();
    ++ran;
  }
  if (when > now_) now_ = when;
  return ran;
}

size_t ManualClock::RunUntilIdle(size_t max_callbacks) {
  size_t ran = 0;
  while (ran < max_callbacks && RunNext()) ++ran;
  return ran;
}

// ------------------------------------------------------------------------------------------------ RealClock

RealClock::RealClock() : epoch_(std::chrono::steady_clock::now()), thread_([this] { Loop(); }) {}

RealClock::~RealClock() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

TimePoint RealClock::Now() const {
  return TimePoint(std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - epoch_));
}

TimerId RealClock::ScheduleAt(TimePoint when, Callback callback) {
  TimerId id;
  bool earliest;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    callbacks_.emplace(id, std::move(callback));
    earliest = heap_.empty() || when < heap_.top().when;
    heap_.push(Entry{when, id});
  }
  if (earliest) wake_.notify_all();
  return id;
}

bool RealClock::Cancel(TimerId id) {
  std::lock_guard lock(mutex_);
  // The heap entry stays; the loop skips ids that have no callback.
  return callbacks_.erase(id) > 0;
}

void RealClock::Loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    while (!heap_.empty() && !callbacks_.contains(heap_.top().id)) heap_.pop();
    if (heap_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const Entry top = heap_.top();
    const TimePoint now = Now();
    if (top.when > now) {
      wake_.wait_for(lock, top.when - now);
      continue;  // re-check: woken early, a new earlier entry, or a cancel
    }
    heap_.pop();
    auto node = callbacks_.extract(top.id);
    lock.unlock();
    node.mapped()();
    lock.lock();
  }
}

int64_t MonotonicNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void SleepUntilNanos(int64_t deadline_ns) {
  constexpr int64_t kSpinNs = 50'000;
  const int64_t now = MonotonicNanos();
  if (deadline_ns - now > kSpinNs) {
    const int64_t wake = deadline_ns - kSpinNs;
    timespec ts{static_cast<time_t>(wake / 1'000'000'000), static_cast<long>(wake % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
  }
  while (MonotonicNanos() < deadline_ns) {
  }
}

}  // namespace fluidfaas
