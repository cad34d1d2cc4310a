// Gateway: the cluster's front door (fluidfaas gateway). Clients speak the Open Inference Protocol over HTTP to it
// as to a node; it routes each infer call to a node with policy::ClusterRouter over the nodes' reports, which it
// watches in the JetStream key-value bucket the nodes publish to (cluster/reporter.h), and forwards the call over a
// keep-alive connection to the node's own endpoint (cluster/forwarder.h). Stateless: a restarted gateway rebuilds
// its view from the bucket (every key's latest value comes first).
//
// Routes:
//   POST /v2/models/{m}[/versions/{v}]/infer   routed and forwarded, the body and headers as they are
//   GET  /v2/models/{m}[/versions/{v}][/ready] forwarded to a node that serves the function
//   GET  /v2/health/live                       200 while the gateway runs
//   GET  /v2/health/ready                      200 with at least one healthy node, else 503
//   GET  /v1/cluster                           the nodes, their health, free slices and functions (NodeTable)
//   POST /v1/functions, DELETE /v1/functions/{f}, GET /v1/functions
//                                              deployments for the whole cluster, kept in the functions bucket that
//                                              every node follows (cluster/function_sync.h); 202: under way
//   POST /v2/repository/index {"ready"?}, /v2/repository/models/{m}/load, /unload
//                                              the model repository extension over the cluster: load and unload
//                                              are deployments to every node, as /v1/functions
//   POST /v1/async/{m}                         an asynchronous call (cluster/async_calls.h): 202 {"id"}
//   GET  /v1/async/{id}                        its state, and its answer once it has ended
//   GET  /metrics                              Prometheus text: requests by code, forwards by node, retries
// and over gRPC (GatewayOptions::grpc_host), inference.GRPCInferenceService, each call through the same routing.
//
// Failures: a node that refuses the connection is marked unreachable and the call goes to the next node the router
// picks (at most `max_tries` nodes); a node that fails after taking the call (its connection breaks) is tried once
// more elsewhere while the function's SLO since arrival allows, else the call fails 502 "node_lost". No node for
// the function: 503 "no_node" (known, none healthy) or 404 "unknown_function". Every answer carries a "code" on
// error, as a node's do.
//
// Thread safety: Start and the destructor from one thread; the rest is internal.
#pragma once

#include <memory>
#include <string>

#include "api/http_server.h"
#include "cluster/async_calls.h"
#include "cluster/forwarder.h"
#include "cluster/nats.h"
#include "cluster/node_table.h"
#include "cluster/reporter.h"

namespace fluidfaas::cluster {

struct GatewayOptions {
  NatsOptions nats;
  std::string bucket = kNodesBucket;
  policy::Routing routing = policy::Routing::kWarmFirst;
  Duration silence = Seconds(2);  // a node unheard this long is unhealthy
  std::string token;              // clients' bearer token; "": none
  api::HttpLimits limits;
  ForwarderOptions forward;
  int max_tries = 3;
  AsyncOptions async;
  // The gRPC form of the protocol (cluster/gateway_grpc.h) on grpc_host:grpc_port (0: a free port); "": none.
  std::string grpc_host;
  int grpc_port = 0;
};

class Gateway {
 public:
  // Connects to NATS, watches the nodes bucket, listens on `host`:`port` (0: a free port).
  static Result<std::unique_ptr<Gateway>> Start(GatewayOptions options, const std::string& host, int port);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  int port() const;
  int grpc_port() const;  // 0 without gRPC
  NodeTable& table();
  AsyncCalls& async();
  // The time the table's reports are aged by (NodeTable's `now`).
  TimePoint Now() const;

 private:
  struct Impl;
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fluidfaas::cluster
