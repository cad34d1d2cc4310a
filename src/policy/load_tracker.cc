#include "policy/load_tracker.h"

#include <algorithm>
#include <cmath>

namespace fluidfaas::policy {

double LoadTracker::Decayed(double value, TimePoint then, TimePoint now, Duration tau) {
  const double dt = ToSeconds(now - then);
  return dt <= 0 ? value : value * std::exp(-dt / ToSeconds(tau));
}

void LoadTracker::OnArrival(TimePoint now) {
  rate_short_ = Decayed(rate_short_, rate_at_, now, options_.short_tau) + 1.0 / ToSeconds(options_.short_tau);
  rate_long_ = Decayed(rate_long_, rate_at_, now, options_.long_tau) + 1.0 / ToSeconds(options_.long_tau);
  rate_at_ = std::max(rate_at_, now);
  last_arrival_ = std::max(last_arrival_, now);
  seen_arrival_ = true;
  short_asked_ = TimePoint::min();
}

void LoadTracker::OnBusy(TimePoint start, TimePoint end) {
  if (end <= start) return;
  // The union: intervals kept are disjoint and end no later than `end`, so the new one swallows every kept
  // interval that ends at or after its start (from the back). Amortized O(1).
  while (!busy_.empty() && busy_.back().second >= start) {
    start = std::min(start, busy_.back().first);
    end = std::max(end, busy_.back().second);
    busy_sum_ -= busy_.back().second - busy_.back().first;
    busy_.pop_back();
  }
  busy_.emplace_back(start, end);
  busy_sum_ += end - start;
  // Intervals arrive roughly in order; drop those that ended before any window we could be asked about.
  while (!busy_.empty() && busy_.front().second < end - options_.busy_window) {
    busy_sum_ -= busy_.front().second - busy_.front().first;
    busy_.pop_front();
  }
}

double LoadTracker::RateShort(TimePoint now) const {
  if (now != short_asked_) {
    short_answer_ = Decayed(rate_short_, rate_at_, now, options_.short_tau);
    short_asked_ = now;
  }
  return short_answer_;
}
double LoadTracker::RateLong(TimePoint now) const {
  return Decayed(rate_long_, rate_at_, now, options_.long_tau);
}

double LoadTracker::BusyFraction(TimePoint now) const {
  // The running sum of the kept intervals less their parts before the window: intervals start in order, so only
  // the first few start before it. O(1) amortized; it is asked on every scale-up, for every resident of every
  // candidate slice. REQUIRES (as the scheduler asks): `now` is not before the last reported end.
  const TimePoint from = now - options_.busy_window;
  Duration busy = busy_sum_;
  for (auto it = busy_.begin(); it != busy_.end() && it->first < from; ++it)
    busy -= std::min(it->second, from) - it->first;
  return std::clamp(ToSeconds(busy) / ToSeconds(options_.busy_window), 0.0, 1.0);
}

}  // namespace fluidfaas::policy
