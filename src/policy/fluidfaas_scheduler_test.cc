// FluidFaaSScheduler's design-point-2 scenarios on a fake node (fake_node.h): hotness, time sharing, reclaiming,
// urgency routing and migration.
#include "policy/fluidfaas_scheduler.h"

#include <gtest/gtest.h>

#include <array>

#include "policy/fake_node.h"

namespace fluidfaas::policy {
namespace {

using namespace fake;  // NOLINT(google-build-using-namespace): the fake node's helpers
using S = InstanceState;

TEST(FluidFaaSSchedulerTest, BurstThenIdleCoolsDownToCold) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 50);
  FakeNode node(clock, {Slice("0:4g.40gb@0"), Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6")}, {resnet.served});
  node.SubmitEvery(0, At(0), At(30), Millis(20), 50);  // 50 requests/s for 30 s
  node.Ticks(At(1), At(800));
  clock.RunUntilIdle();

  // The smallest slice that serves it alone: the 1g, from a cold start.
  ASSERT_EQ(node.launches().size(), 1u);
  const InstanceId id = node.launches()[0].instance;
  // Busy while the burst lasts, then: demoted, evicted to host memory, expired; a cold instance is nothing to
  // keep, so the table is empty again (a long-running daemon's table does not grow).
  EXPECT_EQ(StatesOf(node.transitions(), id), (std::vector<S>{S::kExclusiveHot, S::kTimeSharing, S::kWarm, S::kCold}));
  EXPECT_TRUE(node.scheduler().Instances().empty());
  EXPECT_TRUE(node.scheduler().Slices()[2].residents.empty());
  EXPECT_EQ(node.launches()[0].stages.at(0).slice, 2u);
  EXPECT_FALSE(node.launches()[0].from_warm);
  // Every request ended once: served, or rejected at once while the first load ran.
  int served = 0;
  for (const auto& [rid, r] : node.requests()) {
    EXPECT_TRUE(r.rejected != (r.completions == 1)) << rid;
    if (r.completions == 1) {
      ++served;
      EXPECT_LE(r.finished - r.arrival, Millis(50));
    }
  }
  EXPECT_GT(served, 1300);  // all but the cold start's
}

TEST(FluidFaaSSchedulerTest, AnExclusiveInstanceKeepsItsStateForTheDwellTimeAndADemotionDoesNotRestartItsIdleTime) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 50);
  FluidFaaSOptions options;
  options.min_dwell = Seconds(120);
  options.ts_idle_evict = Seconds(60);
  FakeNode node(clock, {Slice("0:1g.10gb@6")}, {resnet.served}, options);
  node.SubmitEvery(0, At(0), At(20), Millis(20), 50);  // busy for 20 s, then idle
  node.Ticks(At(1), At(200));
  std::optional<S> at_100, at_130;
  clock.ScheduleAt(At(100), [&] { at_100 = node.scheduler().Instances().at(0).state; });
  clock.ScheduleAt(At(130), [&] { at_130 = node.scheduler().Instances().at(0).state; });
  clock.RunUntilIdle();
  EXPECT_EQ(at_100, S::kExclusiveHot);  // idle long past the busy window, but within the dwell time
  // Demoted once the dwell time passed, and evicted to host memory at the next tick: idle for 100 s already, past
  // the 60 s idle eviction (the demotion used to restart that clock, holding the slice another 60 s).
  EXPECT_EQ(at_130, S::kWarm);
  EXPECT_EQ(StatesOf(node.transitions(), node.launches().at(0).instance),
            (std::vector<S>{S::kExclusiveHot, S::kTimeSharing, S::kWarm}));
}

