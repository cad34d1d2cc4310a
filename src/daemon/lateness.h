// LatenessMargin: how much earlier than planned the daemon's completions need to be planned, learned from the
// completions themselves.
//
// The scheduler books each request to finish by its planning deadline (the SLO less the static --slo-margin).
// On a saturated node the plan runs late by what the model does not see: the control thread, the runtime's
// threads and the workers waiting for a core, and loads that take longer than modelled. Each completed request
// reports its overshoot, (completion - planning deadline) / SLO, usually negative. The margin is the `quantile`
// of the last `window` overshoots that are at most `horizon` old, clamped to [0, cap]. New requests are planned
// that much of their SLO earlier, so that requests admitted on a late node still finish within their SLO, and
// more are turned away at once instead. It is recomputed every window / 8 observations. The horizon lets a calm
// node forget an overload within seconds, where a window of 1,024 completions at 100 requests/s would take ten.
// On a node that keeps its plans it stays 0, so the simulator (which has no such lateness) and the daemon agree.
// Observations that are not finite are ignored.
//
// It is learned only from completions, and a margin too wide for any request to be admitted would stop them
// for good: so with no observation for `hold` it is not applied (Applied), and admission resumes. (A margin that
// halved every second without completions instead admitted fewer requests in the 10x overload run and met the
// SLO no better: docs/daemon.md, "Overload", lists the variants measured.)
//
// Thread safety: none; owned by the control thread (Applied is a pure function, for readers elsewhere).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "common/time.h"

namespace fluidfaas::daemon {

class LatenessMargin {
 public:
  // REQUIRES: cap in [0, 1), window >= 8, quantile in (0, 1], hold > 0, horizon > 0.
  explicit LatenessMargin(double cap, size_t window = 1024, double quantile = 0.99, Duration hold = Seconds(2),
                          Duration horizon = Seconds(5));

  void Observe(TimePoint now, double overshoot_fraction);
  // The margin learned, as of the last observation: a share of the SLO, in [0, cap].
  double learned() const { return margin_; }
  TimePoint last_observed() const { return last_observed_; }
  // The margin to plan with at `now`.
  double At(TimePoint now) const { return Applied(margin_, now - last_observed_, hold_); }

  static double Applied(double margin, Duration since_observed, Duration hold) {
    return since_observed > hold ? 0.0 : margin;
  }

 private:
  double cap_;
  double quantile_;
  Duration hold_;
  Duration horizon_;
  std::vector<std::pair<TimePoint, double>> ring_;  // the last `window` overshoots, with when each was seen
  size_t next_ = 0;                                 // where the next one goes
  size_t filled_ = 0;
  size_t since_update_ = 0;
  double margin_ = 0;
  TimePoint last_observed_{};
  std::vector<double> scratch_;
};

}  // namespace fluidfaas::daemon
