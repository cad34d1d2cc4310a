// The controller alone, deterministically: a ManualClock, no control thread (manual_loop: RunPending runs what
// was posted), and a FakeMechanism in place of worker processes whose events the test sends when it chooses.
#include "daemon/controller.h"

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "api/event_loop.h"
#include "daemon/fake_mechanism.h"
#include "gpu/node_config.h"

namespace fluidfaas::daemon {
namespace {

class ControllerTest : public ::testing::Test {
 protected:
  // `loop`: the controller's turns run there (ControllerOptions::loop); none: the test runs them (RunPending).
  void Start(Duration cold_start_wait = Seconds(30), TaskLoop* loop = nullptr) {
    ControllerOptions o;
    auto config = gpu::LoadNodeConfig("");
    ASSERT_TRUE(config.ok());
    config->discovery = gpu::DiscoveryMode::kEmulated;
    auto node = gpu::EmulateNode(*config);
    ASSERT_TRUE(node.ok());
    o.node = *node;
    o.clock = &clock_;
    o.manual_loop = loop == nullptr;
    o.loop = loop;
    o.cold_start_wait = cold_start_wait;
    o.mechanism = [this](runtime::EventSink sink) -> Result<std::unique_ptr<runtime::NodeMechanism>> {
      auto fake = std::make_unique<testing::FakeMechanism>(std::move(sink), clock_);
      fake_ = fake.get();
      return std::unique_ptr<runtime::NodeMechanism>(std::move(fake));
    };
    auto c = Controller::Start(o, {FunctionConfig{"bert", "bert-base"}});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    controller_ = std::move(*c);
    info_ = *controller_->Function("bert");
  }
  // One request with `timeout_ms`; its result lands in `out` when the controller answers.
  void Send(std::optional<InferResult>& out, std::optional<double> timeout_ms = std::nullopt) {
    size_t elems = 1;
    for (int64_t d : info_.input_shape) elems *= static_cast<size_t>(d);
    controller_->Infer("bert", std::vector<std::byte>(elems * 4), timeout_ms, [&out](InferResult r) {
      EXPECT_FALSE(out.has_value()) << "a request was answered twice";
      out = std::move(r);
    });
  }
  size_t RowBytes() const {
    size_t elems = 1;
    for (int64_t d : info_.output_shape) elems *= static_cast<size_t>(d);
    return elems * 4;
  }

  ManualClock clock_{AtMicros(1'000'000)};
  testing::FakeMechanism* fake_ = nullptr;
  std::unique_ptr<Controller> controller_;
  FunctionInfo info_;
};

TEST_F(ControllerTest, ANewcomerWaitsForTheColdStartThenIsServedFromTheBatch) {
  Start();
  std::optional<InferResult> r;
  Send(r);
  controller_->RunPending();
  ASSERT_EQ(fake_->launched.size(), 1u);  // a cold start, and the request waits for it
  EXPECT_FALSE(r);
  EXPECT_TRUE(fake_->submitted.empty());
  clock_.AdvanceBy(Seconds(2));
  fake_->FinishLoad(fake_->launched[0].instance);
  controller_->RunPending();
  ASSERT_EQ(fake_->submitted.size(), 1u);
  EXPECT_EQ(fake_->submitted[0].requests.size(), 1u);
  EXPECT_FALSE(r);
  const TimePoint started = clock_.Now();
  clock_.AdvanceBy(Millis(3));
  fake_->Complete(fake_->submitted[0], started, fake_->launched[0].stages.size(), RowBytes());
  controller_->RunPending();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->outcome, Outcome::kCompleted) << r->code << " " << r->detail;
  EXPECT_EQ(r->output.size(), RowBytes());
  EXPECT_DOUBLE_EQ(r->total_ms, 2003.0);  // on the manual clock, to the microsecond
  EXPECT_DOUBLE_EQ(r->compute_ms, 3.0);
  EXPECT_EQ(controller_->open_requests(), 0u);
}

TEST_F(ControllerTest, AnExplicitDeadlineOnlyAWarmInstanceCouldMeetIsTurnedAwayAtOnce) {
  Start();
  std::optional<InferResult> r;
  Send(r, 1.0);
  controller_->RunPending();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->outcome, Outcome::kRejected);
  EXPECT_EQ(r->code, "deadline_unreachable");
}

TEST_F(ControllerTest, WithoutTheWaitANewcomerIsTurnedAwayToo) {
  Start(Duration{0});
  std::optional<InferResult> r;
  Send(r);
  controller_->RunPending();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, "deadline_unreachable");
}

TEST_F(ControllerTest, ShutdownAnswersRequestsQueuedAndNotYetArrived) {
  Start();
  std::optional<InferResult> queued, posted;
  Send(queued);
  controller_->RunPending();  // arrived: waiting for the cold start
  Send(posted);               // posted, not yet run by the loop
  controller_->Shutdown();
  ASSERT_TRUE(queued);
  ASSERT_TRUE(posted);
  EXPECT_EQ(queued->code, "shutdown");
  EXPECT_EQ(posted->code, "shutdown");
  EXPECT_EQ(controller_->open_requests(), 0u);
  std::optional<InferResult> late;
  Send(late);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->code, "shutdown");
}

