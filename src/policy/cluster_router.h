// ClusterRouter: which node of a cluster a request goes to, from what the gateway knows of each node (its last
// report, plus the requests the gateway has sent it since). ARCHITECTURE.md's design point 2 lifted to the cluster:
// a hot instance first, then a warm copy in host memory, then a cold start where free slices fit the function
// best. The node's own scheduler then decides everything inside the node (which instance, batching, time sharing,
// pipelines); the router only picks the node. Pure: no I/O, no clock; the gateway and the simulator call the same
// object (docs/cluster.md).
//
// Policies (Routing):
//  - kWarmFirst (this project's). In order:
//    1. a node with a hot instance of the function (on a slice, loaded or loading) expected to finish a new request
//       before its deadline: the one with the most such instances, then the earliest finish. A function's load
//       gathers where its instances are: their batches fill, and the instances it no longer needs elsewhere idle
//       out and give their slices back (spreading each function by earliest finish kept surplus instances warm on
//       every node: 1.4 points behind hash-home on paper with 2 nodes, docs/cluster.md);
//    2. a node with a warm copy in host memory and a free slice that serves the function alone (a reload is a
//       host-to-device copy, no process start): the best fit;
//    3. a cold start: the node whose free slices fit the function best: one free slice that serves it alone, the
//       smallest such (best fit, as the node's scaler picks); else enough free memory over its slices for a
//       pipeline (the node's planner decides the stages);
//    4. none of these: the hot node with the earliest finish (late, or its scheduler refuses with a reason), else
//       the node with the fewest requests outstanding.
//    Ties go to a hash of (function, node), so equal nodes do not all draw the same function and one function's
//    requests keep going to the same node while it has room. Unlike hash-home routing, the hash never overrides
//    a node that already holds the function (OpenWhisk's thrashing: apache/openwhisk#3621); unlike routing that
//    sticks to the replica holding a model, a node that would finish it after the deadline is passed over for one with
//    room, so a hot function spreads over nodes when one node cannot keep up (ray-project/ray#48741).
//  - kHashHome: OpenWhisk's ShardingContainerPoolBalancer (apache/openwhisk, core/controller/.../
//    ShardingContainerPoolBalancer.scala): the home node is hash(function) mod N; nodes are tried from home with a
//    step co-prime to N (also from the hash); the first healthy node with capacity takes it: here, capacity is a
//    hot instance with room before the deadline or a free slice that serves the function alone (OpenWhisk counts
//    memory slots). With none, a healthy node drawn by the request's hash (OpenWhisk: a random healthy invoker).
//  - kLeastLoaded: the healthy node with the fewest requests outstanding (the gateway's count), ties by hash.
//
// Unhealthy nodes are never chosen while a healthy one exists.
//
// Views are reports, up to one report interval old. Between reports the caller charges each request it sends
// (ChargeSent): the function's expected finish on that node grows by ChargeMs / its instances, so a burst spills to
// the next node before the node's report says it is late, instead of all of it landing on one node.
//
// Thread safety: Route is const; views are the caller's.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "policy/stage_costs.h"

namespace fluidfaas::policy {

enum class Routing { kWarmFirst, kHashHome, kLeastLoaded };

std::string_view ToString(Routing r);
// "warm-first", "hash-home", "least-loaded"; InvalidArgument naming them otherwise.
Result<Routing> ParseRouting(std::string_view text);
std::vector<std::string> RoutingNames();

// A function on one node, as its report says.
struct NodeFunction {
  uint32_t function = 0;
  int hot = 0;           // instances on slices (loading, exclusive, time-sharing)
  double finish_ms = 0;  // the least expected time for a new request to finish on one of them: the queue and batches
                         // ahead of it, then its own run
  int warm = 0;          // copies in host memory
};

// A free slice of a node: its kind (an index into the router's kinds) and the memory a new process may use.
struct NodeFreeSlice {
  int kind = -1;
  int64_t free_mib = 0;
};

struct NodeView {
  bool healthy = true;
  std::vector<NodeFunction> functions;  // sorted by function
  std::vector<NodeFreeSlice> free;      // slices with room for a new process
  int64_t outstanding = 0;              // requests sent and not answered (the gateway's count)
  const NodeFunction* Find(uint32_t function) const;
  // A request of `function` sent here since the report: its instances' expected finish grows by charge_ms / hot.
  void ChargeSent(uint32_t function, double charge_ms);
};

// ClusterIndex: many nodes' views kept for routing at scale, with, for each function, the nodes that hold it (an
// instance on a slice or a warm copy). Routing over an index decides exactly as over the same views in a span (a
// property test checks it), but a call to a function some node holds with room looks at its holders only; only a
// cold start scans every node. Nodes are small dense integers, as positions in a span; a node not set is absent.
class ClusterIndex {
 public:
  // `only_listed`: a node is a candidate for a function only if its view lists it (the gateway's nodes list every
  // function they serve, with or without instances); else every node is (the simulator's nodes serve them all).
  explicit ClusterIndex(bool only_listed = false) : only_listed_(only_listed) {}
  bool only_listed() const { return only_listed_; }
  void Set(size_t node, NodeView view);
  void Clear(size_t node);
  // Cheap updates between reports.
  void SetHealthy(size_t node, bool healthy);
  void SetOutstanding(size_t node, int64_t outstanding);
  void ChargeSent(size_t node, uint32_t function, double charge_ms);  // NodeView::ChargeSent

