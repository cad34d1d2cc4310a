#include "carrier/carrier.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "gpu/mps.h"
#include "gpu/topology.h"
#include "model/zoo.h"
#include "policy/serve_function.h"

namespace fluidfaas::carrier {
namespace {

using policy::Decision;
using policy::LaunchDecision;
using policy::RouteDecision;

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

policy::ClusterSlice Slice(const std::string& id) {
  const gpu::SliceId sid = *gpu::SliceId::Parse(id);
  return policy::ClusterSlice{id, sid.gpu, policy::SliceKind{&A100(), A100().FindProfile(sid.profile)}, true};
}

// A scheduler whose answers the test writes: each handler, when set, appends its decisions.
struct ScriptedScheduler final : policy::Scheduler {
  using Out = std::vector<Decision>;
  std::function<void(const policy::RequestEvent&, Out&)> on_request;
  std::function<void(const policy::LoadFinished&, Out&)> on_load;
  std::function<void(const policy::SliceLost&, Out&)> on_lost;
  std::function<void(const policy::StageFailed&, Out&)> on_failed;
  std::vector<policy::StageFinished> finished;  // the stages' runs heard (their requests copied out below)
  std::vector<std::vector<RequestId>> finished_requests;
  std::vector<policy::Released> released;

  std::string_view name() const override { return "scripted"; }
  void OnRequest(const policy::RequestEvent& r, TimePoint, Out& out) override {
    if (on_request) on_request(r, out);
  }
  void OnStageFinished(const policy::StageFinished& s, TimePoint, Out&) override {
    finished.push_back(s);
    finished_requests.emplace_back(s.requests.begin(), s.requests.end());
  }
  void OnStageFailed(const policy::StageFailed& s, TimePoint, Out& out) override {
    if (on_failed) on_failed(s, out);
  }
  void OnLoadFinished(const policy::LoadFinished& l, TimePoint, Out& out) override {
    if (on_load) on_load(l, out);
  }
  void OnSliceLost(const policy::SliceLost& l, TimePoint, Out& out) override {
    if (on_lost) on_lost(l, out);
  }
  void OnReleased(const policy::Released& r, TimePoint, Out&) override { released.push_back(r); }
  void OnSliceFreed(size_t, TimePoint, Out&) override {}
  void OnTick(TimePoint, Out&) override {}
  Status Deploy(policy::ServedFunction) override { return Status::Ok(); }
  Status Remove(policy::FunctionId, TimePoint, Out&) override { return Status::Ok(); }
  Status Invariants() const override { return Status::Ok(); }
};

// Records what the carrier asks of the node and of the requests' owner.
struct Recorder final : Mechanism, Host {
  struct Submitted {
    InstanceId instance;
    uint64_t batch;
    std::vector<RequestId> requests;
  };
  std::vector<InstanceId> launched;
  std::vector<Submitted> submitted;
  std::vector<std::pair<InstanceId, bool>> evicted;
  std::set<InstanceId> refuse_launch;
  bool ring_full = false;
  std::map<RequestId, std::pair<Ending, Reason>> ended;
  std::vector<std::function<void(TimePoint)>> later;
  std::vector<TimePoint> wakes;

  Status Launch(const LaunchDecision& d) override {
    if (refuse_launch.contains(d.instance)) return Status::Unavailable("the slice's worker is restarting");
    launched.push_back(d.instance);
    return Status::Ok();
  }
  Status Submit(InstanceId instance, uint64_t batch, std::span<const RequestId> requests) override {
    if (ring_full) return Status::ResourceExhausted("ring full");
    submitted.push_back({instance, batch, {requests.begin(), requests.end()}});
    return Status::Ok();
  }
  Status Evict(InstanceId instance, bool keep_warm) override {
    evicted.emplace_back(instance, keep_warm);
    return Status::Ok();
  }
  void Ended(RequestId id, Ending ending, Reason code, const std::string&) override { ended[id] = {ending, code}; }
  void Later(std::function<void(TimePoint)> task) override { later.push_back(std::move(task)); }
  void WakeAt(TimePoint at) override { wakes.push_back(at); }
  void RunLater(TimePoint now) {
    std::vector<std::function<void(TimePoint)>> tasks;
    tasks.swap(later);
    for (auto& t : tasks) t(now);
  }
};

LaunchDecision Launch(InstanceId id, const std::vector<size_t>& slices, int max_batch = 1,
                      Duration timeout = Duration{0}) {
  LaunchDecision d;
  d.instance = id;
  d.function = 0;
  size_t block = 0;
  for (size_t s : slices) d.stages.push_back(policy::StagePlacement{s, block, block, 1000, 0, -1}), ++block;
  d.max_batch = max_batch;
  d.batch_timeout = timeout;
  return d;
}

TimePoint At(int ms) {
  return TimePoint{} + Millis(ms);
}

class CarrierTest : public ::testing::Test {
 protected:
  void Make(const std::vector<std::string>& slice_ids) {
    for (const auto& id : slice_ids) slices.push_back(Slice(id));
    carrier.emplace(slices, scheduler, node, node);
    carrier->AddFunction(0, CarriedFunction{});
  }
  void Arrive(RequestId id, int at_ms, int slo_ms = 1000) {
    carrier->Arrive(policy::RequestEvent{id, 0, At(at_ms), At(at_ms + slo_ms)}, At(at_ms));
  }
  void ExpectNoViolation() { EXPECT_EQ(carrier->checker().violations(), 0) << carrier->checker().status().message(); }

