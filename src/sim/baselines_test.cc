// The four policies on the paper preset: each keeps its own rules, every request ends once, runs repeat; and the
// mechanisms the baselines need (batching, MPS lanes), the ESG search and the INFless configuration rule.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "policy/esg_scheduler.h"
#include "policy/fluidfaas_scheduler.h"
#include "policy/infless_scheduler.h"
#include "sim/experiment.h"

namespace fluidfaas::sim {
namespace {

using policy::Decision;

std::unique_ptr<Preset> SmallPreset() {
  return std::move(MakePreset("paper", {.gpus = 2})).value();
}

// Forwards to a policy and keeps every launch it decides.
class Recording final : public policy::Scheduler {
 public:
  explicit Recording(std::unique_ptr<policy::Scheduler> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  void OnRequest(const policy::RequestEvent& r, TimePoint now, std::vector<Decision>& out) override {
    inner_->OnRequest(r, now, out);
    Keep(out);
  }
  void OnStageFinished(const policy::StageFinished& s, TimePoint now, std::vector<Decision>& out) override {
    inner_->OnStageFinished(s, now, out);
    Keep(out);
  }
  void OnStageFailed(const policy::StageFailed& s, TimePoint now, std::vector<Decision>& out) override {
    inner_->OnStageFailed(s, now, out);
    Keep(out);
  }
  void OnLoadFinished(const policy::LoadFinished& l, TimePoint now, std::vector<Decision>& out) override {
    inner_->OnLoadFinished(l, now, out);
    Keep(out);
  }
  void OnSliceLost(const policy::SliceLost& l, TimePoint now, std::vector<Decision>& out) override {
    inner_->OnSliceLost(l, now, out);
    Keep(out);
  }
  void OnReleased(const policy::Released& r, TimePoint now, std::vector<Decision>& out) override {
    inner_->OnReleased(r, now, out);
    Keep(out);
  }
  Status Deploy(policy::ServedFunction f) override { return inner_->Deploy(std::move(f)); }
  Status Remove(policy::FunctionId f, TimePoint now, std::vector<Decision>& out) override {
    return inner_->Remove(f, now, out);
  }
  Status Invariants() const override { return inner_->Invariants(); }
  void OnTick(TimePoint now, std::vector<Decision>& out) override {
    inner_->OnTick(now, out);
    Keep(out);
  }
  void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) override {
    inner_->OnSliceFreed(slice, now, out);
    Keep(out);
  }
  std::vector<policy::LaunchDecision> launches;
  const policy::Scheduler& inner() const { return *inner_; }

