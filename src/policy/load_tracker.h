// LoadTracker: how hot one instance is, from the events it sees, with the time always given by the caller.
//
// Request rate: exponentially weighted over a short and a long time constant (each arrival adds 1/tau, and the
// sum decays as exp(-dt/tau)), so a burst shows at once in the short rate and lingers in the long one.
// Busy fraction: the share of the last `window` during which the instance's slices were running its requests.
// Service time: an exponentially weighted mean of the service times reported.
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <deque>
#include <utility>

#include "common/time.h"

namespace fluidfaas::policy {

struct LoadTrackerOptions {
  Duration short_tau = Seconds(10);   // time constant of the short rate
  Duration long_tau = Seconds(120);   // time constant of the long rate
  Duration busy_window = Seconds(10); // window of the busy fraction (the design's default)
  double service_alpha = 0.2;         // weight of a new service time in its running mean
};

class LoadTracker {
 public:
  explicit LoadTracker(LoadTrackerOptions options = {}) : options_(options) {}

  void OnArrival(TimePoint now);
  // The instance ran a request from `start` to `end` (busy time) taking `service` of compute.
  void OnBusy(TimePoint start, TimePoint end);
  void OnServiceTime(Duration service);

  double RateShort(TimePoint now) const;  // requests per second
  double RateLong(TimePoint now) const;
  double BusyFraction(TimePoint now) const;  // 0..1 over the window ending at now
  // The running mean, or `prior` before any was reported.
  Duration ServiceTime(Duration prior) const;
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
  std::deque<std::pair<TimePoint, TimePoint>> busy_;  // intervals ending within the window
  Duration busy_sum_{0};                              // their total length
  double service_ms_ = -1;
};

}  // namespace fluidfaas::policy