  std::vector<policy::ClusterSlice> slices;
  ScriptedScheduler scheduler;
  Recorder node;
  std::optional<Carrier> carrier;
};

TEST_F(CarrierTest, RequestsWaitForTheLoadThenRunInBatchesOnePerStageInFlightAndOneWaiting) {
  Make({"0:1g.10gb@6"});
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) {
    if (r.id == 1) out.push_back(Launch(7, {0}, /*max_batch=*/2));
    out.push_back(RouteDecision{r.id, 7});
  };
  for (RequestId id = 1; id <= 5; ++id) Arrive(id, 0);
  EXPECT_EQ(node.launched, std::vector<InstanceId>{7});
  EXPECT_TRUE(node.submitted.empty());  // still loading

  carrier->Loaded(7, true, "", At(5));
  ASSERT_EQ(node.submitted.size(), 2u);  // one running, one waiting at the entry; [5] stays queued
  EXPECT_EQ(node.submitted[0].requests, (std::vector<RequestId>{1, 2}));
  EXPECT_EQ(node.submitted[1].requests, (std::vector<RequestId>{3, 4}));
  EXPECT_EQ(carrier->instances().at(7).queue.size(), 1u);

  std::vector<RequestId> answered;
  const StageRun run{At(5), At(9)};
  carrier->BatchCompleted(7, node.submitted[0].batch, std::span(&run, 1), At(9), [&](auto ids) {
    EXPECT_NE(carrier->Find(ids[0]), nullptr);  // still known while answered
    answered.assign(ids.begin(), ids.end());
  });
  EXPECT_EQ(answered, (std::vector<RequestId>{1, 2}));
  EXPECT_EQ(carrier->Find(1), nullptr);
  ASSERT_EQ(scheduler.finished.size(), 1u);
  EXPECT_TRUE(scheduler.finished[0].last);
  EXPECT_EQ(scheduler.finished[0].started, At(5));
  EXPECT_EQ(scheduler.finished_requests[0], (std::vector<RequestId>{1, 2}));
  ASSERT_EQ(node.submitted.size(), 3u);  // the room it left takes the queue's last
  EXPECT_EQ(node.submitted[2].requests, std::vector<RequestId>{5});

  // A batch the carrier does not know (a stale or repeated event) changes nothing.
  carrier->BatchCompleted(7, node.submitted[0].batch, std::span(&run, 1), At(10), [&](auto) { ADD_FAILURE(); });
  EXPECT_EQ(carrier->open(), 3u);
  ExpectNoViolation();
}

TEST_F(CarrierTest, AFullRingIsRetriedAtTheInstancesNextEvent) {
  Make({"0:1g.10gb@6"});
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) {
    if (r.id == 1) out.push_back(Launch(7, {0}));
    out.push_back(RouteDecision{r.id, 7});
  };
  Arrive(1, 0);
  carrier->Loaded(7, true, "", At(1));
  ASSERT_EQ(node.submitted.size(), 1u);
  node.ring_full = true;
  Arrive(2, 2);
  EXPECT_EQ(node.submitted.size(), 1u);
  EXPECT_EQ(carrier->instances().at(7).queue.size(), 1u);  // nothing taken
  node.ring_full = false;
  const StageRun run{At(1), At(3)};
  carrier->BatchCompleted(7, node.submitted[0].batch, std::span(&run, 1), At(3), [](auto) {});
  ASSERT_EQ(node.submitted.size(), 2u);
  EXPECT_EQ(node.submitted[1].requests, std::vector<RequestId>{2});
  ExpectNoViolation();
}

