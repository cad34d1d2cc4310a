// LoadTracker: how hot one instance is, from the events it sees, with the time always given by the caller.
//
// Request rate: exponentially weighted over a short and a long time constant (each arrival adds 1/tau, and the
// sum decays as exp(-dt/tau)), so a burst shows at once in the short rate and lingers in the long one.
// Busy fraction: the share of the last `window` during which the instance was running anything: the union of
// the batches' busy intervals (a batch of 8 that runs 1 s is 1 s of busy time, not 8; a pipeline's stages
// running at once count once).
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <deque>
#include <utility>

#include "common/time.h"

namespace fluidfaas::policy {

struct LoadTrackerOptions {
  Duration short_tau = Seconds(10);    // time constant of the short rate
  Duration long_tau = Seconds(120);    // time constant of the long rate
  Duration busy_window = Seconds(10);  // window of the busy fraction (the design's default)
};

class LoadTracker {
 public:
  explicit LoadTracker(LoadTrackerOptions options = {}) : options_(options) {}

  void OnArrival(TimePoint now);
  // The instance ran a batch from `start` to `end`. REQUIRES: `end` is not before any end reported before
  // (events come in time order); `start` may be (a pipeline's stages overlap).
  void OnBusy(TimePoint start, TimePoint end);

  double RateShort(TimePoint now) const;  // requests per second
  double RateLong(TimePoint now) const;
  double BusyFraction(TimePoint now) const;  // 0..1 over the window ending at now
  TimePoint last_arrival() const { return last_arrival_; }
  bool seen_arrival() const { return seen_arrival_; }

 private:
  static double Decayed(double value, TimePoint then, TimePoint now, Duration tau);

  LoadTrackerOptions options_;
  double rate_short_ = 0;
  double rate_long_ = 0;
  TimePoint rate_at_{};
  TimePoint last_arrival_{};
  bool seen_arrival_ = false;
  // RateShort's last answer: a scale-up asks it of every resident of every candidate slice, several times (exact:
  // the rate is a function of the state and `now`, and the state changes only in OnArrival, which clears it).
  mutable TimePoint short_asked_ = TimePoint::min();
  mutable double short_answer_ = 0;
  std::deque<std::pair<TimePoint, TimePoint>> busy_;  // disjoint, in order, ending within the window
  Duration busy_sum_{0};                              // their total length
};

}  // namespace fluidfaas::policy