// A function ramping from nothing at a rate one instance cannot carry starts more cold starts while the first one
// loads, on free slices nobody else needs; with cold_starts off, one at a time. While another function is loading
// too, each waits for its own (functions ramping together share the free slices one cold start at a time).
TEST(FluidFaaSSchedulerTest, AHotFunctionRampingAloneStartsSeveralColdStartsAtOnce) {
  // The most instances of resnet50 loading at once, sampled every 20 ms: [0] whenever, [1] while bert-base loads.
  const auto run = [](bool cold_starts, bool other_loading) {
    ManualClock clock;
    Fn resnet("resnet50", 0, 50);
    Fn bert("bert-base", 1, 100);
    FluidFaaSOptions options;
    options.cold_starts = cold_starts;
    FakeNode node(clock, {Slice("0:1g.10gb@0"), Slice("0:1g.10gb@1"), Slice("0:1g.10gb@2"), Slice("0:1g.10gb@3")},
                  {resnet.served, bert.served}, options);
    node.SubmitEvery(0, At(0), At(3), Micros(250), 50);  // 4,000 requests/s: a 1g serves 150 at batch 1
    if (other_loading) node.SubmitEvery(1, At(0), At(3), Millis(200), 100);
    std::array<size_t, 2> most{0, 0};
    for (TimePoint t = At(0); t < At(3); t += Millis(20)) {
      clock.ScheduleAt(t, [&] {
        std::array<size_t, 2> loading{0, 0};
        for (const InstanceView& v : node.scheduler().Instances()) loading.at(v.function) += v.state == S::kLoading;
        most[0] = std::max(most[0], loading[0]);
        if (loading[1] > 0) most[1] = std::max(most[1], loading[0]);
      });
    }
    clock.RunUntilIdle();
    return most;
  };
  EXPECT_GE(run(true, false)[0], 3u) << "resnet50 loads on several slices at once";
  EXPECT_EQ(run(false, false)[0], 1u) << "cold_starts off: one at a time";
  const std::array<size_t, 2> both = run(true, true);
  EXPECT_EQ(both[1], 1u) << "while bert-base loads, resnet50 waits for its own";
  EXPECT_GE(both[0], 2u) << "... and starts more once bert-base has loaded";
}

// A function that cannot place an instance anywhere takes a slice from a function whose other instances carry
// its rate with room to spare (an idle instance, evicted to host memory); not from one that needs it.
TEST(FluidFaaSSchedulerTest, AStarvedFunctionReclaimsASliceFromOneWithCapacityToSpare) {
  const auto run = [](double headroom, Duration displace_idle) {
    ManualClock clock;
    Fn resnet("resnet50", 0, 20);
    Fn bert("bert-base", 1, 100);
    FluidFaaSOptions options;
    options.min_dwell = Duration{0};
    options.demote_busy = 0;  // exclusive instances stay exclusive: no time-sharing slot for bert
    options.reclaim_headroom = headroom;
    options.displace_idle = displace_idle;
    auto node = std::make_unique<FakeNode>(clock, std::vector<ClusterSlice>{Slice("0:1g.10gb@5"), Slice("0:1g.10gb@6")},
                                           std::vector<ServedFunction>{resnet.served, bert.served}, options);
    node->SubmitEvery(0, At(0), At(3), Millis(3), 20);    // a burst: resnet takes both slices
    node->SubmitEvery(0, At(3), At(60), Millis(25), 20);  // then 40 requests/s: one instance carries them
    node->SubmitEvery(1, At(30), At(60), Millis(500), 100);
    node->Ticks(At(1), At(60));
    clock.RunUntilIdle();
    int bert_served = 0;
    for (const auto& [rid, r] : node->requests()) bert_served += r.function == 1 && r.completions == 1;
    return std::make_pair(bert_served, node->evicted().size());
  };
  const auto [served, evicted] = run(1.5, Duration{0});
  EXPECT_GE(served, 55);   // all but the cold start's
  EXPECT_EQ(evicted, 1u);  // resnet's spare instance went to host memory
  // Nobody has capacity to spare, and nothing is displaced: bert starves.
  const auto [served_without, evicted_without] = run(1e9, Duration{0});
  EXPECT_EQ(served_without, 0);
  EXPECT_EQ(evicted_without, 0u);
  // Displacement alone: resnet's spare instance has had no request for 10 s and is colder than bert.
  const auto [served_displacing, evicted_displacing] = run(1e9, Seconds(10));
  EXPECT_GE(served_displacing, 55);
  EXPECT_EQ(evicted_displacing, 1u);
}