TEST_F(CarrierTest, AShortBatchWaitsForItsTimeoutFromWhenItsOldestJoined) {
  Make({"0:1g.10gb@6"});
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) {
    if (r.id == 1) {
      out.push_back(Launch(7, {0}, /*max_batch=*/4, Millis(10)));
      out.push_back(policy::RejectDecision{1, Reason::kNoCapacity, "launches only"});
    } else {
      out.push_back(RouteDecision{r.id, 7});
    }
  };
  Arrive(1, 0);
  carrier->Loaded(7, true, "", At(1));
  Arrive(2, 2);
  Arrive(3, 5);
  EXPECT_TRUE(node.submitted.empty());
  EXPECT_EQ(node.wakes, std::vector<TimePoint>{At(12)});  // once, for the oldest
  EXPECT_EQ(carrier->NextDue(), At(12));
  carrier->DispatchDue(At(11));
  EXPECT_TRUE(node.submitted.empty());
  carrier->DispatchDue(At(12));
  ASSERT_EQ(node.submitted.size(), 1u);
  EXPECT_EQ(node.submitted[0].requests, (std::vector<RequestId>{2, 3}));
  EXPECT_EQ(carrier->NextDue(), std::nullopt);
  ExpectNoViolation();
}

TEST_F(CarrierTest, ALaunchThatTakesOverReleasedMemoryKeepsItsRoutesUntilTheReleaseThenLoads) {
  Make({"0:1g.10gb@6"});
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) {
    if (r.id == 1) {
      out.push_back(Launch(7, {0}));
      out.push_back(RouteDecision{1, 7});
    } else {
      out.push_back(policy::RetireDecision{7});
      LaunchDecision d = Launch(8, {0});
      d.after_release = {7};
      out.push_back(d);
      out.push_back(RouteDecision{r.id, 8});
    }
  };
  Arrive(1, 0);
  carrier->Loaded(7, true, "", At(1));
  const StageRun run{At(1), At(2)};
  carrier->BatchCompleted(7, node.submitted.at(0).batch, std::span(&run, 1), At(2), [](auto) {});
  Arrive(2, 3);
  EXPECT_EQ(node.evicted, (std::vector<std::pair<InstanceId, bool>>{{7, false}}));
  EXPECT_EQ(node.launched, std::vector<InstanceId>{7});    // 8 waits for 7's release
  EXPECT_EQ(carrier->instances().at(8).queue.size(), 1u);  // its route is kept, not dropped
  carrier->Released(7, 0, At(4));
  EXPECT_EQ(node.launched, (std::vector<InstanceId>{7, 8}));
  carrier->Loaded(8, true, "", At(6));
  ASSERT_EQ(node.submitted.size(), 2u);
  EXPECT_EQ(node.submitted[1].requests, std::vector<RequestId>{2});
  ExpectNoViolation();
}

TEST_F(CarrierTest, ARefusedLaunchIsAFailedLoadOnALaterCallThatHandsItsRequestsBack) {
  Make({"0:1g.10gb@6"});
  node.refuse_launch = {7};
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) {
    out.push_back(Launch(7, {0}));
    out.push_back(RouteDecision{r.id, 7});
  };
  std::vector<RequestId> stranded;
  scheduler.on_load = [&](const policy::LoadFinished& l, auto& out) {
    EXPECT_FALSE(l.ok);
    for (const auto& r : l.stranded) {
      stranded.push_back(r.id);
      out.push_back(policy::FailDecision{r.id, Reason::kLoadFailed, "load failed"});
    }
    out.push_back(policy::RetireDecision{7});
  };
  Arrive(1, 0);
  EXPECT_TRUE(stranded.empty());  // not inside the scheduler's call
  ASSERT_EQ(node.later.size(), 1u);
  node.RunLater(At(1));
  EXPECT_EQ(stranded, std::vector<RequestId>{1});
  EXPECT_EQ(node.ended.at(1), (std::pair{Ending::kFailed, Reason::kLoadFailed}));
  EXPECT_TRUE(node.evicted.empty());  // the mechanism never took it: nothing to evict
  node.RunLater(At(2));               // its release, acknowledged by the carrier itself
  ASSERT_EQ(scheduler.released.size(), 1u);
  EXPECT_EQ(scheduler.released[0].instance, 7u);
  ExpectNoViolation();
  EXPECT_TRUE(carrier->checker().Finish().ok()) << carrier->checker().status().message();
}

