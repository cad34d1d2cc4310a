// AnswerChecker: a clean stream passes, and each kind of violation of scheduler.h's answer rule is caught.
#include "policy/answer_checker.h"

#include <gtest/gtest.h>

#include "policy/fake_node.h"

namespace fluidfaas::policy {
namespace {

using fake::At;
using fake::Slice;

// A launch of one stage of `mib` (a 1000 MiB worker reserve among them) on `slice`.
LaunchDecision Launch(InstanceId id, size_t slice, int64_t mib, std::vector<InstanceId> after = {}) {
  LaunchDecision l{id, 0, {StagePlacement{slice, 0, 0, mib, 1000}}};
  l.after_release = std::move(after);
  return l;
}

// A stream of events and decisions on two slices, fed to a checker.
struct Stream {
  Stream() : checker_({Slice("0:1g.10gb@6"), Slice("0:2g.20gb@4")}) {}

  RequestEvent Arrive(RequestId id) {
    const RequestEvent r{id, 0, At(1), At(2)};
    checker_.OnRequest(r);
    return r;
  }
  // One call's decisions.
  void Call(const std::vector<Decision>& decisions) {
    for (const Decision& d : decisions) checker_.OnDecision(d);
    checker_.EndCall();
  }
  bool Violated() const { return !checker_.status().ok(); }

  AnswerChecker checker_;
};

TEST(AnswerCheckerTest, ACleanStreamPasses) {
  Stream t;
  t.Arrive(1);
  t.Call({Launch(7, 0, 5000), RouteDecision{1, 7}});
  t.checker_.OnLoadFinished(LoadFinished{7, true});
  t.checker_.EndCall();
  const RequestId batch[] = {1};
  t.checker_.OnStageFinished(StageFinished{7, 0, 1, true, batch, At(1), At(1.1)});
  t.checker_.EndCall();
  t.Arrive(2);
  t.Call({RejectDecision{2, Reason::kNoCapacity, "full"}});
  t.Call({RetireDecision{7}});
  t.checker_.OnReleased(Released{7, 0});
  t.Call({Launch(8, 0, 9000)});  // the whole slice again, once released
  EXPECT_TRUE(t.checker_.Finish().ok()) << t.checker_.status().message();
  EXPECT_EQ(t.checker_.completed(), 1);
  EXPECT_EQ(t.checker_.rejected(), 1);
}

TEST(AnswerCheckerTest, ARequestAnsweredTwiceOrNeverIsCaught) {
  Stream t;
  t.Arrive(1);
  t.Call({Launch(7, 0, 5000), RouteDecision{1, 7}, RejectDecision{1, Reason::kNoCapacity, ""}});
  EXPECT_TRUE(t.Violated());
  Stream fresh;
  fresh.Arrive(2);
  fresh.Call({});  // neither routed nor rejected
  EXPECT_TRUE(fresh.Violated());
}

TEST(AnswerCheckerTest, RoutingToAnInstanceNotLaunchedIsCaught) {
  Stream t;
  t.Arrive(1);
  t.Call({RouteDecision{1, 99}});
  EXPECT_TRUE(t.Violated());
}

TEST(AnswerCheckerTest, MemoryStillBeingReleasedCannotBeBookedTwice) {
  Stream t;
  t.Call({Launch(7, 0, 9000)});
  t.Call({EvictDecision{7}});
  t.Call({Launch(8, 0, 9000)});  // the eviction is not acknowledged yet
  EXPECT_TRUE(t.Violated());

  Stream handover;
  handover.Call({Launch(7, 0, 9000)});
  handover.Call({EvictDecision{7}, Launch(8, 0, 9000, {7})});  // takes over 7's memory, waiting for its release
  EXPECT_FALSE(handover.Violated()) << handover.checker_.status().message();
  handover.checker_.OnReleased(Released{7, 0});
  EXPECT_FALSE(handover.Violated());

  Stream bogus;
  bogus.Call({Launch(8, 0, 100, {42})});  // waits for a release that is not happening
  EXPECT_TRUE(bogus.Violated());
}

TEST(AnswerCheckerTest, EvictingABusyInstanceIsCaught) {
  Stream t;
  t.Arrive(1);
  t.Call({Launch(7, 0, 5000), RouteDecision{1, 7}});
  t.Call({EvictDecision{7}});
  EXPECT_TRUE(t.Violated());
}

TEST(AnswerCheckerTest, AFailedLoadMustHandBackItsRequestsAndBeRetired) {
  Stream t;
  const RequestEvent r = t.Arrive(1);
  t.Call({Launch(7, 0, 5000), RouteDecision{1, 7}});
  const RequestEvent stranded[] = {r};
  t.checker_.OnLoadFinished(LoadFinished{7, false, "disk", stranded});
  t.Call({FailDecision{1, Reason::kLoadFailed, "disk"}, RetireDecision{7}});
  EXPECT_FALSE(t.Violated()) << t.checker_.status().message();
  EXPECT_EQ(t.checker_.failed(), 1);

  Stream kept;
  const RequestEvent r2 = kept.Arrive(2);
  kept.Call({Launch(7, 0, 5000), RouteDecision{2, 7}});
  const RequestEvent s2[] = {r2};
  kept.checker_.OnLoadFinished(LoadFinished{7, false, "disk", s2});
  kept.Call({FailDecision{2, Reason::kLoadFailed, "disk"}});  // not retired
  EXPECT_TRUE(kept.Violated());

  Stream lost;
  lost.Arrive(3);
  lost.Call({Launch(7, 0, 5000), RouteDecision{3, 7}});
  lost.checker_.OnLoadFinished(LoadFinished{7, false, "disk", {}});  // request 3 not handed back
  EXPECT_TRUE(lost.Violated());
}

TEST(AnswerCheckerTest, FailingANewRequestOrLeavingOneOpenIsCaught) {
  Stream t;
  t.Arrive(1);
  t.Call({FailDecision{1, Reason::kStageFailed, ""}});  // it never ran: a rejection, not a failure
  EXPECT_TRUE(t.Violated());
  Stream open;
  open.Arrive(2);
  open.Call({Launch(7, 0, 5000), RouteDecision{2, 7}});
  EXPECT_FALSE(open.checker_.Finish().ok());  // never completed
}

TEST(AnswerCheckerTest, ALostSliceFreesItsMemoryAndHandsBackItsRequests) {
  Stream t;
  const RequestEvent r = t.Arrive(1);
  t.Call({Launch(7, 1, 15000), RouteDecision{1, 7}});
  const RequestEvent stranded[] = {r};
  t.checker_.OnSliceLost(SliceLost{1, Reason::kWorkerLost, "killed", stranded});
  t.Call({RetireDecision{7}, Launch(8, 1, 15000), RouteDecision{1, 8}});  // the memory is free at once
  EXPECT_FALSE(t.Violated()) << t.checker_.status().message();
}

}  // namespace
}  // namespace fluidfaas::policy
