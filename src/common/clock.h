// Clock: the one source of time in FluidFaaS, and the one way to run something later.
//
// Policies never read the time; they are given `now`. Everything else that needs the time or a timer takes a
// Clock&: RealClock in the node daemon, ManualClock in the simulator and in tests, where time moves only when
// the test or the event loop says so.
//
// Callbacks must not throw. A callback may schedule and cancel other callbacks, itself included.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/time.h"

namespace fluidfaas {

// CLOCK_MONOTONIC in nanoseconds: the time base every process of a node shares (shared-memory rings, stage
// timings, the load client's schedule).
int64_t MonotonicNanos();
// Sleeps until `deadline_ns` (CLOCK_MONOTONIC): a nanosleep for most of it, then a short spin, so times of a few
// hundred microseconds keep their shape (the emulated executor, the load client's arrivals).
void SleepUntilNanos(int64_t deadline_ns);

// Identifies one scheduled callback. 0 is never a valid id.
using TimerId = uint64_t;

class Clock {
 public:
  using Callback = std::function<void()>;

  virtual ~Clock() = default;

  // The current time, in microseconds since this clock's epoch.
  virtual TimePoint Now() const = 0;

  // Runs `callback` once, at `when` or as soon after it as the clock can. A time in the past means "now"
  // (never before callbacks already due). Callbacks due at the same time run in the order they were scheduled.
  virtual TimerId ScheduleAt(TimePoint when, Callback callback) = 0;

  // Cancels a callback that has not started. Returns true if it was pending; false if it already ran, is
  // running, was cancelled before, or never existed.
  virtual bool Cancel(TimerId id) = 0;

  TimerId ScheduleAfter(Duration delay, Callback callback) { return ScheduleAt(Now() + delay, std::move(callback)); }
};

// ManualClock: time moves only through AdvanceTo / AdvanceBy / RunNext / RunUntilIdle.
//
// The event queue of the simulator and of every test that involves time. Now() during a callback is the time the
// callback was due. Scheduling and cancelling are O(log n) and O(1); a cancelled entry stays in the heap until it
// reaches the top, where it is skipped.
//
// Thread safety: none. Use it from one thread (the simulator's loop, or a test).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{}) : now_(start) {}

  TimePoint Now() const override { return now_; }
  TimerId ScheduleAt(TimePoint when, Callback callback) override;
  bool Cancel(TimerId id) override;

  // Runs every callback due at or before `when`, in time order (including ones those callbacks schedule), then
  // leaves Now() at `when`. Returns the number of callbacks run. REQUIRES: when >= Now().
  size_t AdvanceTo(TimePoint when);
  size_t AdvanceBy(Duration delta) { return AdvanceTo(now_ + delta); }

  // Runs the earliest pending callback, moving Now() to its time. Returns false when nothing is pending.
  bool RunNext();

  // Runs callbacks in time order until none is pending or `max_callbacks` have run (a guard against callbacks
  // that reschedule themselves forever). Returns the number run.
  size_t RunUntilIdle(size_t max_callbacks = SIZE_MAX);

  // Callbacks scheduled and not yet run or cancelled.
  size_t pending() const { return pending_; }

  // The due time of the earliest pending callback; Now() when none is pending.
  TimePoint NextDue();

 private:
  // A callback lives in a slot; the heap refers to it by slot index and generation, so a slot freed by Cancel
  // and reused by a later callback is never run under the old entry.
  struct Slot {
    Callback callback;
    uint32_t generation = 0;
    bool armed = false;
  };
  struct Entry {
    TimePoint when;
    uint64_t sequence = 0;  // FIFO among callbacks due at the same time
    uint32_t slot = 0;
    uint32_t generation = 0;
    bool operator>(const Entry& other) const {
      return when != other.when ? when > other.when : sequence > other.sequence;
    }
  };

  static TimerId MakeId(uint32_t slot, uint32_t generation) {
    return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(slot) + 1);
  }
  void DropStaleTop();
  void FreeSlot(uint32_t slot);

  TimePoint now_;
  uint64_t next_sequence_ = 0;
  size_t pending_ = 0;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
};

// RealClock: steady time since construction, and a timer thread that runs callbacks when they are due.
//
// Callbacks run on the clock's own thread, one at a time, so a slow callback delays the next: keep them short
// and hand real work to an executor. Destroying the clock cancels what is pending and joins the thread; it must
// not be destroyed from one of its own callbacks.
//
// Thread safety: every method may be called from any thread.
class RealClock final : public Clock {
 public:
  RealClock();
  ~RealClock() override;
  RealClock(const RealClock&) = delete;
  RealClock& operator=(const RealClock&) = delete;

  TimePoint Now() const override;
  TimerId ScheduleAt(TimePoint when, Callback callback) override;
  bool Cancel(TimerId id) override;

 private:
  struct Entry {
    TimePoint when;
    TimerId id = 0;
    bool operator>(const Entry& other) const { return when != other.when ? when > other.when : id > other.id; }
  };

  void Loop();

  const std::chrono::steady_clock::time_point epoch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;                                                // guarded by mutex_
  TimerId next_id_ = 1;                                                  // guarded by mutex_
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;  // guarded by mutex_
  std::unordered_map<TimerId, Callback> callbacks_;                      // guarded by mutex_
  std::thread thread_;                                                   // last: starts after everything above exists
};

}  // namespace fluidfaas