TEST_F(CarrierTest, ALostSliceStrandsTheQueueAndTheBatchesInFlightAndIgnoresTheirLaterEvents) {
  Make({"0:1g.10gb@6", "0:2g.20gb@4"});
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) {
    if (r.id == 1) out.push_back(Launch(7, {0, 1}));  // a two-stage pipeline
    out.push_back(RouteDecision{r.id, 7});
  };
  std::vector<RequestId> stranded;
  scheduler.on_lost = [&](const policy::SliceLost& l, auto& out) {
    for (const auto& r : l.stranded) {
      stranded.push_back(r.id);
      out.push_back(policy::FailDecision{r.id, Reason::kWorkerLost, "lost"});
    }
    out.push_back(policy::RetireDecision{7});
  };
  for (RequestId id = 1; id <= 4; ++id) Arrive(id, 0);
  carrier->Loaded(7, true, "", At(1));
  ASSERT_EQ(node.submitted.size(), 3u);  // two stages in flight and one waiting; [4] queued
  carrier->SliceLost(0, Reason::kWorkerLost, "SIGKILL", At(2));
  EXPECT_EQ(stranded, (std::vector<RequestId>{1, 2, 3, 4}));  // batches in submission order, then the queue
  EXPECT_EQ(carrier->open(), 0u);
  EXPECT_FALSE(carrier->instances().contains(7));
  EXPECT_TRUE(node.evicted.empty());  // the runtime releases the other slice itself
  const StageRun runs[2] = {{At(1), At(2)}, {At(2), At(3)}};
  carrier->BatchCompleted(7, node.submitted[0].batch, runs, At(3), [](auto) { ADD_FAILURE(); });
  carrier->Released(7, 1, At(4));  // the surviving slice's release
  ExpectNoViolation();
  EXPECT_TRUE(carrier->checker().Finish().ok()) << carrier->checker().status().message();
}

TEST_F(CarrierTest, ARouteToAnInstanceThatDoesNotExistEndsTheRequestFailed) {
  Make({"0:1g.10gb@6"});
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) { out.push_back(RouteDecision{r.id, 99}); };
  Arrive(1, 0);
  EXPECT_EQ(node.ended.at(1), (std::pair{Ending::kFailed, Reason::kNoCapacity}));
  EXPECT_EQ(carrier->open(), 0u);
  EXPECT_GT(carrier->checker().violations(), 0);  // a scheduler bug, and the checker says so
}

// The deadline cut, on resnet50's modelled costs: a batch is cut to the longest run of the queue whose every
// request still meets its deadline. Request 3's deadline leaves room for a batch of 2 but not of 3 or 4 at the
// modelled times; a function run at a time scale (the daemon's --time-scale) is cut at the times it will take.
class DeadlineCutTest : public CarrierTest {
 protected:
  std::vector<RequestId> FirstBatch(double time_scale) {
    Make({"0:1g.10gb@6"});
    const model::LatencyModel latency;
    const gpu::MpsShares shares(A100());
    auto spec = std::make_shared<const model::FunctionSpec>(*model::BuildZooModel("resnet50"));
    const policy::ServedFunction f = *policy::ServeZooModel(0, spec, latency, shares, 5.0);
    carrier->AddFunction(0, CarriedFunction{f.costs.get(), f.batched.get(), f.mps.get(), time_scale});
    const int k = f.batched->KindIndex(slices[0].kind);
    const double two = f.batched->WholeMs(k, 2), three = f.batched->WholeMs(k, 3);
    EXPECT_LT(f.batched->WholeMs(k, 1), two);
    EXPECT_LT(two, three);
    LaunchDecision d;
    d.instance = 7;
    d.stages = {policy::StagePlacement{0, 0, f.batched->blocks() - 1, 1000, 0, -1}};
    d.max_batch = 4;
    d.batch_by_deadline = true;
    scheduler.on_request = [d](const policy::RequestEvent& r, auto& out) {
      if (r.id == 1) out.push_back(d);
      out.push_back(RouteDecision{r.id, 7});
    };
    const TimePoint start = At(10);
    Arrive(1, 0, 1000);
    Arrive(2, 0, 1000);
    carrier->Arrive(policy::RequestEvent{3, 0, At(0), start + MillisF((two + three) / 2)}, At(0));
    Arrive(4, 0, 1000);
    carrier->Loaded(7, true, "", start);
    if (node.submitted.empty()) return {};
    return node.submitted[0].requests;
  }
};

TEST_F(DeadlineCutTest, ABatchIsCutSoThatEveryRequestInItMeetsItsDeadline) {
  EXPECT_EQ(FirstBatch(1.0), (std::vector<RequestId>{1, 2}));
}

