#include "policy/cluster_router.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "gpu/mps.h"
#include "gpu/topology.h"
#include "model/zoo.h"
#include "policy/serve_function.h"

namespace fluidfaas::policy {
namespace {

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

// Router kinds: 0 = 1g.10gb, 1 = 2g.20gb, 2 = 4g.40gb.
std::vector<SliceKind> Kinds() {
  return {SliceKind{&A100(), A100().FindProfile("1g.10gb")}, SliceKind{&A100(), A100().FindProfile("2g.20gb")},
          SliceKind{&A100(), A100().FindProfile("4g.40gb")}};
}

NodeFreeSlice Free(int kind) {
  return NodeFreeSlice{kind, Kinds()[static_cast<size_t>(kind)].profile->memory_mib};
}

// Function 0: bert-base (fits any slice); function 1: llama2-13b (a 4g.40gb alone, or a pipeline).
class ClusterRouterTest : public ::testing::Test {
 protected:
  ClusterRouterTest() {
    const gpu::MpsShares shares(A100());
    for (const char* model : {"bert-base", "llama2-13b"}) {
      auto spec = std::make_shared<const model::FunctionSpec>(*model::BuildZooModel(model));
      served.push_back(*ServeZooModel(static_cast<FunctionId>(served.size()), spec, latency, shares, 5.0));
    }
  }
  ClusterRouter Make(Routing r) const {
    std::vector<RoutedFunction> fs;
    for (const ServedFunction& f : served) fs.push_back(RoutedFunction{f.costs.get(), f.slo_ms});
    return ClusterRouter(r, Kinds(), fs);
  }
  static NodeView Node(std::vector<NodeFreeSlice> free, std::vector<NodeFunction> functions = {},
                       int64_t outstanding = 0) {
    NodeView v;
    v.free = std::move(free);
    v.functions = std::move(functions);
    v.outstanding = outstanding;
    return v;
  }
  model::LatencyModel latency;
  std::vector<ServedFunction> served;
};

TEST_F(ClusterRouterTest, WarmFirstPrefersAHotInstanceWithRoomThenAWarmCopyThenTheBestFitForAColdStart) {
  const ClusterRouter r = Make(Routing::kWarmFirst);
  // Node 0: free 4g only. Node 1: free 1g, and a warm bert copy. Node 2: free 2g, hot bert finishing in 5 ms.
  std::vector<NodeView> nodes = {Node({Free(2)}), Node({Free(0)}, {NodeFunction{0, 0, 0, 1}}),
                                 Node({Free(1)}, {NodeFunction{0, 1, 5.0, 0}})};
  EXPECT_EQ(r.Route(0, 30, 1, nodes), 2u);  // hot, with room
  EXPECT_EQ(r.Route(0, 4, 1, nodes), 1u);   // the hot one would be late: the warm copy
  // No warm copy: a cold start on the smallest free slice that serves it (node 1's 1g), then node 2's 2g.
  nodes[1].functions.clear();
  EXPECT_EQ(r.Route(0, 4, 1, nodes), 1u);
  nodes[1].free.clear();
  EXPECT_EQ(r.Route(0, 4, 1, nodes), 2u);
}

TEST_F(ClusterRouterTest, AColdStartGoesWhereTheFreeSliceFitsBestAndAPipelineOnlyWhereNoSliceServesAlone) {
  const ClusterRouter r = Make(Routing::kWarmFirst);
  // bert-base fits 1g, 2g and 4g: best fit is the node whose fitting slice leaves the least memory over.
  std::vector<NodeView> nodes = {Node({Free(2)}), Node({Free(1)}), Node({Free(0), Free(2)})};
  EXPECT_EQ(r.Route(0, 1e9, 1, nodes), 2u);
  // llama2-13b: only a 4g serves it alone (node 0); a 2g + 1g (node 1) holds it as a pipeline.
  nodes = {Node({Free(1), Free(0)}), Node({Free(2)})};
  EXPECT_EQ(r.Route(1, 1e9, 1, nodes), 1u);
  nodes = {Node({Free(1), Free(0)}), Node({Free(0)})};
  EXPECT_EQ(r.Route(1, 1e9, 1, nodes), 0u);
}

TEST_F(ClusterRouterTest, AHotFunctionSpreadsToAnotherNodeWhenItsNodeWouldBeLate) {
  const ClusterRouter r = Make(Routing::kWarmFirst);
  std::vector<NodeView> nodes = {Node({}, {NodeFunction{0, 2, 3.0, 0}}), Node({Free(0)})};
  EXPECT_EQ(r.Route(0, 10, 7, nodes), 0u);
  nodes[0].functions[0].finish_ms = 50;  // its queue has grown past the deadline
  EXPECT_EQ(r.Route(0, 10, 7, nodes), 1u);
  // Nowhere else to go: the hot node, late, rather than a node with nothing.
  nodes[1].free.clear();
  EXPECT_EQ(r.Route(0, 10, 7, nodes), 0u);
}

TEST_F(ClusterRouterTest, AFunctionsLoadGathersOnTheNodeWithMostInstancesWithRoomAndABurstSpillsOver) {
  const ClusterRouter r = Make(Routing::kWarmFirst);
  // Node 0: one bert instance finishing soonest; node 1: three, a little later. Both have room: node 1.
  std::vector<NodeView> nodes = {Node({}, {NodeFunction{0, 1, 2.0, 0}}), Node({}, {NodeFunction{0, 3, 4.0, 0}})};
  EXPECT_EQ(r.Route(0, 10, 7, nodes), 1u);
  // Equal instances: the earliest finish.
  nodes[1].functions[0].hot = 1;
  EXPECT_EQ(r.Route(0, 10, 7, nodes), 0u);
  // Each request sent is charged to its node's view until the next report: a burst to node 1 (three instances)
  // fills the room its report showed, then goes on to node 0.
  nodes[1].functions[0].hot = 3;
  const double charge = r.ChargeMs(0);
  EXPECT_DOUBLE_EQ(charge, ClusterRouter::kSentShare * served[0].slo_ms);
  const double room = 4.0 + 4.5 * charge / 3;  // room for five requests on node 1
  int to_node1 = 0;
  for (uint64_t req = 0; req < 8; ++req) {
    const auto to = r.Route(0, room, req, nodes);
    ASSERT_TRUE(to);
    nodes[*to].ChargeSent(0, charge);
    to_node1 += *to == 1u;
  }
  EXPECT_EQ(to_node1, 5);
  EXPECT_DOUBLE_EQ(nodes[1].functions[0].finish_ms, 4.0 + 5 * charge / 3);
  EXPECT_DOUBLE_EQ(nodes[0].functions[0].finish_ms, 2.0 + 3 * charge);
  // A function with no instance on the node is not charged (its cold start is the node's to estimate).
  NodeView cold = Node({Free(0)});
  cold.ChargeSent(0, charge);
  EXPECT_TRUE(cold.functions.empty());
}

TEST_F(ClusterRouterTest, UnhealthyNodesAreChosenOnlyWhenNoneIsHealthy) {
  for (Routing routing : {Routing::kWarmFirst, Routing::kHashHome, Routing::kLeastLoaded}) {
    const ClusterRouter r = Make(routing);
    std::vector<NodeView> nodes = {Node({Free(2)}, {NodeFunction{0, 1, 1.0, 0}}), Node({}, {}, 50)};
    nodes[0].healthy = false;
    for (uint64_t req = 0; req < 20; ++req) EXPECT_EQ(r.Route(0, 30, req, nodes), 1u) << ToString(routing);
    nodes[1].healthy = false;
    EXPECT_TRUE(r.Route(0, 30, 1, nodes).has_value()) << ToString(routing);
  }
  EXPECT_FALSE(Make(Routing::kWarmFirst).Route(0, 30, 1, std::span<const NodeView>()).has_value());
}

TEST_F(ClusterRouterTest, HashHomeGoesHomeWhileHomeHasCapacityEvenWhenAnotherNodeHoldsTheFunction) {
  const ClusterRouter r = Make(Routing::kHashHome);
  std::vector<NodeView> nodes(4, Node({Free(2)}));
  const size_t home = *r.Route(0, 30, 1, nodes);
  for (uint64_t req = 2; req < 10; ++req) EXPECT_EQ(r.Route(0, 30, req, nodes), home);
  const size_t other = (home + 1) % nodes.size();
  nodes[other].functions = {NodeFunction{0, 1, 1.0, 0}};
  EXPECT_EQ(r.Route(0, 30, 1, nodes), home);  // OpenWhisk's rule: home first, warm or not
  // Home full: the next node along its step that has capacity.
  nodes[home].free.clear();
  const size_t next = *r.Route(0, 30, 1, nodes);
  EXPECT_NE(next, home);
  // Nothing has capacity: a healthy node drawn by the request, spread over all of them.
  for (NodeView& n : nodes) n.free.clear(), n.functions.clear();
  std::map<size_t, int> drawn;
  for (uint64_t req = 0; req < 400; ++req) ++drawn[*r.Route(0, 30, req, nodes)];
  EXPECT_EQ(drawn.size(), nodes.size());
}

TEST_F(ClusterRouterTest, LeastLoadedTakesTheFewestOutstanding) {
  const ClusterRouter r = Make(Routing::kLeastLoaded);
  std::vector<NodeView> nodes = {Node({}, {}, 5), Node({}, {}, 2), Node({}, {}, 9)};
  EXPECT_EQ(r.Route(1, 30, 1, nodes), 1u);
}

TEST_F(ClusterRouterTest, WarmFirstTiesSpreadFunctionsOverEqualNodesAndKeepEachFunctionOnOne) {
  // Identical empty nodes: each function always draws the same node, and different functions draw different ones.
  std::vector<RoutedFunction> fs;
  for (int i = 0; i < 64; ++i) fs.push_back(RoutedFunction{served[0].costs.get(), served[0].slo_ms});
  const ClusterRouter r(Routing::kWarmFirst, Kinds(), fs);
  const std::vector<NodeView> nodes(8, Node({Free(0)}));
  std::map<size_t, int> per_node;
  for (uint32_t f = 0; f < 64; ++f) {
    const size_t n = *r.Route(f, 1e9, 1, nodes);
    EXPECT_EQ(r.Route(f, 1e9, 99, nodes), n);
    ++per_node[n];
  }
  EXPECT_EQ(per_node.size(), 8u);
  for (const auto& [n, count] : per_node) EXPECT_LE(count, 20) << "node " << n;
}

// The index decides exactly as the span over the same views, whatever the cluster: random nodes (healthy or not,
// hot, late, warm or absent functions, free slices of any kind, outstanding counts), some updated and some removed
// after they were set, every routing.
TEST_F(ClusterRouterTest, AnIndexDecidesAsTheSpanOfTheSameViews) {
  std::vector<RoutedFunction> fs;
  for (int i = 0; i < 6; ++i) fs.push_back(RoutedFunction{served[i % 2].costs.get(), served[i % 2].slo_ms});
  for (Routing routing : {Routing::kWarmFirst, Routing::kHashHome, Routing::kLeastLoaded}) {
    const ClusterRouter r(routing, Kinds(), fs);
    const auto property = [&](uint64_t seed) {
      std::mt19937_64 rng(seed);
      const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
      const size_t count = 1 + static_cast<size_t>(pick(12));
      const auto random_view = [&] {
        NodeView v;
        v.healthy = pick(5) != 0;
        v.outstanding = pick(4);
        for (uint32_t f = 0; f < 6; ++f) {
          if (pick(3) == 0) continue;
          v.functions.push_back(NodeFunction{f, pick(3), static_cast<double>(pick(60)), pick(2)});
        }
        for (int k = pick(4); k > 0; --k) v.free.push_back(Free(pick(3)));
        return v;
      };
      std::vector<NodeView> views(count);
      ClusterIndex index;
      for (size_t n = 0; n < count; ++n) index.Set(n, random_view());  // set once, then replaced
      for (size_t n = 0; n < count; ++n) {
        views[n] = random_view();
        index.Set(n, views[n]);
      }
      for (uint64_t req = 0; req < 20; ++req) {
        const auto f = static_cast<uint32_t>(pick(6));
        const double room = pick(50);
        const auto to = r.Route(f, room, req, views);
        ASSERT_EQ(to, r.Route(f, room, req, index))
            << ToString(routing) << ", seed " << seed << ", function " << f << ", room " << room;
        if (to) {  // sent: charged alike in both forms
          views[*to].ChargeSent(f, r.ChargeMs(f));
          index.ChargeSent(*to, f, r.ChargeMs(f));
        }
      }
    };
    for (uint64_t seed = 1; seed <= 400; ++seed) {
      property(seed);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(RoutingTest, NamesParseAndUnknownOnesAreRefused) {
  for (const std::string& name : RoutingNames()) EXPECT_EQ(ToString(*ParseRouting(name)), name);
  EXPECT_FALSE(ParseRouting("round-robin").ok());
}

}  // namespace
}  // namespace fluidfaas::policy
