// AnswerChecker: the answer rule of scheduler.h, checked on the stream of events and decisions.
//
// The driver (the simulator, the daemon's control thread, a test's fake node) tells it each event before the
// scheduler sees it, every decision the scheduler made in that call, and the end of the call. It keeps the
// owner of every open request (the scheduler, in this call; or the mechanism, on an instance), each instance's
// placement and requests in flight, and each slice's booked and releasing memory. The first violation is kept
// (with the ones after it counted); it never throws or stops the driver, which decides what a violation costs
// (the simulator fails the run, the daemon logs it loudly and counts it).
//
// Thread safety: none; owned by the driver's one thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/scheduler.h"

namespace fluidfaas::policy {

class AnswerChecker {
 public:
  // `slices`: the cluster the scheduler places on (their memory is what may be booked).
  explicit AnswerChecker(const std::vector<ClusterSlice>& slices);

  // ---- events, before the scheduler sees them
  void OnRequest(const RequestEvent& request);
  void OnStageFinished(const StageFinished& stage);
  void OnStageFailed(const StageFailed& stage);
  void OnLoadFinished(const LoadFinished& load);
  void OnSliceLost(const SliceLost& lost);
  void OnReleased(const Released& released);

  // ---- the scheduler's decisions in that call, in order
  void OnDecision(const Decision& decision);
  // The call is over: every request the scheduler owned in it must have been answered, every failed instance
  // retired.
  void EndCall();

  // At the end of a run: every request ended. Returns status().
  Status Finish();

  // The first violation, or Ok.
  Status status() const;
  int64_t violations() const { return violations_; }
  int64_t completed() const { return completed_; }
  int64_t rejected() const { return rejected_; }
  int64_t failed() const { return failed_; }
  int64_t open_requests() const { return static_cast<int64_t>(requests_.size()); }

 private:
  struct Booking {
    int64_t own_mib = 0;      // memory beside the reserve
    int64_t reserve_mib = 0;  // the worker process's reserve (counted once per slice)
  };
  struct SliceBooks {
    int64_t capacity_mib = 0;
    std::map<InstanceId, Booking> live;
    std::map<InstanceId, Booking> releasing;
    int64_t Used() const;
  };
  struct Inst {
    bool placed = false;       // launched and not evicted or retired since
    bool must_retire = false;  // its load failed or it lost a slice: Retire is due in this call
    std::vector<StagePlacement> stages;
    int64_t in_flight = 0;  // requests the mechanism owns on it
  };
  // A request the scheduler owns in this call (`fresh`: it arrived now; otherwise it was handed back).
  struct Open {
    InstanceId instance = 0;  // 0: the scheduler owns it
    bool fresh = false;
  };

  void Violation(std::string what);
  void HandBack(InstanceId instance, RequestId request, const char* event);
  void Release(InstanceId id, Inst& inst, const char* what);
  void Check(const LaunchDecision& d);
  void Check(const RouteDecision& d);
  void Check(const RejectDecision& d);
  void Check(const FailDecision& d);
  void Check(const EvictDecision& d);
  void Check(const StateDecision& d);
  void Check(const MigrateDecision& d);
  void Check(const RetireDecision& d);

  std::vector<SliceBooks> slices_;
  std::unordered_map<RequestId, Open> requests_;  // open requests only: an ended one is erased
  std::unordered_map<InstanceId, Inst> instances_;
  std::vector<RequestId> owned_;       // the scheduler owns these in the current call
  std::vector<InstanceId> to_retire_;  // instances whose Retire is due in the current call
  std::string first_;
  int64_t violations_ = 0;
  int64_t completed_ = 0, rejected_ = 0, failed_ = 0;
};

}  // namespace fluidfaas::policy