 private:
  void Keep(const std::vector<Decision>& out) {
    for (const Decision& d : out) {
      if (const auto* l = std::get_if<policy::LaunchDecision>(&d)) launches.push_back(*l);
    }
  }
  std::unique_ptr<policy::Scheduler> inner_;
};

std::vector<Arrival> Load(const Preset& p, double share, Duration duration, uint64_t seed) {
  return GenerateWorkload({.rate_rps = share * p.capacity_rps,
                           .cv = p.cv,
                           .functions = static_cast<uint32_t>(p.functions.size()),
                           .zipf_s = 1.0,
                           .duration = duration,
                           .seed = seed});
}

struct PolicyRun {
  SimResult result;  // errors: answer-rule violations and broken invariants included
  std::vector<policy::LaunchDecision> launches;
};

PolicyRun RunPolicy(const std::string& policy, const Preset& p, const std::vector<Arrival>& arrivals,
                    const SimOptions& options = {}) {
  Recording scheduler(std::move(MakeScheduler(policy, p)).value());
  SimResult r = Simulate(ClusterFor(policy, p), p.functions, arrivals, scheduler, options);
  return {std::move(r), std::move(scheduler.launches)};
}

TEST(BaselinesTest, EveryPolicyEndsEveryRequestOnceAndRepeatsItself) {
  const auto p = SmallPreset();
  const auto arrivals = Load(*p, 0.6, Seconds(90), 4);
  for (const std::string& policy : PolicyNames()) {
    SCOPED_TRACE(policy);
    const PolicyRun a = RunPolicy(policy, *p, arrivals);
    const PolicyRun b = RunPolicy(policy, *p, arrivals);
    EXPECT_TRUE(a.result.errors.empty()) << a.result.errors.front();
    ASSERT_EQ(a.result.requests.size(), arrivals.size());
    int64_t hits = 0;
    for (size_t i = 0; i < arrivals.size(); ++i) {
      const RequestRecord& q = a.result.requests[i];
      ASSERT_NE(q.outcome, Outcome::kPending) << "request " << i << " never ended";
      if (q.outcome != Outcome::kRejected) {
        EXPECT_EQ(q.finished - q.arrival, q.queue + q.load + q.compute + q.transfer);
        EXPECT_EQ(q.outcome == Outcome::kHit, q.finished <= q.deadline);
      }
      hits += q.outcome == Outcome::kHit;
      ASSERT_EQ(q.outcome, b.result.requests[i].outcome);
      ASSERT_EQ(q.finished, b.result.requests[i].finished);
    }
    EXPECT_EQ(a.result.events, b.result.events);
    // The busy timeline adds up to each slice's busy time (to a microsecond per bucket for MPS shares).
    for (size_t sl = 0; sl < a.result.slice_busy.size(); ++sl) {
      Duration sum{0};
      for (Duration d : a.result.slice_timeline[sl]) {
        EXPECT_LE(d, a.result.timeline_bucket);
        sum += d;
      }
      EXPECT_LE(std::abs((sum - a.result.slice_busy[sl]).count()),
                static_cast<int64_t>(a.result.slice_timeline[sl].size()) + 1000)
          << "slice " << sl;
    }
    EXPECT_GT(hits, static_cast<int64_t>(arrivals.size()) / 2);
    EXPECT_FALSE(a.launches.empty());
  }
}

TEST(BaselinesTest, EachPolicyKeepsItsOwnRules) {
  const auto p = SmallPreset();
  const auto arrivals = Load(*p, 0.8, Seconds(120), 9);
  for (const std::string policy : {"esg", "exclusive"}) {
    const PolicyRun r = RunPolicy(policy, *p, arrivals);
    EXPECT_EQ(r.result.pipelines, 0) << policy;
    for (const auto& l : r.launches) {
      ASSERT_EQ(l.stages.size(), 1u) << policy << " pipelined";
      EXPECT_EQ(l.stages[0].mps_share, -1) << policy << " used MPS";
      EXPECT_LT(l.stages[0].slice, p->slices.size());
    }
  }
  const PolicyRun infless = RunPolicy("infless", *p, arrivals);
  for (const auto& l : infless.launches) {
    ASSERT_EQ(l.stages.size(), 1u) << "INFless pipelined";
    EXPECT_GE(l.stages[0].mps_share, 0) << "INFless placed on a MIG slice";
    EXPECT_LT(l.stages[0].slice, p->whole_gpus.size());
  }
  EXPECT_EQ(ClusterFor("infless", *p).size(), 2u);  // two whole GPUs, MIG off
  const PolicyRun fluid = RunPolicy("fluidfaas", *p, arrivals);
  for (const auto& l : fluid.launches) {
    for (const auto& st : l.stages) EXPECT_EQ(st.mps_share, -1) << "FluidFaaS used MPS";
  }
}

TEST(BaselinesTest, OnTheFragmentedPresetOnlyFluidFaaSPipelinesServeTheLargestModel) {
  const auto p = std::move(MakePreset("fragmented", {.gpus = 2})).value();
  const auto arrivals = Load(*p, 0.2, Seconds(120), 5);
  const uint32_t llama13 = 6;
  ASSERT_EQ(p->functions[llama13].spec->name, "llama2-13b");
  const auto hits_of = [&](const SimResult& r) {
    int64_t n = 0;
    for (const RequestRecord& q : r.requests) n += q.function == llama13 && q.outcome == Outcome::kHit;
    return n;
  };
  const PolicyRun fluid = RunPolicy("fluidfaas", *p, arrivals);
  EXPECT_GE(fluid.result.pipelines, 1);
  EXPECT_GT(hits_of(fluid.result), 0);
  for (const std::string policy : {"esg", "exclusive"})
    EXPECT_EQ(hits_of(RunPolicy(policy, *p, arrivals).result), 0) << policy;
}

// A failed load retires the instance, answers the request that waited on it (here too late for another
// instance: failed with load_failed), and frees its place once the release is acknowledged: the next request
// starts another instance there.
TEST(BaselinesTest, AFailedLoadRetiresTheInstanceAnswersItsRequestAndFreesItsPlace) {
  const auto p = SmallPreset();
  for (const std::string& policy : PolicyNames()) {
    SCOPED_TRACE(policy);
    std::unique_ptr<policy::Scheduler> s = std::move(MakeScheduler(policy, *p)).value();
    const auto launch_of = [](const std::vector<Decision>& out) -> const policy::LaunchDecision* {
      for (const Decision& d : out) {
        if (const auto* l = std::get_if<policy::LaunchDecision>(&d)) return l;
      }
      return nullptr;
    };
    std::vector<Decision> out;
    const TimePoint t0 = TimePoint{} + Seconds(1);
    const policy::RequestEvent first_request{1, 0, t0, t0 + Seconds(2)};
    s->OnRequest(first_request, t0, out);
    const policy::LaunchDecision* first = launch_of(out);
    ASSERT_NE(first, nullptr);
    const policy::InstanceId failed = first->instance;
    const policy::StagePlacement place = first->stages.at(0);
    bool routed = false;
    for (const Decision& d : out) routed = routed || std::holds_alternative<policy::RouteDecision>(d);
    // The load fails after the request's deadline: nothing can serve it any more.
    out.clear();
    std::vector<policy::RequestEvent> stranded;
    if (routed) stranded.push_back(first_request);
    s->OnLoadFinished(policy::LoadFinished{failed, false, "test", stranded}, t0 + Seconds(3), out);
    bool retired = false;
    int failures = 0;
    for (const Decision& d : out) {
      if (const auto* r = std::get_if<policy::RetireDecision>(&d)) retired = retired || r->instance == failed;
      if (const auto* f = std::get_if<policy::FailDecision>(&d)) {
        ++failures;
        EXPECT_EQ(f->request, 1u);
        EXPECT_EQ(f->code, policy::Reason::kLoadFailed);
      }
    }
    EXPECT_TRUE(retired);
    EXPECT_EQ(failures, routed ? 1 : 0);
    // Until the release is acknowledged the place is not free; then it is.
    out.clear();
    s->OnReleased(policy::Released{failed, place.slice}, t0 + Seconds(3), out);
    out.clear();
    const TimePoint t1 = t0 + Seconds(4);
    s->OnRequest(policy::RequestEvent{2, 0, t1, t1 + Seconds(10)}, t1, out);
    const policy::LaunchDecision* again = launch_of(out);
    ASSERT_NE(again, nullptr);
    EXPECT_NE(again->instance, failed);
    EXPECT_EQ(again->stages.at(0).slice, place.slice);  // the same smallest or best-fit place, free again
    EXPECT_TRUE(s->Invariants().ok()) << s->Invariants().message();
  }
}

// Under injected faults, execution noise and slices taken by another tenant, every policy answers every request
// exactly once (the simulator's answer checker and the policies' invariants run on every call), the books add
// up, and the same seed repeats the run bit for bit.
TEST(FaultsTest, EveryPolicyAnswersEveryRequestOnceUnderFaultsNoiseAndTakenSlices) {
  const auto p = SmallPreset();
  const auto arrivals = Load(*p, 0.6, Seconds(120), 7);
  SimOptions o;
  o.seed = 3;
  o.faults = Faults{.load = 0.2, .stage = 0.01, .worker = 0.02};
  o.exec_noise_cv = 0.3;
  o.take = SliceTaking{Seconds(20), Seconds(15)};
  for (const std::string& policy : PolicyNames()) {
    SCOPED_TRACE(policy);
    const PolicyRun a = RunPolicy(policy, *p, arrivals, o);
    const PolicyRun b = RunPolicy(policy, *p, arrivals, o);
    EXPECT_TRUE(a.result.errors.empty()) << a.result.errors.front();
    const RunSummary s = Summarize(a.result, 0, p->functions);
    EXPECT_EQ(s.requests, s.hits + s.late + s.rejected + s.failed);
    EXPECT_GT(s.failed, 0);
    EXPECT_GT(s.hits, s.requests / 2);
    EXPECT_GT(a.result.load_failures + a.result.stage_failures + a.result.workers_lost, 0);
    EXPECT_GT(a.result.slices_taken, 0);
    std::map<policy::Reason, int64_t> failed_by_code;
    for (const auto& [key, end] : a.result.ends) {
      if (std::get<1>(key) == Outcome::kFailed) failed_by_code[std::get<2>(key)] += end.count;
    }
    EXPECT_GT(failed_by_code[policy::Reason::kStageFailed], 0);
    // Requests a lost worker or a taken slice stranded (running batches among them) were routed again or failed
    // with that code; each still ended once.
    int64_t moved = 0;
    for (const RequestRecord& q : a.result.requests) moved += q.routes > 1;
    EXPECT_GT(moved + failed_by_code[policy::Reason::kWorkerLost] + failed_by_code[policy::Reason::kSliceTaken], 0);
    for (size_t i = 0; i < arrivals.size(); ++i) {
      const RequestRecord& q = a.result.requests[i];
      ASSERT_NE(q.outcome, Outcome::kPending) << i;
      ASSERT_EQ(q.outcome, b.result.requests[i].outcome) << i;
      ASSERT_EQ(q.finished, b.result.requests[i].finished) << i;
    }
  }
}

// Every load fails: nothing completes, and every request is still answered once, rejected or failed.
TEST(FaultsTest, WhenEveryLoadFailsEveryRequestIsStillAnsweredOnce) {
  const auto p = SmallPreset();
  const auto arrivals = Load(*p, 0.2, Seconds(30), 2);
  SimOptions o;
  o.faults.load = 1.0;
  for (const std::string& policy : PolicyNames()) {
    SCOPED_TRACE(policy);
    const PolicyRun r = RunPolicy(policy, *p, arrivals, o);
    EXPECT_TRUE(r.result.errors.empty()) << r.result.errors.front();
    int64_t load_failed = 0;
    for (const RequestRecord& q : r.result.requests) {
      ASSERT_TRUE(q.outcome == Outcome::kRejected || q.outcome == Outcome::kFailed);
      load_failed += q.outcome == Outcome::kFailed && q.code == policy::Reason::kLoadFailed;
    }
    EXPECT_GT(load_failed, 0);
  }
}

TEST(FactoryTest, MissingCostTablesAreErrorsNamingTheFunction) {
  const auto p = SmallPreset();
  std::vector<policy::ServedFunction> no_batches = p->served;
  no_batches[2].batched = nullptr;
  auto esg = policy::MakeScheduler("esg", p->slices, no_batches);
  ASSERT_FALSE(esg.ok());
  EXPECT_NE(esg.status().message().find("bert-base"), std::string::npos) << esg.status().message();
  std::vector<policy::ServedFunction> no_mps = p->served;
  no_mps[0].mps = nullptr;
  EXPECT_FALSE(policy::MakeScheduler("infless", p->whole_gpus, no_mps).ok());
  EXPECT_TRUE(policy::MakeScheduler("fluidfaas", p->slices, no_batches).ok());  // batching is optional there
  EXPECT_FALSE(policy::MakeScheduler("nonesuch", p->slices, p->served).ok());
}

// The alternative a user would pick instead of FluidFaaS: exclusive slices with a short keep-alive. Options are
// checked like every input from outside.
TEST(FactoryTest, PolicySpecsTakeOptions) {
  const auto p = SmallPreset();
  EXPECT_TRUE(policy::MakeScheduler("exclusive:keep_alive=60s", p->slices, p->served).ok());
  EXPECT_TRUE(policy::MakeScheduler("fluidfaas:keep_alive=5m:idle_evict=500ms", p->slices, p->served).ok());
  EXPECT_TRUE(policy::MakeScheduler("esg:keep_alive=90", p->slices, p->served).ok());
  EXPECT_TRUE(policy::MakeScheduler("fluidfaas:pipelines=off:time_sharing=off:migration=on:urgency=off:dwell=10s",
                                    p->slices, p->served)
                  .ok());
  EXPECT_TRUE(
      policy::MakeScheduler("fluidfaas:displace_idle=30s:contest=5s:displacement=off", p->slices, p->served).ok());
  EXPECT_TRUE(policy::MakeScheduler("infless:margin=0", p->whole_gpus, p->served).ok());
  EXPECT_EQ(policy::PolicyName("exclusive:keep_alive=60s"), "exclusive");
  EXPECT_TRUE(policy::UsesWholeGpus("infless"));
  for (const char* bad :
       {"exclusive:keep_alive=0s", "exclusive:keep_alive=inf", "exclusive:keep_alive=2d", "exclusive:keep_live=60s",
        "exclusive:keep_alive", "exclusive:keep_alive=1s:keep_alive=2s", "infless:keep_alive=60s",
        "fluidfaas:pipelines=no", "fluidfaas:urgency=", "exclusive:pipelines=off", "infless:margin=-1",
        "infless:margin=nan", "fluidfaas:displacement=maybe"}) {
    EXPECT_FALSE(policy::MakeScheduler(bad, policy::UsesWholeGpus(bad) ? p->whole_gpus : p->slices, p->served).ok())
        << bad;
  }
  // A 60 s keep-alive retires idle instances that the 10-minute default keeps.
  const auto arrivals = Load(*p, 0.2, Seconds(60), 3);
  const auto retired_by = [&](const std::string& spec) {
    auto s = std::move(MakeScheduler(spec, *p)).value();
    SimOptions o;
    o.drain = Seconds(200);
    const SimResult r = Simulate(ClusterFor(spec, *p), p->functions, arrivals, *s, o);
    EXPECT_TRUE(r.errors.empty()) << r.errors.front();
    Duration active{0};
    for (Duration d : r.slice_active) active += d;
    return active;
  };
  EXPECT_LT(retired_by("exclusive:keep_alive=60s"), retired_by("exclusive"));
}

// A function removed at run time: every policy refuses its new requests (unknown_function) and retires its idle
// instances; deploying it again works.
TEST(BaselinesTest, EveryPolicyRemovesAndRedeploysAFunction) {
  const auto p = SmallPreset();
  for (const std::string& policy : PolicyNames()) {
    SCOPED_TRACE(policy);
    std::unique_ptr<policy::Scheduler> s = std::move(MakeScheduler(policy, *p)).value();
    std::vector<Decision> out;
    const TimePoint t0 = TimePoint{} + Seconds(1);
    s->OnRequest(policy::RequestEvent{1, 0, t0, t0 + Seconds(10)}, t0, out);
    policy::InstanceId launched = 0;
    for (const Decision& d : out) {
      if (const auto* l = std::get_if<policy::LaunchDecision>(&d)) launched = l->instance;
    }
    ASSERT_NE(launched, 0u);
    out.clear();
    s->OnLoadFinished(policy::LoadFinished{launched, true}, t0 + Seconds(3), out);
    const policy::RequestId batch[] = {1};
    s->OnStageFinished(policy::StageFinished{launched, 0, 1, true, batch, t0 + Seconds(3), t0 + Seconds(3)},
                       t0 + Seconds(3), out);
    out.clear();
    ASSERT_TRUE(s->Remove(0, t0 + Seconds(4), out).ok());
    bool retired = false;
    for (const Decision& d : out) {
      if (const auto* r = std::get_if<policy::RetireDecision>(&d)) retired = retired || r->instance == launched;
    }
    EXPECT_TRUE(retired);
    EXPECT_EQ(s->Remove(0, t0 + Seconds(4), out).code(), StatusCode::kNotFound);
    out.clear();
    s->OnRequest(policy::RequestEvent{2, 0, t0 + Seconds(5), t0 + Seconds(15)}, t0 + Seconds(5), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(std::get<policy::RejectDecision>(out[0]).code, policy::Reason::kUnknownFunction);
    EXPECT_TRUE(s->Deploy(p->served[0]).ok());
    EXPECT_TRUE(s->Invariants().ok()) << s->Invariants().message();
  }
}

// Launches one instance with the given placement and batching on the first request, routes everything to it.
class OneInstance final : public policy::Scheduler {
 public:
  OneInstance(std::vector<policy::StagePlacement> stages, int max_batch, Duration timeout)
      : stages_(std::move(stages)), max_batch_(max_batch), timeout_(timeout) {}
  std::string_view name() const override { return "one"; }
  void OnRequest(const policy::RequestEvent& r, TimePoint, std::vector<Decision>& out) override {
    if (!launched_) {
      for (size_t i = 0; i < stages_.size(); ++i) {
        policy::LaunchDecision l{i + 1, 0, {stages_[i]}, true, Duration{0}, Duration{0}};
        l.max_batch = max_batch_;
        l.batch_timeout = timeout_;
        out.push_back(l);
      }
      launched_ = true;
    }
    out.push_back(policy::RouteDecision{r.id, 1 + r.id % stages_.size()});
  }
  void OnStageFinished(const policy::StageFinished&, TimePoint, std::vector<Decision>&) override {}
  void OnStageFailed(const policy::StageFailed&, TimePoint, std::vector<Decision>&) override {}
  void OnLoadFinished(const policy::LoadFinished&, TimePoint, std::vector<Decision>&) override {}
  void OnSliceLost(const policy::SliceLost&, TimePoint, std::vector<Decision>&) override {}
  void OnReleased(const policy::Released&, TimePoint, std::vector<Decision>&) override {}
  void OnTick(TimePoint, std::vector<Decision>&) override {}
  void OnSliceFreed(size_t, TimePoint, std::vector<Decision>&) override {}
  Status Deploy(policy::ServedFunction) override { return Status::Ok(); }
  Status Remove(policy::FunctionId, TimePoint, std::vector<Decision>&) override { return Status::Ok(); }
  Status Invariants() const override { return Status::Ok(); }

 private:
  std::vector<policy::StagePlacement> stages_;
  int max_batch_;
  Duration timeout_;
  bool launched_ = false;
};

TEST(SimulatorBatchingTest, QueuedRequestsRunAsOneBatchAndALoneOneWaitsForTheTimeout) {
  const auto p = SmallPreset();
  const SimFunction& resnet = p->functions[0];
  const size_t last = resnet.spec->blocks.size() - 1;
  const size_t slice = 2;  // 0:4g.40gb
  OneInstance one({policy::StagePlacement{slice, 0, last, 0}}, 4, Millis(50));
  // Four at once, then one alone a second later.
  std::vector<Arrival> arrivals(4, Arrival{TimePoint{} + Millis(100), 0});
  arrivals.push_back(Arrival{TimePoint{} + Seconds(1), 0});
  const SimResult r = Simulate(p->slices, p->functions, arrivals, one);
  ASSERT_TRUE(r.errors.empty()) << r.errors.front();
  const int k = resnet.batched->KindIndex(p->slices[slice].kind);
  const Duration batch4 = MillisF(resnet.batched->WholeMs(k, 4));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.requests[i].compute, batch4) << i;
    EXPECT_EQ(r.requests[i].queue, Duration{0}) << i;  // the batch was full at once
    EXPECT_EQ(r.requests[i].finished, r.requests[0].finished);
  }
  EXPECT_EQ(r.requests[4].queue, Millis(50));  // waited for the timeout, alone
  EXPECT_EQ(r.requests[4].compute, MillisF(resnet.batched->WholeMs(k, 1)));
  EXPECT_LT(resnet.batched->WholeMs(k, 4), 4 * resnet.batched->WholeMs(k, 1));  // batching pays
}

TEST(SimulatorMpsTest, SharesRunConcurrentlyAndSlowEachOtherDown) {
  const auto p = SmallPreset();
  const SimFunction& resnet = p->functions[0];
  const size_t last = resnet.spec->blocks.size() - 1;
  const size_t half = p->mps_shares->AtLeast(0.5);
  ASSERT_EQ(p->mps_shares->percent(half), 50);
  policy::StagePlacement a{0, 0, last, 0};
  a.mps_share = static_cast<int>(half);
  policy::StagePlacement b = a;
  OneInstance two({a, b}, 1, Duration{0});  // two instances on GPU 0, 50% each; requests alternate
  const std::vector<Arrival> arrivals = {Arrival{TimePoint{} + Millis(10), 0}, Arrival{TimePoint{} + Millis(10), 0}};
  const SimResult r = Simulate(p->whole_gpus, p->functions, arrivals, two);
  ASSERT_TRUE(r.errors.empty()) << r.errors.front();
  const double alone = resnet.mps->WholeMs(static_cast<int>(half), 1);
  // Both start at once (no queue: each has its own lane); the second starts with the rest of the GPU busy.
  EXPECT_EQ(r.requests[0].queue, Duration{0});
  EXPECT_EQ(r.requests[1].queue, Duration{0});
  EXPECT_EQ(r.requests[0].compute, MillisF(alone));
  EXPECT_EQ(r.requests[1].compute, MillisF(alone * 1.3));
  // GPU busy time counts each lane by its share.
  EXPECT_EQ(r.slice_busy[0], Duration(static_cast<int64_t>(MillisF(alone).count() * 0.5)) +
                                 Duration(static_cast<int64_t>(MillisF(alone * 1.3).count() * 0.5)));
}

// FluidFaaS batches opportunistically: requests queued back to back at an instance run together, and the
// scheduler books them that way, so a burst it would have to reject one by one is served within the SLO.
TEST(FluidFaaSBatchingTest, ABurstRunsAsOneBatchAndMeetsItsDeadlines) {
  const auto p = SmallPreset();
  const std::vector<policy::ServedFunction>& served = p->served;
  std::vector<Arrival> arrivals = {Arrival{TimePoint{}, 0}};  // starts an instance of resnet50
  for (int i = 0; i < 5; ++i) arrivals.push_back(Arrival{TimePoint{} + Seconds(10), 0});
  const auto hits = [](const SimResult& r) {
    int n = 0;
    for (size_t i = 1; i < r.requests.size(); ++i) n += r.requests[i].outcome == Outcome::kHit;
    return n;
  };

  auto batching = std::move(policy::FluidFaaSScheduler::Create(p->slices, served)).value();
  const SimResult r = Simulate(p->slices, p->functions, arrivals, *batching);
  ASSERT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_EQ(hits(r), 5);
  // The first of the burst runs at once, alone; the second waits at the pipeline's entry, alone (one batch per
  // stage in flight and one waiting: carrier/carrier.h); the other three queue behind them and run as one batch.
  EXPECT_EQ(r.requests[1].queue, Duration{0});
  EXPECT_EQ(r.requests[2].compute, r.requests[1].compute);
  EXPECT_EQ(r.requests[2].queue, r.requests[1].compute);
  for (size_t i = 4; i < r.requests.size(); ++i) EXPECT_EQ(r.requests[i].finished, r.requests[3].finished);
  EXPECT_GT(r.requests[3].compute, r.requests[1].compute);
  EXPECT_LT(r.requests[3].compute, 3 * r.requests[1].compute);

  policy::FluidFaaSOptions one_by_one;
  one_by_one.max_batch = 1;
  auto serial = std::move(policy::FluidFaaSScheduler::Create(p->slices, served, one_by_one)).value();
  const SimResult s = Simulate(p->slices, p->functions, arrivals, *serial);
  ASSERT_TRUE(s.errors.empty()) << s.errors.front();
  EXPECT_LT(hits(s), 5);  // one by one, the last ones cannot make it
}

TEST(MeanOverSeedsTest, AveragesRatesAndPoolsCountsPerPolicyAndLoad) {
  RunSummary a{"fluidfaas", "medium"}, b{"fluidfaas", "medium"}, c{"esg", "medium"};
  a.seed = 1;
  b.seed = 2;
  a.hit_rate = 0.9;
  b.hit_rate = 0.8;
  a.p99_ms = 100;
  b.p99_ms = 300;
  a.evictions = 3;
  b.evictions = 4;
  a.wall_seconds = b.wall_seconds = 0.5;
  a.slice_utilization = {0.2, 0.4};
  b.slice_utilization = {0.4, 0.8};
  a.functions = {FunctionSummary{"resnet50", 10, 9, 1, 0, 5.0}};
  b.functions = {FunctionSummary{"resnet50", 30, 15, 3, 2, 7.0}};
  a.ends = {{"resnet50", "rejected", "no_capacity", 1, "no slice"}};
  b.ends = {{"resnet50", "rejected", "no_capacity", 3, "no slice"}};
  c.hit_rate = 0.5;
  const std::vector<RunSummary> m = MeanOverSeeds({a, c, b});
  ASSERT_EQ(m.size(), 2u);  // fluidfaas/medium, then esg/medium: order of first appearance
  EXPECT_EQ(m[0].policy, "fluidfaas");
  EXPECT_EQ(m[0].seeds, 2);
  EXPECT_NEAR(m[0].hit_rate, 0.85, 1e-12);
  EXPECT_NEAR(m[0].p99_ms, 200, 1e-12);
  EXPECT_EQ(m[0].evictions, 4);                // 3.5, rounded
  EXPECT_NEAR(m[0].wall_seconds, 1.0, 1e-12);  // a total
  EXPECT_NEAR(m[0].slice_utilization[1], 0.6, 1e-12);
  EXPECT_EQ(m[0].functions[0].requests, 40);  // pooled
  EXPECT_EQ(m[0].functions[0].hits, 24);
  EXPECT_EQ(m[0].functions[0].failed, 2);
  EXPECT_EQ(m[0].ends.at(0).count, 4);
  EXPECT_EQ(m[1].policy, "esg");
  EXPECT_EQ(m[1].seeds, 1);
  EXPECT_NEAR(m[1].hit_rate, 0.5, 1e-12);
  // The 95% interval of the mean: t(1 df) = 12.706 x sd (0.0707) / sqrt(2); none for one run.
  EXPECT_NEAR(m[0].hit_rate_ci95, 12.706 * std::sqrt(0.005) / std::sqrt(2.0), 1e-9);
  EXPECT_EQ(m[1].hit_rate_ci95, 0);
  // Three seeds at 0.5, 0.6 and 0.7: sd 0.1, t(2 df) = 4.303.
  RunSummary x{"p", "l"}, y{"p", "l"}, z{"p", "l"};
  x.hit_rate = 0.5;
  y.hit_rate = 0.6;
  z.hit_rate = 0.7;
  EXPECT_NEAR(MeanOverSeeds({x, y, z})[0].hit_rate_ci95, 4.303 * 0.1 / std::sqrt(3.0), 1e-9);
}

TEST(PairedAgainstTest, DifferencesArePairedBySeedAndLoad) {
  std::vector<RunSummary> runs;
  const auto run = [&](const std::string& policy, const std::string& load, uint64_t seed, double hit) {
    RunSummary r{policy, load};
    r.seed = seed;
    r.hit_rate = hit;
    runs.push_back(r);
  };
  // The seeds swing together: 0.9/0.8, 0.6/0.5, 0.7/0.62. Paired, the lead is 0.1, 0.1, 0.08.
  run("fluidfaas", "medium", 1, 0.9);
  run("esg", "medium", 1, 0.8);
  run("fluidfaas", "medium", 2, 0.6);
  run("esg", "medium", 2, 0.5);
  run("fluidfaas", "medium", 3, 0.7);
  run("esg", "medium", 3, 0.62);
  run("esg", "heavy", 1, 0.4);  // no reference run at heavy: not paired
  const std::vector<PairedDifference> p = PairedAgainst(runs, "fluidfaas");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].policy, "esg");
  EXPECT_EQ(p[0].seeds, 3);
  EXPECT_NEAR(p[0].mean, -(0.1 + 0.1 + 0.08) / 3, 1e-12);
  EXPECT_NEAR(p[0].min, -0.1, 1e-12);
  EXPECT_NEAR(p[0].max, -0.08, 1e-12);
  // sd of the differences 0.011547; t(2 df) = 4.303: the interval excludes zero, unlike the means' own intervals.
  EXPECT_NEAR(p[0].ci95, 4.303 * 0.0115470054 / std::sqrt(3.0), 1e-8);
  EXPECT_LT(p[0].ci95, std::abs(p[0].mean));
  EXPECT_GT(MeanOverSeeds(runs)[0].hit_rate_ci95, std::abs(p[0].mean));
  EXPECT_TRUE(PairedAgainst(runs, "nope").empty());
}

