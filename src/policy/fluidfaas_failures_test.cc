// FluidFaaSScheduler on the failure paths a real node has (fake_node.h): failed loads, lost workers, functions
// deployed and removed at run time; every request answered once, with its code.
#include <gtest/gtest.h>

#include <cmath>

#include "policy/fake_node.h"

namespace fluidfaas::policy {
namespace {

using namespace fake;  // NOLINT(google-build-using-namespace): the fake node's helpers

// Regression (issue: a request routed to an instance whose load then failed was never answered): the request
// is routed again to an instance that can still make it, or failed with load_failed; answered once either way.
TEST(FluidFaaSSchedulerTest, ARequestWaitingOnAFailedLoadIsRoutedAgainOrFailedOnce) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 4000);  // a loose SLO: a second cold start still makes it
  FakeNode node(clock, {Slice("0:1g.10gb@5"), Slice("0:1g.10gb@6")}, {resnet.served});
  node.FailLoadsOf(1);  // the first instance's load fails
  const RequestId first = node.Submit(0, At(0), 4000);
  const RequestId second = node.Submit(0, At(0.1), 4000);
  node.Ticks(At(1), At(30));
  clock.RunUntilIdle();
  for (RequestId r : {first, second}) {
    const auto& rec = node.requests().at(r);
    EXPECT_EQ(rec.completions, 1) << r;  // routed again to a second instance, which loaded
    EXPECT_FALSE(rec.rejected || rec.failed) << r;
    ASSERT_EQ(rec.routed.size(), 2u) << r;
    EXPECT_EQ(rec.routed[0], 1u);
    EXPECT_NE(rec.routed[1], 1u);
  }
  EXPECT_NE(std::find(node.retired().begin(), node.retired().end(), 1u), node.retired().end());
  EXPECT_EQ(node.checker().open_requests(), 0);

  // With a tight SLO a second cold start is too late: the request fails with load_failed, once.
  ManualClock clock2;
  Fn tight("resnet50", 0, 1800);
  FakeNode node2(clock2, {Slice("0:1g.10gb@5"), Slice("0:1g.10gb@6")}, {tight.served});
  node2.FailLoadsOf(1);
  const RequestId lost = node2.Submit(0, At(0), 1800);
  clock2.RunUntilIdle();
  EXPECT_TRUE(node2.requests().at(lost).failed);
  EXPECT_EQ(node2.requests().at(lost).completions, 0);
  ASSERT_EQ(node2.fail_codes_.size(), 1u);
  EXPECT_EQ(node2.fail_codes_[0], Reason::kLoadFailed);
  EXPECT_TRUE(node2.checker().Finish().ok()) << node2.checker().status().message();
}

TEST(FluidFaaSSchedulerTest, AWorkerLostWithABatchInFlightAnswersEachRequestOnce) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 3000);
  FakeNode node(clock, {Slice("0:1g.10gb@5"), Slice("0:1g.10gb@6")}, {resnet.served});
  node.SubmitEvery(0, At(0), At(20), Millis(20), 3000);
  node.KillWorker(1, At(10.0005));  // mid-request on whichever instance holds slice 1 (or nothing there yet)
  node.KillWorker(0, At(10.0005));
  node.Ticks(At(1), At(40));
  clock.RunUntilIdle();
  EXPECT_TRUE(node.checker().Finish().ok()) << node.checker().status().message();
  int rerouted = 0;
  for (const auto& [rid, r] : node.requests()) {
    EXPECT_EQ(r.completions + r.rejected + r.failed, 1) << rid;
    rerouted += r.routed.size() == 2 && r.completions == 1;
  }
  EXPECT_GT(rerouted, 0);  // the stranded requests found a new instance in time (3 s SLO, ~2 s cold start)
  for (Reason code : node.fail_codes_) EXPECT_EQ(code, Reason::kWorkerLost);
}

TEST(FluidFaaSSchedulerTest, FunctionsAreDeployedAndRemovedAtRunTime) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 3000);
  Fn bert("bert-base", 1, 3000);
  FakeNode node(clock, {Slice("0:1g.10gb@5"), Slice("0:1g.10gb@6")}, {resnet.served});
  Status deployed = Status::Internal("not yet");
  Status removed = Status::Internal("not yet");
  Status again = Status::Ok();
  const RequestId early = node.Submit(1, At(0), 3000);  // not deployed yet
  node.Deploy(bert.served, At(1), &deployed);
  node.Deploy(bert.served, At(1.5), &again);  // the same id twice
  node.SubmitEvery(1, At(2), At(10), Millis(200), 3000);
  node.Remove(1, At(10), &removed);
  const RequestId late = node.Submit(1, At(11), 3000);
  node.Ticks(At(1), At(20));
  clock.RunUntilIdle();
  EXPECT_TRUE(deployed.ok()) << deployed.message();
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(removed.ok()) << removed.message();
  EXPECT_TRUE(node.requests().at(early).rejected);
  EXPECT_TRUE(node.requests().at(late).rejected);
  int served = 0;
  for (const auto& [rid, r] : node.requests()) {
    EXPECT_EQ(r.completions + r.rejected + r.failed, 1) << rid;
    served += r.function == 1 && r.completions == 1;
  }
  EXPECT_GT(served, 25);
  // Its instances drained and retired: nothing of bert-base is left.
  for (const InstanceView& v : node.scheduler().Instances()) EXPECT_NE(v.function, 1u);
  EXPECT_TRUE(node.checker().Finish().ok()) << node.checker().status().message();
}

TEST(FluidFaaSSchedulerTest, AFunctionWithoutCostTablesIsRefusedNotCrashedOn) {
  Fn resnet("resnet50", 0, 100);
  ServedFunction broken = resnet.served;
  broken.costs = nullptr;
  auto made = FluidFaaSScheduler::Create({Slice("0:1g.10gb@6")}, {broken});
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("resnet50"), std::string::npos);
  ServedFunction no_slo = resnet.served;
  no_slo.slo_ms = std::nan("");
  EXPECT_FALSE(FluidFaaSScheduler::Create({Slice("0:1g.10gb@6")}, {no_slo}).ok());
}

}  // namespace
}  // namespace fluidfaas::policy
