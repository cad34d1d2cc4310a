// The cluster in the simulator: nodes with their own schedulers behind policy::ClusterRouter.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sim/experiment.h"
#include "sim/simulator.h"

namespace fluidfaas::sim {
namespace {

struct ClusterRun {
  SimResult result;
  std::vector<std::unique_ptr<policy::Scheduler>> schedulers;
};

std::unique_ptr<Preset> Serverless(int gpus) {
  PresetOptions o;
  o.gpus = gpus;
  o.functions = 24;
  return std::move(MakePreset("serverless", o)).value();
}

std::vector<Arrival> Arrivals(const Preset& p, double share, double seconds, uint64_t seed) {
  return GenerateWorkload(PresetWorkload(p, share * p.capacity_rps, SecondsF(seconds), seed));
}

SimResult RunCluster(const Preset& p, int nodes, policy::Routing routing, const std::vector<Arrival>& arrivals,
                     const SimOptions& options = {}) {
  const auto split = SplitIntoNodes(p.slices, nodes);
  std::vector<std::unique_ptr<policy::Scheduler>> owned;
  std::vector<policy::Scheduler*> schedulers;
  for (const auto& slices : split) {
    owned.push_back(std::move(MakeNodeScheduler("fluidfaas", p, slices, nodes)).value());
    schedulers.push_back(owned.back().get());
  }
  return SimulateCluster(split, p.functions, arrivals, schedulers, routing, options);
}

int64_t Hits(const SimResult& r) {
  int64_t hits = 0;
  for (const RequestRecord& q : r.requests) hits += q.outcome == Outcome::kHit;
  return hits;
}

TEST(ClusterSimTest, SplitIntoNodesGivesEachNodeWholeGpusInOrder) {
  const auto p = Serverless(8);
  const auto nodes = SplitIntoNodes(p->slices, 3);
  ASSERT_EQ(nodes.size(), 3u);
  size_t total = 0;
  int last_gpu = -1;
  for (const auto& node : nodes) {
    std::set<int> gpus;
    for (const policy::ClusterSlice& s : node) gpus.insert(s.gpu), last_gpu = std::max(last_gpu, s.gpu);
    EXPECT_GE(gpus.size(), 2u);
    EXPECT_LE(gpus.size(), 3u);
    total += node.size();
  }
  EXPECT_EQ(total, p->slices.size());
}

TEST(ClusterSimTest, OneNodeBehindTheRouterRunsAsTheNodeAlone) {
  const auto p = Serverless(2);
  const std::vector<Arrival> arrivals = Arrivals(*p, 0.5, 60, 3);
  auto scheduler = std::move(MakeNodeScheduler("fluidfaas", *p, p->slices, 1)).value();
  const SimResult alone = Simulate(p->slices, p->functions, arrivals, *scheduler);
  const SimResult cluster = RunCluster(*p, 1, policy::Routing::kWarmFirst, arrivals);
  ASSERT_TRUE(cluster.errors.empty()) << cluster.errors.front();
  EXPECT_EQ(Hits(cluster), Hits(alone));
  EXPECT_EQ(cluster.launches, alone.launches);
}

TEST(ClusterSimTest, EveryRequestEndsOnceOnSomeNodeUnderEveryRouting) {
  const auto p = Serverless(4);
  const std::vector<Arrival> arrivals = Arrivals(*p, 0.5, 60, 5);
  for (policy::Routing routing :
       {policy::Routing::kWarmFirst, policy::Routing::kHashHome, policy::Routing::kLeastLoaded}) {
    const SimResult r = RunCluster(*p, 4, routing, arrivals);
    ASSERT_TRUE(r.errors.empty()) << ToString(routing) << ": " << r.errors.front();
    ASSERT_EQ(r.requests.size(), arrivals.size());
    for (const RequestRecord& q : r.requests) ASSERT_NE(q.outcome, Outcome::kPending) << ToString(routing);
    EXPECT_EQ(r.slice_busy.size(), p->slices.size());
    EXPECT_GT(Hits(r), 0);
  }
}

// Warm-first keeps a function where its instances are: each function's completed requests run on fewer nodes'
// instances than under least-loaded routing, which scatters them and cold-starts a copy on every node.
TEST(ClusterSimTest, WarmFirstKeepsFunctionsOnTheNodesThatHoldThemAndStartsFewerInstances) {
  const auto p = Serverless(4);
  // Summed over six seeds: in a single 120 s run the hit counts of the two can fall either way.
  int64_t warm_launches = 0;
  int64_t least_launches = 0;
  int64_t warm_hits = 0;
  int64_t least_hits = 0;
  for (const uint64_t seed : {7, 8, 9, 10, 11, 12}) {
    const std::vector<Arrival> arrivals = Arrivals(*p, 0.3, 120, seed);
    const SimResult warm = RunCluster(*p, 4, policy::Routing::kWarmFirst, arrivals);
    const SimResult least = RunCluster(*p, 4, policy::Routing::kLeastLoaded, arrivals);
    warm_launches += warm.launches;
    least_launches += least.launches;
    warm_hits += Hits(warm);
    least_hits += Hits(least);
  }
  EXPECT_LT(warm_launches, least_launches);
  EXPECT_GT(warm_hits, least_hits);
}

TEST(ClusterSimTest, WithoutRecordsTheTotalsAreThoseOfTheRecords) {
  // Heavy load on few GPUs: many rejections, retried on other nodes; faults fail some requests.
  const auto p = Serverless(4);
  const auto arrivals = Arrivals(*p, 0.9, 120, 6);
  SimOptions o;
  o.seed = 3;
  o.faults = Faults{.load = 0.05, .stage = 0.002};
  const SimResult kept = RunCluster(*p, 3, policy::Routing::kWarmFirst, arrivals, o);
  o.keep_records = false;
  const SimResult streamed = RunCluster(*p, 3, policy::Routing::kWarmFirst, arrivals, o);
  EXPECT_TRUE(streamed.errors.empty());
  EXPECT_TRUE(streamed.requests.empty());
  ASSERT_EQ(kept.totals.requests, static_cast<int64_t>(arrivals.size()));
  EXPECT_EQ(streamed.totals.requests, kept.totals.requests);
  EXPECT_EQ(streamed.totals.hits, kept.totals.hits);
  EXPECT_EQ(streamed.totals.late, kept.totals.late);
  EXPECT_EQ(streamed.totals.rejected, kept.totals.rejected);
  EXPECT_EQ(streamed.totals.failed, kept.totals.failed);
  EXPECT_GT(kept.totals.rejected, 0);
  EXPECT_GT(kept.totals.failed, 0);
  EXPECT_DOUBLE_EQ(streamed.totals.all_ms, kept.totals.all_ms);
  ASSERT_EQ(streamed.ends.size(), kept.ends.size());
  for (const auto& [key, c] : kept.ends) EXPECT_EQ(streamed.ends.at(key).count, c.count);
}

TEST(ClusterSimTest, TheSameInputsGiveTheSameRun) {
  const auto p = Serverless(4);
  const std::vector<Arrival> arrivals = Arrivals(*p, 0.5, 30, 9);
  const SimResult a = RunCluster(*p, 2, policy::Routing::kWarmFirst, arrivals);
  const SimResult b = RunCluster(*p, 2, policy::Routing::kWarmFirst, arrivals);
  ASSERT_EQ(a.requests.size(), b.requests.size());
  for (size_t i = 0; i < a.requests.size(); ++i) {
    ASSERT_EQ(a.requests[i].finished, b.requests[i].finished) << i;
    ASSERT_EQ(a.requests[i].outcome, b.requests[i].outcome) << i;
  }
}

}  // namespace
}  // namespace fluidfaas::sim
