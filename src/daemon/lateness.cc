#include "daemon/lateness.h"

#include <algorithm>
#include <cmath>

namespace fluidfaas::daemon {

LatenessMargin::LatenessMargin(double cap, size_t window, double quantile, Duration hold, Duration horizon)
    : cap_(cap), quantile_(quantile), hold_(hold), horizon_(horizon), ring_(window) {
  scratch_.reserve(window);
}

void LatenessMargin::Observe(TimePoint now, double overshoot_fraction) {
  if (!std::isfinite(overshoot_fraction)) return;
  last_observed_ = std::max(last_observed_, now);
  ring_[next_] = {now, overshoot_fraction};
  next_ = (next_ + 1) % ring_.size();
  filled_ = std::min(filled_ + 1, ring_.size());
  if (++since_update_ < ring_.size() / 8) return;
  since_update_ = 0;
  scratch_.clear();
  for (size_t i = 0; i < filled_; ++i) {
    if (now - ring_[i].first <= horizon_) scratch_.push_back(ring_[i].second);
  }
  // This observation is within the horizon, so scratch_ holds at least one.
  const auto k = static_cast<size_t>(std::ceil(quantile_ * static_cast<double>(scratch_.size()))) - 1;
  std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(k), scratch_.end());
  margin_ = std::clamp(scratch_[k], 0.0, cap_);
}

}  // namespace fluidfaas::daemon
