// NodeTable: the gateway's view of the cluster, built from the nodes' reports (cluster/report.h), and the routing
// of a request to a node by policy::ClusterRouter over it.
//
// A node is healthy while its last report is younger than `silence` (default 2 s, four missed 0.5 s reports) and
// it is not draining; the table ages reports itself, on its own clock, because a JetStream key-value watcher hears
// nothing when a key expires (nats-server 2.9). A node that the gateway could not reach is marked unreachable
// until its next report. Functions are learned from the reports (name, zoo model, SLO): a zoo model's costs come
// from the latency model on A100-80GB MIG kinds (policy::ServeZooModel, as the nodes price them), so the router
// can judge where a cold start fits; a TorchScript directory's function has no costs and is routed by hot
// instances and warm copies only, as are slices of other GPU types.
//
// Pure of I/O: the gateway feeds it reports and times; tests do the same.
//
// Thread safety: every method locks; Route may run on any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/report.h"
#include "common/mutex.h"
#include "common/time.h"
#include "model/latency_model.h"
#include "policy/cluster_router.h"
#include "policy/serve_function.h"

namespace fluidfaas::cluster {

struct RouteChoice {
  std::string node;
  std::string advertise;  // HOST:PORT
};

class NodeTable {
 public:
  explicit NodeTable(policy::Routing routing = policy::Routing::kWarmFirst, Duration silence = Seconds(2));

  // A node's report arrived at `now` (a newer one replaces it; an older sequence number from the same run of the
  // node is ignored).
  void Apply(const NodeReport& report, TimePoint now);
  // The node left (its key was deleted).
  void Remove(const std::string& node);
  // The gateway could not reach the node: not routed to until its next report.
  void MarkUnreachable(const std::string& node);
  // The node turned a call of `function` away before running it (429: its deadline or its limit; 503: no slice):
  // until its next report, the router takes its instances of the function as unable to finish in time.
  void MarkBusy(const std::string& node, const std::string& function);
  // A request of `function` sent to / answered by the node (its outstanding count, which the router weighs; a
  // send is also charged to the function's expected finish there until the next report: ClusterRouter::ChargeMs).
  void Sent(const std::string& node, const std::string& function);
  void Answered(const std::string& node);

  // The node for a request of `function` (a name) with `room_ms` before its deadline, or nullopt when the function
  // is unknown or no node is known. `avoid`: nodes already tried for this request.
  std::optional<RouteChoice> Route(const std::string& function, double room_ms, uint64_t request, TimePoint now,
                                   const std::vector<std::string>& avoid = {});
  // The function's SLO as its nodes report it (0: unknown).
  double SloMs(const std::string& function) const;

  bool Healthy(const std::string& node, TimePoint now) const;
  // The node's HOST:PORT as its last report gave it ("" when unknown).
  std::string Address(const std::string& node) const;
  size_t healthy_nodes(TimePoint now) const;
  // Every function some node reports, and whether a healthy node serves it.
  std::map<std::string, bool> Functions(TimePoint now) const;
  // Nodes whose reports stopped (silent past the silence) since the last call, each named once per silence, with
  // their addresses: the gateway gives up on the calls it has in flight there. None while no node at all is heard
  // (then NATS, not the nodes, is the likelier fault).
  std::vector<std::pair<std::string, std::string>> NewlySilent(TimePoint now);
  // /v1/cluster: nodes (health, age of their report, address, free slices, open requests) and each function's
  // instances per node.
  nlohmann::json Json(TimePoint now) const;

 private:
  static constexpr size_t kNoId = SIZE_MAX;
  struct Node {
    NodeReport report;
    TimePoint heard;
    bool unreachable = false;
    int64_t outstanding = 0;    // sent by this gateway, not answered
    size_t id = kNoId;          // in the index
    bool silence_seen = false;  // NewlySilent named it; cleared by its next report
  };
  policy::NodeView ViewLocked(const Node& n, TimePoint now) const REQUIRES(mu_);
  bool HealthyLocked(const Node& n, TimePoint now) const REQUIRES(mu_);
  void LearnLocked(const NodeReport& report) REQUIRES(mu_);
  int KindLocked(const std::string& gpu_model, const std::string& profile) const REQUIRES(mu_);

  const policy::Routing routing_;
  const Duration silence_;
  mutable Mutex mu_;
  std::map<std::string, Node> nodes_ GUARDED_BY(mu_);
  // The router's form of the nodes: a node's view is indexed when its report arrives (policy::ClusterIndex: a call
  // to a function held with room reads only its holders).
  policy::ClusterIndex index_ GUARDED_BY(mu_){/*only_listed=*/true};
  std::vector<Node*> by_id_ GUARDED_BY(mu_);  // index ids to nodes (null: removed; ids are not reused)
  // Functions by name, with their router ids; the router is rebuilt when a function or a slice kind is learned.
  std::unordered_map<std::string, uint32_t> function_ids_ GUARDED_BY(mu_);
  // Zoo models' cost tables, once per model; the router points into them (a directory's function has none).
  std::map<std::string, std::shared_ptr<const policy::StageCostTable>> costs_by_model_ GUARDED_BY(mu_);
  std::vector<double> slo_ms_ GUARDED_BY(mu_);
  std::vector<policy::SliceKind> kinds_;  // A100-80GB's MIG profiles
  std::unique_ptr<policy::ClusterRouter> router_ GUARDED_BY(mu_);
  model::LatencyModel latency_;
};

}  // namespace fluidfaas::cluster
