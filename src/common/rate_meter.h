// RateMeter: how many events per second happened lately, in one-second buckets over a sliding window.
//
//   RateMeter arrivals;            // 10 s window
//   arrivals.Add(clock.Now());     // per event
//   arrivals.PerSecond(clock.Now());
//
// The rate is the events of the window's seconds, the current one included, over the window's length: a burst
// shows at once and fades over the window. Times must not go backwards by more than the window (older events are
// dropped). Constant memory, O(window) per call at most.
//
// Thread safety: none; one owner.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

#include "common/time.h"

namespace fluidfaas {

class RateMeter {
 public:
  static constexpr int64_t kWindowSeconds = 10;

  void Add(TimePoint now, uint64_t events = 1) {
    const int64_t second = SecondOf(now);
    if (second <= last_ - kWindowSeconds) return;  // older than the window
    Advance(second);
    counts_[static_cast<size_t>(second % kWindowSeconds)] += events;
  }

  double PerSecond(TimePoint now) const {
    const int64_t second = SecondOf(now);
    uint64_t total = 0;
    // The buckets hold seconds (last_ - window, last_]; the window asked for is (second - window, second].
    const int64_t first = std::max<int64_t>(0, std::max(second, last_) - kWindowSeconds + 1);
    for (int64_t s = first; s <= std::min(second, last_); ++s) {
      if (s > second - kWindowSeconds) total += counts_[static_cast<size_t>(s % kWindowSeconds)];
    }
    return static_cast<double>(total) / static_cast<double>(kWindowSeconds);
  }

 private:
  static int64_t SecondOf(TimePoint t) { return std::max<int64_t>(0, ToMicros(t) / 1'000'000); }
  void Advance(int64_t second) {
    if (second <= last_) return;
    // Seconds last_+1 .. second start empty (at most a window's worth to clear).
    for (int64_t s = std::max(last_ + 1, second - kWindowSeconds + 1); s <= second; ++s) {
      counts_[static_cast<size_t>(s % kWindowSeconds)] = 0;
    }
    last_ = second;
  }

  std::array<uint64_t, kWindowSeconds> counts_{};
  int64_t last_ = 0;  // the newest second written
};

}  // namespace fluidfaas
