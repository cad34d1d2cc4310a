#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <memory>

#include "gpu/layout.h"
#include "model/zoo.h"
#include "policy/exclusive_scheduler.h"
#include "policy/fluidfaas_scheduler.h"

namespace fluidfaas::sim {
namespace {

using policy::ClusterSlice;
using policy::SliceKind;

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

// A cluster of `gpus` A100-80GB with one layout, and zoo functions with SLO = scale x latency on a 7g slice.
struct TestCluster {
  TestCluster(int gpus, const std::string& layout, const std::vector<std::string>& models, double slo_scale = 4) {
    const gpu::Layout l = *gpu::ParseLayout(A100(), layout);
    for (int g = 0; g < gpus; ++g) {
      for (const gpu::PlacedSlice& s : l.slices()) {
        slices.push_back(ClusterSlice{std::to_string(g) + ":" + s.ToString(), g, SliceKind{&A100(), s.profile}, true});
      }
    }
    std::vector<SliceKind> kinds;
    for (const gpu::MigProfile& p : A100().profiles) kinds.push_back(SliceKind{&A100(), &p});
    for (const std::string& m : models) {
      specs.push_back(std::make_shared<const model::FunctionSpec>(*model::BuildZooModel(m)));
      times.push_back(std::make_unique<model::ModelledBlockTimes>(*specs.back(), latency));
      costs.push_back(std::make_shared<const policy::StageCostTable>(
          policy::StageCostTable::Build(*specs.back(), *times.back(), latency, 1, kinds)));
      const int full = costs.back()->KindIndex(SliceKind{&A100(), &A100().FullProfile()});
      const double slo = slo_scale * costs.back()->ComputeMs(full, 0, specs.back()->blocks.size() - 1);
      functions.push_back(SimFunction{specs.back().get(), costs.back().get(), slo});
      served.push_back(
          policy::ServedFunction{static_cast<policy::FunctionId>(served.size()), specs.back(), costs.back(), slo});
    }
  }
  model::LatencyModel latency;
  std::vector<ClusterSlice> slices;
  std::vector<std::shared_ptr<const model::FunctionSpec>> specs;
  std::vector<std::unique_ptr<model::ModelledBlockTimes>> times;
  std::vector<std::shared_ptr<const policy::StageCostTable>> costs;
  std::vector<SimFunction> functions;
  std::vector<policy::ServedFunction> served;
};

SimResult RunFluid(const TestCluster& s, const std::vector<Arrival>& arrivals) {
  auto scheduler = std::move(policy::FluidFaaSScheduler::Create(s.slices, s.served)).value();
  return Simulate(s.slices, s.functions, arrivals, *scheduler);
}

SimResult RunExclusive(const TestCluster& s, const std::vector<Arrival>& arrivals) {
  auto scheduler = std::move(policy::ExclusiveScheduler::Create(s.slices, s.served)).value();
  return Simulate(s.slices, s.functions, arrivals, *scheduler);
}

void ExpectConserved(const SimResult& r, size_t arrivals) {
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  ASSERT_EQ(r.requests.size(), arrivals);
  for (const RequestRecord& q : r.requests) {
    ASSERT_NE(q.outcome, Outcome::kPending) << "a request never ended";
    if (q.outcome == Outcome::kHit || q.outcome == Outcome::kMiss) {
      EXPECT_EQ(q.finished - q.arrival, q.queue + q.load + q.compute + q.transfer);
      EXPECT_EQ(q.outcome == Outcome::kHit, q.finished <= q.deadline);
    }
  }
  for (size_t s = 0; s < r.slice_busy.size(); ++s) {
    EXPECT_LE(r.slice_busy[s], r.slice_active[s] + Seconds(1));
    EXPECT_LE(r.slice_active[s], r.horizon);
  }
}

TEST(SimulatorTest, SameInputsSameResults) {
  TestCluster s(2, "1g.10gb+2g.20gb+4g.40gb", {"resnet50", "bert-base", "vit-b16"});
  const auto arrivals =
      GenerateWorkload({.rate_rps = 80, .cv = 2, .functions = 3, .duration = Seconds(120), .seed = 3});
  const SimResult a = RunFluid(s, arrivals);
  const SimResult b = RunFluid(s, arrivals);
  ASSERT_EQ(a.requests.size(), b.requests.size());
  for (size_t i = 0; i < a.requests.size(); ++i) {
    ASSERT_EQ(a.requests[i].outcome, b.requests[i].outcome) << i;
    ASSERT_EQ(a.requests[i].finished, b.requests[i].finished) << i;
    ASSERT_EQ(a.requests[i].instance, b.requests[i].instance) << i;
  }
  EXPECT_EQ(a.events, b.events);
}

// The totals a run folds in as requests end are what its records add up to.
void ExpectTotalsOfRecords(const SimResult& r) {
  RequestTotals sum;
  sum.functions.resize(r.totals.functions.size());
  for (const RequestRecord& q : r.requests) sum.Add(q);
  EXPECT_EQ(r.totals.requests, static_cast<int64_t>(r.requests.size()));
  EXPECT_EQ(r.totals.hits, sum.hits);
  EXPECT_EQ(r.totals.late, sum.late);
  EXPECT_EQ(r.totals.rejected, sum.rejected);
  EXPECT_EQ(r.totals.failed, sum.failed);
  EXPECT_DOUBLE_EQ(r.totals.all_ms, sum.all_ms);
  EXPECT_EQ(r.totals.completed.Quantile(0.99), sum.completed.Quantile(0.99));
  for (size_t f = 0; f < sum.functions.size(); ++f) {
    EXPECT_EQ(r.totals.functions[f].hits, sum.functions[f].hits) << f;
    EXPECT_EQ(r.totals.functions[f].rejected, sum.functions[f].rejected) << f;
  }
}

TEST(SimulatorTest, AStreamWithoutRecordsComesToTheSameTotalsAsKeptRecords) {
  // Faults, noise and slices taken by other tenants: every way a request ends, and the slice taking whose end
  // a stream only learns at its last arrival.
  TestCluster s(2, "1g.10gb+2g.20gb+4g.40gb", {"resnet50", "bert-base", "vit-b16", "llama2-7b"});
  const WorkloadSpec spec{.rate_rps = 120, .cv = 3, .functions = 4, .duration = Seconds(150), .seed = 5};
  const std::vector<Arrival> arrivals = GenerateWorkload(spec);
  SimOptions options;
  options.seed = 9;
  options.faults = Faults{.load = 0.05, .stage = 0.002, .worker = 0.002};
  options.exec_noise_cv = 0.3;
  options.take = SliceTaking{Seconds(20), Seconds(30)};
  auto kept_scheduler = std::move(policy::FluidFaaSScheduler::Create(s.slices, s.served)).value();
  const SimResult kept = Simulate(s.slices, s.functions, arrivals, *kept_scheduler, options);
  ExpectConserved(kept, arrivals.size());
  ExpectTotalsOfRecords(kept);

  options.keep_records = false;
  WorkloadGenerator generator(spec);
  const ArrivalStream stream = [&generator] { return generator.Next(); };
  auto streamed_scheduler = std::move(policy::FluidFaaSScheduler::Create(s.slices, s.served)).value();
  const SimResult streamed = Simulate(s.slices, s.functions, stream, *streamed_scheduler, options);
  EXPECT_TRUE(streamed.errors.empty());
  EXPECT_TRUE(streamed.requests.empty());
  EXPECT_EQ(streamed.events, kept.events);
  EXPECT_EQ(streamed.horizon, kept.horizon);
  EXPECT_EQ(streamed.arrival_span, kept.arrival_span);
  EXPECT_GT(streamed.slices_taken, 0);
  EXPECT_EQ(streamed.slices_taken, kept.slices_taken);
  EXPECT_EQ(streamed.workers_lost, kept.workers_lost);
  EXPECT_EQ(streamed.totals.requests, kept.totals.requests);
  EXPECT_EQ(streamed.totals.hits, kept.totals.hits);
  EXPECT_EQ(streamed.totals.rejected, kept.totals.rejected);
  EXPECT_EQ(streamed.totals.failed, kept.totals.failed);
  EXPECT_GT(streamed.totals.failed, 0);
  EXPECT_DOUBLE_EQ(streamed.totals.queue_ms, kept.totals.queue_ms);
  EXPECT_EQ(streamed.totals.completed.Quantile(0.5), kept.totals.completed.Quantile(0.5));
  EXPECT_EQ(streamed.slice_busy, kept.slice_busy);
}

TEST(SimulatorTest, EveryRequestEndsExactlyOnceUnderEachPolicy) {
  TestCluster s(2, "1g.10gb+2g.20gb+4g.40gb", {"resnet50", "bert-base", "vit-b16", "llama2-7b"});
  const auto arrivals = GenerateWorkload({.rate_rps = 150,
                                          .cv = 3,
                                          .diurnal_amplitude = 0.5,
                                          .diurnal_period = Seconds(60),
                                          .functions = 4,
                                          .duration = Seconds(180),
                                          .seed = 8});
  const SimResult fluid = RunFluid(s, arrivals);
  ExpectConserved(fluid, arrivals.size());
  ExpectTotalsOfRecords(fluid);
  const SimResult exclusive = RunExclusive(s, arrivals);
  ExpectConserved(exclusive, arrivals.size());
  size_t hits = 0;
  for (const RequestRecord& q : fluid.requests) hits += q.outcome == Outcome::kHit;
  EXPECT_GT(hits, arrivals.size() / 2);
}

TEST(SimulatorTest, PipelinesServeWhatNoSingleSliceHoldsAndExclusiveNeverPipelines) {
  // No slice of this layout holds llama2-13b (fp16, 24.8 GiB) alone.
  TestCluster s(1, "2g.20gb+2g.20gb+2g.20gb+1g.10gb", {"llama2-13b"}, 6);
  const auto arrivals = GenerateWorkload({.rate_rps = 1, .duration = Seconds(120), .seed = 2});
  const SimResult fluid = RunFluid(s, arrivals);
  ExpectConserved(fluid, arrivals.size());
  EXPECT_GE(fluid.pipelines, 1);
  size_t served = 0;
  for (const RequestRecord& q : fluid.requests) {
    if (q.outcome == Outcome::kRejected) continue;
    ++served;
    EXPECT_GT(q.transfer, Duration{0});  // it crossed stages
  }
  EXPECT_GT(served, arrivals.size() * 3 / 4);

  const SimResult exclusive = RunExclusive(s, arrivals);
  ExpectConserved(exclusive, arrivals.size());
  EXPECT_EQ(exclusive.pipelines, 0);
  EXPECT_EQ(exclusive.launches, 0);
  for (const RequestRecord& q : exclusive.requests) EXPECT_EQ(q.outcome, Outcome::kRejected);
}

TEST(SimulatorTest, AnSloMarginMakesTheSchedulerPlanToFinishEarlyAndHitsAreStillJudgedAtTheSlo) {
  // The daemon's --slo-margin, mirrored so that its simulated row plans the same way: with no noise a request the
  // scheduler admits finishes by its planned deadline, 20% of the SLO early.
  TestCluster s(1, "1g.10gb+2g.20gb+4g.40gb", {"resnet50", "bert-base"});
  const auto arrivals =
      GenerateWorkload({.rate_rps = 400, .cv = 2, .functions = 2, .duration = Seconds(60), .seed = 5});
  SimOptions options;
  options.slo_margin = 0.2;
  auto scheduler = std::move(policy::FluidFaaSScheduler::Create(s.slices, s.served)).value();
  const SimResult with = Simulate(s.slices, s.functions, arrivals, *scheduler, options);
  ExpectConserved(with, arrivals.size());
  const SimResult without = RunFluid(s, arrivals);
  int64_t hits_with = 0, hits_without = 0, late_in_margin = 0;
  for (const RequestRecord& q : with.requests) {
    hits_with += q.outcome == Outcome::kHit;
    const double slo = s.functions[q.function].slo_ms;
    if (q.outcome == Outcome::kHit && ToMillis(q.finished - q.arrival) > 0.8 * slo + 1e-3) ++late_in_margin;
  }
  for (const RequestRecord& q : without.requests) hits_without += q.outcome == Outcome::kHit;
  EXPECT_EQ(late_in_margin, 0) << "a request finished inside the margin";
  EXPECT_GT(hits_with, 0);
  EXPECT_LT(hits_with, hits_without) << "planning for tighter deadlines turns more away at this load";
}

}  // namespace
}  // namespace fluidfaas::sim