TEST(FluidFaaSSchedulerTest, AnIdleInstanceIsDisplacedOnlyAfterItsIdleTimeAndOnlyByAHotterFunction) {
  // One slice: resnet is served for 20 s and then idles; bert asks from t = 25 s. Displacement waits until resnet
  // has been idle for displace_idle (60 s here; its rate has decayed below bert's from t = 64 s): bert's requests
  // before t = 80 s are turned away, later ones served.
  ManualClock clock;
  Fn resnet("resnet50", 0, 20);
  Fn bert("bert-base", 1, 100);
  FluidFaaSOptions options;
  options.displace_idle = Seconds(60);
  options.time_sharing = false;  // no time-sharing slot either: displacement is the only way in
  FakeNode node(clock, {Slice("0:1g.10gb@6")}, {resnet.served, bert.served}, options);
  node.SubmitEvery(0, At(0), At(20), Millis(100), 20);
  node.SubmitEvery(1, At(25), At(120), Millis(500), 100);
  node.Ticks(At(1), At(120));
  clock.RunUntilIdle();
  int before = 0;
  int after = 0;
  for (const auto& [rid, r] : node.requests()) {
    if (r.function != 1 || r.completions != 1) continue;
    (r.arrival < At(80) ? before : after) += 1;
  }
  EXPECT_EQ(before, 0);
  EXPECT_GE(after, 70);  // 80 requests from t = 80 s, less the cold start's
  EXPECT_EQ(node.evicted().size(), 1u);
}

TEST(FluidFaaSSchedulerTest, TwoQuietFunctionsShareASliceAndOneIsPromotedWhenItHeatsUp) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 100);
  Fn bert("bert-base", 1, 100);
  FluidFaaSOptions options;
  options.min_dwell = Duration{0};  // the hysteresis alone (MinimumDwell... tests the dwell)
  FakeNode node(clock, {Slice("0:2g.20gb@4")}, {resnet.served, bert.served}, options);
  node.SubmitEvery(0, At(0), At(120), Millis(1000), 100);  // 1 request/s each: both quiet
  node.SubmitEvery(1, At(20), At(60), Millis(1000), 100);
  node.SubmitEvery(1, At(60), At(90), Millis(15), 100);  // bert heats up: ~65 requests/s
  node.Ticks(At(1), At(120));
  bool shared = false;
  clock.ScheduleAt(At(50), [&] {
    const auto all = node.scheduler().Instances();
    ASSERT_EQ(all.size(), 2u);
    shared = all[0].state == S::kTimeSharing && all[1].state == S::kTimeSharing && all[0].stages.size() == 1 &&
             all[1].stages.size() == 1 && all[0].stages[0].slice == all[1].stages[0].slice;
  });
  clock.RunUntilIdle();
  EXPECT_TRUE(shared) << "both functions should share the one slice while quiet";
  // After bert cooled down again, resnet came back beside it: the slice's books hold both residents' memory.
  const std::vector<SliceView> slices = node.scheduler().Slices();
  ASSERT_EQ(slices.size(), 1u);
  const int k = resnet.costs->KindIndex(SliceKind{&A100(), A100().FindProfile("2g.20gb")});
  int64_t expected_mib = 0;
  for (InstanceId r : slices[0].residents) {
    const Fn& f = node.scheduler().Instance(r)->function == 0 ? resnet : bert;
    expected_mib += f.costs->MemoryMib(k, 0, f.spec->blocks.size() - 1) - f.costs->ReserveMib(k);
  }
  EXPECT_EQ(slices[0].residents.size(), 2u);
  EXPECT_EQ(slices[0].used_mib, expected_mib);
  InstanceId bert_id = 0;
  InstanceId resnet_id = 0;
  for (const InstanceView& v : node.scheduler().Instances()) (v.function == 1 ? bert_id : resnet_id) = v.id;
  const std::vector<S> bert_states = StatesOf(node.transitions(), bert_id);
  ASSERT_FALSE(bert_states.empty());
  EXPECT_NE(std::find(bert_states.begin(), bert_states.end(), S::kExclusiveHot), bert_states.end());
  // Promotion evicted the quiet co-resident to host memory.
  EXPECT_NE(std::find(node.evicted().begin(), node.evicted().end(), resnet_id), node.evicted().end());
  for (const auto& [rid, r] : node.requests()) EXPECT_TRUE(r.rejected != (r.completions == 1)) << rid;
}