TEST(EsgSearchTest, FindsTheCheapestFeasibleConfigurationOverEveryKindSubset) {
  const auto p = SmallPreset();
  for (const SimFunction& f : p->functions) {
    const policy::BatchCosts& c = *f.batched;
    const int kinds = static_cast<int>(c.one().kinds().size());
    for (double rate : {0.0, 20.0, 400.0}) {
      for (int mask = 1; mask < (1 << kinds); ++mask) {
        std::vector<int> allowed;
        for (int k = 0; k < kinds; ++k) {
          if (mask >> k & 1) allowed.push_back(k);
        }
        // Brute force over every (kind, batch).
        double best = 1e300;
        for (int k : allowed) {
          for (int b : c.batches()) {
            const double exec = c.WholeMs(k, b);
            const double fill = b == 1 ? 0 : (rate > 0 ? 1000.0 * (b - 1) / rate : 1e300);
            if (c.WholeMib(k, b) > c.one().kinds()[k].profile->memory_mib || exec + fill > f.slo_ms) continue;
            best = std::min(best, c.one().kinds()[k].profile->sm_slices * exec / b);
          }
        }
        policy::EsgSearchStats stats;
        const auto got = policy::SearchEsgConfig(c, allowed, f.slo_ms, rate, &stats);
        if (best == 1e300) {
          EXPECT_FALSE(got.has_value()) << f.spec->name << " mask " << mask;
          continue;
        }
        ASSERT_TRUE(got.has_value()) << f.spec->name << " mask " << mask;
        EXPECT_NEAR(got->cost, best, 1e-9 * best) << f.spec->name << " mask " << mask << " rate " << rate;
        EXPECT_LE(stats.expanded, static_cast<int>(allowed.size() * c.batches().size()));
      }
    }
  }
}

