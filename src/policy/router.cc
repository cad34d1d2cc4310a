#include "policy/router.h"

#include <algorithm>

namespace fluidfaas::policy {

TimePoint Router::EstimatedFinish(const InstanceRec& inst, TimePoint now, TimePoint deadline,
                                  std::vector<StageBooking>* bookings) const {
  TimePoint t = now;
  if (inst.state == InstanceState::kLoading) t = std::max(t, inst.ready_at);
  // What the stages after each one take at batch 1: a stage's own deadline leaves room for them.
  Duration after{0};
  for (size_t s = 1; s < inst.stages.size(); ++s) after += inst.BatchTime(s, 1) + inst.hop_time[s - 1];
  for (size_t s = 0; s < inst.stages.size(); ++s) {
    const size_t slice = inst.stages[s].slice;
    const TimePoint stage_deadline = deadline - after;
    const std::optional<BookedBatch> open = slices_.LastBatch(slice);
    StageBooking b;
    // A request joins the last batch booked on the slice if it is this stage's of this instance, has not started,
    // has room and still meets its deadline, and has not been handed to the mechanism yet: the carrier submits a
    // loaded instance's batches as soon as it has fewer than its stages + 1 in flight, each with the requests
    // queued then (carrier.h), so only a batch behind that many can still take one more.
    const bool joinable =
        open && open->instance == inst.id && open->stage == s && t < open->start && open->count < inst.max_batch(s) &&
        open->start + inst.BatchTime(s, open->count + 1) <= open->deadline &&
        (s > 0 || inst.state == InstanceState::kLoading || slices_.Booked(slice, inst.id, 0) >= inst.stages.size() + 2);
    if (joinable) {
      b = StageBooking{open->start, open->start + inst.BatchTime(s, open->count + 1), stage_deadline, true};
    } else {
      const TimePoint start = std::max(t, slices_.BusyUntil(slice));
      b = StageBooking{start, start + inst.BatchTime(s, 1), stage_deadline, false};
    }
    if (s + 1 < inst.stages.size()) after -= inst.BatchTime(s + 1, 1) + inst.hop_time[s];
    if (bookings != nullptr) bookings->push_back(b);
    t = b.end + inst.hop_time[s];
  }
  return t;
}

Router::Choice Router::Choose(const ServedFunction& f, const RequestEvent& request, TimePoint now) const {
  Choice c;
  bool best_preferred = false;
  TimePoint best_finish = TimePoint::max();
  for (InstanceRec* candidate : instances_.OfFunction(request.function)) {
    InstanceRec& inst = *candidate;
    if (!inst.Live() || inst.evict_pending) continue;
    c.loading = c.loading || inst.state == InstanceState::kLoading;
    const TimePoint finish = EstimatedFinish(inst, now, request.deadline);
    if (finish < c.earliest_finish) {
      c.earliest = &inst;
      c.earliest_finish = finish;
    }
    if (finish > request.deadline) continue;
    // Urgency against this instance's own service time: slack = deadline - now - service.
    const Duration service(static_cast<int64_t>(static_cast<double>(inst.service.count()) * inst.speed));
    const bool urgent = ToMillis(request.deadline - now - service) < options_.urgent_slack_fraction * f.slo_ms;
    const bool preferred = !options_.urgency || urgent == inst.Exclusive();
    if (c.best == nullptr || (preferred && !best_preferred) || (preferred == best_preferred && finish < best_finish)) {
      c.best = &inst;
      best_preferred = preferred;
      best_finish = finish;
    }
  }
  return c;
}

void Router::Route(InstanceRec& inst, const RequestEvent& request, TimePoint now, std::vector<Decision>& out) {
  std::vector<StageBooking> bookings;
  EstimatedFinish(inst, now, request.deadline, &bookings);
  for (size_t s = 0; s < inst.stages.size(); ++s) {
    const StageBooking& b = bookings[s];
    slices_.BookBatch(inst.stages[s].slice, inst.id, s, b.start, b.end, b.deadline, b.join);
  }
  ++inst.outstanding;
  inst.load.OnArrival(now);
  out.push_back(RouteDecision{request.id, inst.id});
}

}  // namespace fluidfaas::policy