  size_t size() const { return views_.size(); }  // 1 + the highest node set
  bool present(size_t node) const { return node < present_.size() && present_[node] != 0; }
  const NodeView& view(size_t node) const { return views_[node]; }
  bool any_healthy() const { return healthy_ > 0; }
  // The nodes holding `function`, ascending.
  std::span<const uint32_t> holders(uint32_t function) const;

 private:
  void Unindex(size_t node);
  bool only_listed_ = false;
  std::vector<NodeView> views_;
  std::vector<char> present_;
  size_t healthy_ = 0;  // present and healthy
  std::unordered_map<uint32_t, std::vector<uint32_t>> holders_;
};

// What the router knows of a function: its costs on every slice kind and its SLO.
struct RoutedFunction {
  const StageCostTable* costs = nullptr;  // batch 1
  double slo_ms = 0;
};

class ClusterRouter {
 public:
  // `kinds`: the slice kinds NodeFreeSlice::kind indexes (a function's costs may list them in another order).
  ClusterRouter(Routing routing, std::vector<SliceKind> kinds, const std::vector<RoutedFunction>& functions);

  // The node for a request of `function` with `room_ms` left before its deadline (the gateway's hop deducted),
  // or nullopt when `nodes` is empty. `request` only draws among nodes when nothing else tells them apart.
  std::optional<size_t> Route(uint32_t function, double room_ms, uint64_t request, std::span<const NodeView> nodes,
                              std::span<const uint32_t> excluded = {}) const;
  // The same decision over an index (absent nodes are never chosen, nor those in `excluded`: already tried).
  std::optional<size_t> Route(uint32_t function, double room_ms, uint64_t request, const ClusterIndex& nodes,
                              std::span<const uint32_t> excluded = {}) const;

  Routing routing() const { return routing_; }
  // What one request sent to a node adds to its function's expected finish there, before the node's next report:
  // kSentShare of the function's SLO (one instance; divided over the node's instances). 2% was the best of 2, 5 and
  // 10% over the simulated grid (presets x 2, 4, 8 nodes, seeds 1-4), about a request's share of a full batch.
  double ChargeMs(uint32_t function) const;
  static constexpr double kSentShare = 0.02;
  // A function more (its id: the number of functions so far), without rebuilding the others' tables.
  uint32_t AddFunction(RoutedFunction function);

 private:
  struct Fit {
    bool alone = false;     // a free slice serves it alone
    int64_t slack_mib = 0;  // alone: free memory left on the smallest such slice; else total free memory
    bool pipeline = false;  // not alone, but the free slices hold its memory between them
  };
  Fit FitOn(uint32_t function, const NodeView& node) const;
  // Over either form of the nodes (cluster_router.cc: SpanNodes, IndexNodes).
  template <typename Nodes>
  std::optional<size_t> Decide(uint32_t function, double room_ms, uint64_t request, const Nodes& nodes) const;
  template <typename Nodes>
  std::optional<size_t> WarmFirst(uint32_t function, double room_ms, const Nodes& nodes, bool healthy_only) const;
  template <typename Nodes>
  std::optional<size_t> HashHome(uint32_t function, double room_ms, uint64_t request, const Nodes& nodes) const;
  template <typename Nodes>
  std::optional<size_t> LeastLoaded(uint32_t function, const Nodes& nodes) const;
  bool HasRoom(uint32_t function, double room_ms, const NodeView& node) const;

  Routing routing_;
  std::vector<SliceKind> kinds_;
  std::vector<RoutedFunction> functions_;
  static constexpr int64_t kNever = INT64_MAX;
  std::vector<int64_t> alone_mib_;  // [function x kind]: memory it needs alone on the kind, kNever when the kind
                                    // cannot serve it within its SLO (precomputed: a decision scans every node)
  std::vector<int64_t> least_mib_;  // per function: the least memory it needs alone on any kind
};

// A 64-bit mix of two values (splitmix64): the router's hash.
uint64_t MixHash(uint64_t a, uint64_t b);

}  // namespace fluidfaas::policy
