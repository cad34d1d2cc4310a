// FluidFaaSScheduler: design point 2 on top of the planner (ARCHITECTURE.md); docs/policies.md has the states,
// thresholds and formulas, and which of them are the design's and which this project's.
//
// The coordinator of parts with one job each, every one tested on its own:
//  - SliceBooks (slice_books.h): occupancy, memory booked until released, queue estimates corrected by
//    measurement;
//  - InstanceTable (instance_table.h): the instances and their checked lifecycle; placing and removing one;
//  - Router (router.h): which live instance a request goes to (urgency, estimated finish);
//  - Placer (placer.h): the scale-up ladder (single slice, pipeline, time sharing, reclaiming);
//  - Hotness (hotness.h): promotion, demotion, eviction to warm, expiry to cold;
//  - Migrator (migrator.h): pipelines back to one slice.
// Here: the events of scheduler.h, the answer for each request (route, or reject or fail with a code), and the
// measured feedback (busy time once per batch, each instance's measured speed).
//
// Thread safety: none (see Scheduler).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "policy/hotness.h"
#include "policy/migrator.h"
#include "policy/placer.h"
#include "policy/router.h"

namespace fluidfaas::policy {

// One instance as the scheduler sees it (for tests, the simulator's reports and the daemon's status).
struct InstanceView {
  InstanceId id = 0;
  FunctionId function = 0;
  InstanceState state = InstanceState::kCold;
  std::vector<StagePlacement> stages;
  int outstanding = 0;
};

// One slice's occupancy: who is resident and how much memory they use (without the worker's reserve).
struct SliceView {
  std::string id;
  bool available = true;
  std::vector<InstanceId> residents;
  int64_t used_mib = 0;
};

class FluidFaaSScheduler final : public Scheduler {
 public:
  // Every function needs `costs`; `batched` enables batching. InvalidArgument otherwise.
  static Result<std::unique_ptr<FluidFaaSScheduler>> Create(std::vector<ClusterSlice> slices,
                                                            std::vector<ServedFunction> functions,
                                                            FluidFaaSOptions options = {});

  std::string_view name() const override { return "fluidfaas"; }
  void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) override;
  void OnStageFinished(const StageFinished& stage, TimePoint now, std::vector<Decision>& out) override;
  void OnStageFailed(const StageFailed& stage, TimePoint now, std::vector<Decision>& out) override;
  void OnLoadFinished(const LoadFinished& load, TimePoint now, std::vector<Decision>& out) override;
  void OnSliceLost(const SliceLost& lost, TimePoint now, std::vector<Decision>& out) override;
  void OnReleased(const Released& released, TimePoint now, std::vector<Decision>& out) override;
  void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) override;
  void OnTick(TimePoint now, std::vector<Decision>& out) override;
  Status Deploy(ServedFunction function) override;
  Status Remove(FunctionId function, TimePoint now, std::vector<Decision>& out) override;
  Status Invariants() const override;

  std::vector<InstanceView> Instances() const;
  std::optional<InstanceView> Instance(InstanceId id) const;
  std::vector<SliceView> Slices() const;

 private:
  FluidFaaSScheduler(std::vector<ClusterSlice> slices, FluidFaaSOptions options);

  // Routes `request` (scaling up when no live instance meets its deadline), or says why it cannot be.
  struct Refusal {
    Reason code = Reason::kNoCapacity;
    std::string detail;
  };
  std::optional<Refusal> Admit(const ServedFunction& f, const RequestEvent& request, TimePoint now,
                               std::vector<Decision>& out);
  // Requests handed back by a failure: routed again where they can still make it, else failed with `code`.
  void Reroute(std::span<const RequestEvent> stranded, Reason code, std::string_view detail, TimePoint now,
               std::vector<Decision>& out);
  // `n` requests of `inst` ended (completed or failed): an instance leaving its slice goes once idle.
  void Ended(InstanceRec& inst, int n, TimePoint now, std::vector<Decision>& out);
  // An instance whose load or slice failed: its slices are released.
  void Lost(InstanceRec& inst, TimePoint now, std::vector<Decision>& out);

  FluidFaaSOptions options_;
  SliceBooks slices_;
  std::map<FunctionId, ServedFunction> functions_;
  InstanceTable instances_;
  Router router_;
  Placer placer_;
  Hotness hotness_;
  Migrator migrator_;
  // Per function, the requests turned away while a cold start of it was in flight (ColdStartShort).
  std::map<FunctionId, LoadTracker> waiting_for_load_;
  // Whether the requests that find `f` loading come faster than its loading instances will serve them (and so
  // another cold start should begin); records `now`'s request.
  bool ColdStartShort(const ServedFunction& f, TimePoint now);
};

}  // namespace fluidfaas::policy