TEST_F(ControllerTest, AFailedLoadHandsItsRequestsBackAndEachIsAnsweredOnce) {
  Start();
  std::optional<InferResult> r;
  Send(r);
  controller_->RunPending();
  ASSERT_EQ(fake_->launched.size(), 1u);
  clock_.AdvanceBy(Seconds(2));
  fake_->FinishLoad(fake_->launched[0].instance, /*ok=*/false);
  controller_->RunPending();
  // Either relaunched (the request waits on) or answered with the load's failure; never lost, never twice.
  for (int turn = 0; turn < 10 && !r; ++turn) {
    if (fake_->launched.size() > 1 && fake_->submitted.empty()) {
      clock_.AdvanceBy(Seconds(2));
      fake_->FinishLoad(fake_->launched.back().instance);
    }
    if (!fake_->submitted.empty()) {
      const TimePoint started = clock_.Now();
      clock_.AdvanceBy(Millis(3));
      fake_->Complete(fake_->submitted.back(), started, fake_->launched.back().stages.size(), RowBytes());
    }
    controller_->RunPending();
  }
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->outcome == Outcome::kCompleted || r->code == "load_failed") << r->code;
  EXPECT_EQ(controller_->open_requests(), 0u);
}

// The same controller on an event loop (ControllerOptions::loop, as `fluidfaas serve` runs it on the edge's): its
// turns, the fake runtime's events and the clock all live on the loop's thread, which the test enters with OnLoop.
class ControllerOnLoopTest : public ControllerTest {
 protected:
  void SetUp() override {
    loop_.Start();
    Start(Seconds(30), &loop_);
  }
  void TearDown() override {
    controller_.reset();  // before the loop stops: its shutdown cuts the loop's link on the loop
    loop_.Stop();
  }
  // Runs `f` on the loop after everything posted so far (the controller's turns included), and waits for it and
  // for what it posted in turn (a fake runtime event is posted to the loop: the wait ends after it has run, and
  // after a few hops more for what that posts). Signalling from `f` itself raced: a task the test posted next
  // could run before the event `f` had posted.
  template <typename F>
  void OnLoop(F f) {
    std::promise<void> done;
    std::function<void(int)> hop = [&](int left) {
      if (left == 1) {
        (void)loop_.Post([&done] { done.set_value(); });  // the last task owns nothing on this stack but `done`
        return;
      }
      (void)loop_.Post([&hop, left] { hop(left - 1); });
    };
    ASSERT_TRUE(loop_.Post([&] {
      f();
      hop(4);
    }));
    done.get_future().wait();
  }

  api::EventLoop loop_;
};

TEST_F(ControllerOnLoopTest, ARequestIsDecidedAndAnsweredOnTheLoopThread) {
  // What the answer writes outlives the test body: a failed assertion returns early, and the controller's
  // shutdown (TearDown) then answers the request.
  struct Answer {
    std::optional<InferResult> result;
    std::thread::id on;
  };
  const auto answer = std::make_shared<Answer>();
  std::optional<InferResult>& r = answer->result;
  std::thread::id loop_thread;
  size_t elems = 1;
  for (int64_t d : info_.input_shape) elems *= static_cast<size_t>(d);
  controller_->Infer("bert", std::vector<std::byte>(elems * 4), std::nullopt, [answer](InferResult result) {
    answer->on = std::this_thread::get_id();
    answer->result = std::move(result);
  });
  OnLoop([&] {
    loop_thread = std::this_thread::get_id();
    ASSERT_EQ(fake_->launched.size(), 1u);  // the turn ran before this: a cold start, the request waiting for it
    EXPECT_FALSE(r);
    clock_.AdvanceBy(Seconds(2));
    fake_->FinishLoad(fake_->launched[0].instance);
  });
  size_t output_elems = 1;
  for (int64_t d : info_.output_shape) output_elems *= static_cast<size_t>(d);
  OnLoop([&] {
    ASSERT_EQ(fake_->submitted.size(), 1u);
    const TimePoint started = clock_.Now();
    clock_.AdvanceBy(Millis(3));
    fake_->Complete(fake_->submitted[0], started, fake_->launched[0].stages.size(), output_elems * 4);
  });
  OnLoop([&] {
    // A call that waits for the control thread, made on it (an HTTP handler on the shared loop): run in place.
    const nlohmann::json node = controller_->NodeJson();
    EXPECT_EQ(node["instances"].size(), 1u);
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->outcome, Outcome::kCompleted) << r->code << " " << r->detail;
  EXPECT_DOUBLE_EQ(r->total_ms, 2003.0);
  EXPECT_EQ(answer->on, loop_thread);
  EXPECT_NE(loop_thread, std::this_thread::get_id());
}

TEST_F(ControllerOnLoopTest, ShutdownAnswersWhatIsOpenAndNoTurnRunsAfterIt) {
  std::optional<InferResult> waiting;
  size_t elems = 1;
  for (int64_t d : info_.input_shape) elems *= static_cast<size_t>(d);
  controller_->Infer("bert", std::vector<std::byte>(elems * 4), std::nullopt,
                     [&](InferResult result) { waiting = std::move(result); });
  OnLoop([&] { ASSERT_EQ(fake_->launched.size(), 1u); });  // arrived: waiting for its cold start
  controller_->Shutdown();
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->code, "shutdown");
  // A load finishing now reaches no turn: nothing is submitted, nothing answered twice.
  OnLoop([&] { fake_->FinishLoad(fake_->launched[0].instance); });
  OnLoop([&] { EXPECT_TRUE(fake_->submitted.empty()); });
  EXPECT_EQ(controller_->open_requests(), 0u);
  // The controller gone while its timer is still set on the loop (a turn due within 20 ms): the timer finds the
  // link cut and touches nothing (under ASan, a turn run on the freed controller is a use after free).
  controller_.reset();
  fake_ = nullptr;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  OnLoop([] {});  // the loop runs on
}

}  // namespace
}  // namespace fluidfaas::daemon