TEST_F(DeadlineCutTest, AFunctionRunAtATimeScaleIsCutAtTheTimesItWillTake) {
  EXPECT_EQ(FirstBatch(0.01), (std::vector<RequestId>{1, 2, 3, 4}));
}

// The daemon's control thread delivers everything posted since its last turn at once: requests that arrive
// together, held, leave as one batch. Unheld, the first leaves alone at once.
TEST_F(CarrierTest, RequestsDeliveredTogetherWhileHeldLeaveAsOneBatch) {
  Make({"0:1g.10gb@6"});
  scheduler.on_request = [](const policy::RequestEvent& r, auto& out) {
    if (r.id == 1) out.push_back(Launch(7, {0}, /*max_batch=*/8));
    out.push_back(RouteDecision{r.id, 7});
  };
  Arrive(1, 0);
  carrier->Loaded(7, true, "", At(1));
  ASSERT_EQ(node.submitted.size(), 1u);
  const StageRun run{At(1), At(2)};
  carrier->BatchCompleted(7, node.submitted[0].batch, std::span(&run, 1), At(2), [](auto) {});

  carrier->Hold();
  for (RequestId id = 2; id <= 6; ++id) Arrive(id, 3);
  EXPECT_EQ(node.submitted.size(), 1u);  // held
  carrier->Flush(At(3));
  ASSERT_EQ(node.submitted.size(), 2u);
  EXPECT_EQ(node.submitted[1].requests, (std::vector<RequestId>{2, 3, 4, 5, 6}));

  for (RequestId id = 7; id <= 9; ++id) Arrive(id, 4);  // not held: 7 leaves at once, 8 and 9 behind it
  ASSERT_EQ(node.submitted.size(), 3u);
  EXPECT_EQ(node.submitted[2].requests, std::vector<RequestId>{7});
  ExpectNoViolation();
}

// The report a gateway routes by (policy/cluster_router.h): instances on slices per function, warm copies, and
// free slices less their residents' memory and the releases not yet acknowledged.
TEST_F(CarrierTest, TheReportShowsHotInstancesWarmCopiesAndTheMemoryLeftOnFreeSlices) {
  Make({"0:4g.40gb@0", "0:2g.20gb@4", "0:1g.10gb@6"});
  const int64_t two_g = slices[1].kind.profile->memory_mib;
  carrier->Apply(At(0), [](auto& out) { out.push_back(Launch(7, {1})); });
  Carrier::Report r = carrier->MakeReport(At(0));
  ASSERT_EQ(r.functions.size(), 1u);
  EXPECT_EQ(r.functions[0].hot, 1);
  const int64_t four_g = slices[0].kind.profile->memory_mib, one_g = slices[2].kind.profile->memory_mib;
  EXPECT_EQ(r.free, (std::vector<std::pair<size_t, int64_t>>{{0, four_g}, {2, one_g}}));  // loading: held alone

  carrier->Loaded(7, true, "", At(1));
  carrier->Apply(At(1), [](auto& out) {
    out.push_back(policy::StateDecision{7, policy::InstanceState::kLoading, policy::InstanceState::kTimeSharing});
  });
  r = carrier->MakeReport(At(1));
  EXPECT_EQ(r.free[1], (std::pair<size_t, int64_t>{1, two_g - 1000}));  // time-sharing: others may join

  carrier->Apply(At(2), [](auto& out) {
    out.push_back(policy::EvictDecision{7});
    out.push_back(policy::StateDecision{7, policy::InstanceState::kTimeSharing, policy::InstanceState::kWarm});
  });
  r = carrier->MakeReport(At(2));
  ASSERT_EQ(r.functions.size(), 1u);
  EXPECT_EQ(r.functions[0].hot, 0);
  EXPECT_EQ(r.functions[0].warm, 1);
  EXPECT_EQ(r.free[1], (std::pair<size_t, int64_t>{1, two_g - 1000}));  // until the release is acknowledged
  carrier->Released(7, 1, At(3));
  EXPECT_EQ(carrier->MakeReport(At(3)).free[1], (std::pair<size_t, int64_t>{1, two_g}));

  carrier->SliceLost(0, Reason::kSliceTaken, "another tenant", At(4));
  EXPECT_EQ(carrier->MakeReport(At(4)).free.front().first, 1u);  // the 4g is gone
  carrier->SliceFreed(0, At(5));
  EXPECT_EQ(carrier->MakeReport(At(5)).free.front().first, 0u);
  ExpectNoViolation();
}

}  // namespace
}  // namespace fluidfaas::carrier