TEST(FluidFaaSSchedulerTest, UrgentRequestsGoToExclusiveInstancesTheRestToTimeSharing) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 40);
  FluidFaaSOptions options;
  options.min_dwell = Duration{0};  // demoted after one busy window
  options.urgency = true;           // the design's routing (off by default)
  FakeNode node(clock, {Slice("0:1g.10gb@5"), Slice("0:1g.10gb@6")}, {resnet.served}, options);
  node.Submit(0, At(0), 40);  // starts instance 1 (its first request is lost to the cold start)
  node.Ticks(At(1), At(40));  // instance 1 is demoted once idle for a busy window
  for (int i = 0; i < 12; ++i) node.Submit(0, At(20), 40);            // a queue on instance 1: scale up to instance 2
  const RequestId calm = node.Submit(0, At(30), 40);                  // full slack
  const RequestId urgent = node.Submit(0, At(30.1), 40, Millis(25));  // waited 25 ms upstream
  clock.RunUntilIdle();
  const auto all = node.scheduler().Instances();
  ASSERT_EQ(all.size(), 2u);
  const auto& calm_r = node.requests().at(calm);
  const auto& urgent_r = node.requests().at(urgent);
  ASSERT_EQ(calm_r.routed.size(), 1u);
  ASSERT_EQ(urgent_r.routed.size(), 1u);
  // At 30 s instance 1 is time-sharing and instance 2 (loaded at ~22 s) is exclusive.
  const InstanceId first = all[0].id;
  const InstanceId second = all[1].id;
  EXPECT_EQ(StatesOf(node.transitions(), first).at(1), S::kTimeSharing);
  EXPECT_EQ(StatesOf(node.transitions(), second).at(0), S::kExclusiveHot);
  EXPECT_EQ(calm_r.routed[0], first);
  EXPECT_EQ(urgent_r.routed[0], second);
}

