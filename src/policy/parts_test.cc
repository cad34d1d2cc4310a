// FluidFaaSScheduler's parts, each on its own: SliceBooks, InstanceTable, Router, Placer, Hotness.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "policy/fake_node.h"
#include "policy/hotness.h"
#include "policy/instance_table.h"
#include "policy/placer.h"
#include "policy/router.h"
#include "policy/slice_books.h"

namespace fluidfaas::policy {
namespace {

using fake::At;
using fake::Fn;
using fake::Slice;
using S = InstanceState;

// ---- SliceBooks

TEST(SliceBooksTest, MemoryStaysBookedUntilTheReleaseIsAcknowledgedOrTakenOver) {
  SliceBooks books({Slice("0:1g.10gb@6")});
  const int64_t cap = books.capacity_mib(0);
  EXPECT_TRUE(books.Free(0));
  books.Book(0, 1, 3000, 1000);
  books.Book(0, 2, 2000, 1000);  // the worker's reserve counts once
  EXPECT_EQ(books.FreeMib(0, 1000), cap - 1000 - 5000);
  books.Unbook(0, 1);
  EXPECT_EQ(books.FreeMib(0, 1000), cap - 1000 - 5000);  // releasing: still in use
  EXPECT_EQ(books.ReleasingMib(0, 1), 3000);
  books.Acknowledge(0, 1);
  EXPECT_EQ(books.FreeMib(0, 1000), cap - 1000 - 2000);
  books.Unbook(0, 2);
  EXPECT_FALSE(books.Free(0));  // nobody resident, but memory is being released
  EXPECT_TRUE(books.TakeOver(0, 2));
  EXPECT_FALSE(books.TakeOver(0, 2));
  EXPECT_TRUE(books.Free(0));
  EXPECT_TRUE(books.Check().ok());
  books.Book(0, 3, 4000, 1000);
  EXPECT_EQ(books.Lose(0), std::vector<InstanceId>{3});
  EXPECT_EQ(books.FreeMib(0, 1000), cap - 1000);
}

TEST(SliceBooksTest, TheQueueEstimateMovesByTheMeasuredError) {
  SliceBooks books({Slice("0:1g.10gb@6")});
  books.BookBatch(0, 1, 0, At(1), At(2), At(9), false);
  books.BookBatch(0, 1, 0, At(2), At(3), At(9), false);
  books.BookBatch(0, 1, 0, At(2), At(3.5), At(9), true);  // joins: two requests, ends later
  EXPECT_EQ(books.BusyUntil(0), At(3.5));
  EXPECT_EQ(books.LastBatch(0)->count, 2);
  books.BatchDone(0, 1, 0, 1, At(2.5));  // the first batch ran 0.5 s longer than estimated
  EXPECT_EQ(books.BusyUntil(0), At(4));
  EXPECT_EQ(books.LastBatch(0)->start, At(2.5));
  books.BatchDone(0, 1, 0, 2, At(3.8));  // and the second was quicker: the queue is empty, the slice idle since
  EXPECT_FALSE(books.LastBatch(0).has_value());
  EXPECT_EQ(books.BusyUntil(0), At(3.8));
  books.BookBatch(0, 2, 0, At(4), At(5), At(9), false);
  books.BookBatch(0, 2, 1, At(5), At(6), At(9), false);
  books.Cancel(0, 2, 1, 1);  // failed upstream: no measurement
  EXPECT_EQ(books.BusyUntil(0), At(5));
  books.DropBatches(0, 2);
  EXPECT_EQ(books.BusyUntil(0), At(3.8));
}

// ---- InstanceTable

struct Table {
  explicit Table(std::vector<ClusterSlice> s) : slices(std::move(s)), instances(options, slices) {}
  FluidFaaSOptions options;
  SliceBooks slices;
  InstanceTable instances;
};

TEST(InstanceTableTest, PlaceEvictRetireAndExpireKeepTheBooksAndTheLifecycle) {
  Fn resnet("resnet50", 0, 50);
  Table t({Slice("0:1g.10gb@6")});
  std::vector<Decision> out;
  InstanceRec& inst = t.instances.New(0);
  const size_t last = resnet.costs->blocks() - 1;
  const int k = resnet.costs->KindIndex(t.slices.info(0).kind);
  t.instances.Place(inst, resnet.served, {StagePlacement{0, 0, last, resnet.costs->MemoryMib(k, 0, last)}},
                    S::kTimeSharing, At(0), out);
  ASSERT_EQ(out.size(), 1u);
  const auto& launch = std::get<LaunchDecision>(out[0]);
  EXPECT_EQ(launch.stages[0].reserve_mib, resnet.costs->ReserveMib(k));
  EXPECT_TRUE(launch.batch_by_deadline);
  EXPECT_EQ(inst.state, S::kLoading);
  EXPECT_EQ(t.slices.residents(0), std::vector<InstanceId>{inst.id});
  // Not time-sharing yet: it cannot be evicted; an illegal move is an error, never applied.
  EXPECT_FALSE(t.instances.Evict(inst, At(1), out));
  EXPECT_FALSE(t.instances.SetState(inst, S::kWarm, At(1), out));
  EXPECT_EQ(inst.state, S::kLoading);
  EXPECT_EQ(t.instances.errors().size(), 1u);
  ASSERT_TRUE(t.instances.SetState(inst, S::kTimeSharing, At(1), out));
  out.clear();
  EXPECT_TRUE(t.instances.Evict(inst, At(2), out));
  EXPECT_EQ(inst.state, S::kWarm);
  EXPECT_TRUE(t.slices.residents(0).empty());
  EXPECT_GT(t.slices.ReleasingMib(0, inst.id), 0);
  // A warm instance is reloaded, not replaced; an expired one leaves the table.
  EXPECT_EQ(&t.instances.ReusableOrNew(0), &inst);
  const InstanceId id = inst.id;
  t.instances.Expire(inst, At(700), out);
  EXPECT_EQ(t.instances.Find(id), nullptr);
  EXPECT_TRUE(t.instances.OfFunction(0).empty());
}

TEST(InstanceTableTest, MeasuredSpeedCorrectsEstimatesAndNoiseWidensTheBookingMargin) {
  InstanceRec inst;
  inst.stage_batch = {{Millis(10)}};
  for (int i = 0; i < 50; ++i) inst.Measured(1.5, 0.2, 0.5);  // always 1.5x slower than estimated, no spread
  EXPECT_NEAR(inst.speed, 1.5, 1e-3);
  EXPECT_NEAR(inst.booking_speed, 1.5, 1e-3);
  EXPECT_NEAR(ToMillis(inst.BatchTime(0, 1)), 15.0, 0.05);
  InstanceRec noisy;
  noisy.stage_batch = {{Millis(10)}};
  for (int i = 0; i < 50; ++i) noisy.Measured(i % 2 == 0 ? 0.7 : 1.3, 0.2, 0.5);  // mean 1, spread 0.3
  EXPECT_NEAR(noisy.speed, 1.0, 0.05);
  EXPECT_GT(noisy.booking_speed, noisy.speed + 0.1);  // booked with a margin for the spread
  EXPECT_GT(noisy.BatchTime(0, 1), Millis(11));
}

// ---- Router

// A loaded instance's batches go to the mechanism as soon as the carrier has fewer than its stages + 1 in flight
// (carrier.h): a batch booked behind fewer than that many is already formed, and a request that joined it ran in the
// next one, late (thousands of late requests per run on paper at heavy load before this rule).
TEST(RouterTest, ARequestJoinsOnlyABatchNotYetHandedOverAndOnlyWhileEveryDeadlineInItHolds) {
  for (const bool loading : {false, true}) {
    FluidFaaSOptions options;
    SliceBooks slices({Slice("0:1g.10gb@6")});
    InstanceTable instances(options, slices);
    Router router(options, slices, instances);
    InstanceRec& inst = instances.New(0);
    inst.state = loading ? S::kLoading : S::kExclusiveHot;
    inst.ready_at = At(0.5);
    inst.stages = {StagePlacement{0}};
    inst.stage_batch = {{Millis(10), Millis(15), Millis(20)}};
    inst.hop_time = {Duration{0}};
    inst.service = Millis(10);
    std::vector<Decision> out;
    slices.BookBatch(0, 99, 0, At(0), At(1), At(5), false);                  // another instance's work until 1 s
    router.Route(inst, RequestEvent{1, 0, At(0.5), At(1.1)}, At(0.5), out);  // its own batch at 1 s
    EXPECT_EQ(slices.BusyUntil(0), At(1.010));
    if (loading) {
      // Loading: nothing is handed over before the load ends, so a second request joins (batch of 2: 15 ms)...
      EXPECT_EQ(router.EstimatedFinish(inst, At(0.6), At(2)), At(1.015));
      router.Route(inst, RequestEvent{2, 0, At(0.6), At(1.016)}, At(0.6), out);
      // ...and a third would make the second late (20 ms > its 1.016 s deadline): it queues after the batch.
      EXPECT_EQ(router.EstimatedFinish(inst, At(0.7), At(2)), At(1.025));
      continue;
    }
    // Loaded: the first batch and the one behind it are handed over at once, so the second and the third request
    // each get a batch of their own...
    router.Route(inst, RequestEvent{2, 0, At(0.6), At(2)}, At(0.6), out);
    EXPECT_EQ(slices.BusyUntil(0), At(1.020));
    router.Route(inst, RequestEvent{3, 0, At(0.6), At(2)}, At(0.6), out);
    EXPECT_EQ(slices.BusyUntil(0), At(1.030));
    // ...and the fourth joins the third's, which waits in the carrier's queue until a batch ahead ends.
    EXPECT_EQ(router.EstimatedFinish(inst, At(0.7), At(2)), At(1.035));
    EXPECT_EQ(inst.outstanding, 3);
  }
}

// ---- Placer

TEST(PlacerTest, TheLadderTakesTheSmallestSliceThenAPipelineThenTimeSharing) {
  Fn resnet("resnet50", 0, 100);
  Fn llama("llama2-13b", 1, 4000);
  FluidFaaSOptions options;
  options.min_dwell = Duration{0};
  SliceBooks slices({Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6"), Slice("0:4g.40gb@0", false)});
  InstanceTable instances(options, slices);
  std::map<FunctionId, ServedFunction> functions = {{0, resnet.served}, {1, llama.served}};
  Placer placer(options, slices, instances, functions);
  std::vector<Decision> out;
  // resnet50: the smallest slice that serves it alone, the 1g.
  InstanceRec* r = placer.ScaleUp(resnet.served, At(0), out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->stages.size(), 1u);
  EXPECT_EQ(r->stages[0].slice, 1u);
  // llama2-13b: no free slice holds it (the 4g is taken): nothing, since the 2g alone cannot.
  EXPECT_EQ(placer.ScaleUp(llama.served, At(0), out), nullptr);
  // Free the 1g (resnet goes to host memory) and llama2-13b fits a 2g + 1g pipeline.
  ASSERT_TRUE(instances.SetState(*r, S::kTimeSharing, At(1), out));
  ASSERT_TRUE(instances.Evict(*r, At(1), out));
  slices.Acknowledge(1, r->id);
  InstanceRec* p = placer.ScaleUp(llama.served, At(2), out);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->stages.size(), 2u);
  // resnet50 again: no free slice now, so it time-shares a slice of... nobody: every slice is exclusive.
  EXPECT_EQ(placer.ScaleUp(resnet.served, At(3), out), nullptr);
  EXPECT_TRUE(slices.Check().ok());
}

// The placer remembers the planner's answers: as the free slices change and change back, each answer is the one a
// fresh search over the same slices gives.
TEST(PlacerTest, RememberedPlansAreThePlannersOwnAnswersAsTheFreeSlicesChange) {
  Fn resnet("resnet50", 0, 100);
  Fn llama("llama2-13b", 1, 4000);
  FluidFaaSOptions options;
  options.min_dwell = Duration{0};
  SliceBooks slices({Slice("0:2g.20gb@4"), Slice("0:1g.10gb@6"), Slice("0:2g.20gb@2"), Slice("0:1g.10gb@5")});
  InstanceTable instances(options, slices);
  std::map<FunctionId, ServedFunction> functions = {{0, resnet.served}, {1, llama.served}};
  Placer placer(options, slices, instances, functions);
  const auto fresh = [&]() -> std::optional<Plan> {
    std::vector<FreeSlice> free;
    std::vector<size_t> index;
    for (size_t i = 0; i < slices.size(); ++i) {
      if (!slices.Free(i)) continue;
      const ClusterSlice& c = slices.info(i);
      free.push_back(FreeSlice{c.id, c.gpu, c.kind, c.kind.profile->memory_mib});
      index.push_back(i);
    }
    PlannerOptions po = options.planner;
    po.max_stages = 3;
    std::optional<Plan> plan = PipelinePlanner(po).Find(*llama.served.costs, llama.served.slo_ms, free);
    if (plan) {
      for (PlanStage& st : plan->stages) st.slice = index[st.slice];
    }
    return plan;
  };
  const auto same = [](const std::optional<Plan>& a, const std::optional<Plan>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a) return true;
    if (a->stages.size() != b->stages.size()) return false;
    for (size_t i = 0; i < a->stages.size(); ++i) {
      const PlanStage& x = a->stages[i];
      const PlanStage& y = b->stages[i];
      if (x.slice != y.slice || x.first_block != y.first_block || x.last_block != y.last_block) return false;
    }
    return true;
  };
  const std::optional<Plan> all_free = placer.PlanOnFreeSlices(llama.served, 3);
  ASSERT_TRUE(all_free.has_value());
  EXPECT_TRUE(same(all_free, fresh()));
  // Each slice the plan uses, taken by another tenant in turn: a different question each time, answered as a fresh
  // search answers it (never the remembered plan over a slice that is gone); given back, the first answer again.
  for (const PlanStage& used : all_free->stages) {
    slices.SetAvailable(used.slice, false);
    const std::optional<Plan> without = placer.PlanOnFreeSlices(llama.served, 3);
    EXPECT_TRUE(same(without, fresh())) << "slice " << used.slice << " taken";
    for (const PlanStage& st : without.value_or(Plan{}).stages) EXPECT_NE(st.slice, used.slice);
    slices.SetAvailable(used.slice, true);
    EXPECT_TRUE(same(placer.PlanOnFreeSlices(llama.served, 3), all_free));
  }
  // A function of other costs asks about the same slices: its own answer.
  EXPECT_TRUE(same(placer.PlanOnFreeSlices(resnet.served, 1), [&] {
    std::vector<FreeSlice> free;
    for (size_t i = 0; i < slices.size(); ++i) {
      const ClusterSlice& c = slices.info(i);
      free.push_back(FreeSlice{c.id, c.gpu, c.kind, c.kind.profile->memory_mib});
    }
    PlannerOptions po = options.planner;
    po.max_stages = 1;
    return PipelinePlanner(po).Find(*resnet.served.costs, resnet.served.slo_ms, free);
  }()));
}

// ---- Hotness

TEST(HotnessTest, PromotesBusyDemotesIdleEvictsAndExpires) {
  Fn resnet("resnet50", 0, 100);
  FluidFaaSOptions options;
  options.min_dwell = Seconds(20);
  SliceBooks slices({Slice("0:2g.20gb@4")});
  InstanceTable instances(options, slices);
  Hotness hotness(options, slices, instances);
  std::vector<Decision> out;
  const size_t last = resnet.costs->blocks() - 1;
  const int k = resnet.costs->KindIndex(slices.info(0).kind);
  const StagePlacement place{0, 0, last, resnet.costs->MemoryMib(k, 0, last)};
  InstanceRec& hot = instances.New(0);
  InstanceRec& quiet = instances.New(0);
  instances.Place(hot, resnet.served, {place}, S::kTimeSharing, At(0), out);
  instances.Place(quiet, resnet.served, {place}, S::kTimeSharing, At(0), out);
  instances.SetState(hot, S::kTimeSharing, At(0), out);
  instances.SetState(quiet, S::kTimeSharing, At(0), out);
  hot.load.OnBusy(At(0), At(6));  // 60% of the last 10 s
  hotness.Tick(At(10), out);
  EXPECT_EQ(hot.state, S::kExclusiveHot);
  EXPECT_EQ(quiet.state, S::kWarm);  // idle co-resident left for host memory
  // Within the dwell time it stays exclusive, however idle; after it, it is demoted.
  hotness.Tick(At(25), out);
  EXPECT_EQ(hot.state, S::kExclusiveHot);
  hotness.Tick(At(31), out);
  EXPECT_EQ(hot.state, S::kTimeSharing);
  hotness.Tick(At(31) + options.ts_idle_evict, out);
  EXPECT_EQ(hot.state, S::kWarm);
  const InstanceId quiet_id = quiet.id;
  hotness.Tick(At(10) + options.keep_alive, out);
  EXPECT_EQ(instances.Find(quiet_id), nullptr);  // expired to cold: gone
}

// A tick judges only the instances on its agenda (InstanceTable::TakeDue), and decides exactly what judging every
// placed instance would: random batches, arrivals and ends on instances of both states, one per slice, ticks every
// 100 ms, and before each tick the decisions a scan of every instance would take, checked against the tick's.
TEST(HotnessTest, TheAgendaDecidesWhatAScanOfEveryPlacedInstanceWould) {
  Fn resnet("resnet50", 0, 100);
  FluidFaaSOptions options;
  options.min_dwell = Seconds(5);
  options.ts_idle_evict = Seconds(3);
  constexpr size_t kSlices = 12;
  std::vector<ClusterSlice> list;
  for (size_t i = 0; i < kSlices; ++i) list.push_back(Slice(std::to_string(i) + ":2g.20gb@4"));
  SliceBooks slices(list);
  InstanceTable instances(options, slices);
  Hotness hotness(options, slices, instances);
  std::vector<Decision> out;
  const size_t last = resnet.costs->blocks() - 1;
  const int k = resnet.costs->KindIndex(slices.info(0).kind);
  std::vector<InstanceId> ids;
  for (size_t slice = 0; slice < kSlices; ++slice) {
    InstanceRec& inst = instances.New(0);
    const S state = slice % 2 == 0 ? S::kTimeSharing : S::kExclusiveHot;
    instances.Place(inst, resnet.served, {StagePlacement{slice, 0, last, resnet.costs->MemoryMib(k, 0, last)}}, state,
                    At(0), out);
    instances.SetState(inst, state, At(0), out);
    ids.push_back(inst.id);
  }
  std::mt19937_64 rng(7);
  std::vector<TimePoint> busy_until(kSlices, At(0));
  const Duration tick = Millis(100);
  int judged_changes = 0;
  for (TimePoint now = At(0) + tick; now < At(120); now += tick) {
    // Events between ticks, as the scheduler reports them.
    for (size_t slice = 0; slice < kSlices; ++slice) {
      InstanceRec* inst = instances.Find(ids[slice]);
      if (inst == nullptr || (inst->state != S::kTimeSharing && inst->state != S::kExclusiveHot)) continue;
      // Bursts: each instance is busy in some 10-second phases and quiet in others.
      const bool phase_busy = ((now - At(0)) / Seconds(10) + static_cast<int64_t>(slice)) % 3 == 0;
      const uint64_t draw = rng() % 100;
      if (draw < (phase_busy ? 60u : 3u)) {
        inst->load.OnArrival(now - Millis(50));
        ++inst->outstanding;
        const TimePoint start = std::max(busy_until[slice], now - Millis(90));
        const TimePoint end = std::min(now, start + Millis(static_cast<int64_t>(20 + rng() % 70)));
        if (end > start) {
          inst->load.OnBusy(start, end);
          busy_until[slice] = end;
          hotness.Busier(*inst, now);
        }
      }
      if (inst->outstanding > 0 && rng() % 100 < 50) {
        if (--inst->outstanding == 0) hotness.Idle(*inst);
      }
    }
    // What a scan of every placed instance decides now (one instance per slice: no co-resident leaves).
    std::map<InstanceId, S> expected;
    for (InstanceId id : instances.on_slices()) {
      const InstanceRec& inst = instances.at(id);
      const double busy = inst.load.BusyFraction(now);
      const TimePoint last_use = std::max(inst.in_use_since, inst.load.last_arrival());
      S next = inst.state;
      if (inst.state == S::kTimeSharing && busy >= options.promote_busy) {
        next = S::kExclusiveHot;
      } else if (inst.state == S::kTimeSharing && inst.outstanding == 0 && now - last_use >= options.ts_idle_evict) {
        next = S::kWarm;
      } else if (inst.state == S::kExclusiveHot &&
                 now - inst.state_since >= std::max(options.tracker.busy_window, options.min_dwell) &&
                 busy < options.demote_busy) {
        next = S::kTimeSharing;
      }
      expected[id] = next;
    }
    hotness.Tick(now, out);
    for (const auto& [id, state] : expected) {
      const InstanceRec* inst = instances.Find(id);
      ASSERT_NE(inst, nullptr);
      ASSERT_EQ(inst->state, state) << "instance " << id << " at " << ToSeconds(now - At(0)) << " s";
      if (inst->state_since == now) ++judged_changes;
    }
    // A warm copy comes back on its slice, so the run keeps every slice in play.
    for (size_t slice = 0; slice < kSlices; ++slice) {
      InstanceRec& inst = instances.at(ids[slice]);
      if (inst.state != S::kWarm || rng() % 100 >= 5) continue;
      slices.Acknowledge(slice, inst.id);
      instances.Place(inst, resnet.served, {StagePlacement{slice, 0, last, resnet.costs->MemoryMib(k, 0, last)}},
                      S::kTimeSharing, now, out);
      instances.SetState(inst, S::kTimeSharing, now, out);
    }
  }
  EXPECT_GT(judged_changes, 40);  // promotions, demotions and evictions all happened, many times
}

TEST(HotnessTest, WarmCopiesBeyondHostMemoryExpireLeastRecentlyUsedFirst) {
  Fn resnet("resnet50", 0, 100);  // 25.6 M parameters, fp32: 97 MiB of weights
  FluidFaaSOptions options;
  options.host_memory_mib = 250;  // two copies fit, not three
  SliceBooks slices({Slice("0:1g.10gb@6"), Slice("0:1g.10gb@5"), Slice("0:2g.20gb@4")});
  InstanceTable instances(options, slices);
  Hotness hotness(options, slices, instances);
  std::vector<Decision> out;
  const size_t last = resnet.costs->blocks() - 1;
  std::vector<InstanceId> ids;
  for (size_t slice = 0; slice < 3; ++slice) {
    const int k = resnet.costs->KindIndex(slices.info(slice).kind);
    InstanceRec& inst = instances.New(0);
    instances.Place(inst, resnet.served, {StagePlacement{slice, 0, last, resnet.costs->MemoryMib(k, 0, last)}},
                    S::kTimeSharing, At(0), out);
    instances.SetState(inst, S::kTimeSharing, At(0), out);
    EXPECT_EQ(inst.weights_mib, 97);
    ids.push_back(inst.id);
  }
  // Evicted at t = 1, 2, 3 s: the first is the least recently used.
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(instances.Evict(instances.at(ids[i]), At(1 + static_cast<int>(i)), out));
  hotness.Tick(At(4), out);
  EXPECT_EQ(instances.Find(ids[0]), nullptr);  // dropped to cold
  ASSERT_NE(instances.Find(ids[1]), nullptr);
  EXPECT_EQ(instances.Find(ids[1])->state, S::kWarm);
  EXPECT_EQ(instances.Find(ids[2])->state, S::kWarm);
  // Without a limit, all three stay.
  options.host_memory_mib = 0;
  InstanceRec& again = instances.New(0);
  const int k = resnet.costs->KindIndex(slices.info(0).kind);
  instances.Place(again, resnet.served, {StagePlacement{0, 0, last, resnet.costs->MemoryMib(k, 0, last)}},
                  S::kTimeSharing, At(5), out);
  instances.SetState(again, S::kTimeSharing, At(5), out);
  ASSERT_TRUE(instances.Evict(again, At(6), out));
  hotness.Tick(At(7), out);
  EXPECT_NE(instances.Find(ids[1]), nullptr);
  EXPECT_NE(instances.Find(again.id), nullptr);
}

}  // namespace
}  // namespace fluidfaas::policy
