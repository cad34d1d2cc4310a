// The cluster router's decision (policy/cluster_router.h) at the scale the cluster issue asks for: 1,000 nodes and
// 10,000 functions, each node reporting ~40 functions with instances on its slices, ~10 warm copies and 0-3 free
// slices of 8 x A100-80GB (1g + 2g + 4g each). Each iteration routes one request of a random function with
// every node's view, as the gateway does (over a ClusterIndex) and as the simulator does (a span, every node
// scanned); p50 and p99 per decision are counters (microseconds).
//
// Target (issue "Cluster"): p99 <= 50 us at 1,000 nodes x 10,000 functions.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "cluster/node_table.h"
#include "gpu/mps.h"
#include "gpu/topology.h"
#include "model/zoo.h"
#include "policy/cluster_router.h"
#include "policy/serve_function.h"

namespace fluidfaas::policy {
namespace {

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

struct Cluster {
  model::LatencyModel latency;
  std::vector<ServedFunction> models;  // one per zoo model; functions share them
  std::vector<SliceKind> kinds;
  std::vector<RoutedFunction> functions;
  std::vector<NodeView> nodes;

  Cluster(size_t node_count, size_t function_count) {
    const gpu::MpsShares shares(A100());
    for (const char* m : {"resnet50", "vit-b16", "bert-base", "bert-large", "gpt2-xl", "llama2-7b", "llama2-13b"}) {
      auto spec = std::make_shared<const model::FunctionSpec>(*model::BuildZooModel(m));
      models.push_back(*ServeZooModel(static_cast<FunctionId>(models.size()), spec, latency, shares, 5.0));
    }
    for (const char* p : {"1g.10gb", "2g.20gb", "4g.40gb"}) kinds.push_back(SliceKind{&A100(), A100().FindProfile(p)});
    for (size_t f = 0; f < function_count; ++f) {
      const ServedFunction& m = models[f % models.size()];
      functions.push_back(RoutedFunction{m.costs.get(), m.slo_ms});
    }
    std::mt19937_64 rng(1);
    std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(function_count - 1));
    for (size_t n = 0; n < node_count; ++n) {
      NodeView v;
      for (int i = 0; i < 50; ++i) {
        NodeFunction f;
        f.function = pick(rng);
        if (i < 40) {
          f.hot = 1;
          f.finish_ms = std::uniform_real_distribution<double>(1, 200)(rng);
        } else {
          f.warm = 1;
        }
        v.functions.push_back(f);
      }
      std::sort(v.functions.begin(), v.functions.end(),
                [](const NodeFunction& a, const NodeFunction& b) { return a.function < b.function; });
      v.functions.erase(
          std::unique(v.functions.begin(), v.functions.end(),
                      [](const NodeFunction& a, const NodeFunction& b) { return a.function == b.function; }),
          v.functions.end());
      const int free = std::uniform_int_distribution<int>(0, 3)(rng);
      for (int i = 0; i < free; ++i) {
        const int k = std::uniform_int_distribution<int>(0, 2)(rng);
        v.free.push_back(NodeFreeSlice{k, kinds[static_cast<size_t>(k)].profile->memory_mib});
      }
      v.outstanding = std::uniform_int_distribution<int>(0, 100)(rng);
      nodes.push_back(std::move(v));
    }
  }
};

// `indexed`: the gateway's form (ClusterIndex: the holders of each function indexed); else the span of views the
// simulator passes, every node scanned.
void BM_Route(benchmark::State& state, Routing routing, bool indexed) {
  static const Cluster cluster(1000, 10000);
  static const ClusterIndex index = [] {
    ClusterIndex i;
    for (size_t n = 0; n < cluster.nodes.size(); ++n) i.Set(n, cluster.nodes[n]);
    return i;
  }();
  const ClusterRouter router(routing, cluster.kinds, cluster.functions);
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<uint32_t> pick(0, 9999);
  std::vector<double> us;
  uint64_t request = 0;
  for (auto _ : state) {
    const uint32_t f = pick(rng);
    const auto t0 = std::chrono::steady_clock::now();
    const auto node =
        indexed ? router.Route(f, 30, ++request, index) : router.Route(f, 30, ++request, std::span(cluster.nodes));
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(node);
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  if (!us.empty()) {
    state.counters["p50_us"] = us[us.size() / 2];
    state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  }
}

BENCHMARK_CAPTURE(BM_Route, warm_first_indexed_1000_nodes_10000_functions, Routing::kWarmFirst, true);
BENCHMARK_CAPTURE(BM_Route, warm_first_scan_1000_nodes_10000_functions, Routing::kWarmFirst, false);
BENCHMARK_CAPTURE(BM_Route, hash_home_indexed_1000_nodes_10000_functions, Routing::kHashHome, true);
BENCHMARK_CAPTURE(BM_Route, least_loaded_indexed_1000_nodes_10000_functions, Routing::kLeastLoaded, true);

// The gateway's side of the heartbeats: one node's report (45 functions, 3 free slices) parsed and applied to the
// NodeTable of 1,000 nodes, as the watcher thread does for each KV update. At 1,000 nodes x 2 Hz, CPU per second =
// 2,000 x the time per report (the counter cpu_ms_per_s).
void BM_ReportApply(benchmark::State& state) {
  cluster::NodeTable table;
  std::vector<std::string> texts;
  std::mt19937_64 rng(3);
  const char* models[] = {"resnet50", "vit-b16", "bert-base", "bert-large", "gpt2-xl", "llama2-7b", "llama2-13b"};
  for (int n = 0; n < 1000; ++n) {
    cluster::NodeReport r;
    r.node = "node-" + std::to_string(n);
    r.advertise = "10.0." + std::to_string(n / 250) + "." + std::to_string(n % 250) + ":8000";
    r.seq = 1;
    for (const char* p : {"4g.40gb", "2g.20gb", "1g.10gb"}) {
      r.slices.push_back(cluster::ReportedSlice{"0:" + std::string(p) + "@0", p, "a100-80gb", 9000});
    }
    for (int i = 0; i < 45; ++i) {
      const int f = static_cast<int>(rng() % 10000);
      r.functions.push_back(cluster::ReportedFunction{"fn-" + std::to_string(f), models[f % 7], 30.0,
                                                      static_cast<int>(rng() % 3), 12.5, 0});
    }
    texts.push_back(cluster::ToJsonText(r));
    table.Apply(*cluster::ParseNodeReport(texts.back()), TimePoint{});  // functions learned once, as in steady state
  }
  if (state.range(0) == 1) {  // the gateway's whole decision: NodeTable::Route at 1,000 nodes
    std::vector<double> us;
    uint64_t request = 0;
    for (auto _ : state) {
      const std::string f = "fn-" + std::to_string(rng() % 10000);
      const auto a = std::chrono::steady_clock::now();
      auto choice = table.Route(f, 30, ++request, TimePoint{} + Millis(100));
      const auto b = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(choice);
      us.push_back(std::chrono::duration<double, std::micro>(b - a).count());
    }
    std::sort(us.begin(), us.end());
    state.counters["p50_us"] = us[us.size() / 2];
    state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
    return;
  }
  size_t i = 0;
  int64_t t = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto r = cluster::ParseNodeReport(texts[i++ % texts.size()]);
    r->seq = 2 + static_cast<uint64_t>(t);
    table.Apply(*r, TimePoint{} + Millis(++t));
  }
  const double per_report_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(t);
  state.counters["cpu_ms_per_s_at_2000_reports"] = per_report_s * 2000 * 1e3;
}
// Arg 0: a report parsed and applied; arg 1: the gateway's routing decision over that table.
BENCHMARK(BM_ReportApply)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fluidfaas::policy

BENCHMARK_MAIN();
