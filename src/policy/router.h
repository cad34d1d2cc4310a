// Router: where a request of a function goes among its live instances (design point 2's routing).
//
// The finish time of a request on an instance is estimated by walking its stages in order: each stage starts
// when the request gets there and the slice has finished what is booked on it, or joins the batch booked last
// there when that batch is this instance's and stage's, has room, has not started, and still meets the deadline
// of every request in it with one more (the mechanism cuts batches the same way: LaunchDecision::
// batch_by_deadline). Stage times are the
// cost tables' batch times scaled by the instance's measured speed; queues are SliceBooks' corrected estimates.
// Urgent requests (slack under urgent_slack_fraction x SLO) prefer exclusive instances, the others
// time-sharing ones; within a preference the earliest finish that meets the deadline wins.
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <vector>

#include "policy/instance_table.h"

namespace fluidfaas::policy {

class Router {
 public:
  Router(const FluidFaaSOptions& options, SliceBooks& slices, InstanceTable& instances)
      : options_(options), slices_(slices), instances_(instances) {}

  struct Choice {
    InstanceRec* best = nullptr;      // meets the deadline, by preference then finish
    InstanceRec* earliest = nullptr;  // the earliest finish, deadline or not
    TimePoint earliest_finish = TimePoint::max();
    bool loading = false;  // an instance of the function is loading
  };
  Choice Choose(const ServedFunction& f, const RequestEvent& request, TimePoint now) const;

  // When a request with `deadline` routed to `inst` now would finish; `bookings` (when given) receives each
  // stage's batch.
  struct StageBooking {
    TimePoint start;
    TimePoint end;
    TimePoint deadline;  // by when the request must leave the stage
    bool join = false;
  };
  TimePoint EstimatedFinish(const InstanceRec& inst, TimePoint now, TimePoint deadline,
                            std::vector<StageBooking>* bookings = nullptr) const;

  // Routes `request` to `inst`, booking its batches on the slices.
  void Route(InstanceRec& inst, const RequestEvent& request, TimePoint now, std::vector<Decision>& out);

 private:
  const FluidFaaSOptions& options_;
  SliceBooks& slices_;
  InstanceTable& instances_;
};

}  // namespace fluidfaas::policy