TEST(FluidFaaSSchedulerTest, PipelineMigratesToAFreed4gWithoutLosingOrRepeatingARequest) {
  ManualClock clock;
  Fn llama("llama2-13b", 0, 2000);
  // The 4g is held by someone else at first: llama2-13b fits only the 2g + 1g pipeline.
  FakeNode node(clock, {Slice("0:4g.40gb@0", false), Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6")}, {llama.served});
  node.SubmitEvery(0, At(0), At(120), Millis(1000), 2000);
  node.Ticks(At(1), At(130));
  node.FreeSlice(0, At(40));
  std::vector<InstanceView> before;
  clock.ScheduleAt(At(35), [&] { before = node.scheduler().Instances(); });
  clock.RunUntilIdle();

  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(before[0].stages.size(), 2u) << "a 2g + 1g pipeline before the 4g frees up";
  const InstanceId pipeline = before[0].id;
  ASSERT_EQ(node.migrations().size(), 1u);
  EXPECT_EQ(node.migrations()[0].from, pipeline);
  const InstanceId plain = node.migrations()[0].to;
  const auto plain_view = node.scheduler().Instance(plain);
  ASSERT_TRUE(plain_view.has_value());
  ASSERT_EQ(plain_view->stages.size(), 1u);
  EXPECT_EQ(plain_view->stages[0].slice, 0u);                     // the 4g
  EXPECT_FALSE(node.scheduler().Instance(pipeline).has_value());  // retired: gone from the table
  EXPECT_EQ(StatesOf(node.transitions(), pipeline).back(), S::kRetired);
  EXPECT_NE(std::find(node.retired().begin(), node.retired().end(), pipeline), node.retired().end());

  // Every request after the pipeline came up was served exactly once; none was rejected or run twice.
  bool routed_to_plain_after = false;
  for (const auto& [rid, r] : node.requests()) {
    if (r.arrival < At(30)) continue;  // the first requests may meet the cold start
    EXPECT_FALSE(r.rejected) << rid;
    EXPECT_EQ(r.routed.size(), 1u) << rid;
    EXPECT_EQ(r.completions, 1) << rid;
    if (r.arrival > At(80)) {
      EXPECT_EQ(r.routed[0], plain) << rid;
      routed_to_plain_after = true;
    }
  }
  EXPECT_TRUE(routed_to_plain_after);
}

// llama2-13b on its 2g + 1g pipeline at 1 request/s; from 40 s llama2-7b, which only the 2g holds, arrives every
// `every` until 120 s. What became of each.
struct YieldOutcome {
  bool pipeline_evicted = false;
  InstanceId pipeline = 0;
  int served_7b_late_on = 0;  // llama2-7b requests after 60 s served, and how many arrived then
  int arrived_7b_late_on = 0;
};
YieldOutcome PipelineAgainstATurnedAwayFunction(Duration every, bool yield) {
  ManualClock clock;
  Fn llama13("llama2-13b", 0, 2000);
  Fn llama7("llama2-7b", 1, 2000);
  FluidFaaSOptions options;
  options.pipeline_yield = yield;
  FakeNode node(clock, {Slice("0:4g.40gb@0", false), Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6")},
                {llama13.served, llama7.served}, options);
  node.SubmitEvery(0, At(0), At(120), Millis(1000), 2000);
  node.SubmitEvery(1, At(40), At(120), every, 2000);
  node.Ticks(At(1), At(130));
  std::vector<InstanceView> before;
  clock.ScheduleAt(At(35), [&] { before = node.scheduler().Instances(); });
  clock.RunUntilIdle();
  EXPECT_EQ(before.size(), 1u);
  YieldOutcome o;
  if (before.size() != 1 || before[0].stages.size() != 2) {
    ADD_FAILURE() << "no 2g + 1g pipeline at 35 s";
    return o;
  }
  o.pipeline = before[0].id;
  o.pipeline_evicted = std::find(node.evicted().begin(), node.evicted().end(), o.pipeline) != node.evicted().end();
  for (const auto& [rid, r] : node.requests()) {
    EXPECT_TRUE(r.rejected != (r.completions == 1)) << rid << ": every request ends exactly once";
    if (r.function != 1 || r.arrival <= At(60)) continue;
    ++o.arrived_7b_late_on;
    if (r.completions == 1) ++o.served_7b_late_on;
  }
  return o;
}

TEST(FluidFaaSSchedulerTest, ABusyPipelineYieldsItsSliceToAFunctionTurnedAwayThatWouldServeMoreOnIt) {
  // llama2-7b at 5 requests/s wants the 2g the pipeline holds for 1 request/s: the pipeline drains to host memory.
  const YieldOutcome busy = PipelineAgainstATurnedAwayFunction(Millis(200), /*yield=*/true);
  EXPECT_TRUE(busy.pipeline_evicted);
  EXPECT_GT(busy.arrived_7b_late_on, 250);
  EXPECT_GT(busy.served_7b_late_on, busy.arrived_7b_late_on * 9 / 10);
  // At one request every 4 s it would serve less on the 2g than the pipeline does: the pipeline stays.
  const YieldOutcome quiet = PipelineAgainstATurnedAwayFunction(Millis(4000), /*yield=*/true);
  EXPECT_FALSE(quiet.pipeline_evicted);
  EXPECT_EQ(quiet.served_7b_late_on, 0);
  // With yield=off the pipeline stays whatever the demand.
  const YieldOutcome off = PipelineAgainstATurnedAwayFunction(Millis(200), /*yield=*/false);
  EXPECT_FALSE(off.pipeline_evicted);
  EXPECT_EQ(off.served_7b_late_on, 0);
}

TEST(FluidFaaSSchedulerTest, APipelineThatWentWarmWhileItsMigrationTargetLoadedIsDroppedNotDrained) {
  // Found by `fluidfaas load` (its simulated run, on the daemon's policy with short dwell and idle-evict times):
  // the target of a migration finished loading after its pipeline had gone idle and been evicted to host memory,
  // and the migrator drained the warm pipeline (warm -> draining: not a transition).
  ManualClock clock;
  Fn llama("llama2-13b", 0, 2000);
  FluidFaaSOptions options;
  options.min_dwell = Seconds(10);
  options.ts_idle_evict = Seconds(10);
  FakeNode node(clock, {Slice("0:4g.40gb@0", false), Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6")}, {llama.served},
                options);
  node.SubmitEvery(0, At(0), At(25), Millis(1000), 2000);
  node.Ticks(At(1), At(120));
  node.FreeSlice(0, At(30));  // the target loads cold (about 16 s); the idle pipeline goes warm meanwhile
  std::vector<InstanceView> before;
  std::vector<InstanceView> after;
  clock.ScheduleAt(At(29), [&] { before = node.scheduler().Instances(); });
  clock.ScheduleAt(At(50), [&] { after = node.scheduler().Instances(); });
  clock.RunUntilIdle();

  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(before[0].stages.size(), 2u);
  const InstanceId pipeline = before[0].id;
  const std::vector<S> states = StatesOf(node.transitions(), pipeline);
  EXPECT_NE(std::find(states.begin(), states.end(), S::kWarm), states.end()) << "the pipeline went warm";
  EXPECT_EQ(std::find(states.begin(), states.end(), S::kDraining), states.end());
  EXPECT_TRUE(node.migrations().empty()) << "nothing was serving on the pipeline to switch over";
  EXPECT_FALSE(node.scheduler().Instance(pipeline).has_value()) << "its warm copy is dropped: the 4g replaces it";
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].stages.size(), 1u);
  EXPECT_EQ(after[0].stages[0].slice, 0u);
}

// Each mechanism switches off for its ablation (policy spec fluidfaas:pipelines=off and so on).
TEST(FluidFaaSSchedulerTest, WithPipelinesOffAModelNoFreeSliceHoldsIsTurnedAway) {
  ManualClock clock;
  Fn llama("llama2-13b", 0, 2000);
  FluidFaaSOptions options;
  options.pipelines = false;
  options.planner.max_stages = 1;  // what the policy spec sets with pipelines=off
  FakeNode node(clock, {Slice("0:4g.40gb@0", false), Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6")}, {llama.served},
                options);
  node.SubmitEvery(0, At(0), At(30), Millis(1000), 2000);
  node.Ticks(At(1), At(40));
  clock.RunUntilIdle();
  EXPECT_TRUE(node.scheduler().Instances().empty());
  for (const auto& [rid, r] : node.requests()) EXPECT_TRUE(r.rejected) << rid;
}

TEST(FluidFaaSSchedulerTest, WithTimeSharingOffTwoQuietFunctionsNeverShareASlice) {
  ManualClock clock;
  Fn resnet("resnet50", 0, 100);
  Fn bert("bert-base", 1, 100);
  FluidFaaSOptions options;
  options.min_dwell = Duration{0};
  options.time_sharing = false;
  FakeNode node(clock, {Slice("0:2g.20gb@4")}, {resnet.served, bert.served}, options);
  node.SubmitEvery(0, At(0), At(60), Millis(1000), 100);
  node.SubmitEvery(1, At(20), At(60), Millis(1000), 100);
  node.Ticks(At(1), At(60));
  size_t most_residents = 0;
  for (double t = 1; t < 60; t += 1) {
    clock.ScheduleAt(At(t), [&] {
      for (const SliceView& v : node.scheduler().Slices())
        most_residents = std::max(most_residents, v.residents.size());
    });
  }
  clock.RunUntilIdle();
  EXPECT_EQ(most_residents, 1u);
  bool bert_turned_away = false;
  for (const auto& [rid, r] : node.requests()) bert_turned_away = bert_turned_away || (r.function == 1 && r.rejected);
  EXPECT_TRUE(bert_turned_away) << "with the slice taken and no sharing, bert-base has nowhere to go";
}

TEST(FluidFaaSSchedulerTest, WithMigrationOffThePipelineStaysWhenThe4gFreesUp) {
  ManualClock clock;
  Fn llama("llama2-13b", 0, 2000);
  FluidFaaSOptions options;
  options.migration = false;
  FakeNode node(clock, {Slice("0:4g.40gb@0", false), Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6")}, {llama.served},
                options);
  node.SubmitEvery(0, At(0), At(120), Millis(1000), 2000);
  node.Ticks(At(1), At(130));
  node.FreeSlice(0, At(40));
  std::vector<InstanceView> later;
  clock.ScheduleAt(At(100), [&] { later = node.scheduler().Instances(); });
  clock.RunUntilIdle();
  EXPECT_TRUE(node.migrations().empty());
  ASSERT_FALSE(later.empty());
  EXPECT_EQ(later[0].stages.size(), 2u) << "still the 2g + 1g pipeline";
}

TEST(FluidFaaSSchedulerTest, ByDefaultEveryRequestTakesTheEarliestFinish) {
  // The urgency test's scenario: the urgent request no longer goes to the exclusive instance for being urgent.
  ManualClock clock;
  Fn resnet("resnet50", 0, 40);
  FluidFaaSOptions options;
  options.min_dwell = Duration{0};
  ASSERT_FALSE(options.urgency) << "the default";
  FakeNode node(clock, {Slice("0:1g.10gb@5"), Slice("0:1g.10gb@6")}, {resnet.served}, options);
  node.Submit(0, At(0), 40);
  node.Ticks(At(1), At(40));
  for (int i = 0; i < 12; ++i) node.Submit(0, At(20), 40);
  const RequestId calm = node.Submit(0, At(30), 40);
  const RequestId urgent = node.Submit(0, At(30.1), 40, Millis(25));
  clock.RunUntilIdle();
  ASSERT_EQ(node.scheduler().Instances().size(), 2u);
  const auto& calm_r = node.requests().at(calm);
  const auto& urgent_r = node.requests().at(urgent);
  ASSERT_EQ(calm_r.routed.size(), 1u);
  ASSERT_EQ(urgent_r.routed.size(), 1u);
  EXPECT_EQ(urgent_r.routed[0], calm_r.routed[0]) << "both idle instances finish as early: the first is taken";
}

}  // namespace
}  // namespace fluidfaas::policy