TEST(EsgSearchTest, BatchesOnlyWhenTheRateFillsTheBatchInTime) {
  const auto p = SmallPreset();
  const SimFunction& resnet = p->functions[0];
  std::vector<int> all(resnet.batched->one().kinds().size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  const auto calm = policy::SearchEsgConfig(*resnet.batched, all, resnet.slo_ms, 1);
  const auto busy = policy::SearchEsgConfig(*resnet.batched, all, resnet.slo_ms, 2000);
  ASSERT_TRUE(calm && busy);
  EXPECT_EQ(calm->batch, 1);
  EXPECT_GT(busy->batch, 1);
  EXPECT_LT(busy->cost, calm->cost);                                           // batching is what makes it cheaper
  EXPECT_EQ(resnet.batched->one().kinds()[calm->kind].profile->sm_slices, 1);  // the smallest slice serves it
}

// One hot function at 300 requests a second (Gamma, CV 2), a rate one GPU serves several times over: INFless serves
// it once it has scaled out. Its instances' capacity is their throughput alone; counting only the arrivals beyond
// it as overflow, it never scaled past the mean rate and lost 7% of the requests in every 10 s for good (each
// burst inside a split); the requests its instances turn away count as overflow now.
TEST(BaselinesTest, InflessServesOneHotFunctionOneGpuCanServe) {
  const auto p = std::move(MakePreset("paper", {.functions = 1, .mix = {{"resnet50", 1.0}}})).value();
  const auto arrivals = GenerateWorkload(
      {.rate_rps = 300, .cv = 2.0, .functions = 1, .zipf_s = 1.0, .duration = Seconds(180), .seed = 1});
  // The share of requests after the first 60 s (its scale-out from nothing) that met their deadline.
  const auto steady = [&](const std::string& policy) {
    const PolicyRun run = RunPolicy(policy, *p, arrivals);
    EXPECT_TRUE(run.result.errors.empty()) << policy << ": " << run.result.errors.front();
    int64_t n = 0;
    int64_t hits = 0;
    for (const RequestRecord& q : run.result.requests) {
      if (q.arrival < AtMicros(60'000'000)) continue;
      ++n;
      hits += q.outcome == Outcome::kHit;
    }
    return static_cast<double>(hits) / static_cast<double>(std::max<int64_t>(n, 1));
  };
  EXPECT_GE(steady("infless"), 0.98);
  EXPECT_LT(steady("infless:refusals=off"), 0.95);  // the rule before: a steady loss
}

TEST(InflessConfigTest, BestThroughputPerShareWithinHalfTheSlo) {
  const auto p = SmallPreset();
  for (const SimFunction& f : p->functions) {
    const auto c = policy::ChooseInflessConfig(*f.mps, f.slo_ms, 200, p->whole_gpus[0].kind.gpu->memory_mib);
    ASSERT_TRUE(c.has_value()) << f.spec->name;
    EXPECT_LE(c->exec_ms, f.slo_ms / 2) << f.spec->name;
    const double chosen = c->throughput_rps / c->fraction;
    for (size_t s = 0; s < p->mps_shares->size(); ++s) {
      for (int b : f.mps->batches()) {
        const double exec = f.mps->WholeMs(static_cast<int>(s), b);
        if (exec > f.slo_ms / 2 || (b > 1 && 200 * (f.slo_ms - exec) / 1000 < b - 1)) continue;
        const double fraction = static_cast<double>(p->mps_shares->profile(s).sms) / p->mps_shares->gpu().sms;
        EXPECT_LE(1000.0 * b / exec / fraction, chosen * (1 + 1e-9)) << f.spec->name;
      }
    }
  }
  // Its batch timeout leaves room for MPS interference: SLO - (1 + margin) x the batch's time alone.
  const auto paper = std::move(MakePreset("paper")).value();
  const auto arrivals = Load(*paper, 0.8, Seconds(60), 2);
  for (const auto& [spec, margin] :
       std::vector<std::pair<std::string, double>>{{"infless", 0.3}, {"infless:margin=0", 0}}) {
    const PolicyRun run = RunPolicy(spec, *paper, arrivals);
    ASSERT_TRUE(run.result.errors.empty()) << run.result.errors.front();
    int batched = 0;
    for (const policy::LaunchDecision& l : run.launches) {
      const SimFunction& f = paper->functions[l.function];
      const double exec = f.mps->WholeMs(l.stages.front().mps_share, l.max_batch);
      EXPECT_NEAR(ToMillis(l.batch_timeout), std::max(0.0, f.slo_ms - exec * (1 + margin)), 0.01) << spec;
      batched += l.max_batch > 1;
    }
    EXPECT_GT(batched, 0) << spec;
  }
  // At no rate there is nothing to batch.
  const auto idle = policy::ChooseInflessConfig(*p->functions[0].mps, p->functions[0].slo_ms, 0, 81920);
  ASSERT_TRUE(idle.has_value());
  EXPECT_EQ(idle->batch, 1);
}

}  // namespace
}  // namespace fluidfaas::sim
