// HttpApi: the node daemon's HTTP surface, routes over the event-driven edge (api/http_server.h).
//
//   Open Inference Protocol (KServe v2), so existing clients work; {v} is the one version, "1":
//     GET  /v2/health/live, /v2/health/ready, /v2 (server metadata)
//     GET  /v2/models/{m}[/versions/{v}], /v2/models/{m}[/versions/{v}]/ready
//     POST /v2/models/{m}[/versions/{v}]/infer   one input, shape [1, ...] (one sample: the node batches); data flat
//                                            or nested; the binary tensor extension
//     POST /v2/repository/index {"ready"?}, /v2/repository/models/{m}/load, /unload   (model repository
//                                            extension: the node's function directories (--repository), then zoo
//                                            models); bodies are optional
//   FluidFaaS's own:
//     GET  /v1/node                          slices, residents, instances and pipelines, host memory
//     GET  /v1/functions, DELETE /v1/functions/{name}
//     POST /v1/functions {"model" | "directory", "name", "slo_ms", "max_batch", "time_scale",
//                         "generate", "tpot_ms"}
//   Generation (daemon/generate_api.h): POST /v2/models/{m}/generate, /generate_stream, /v1/completions,
//     /v1/chat/completions
//     GET  /metrics                          Prometheus text format (the controller's, then the edge's)
//
// Every error is {"error": "...", "code": "..."}: 400 bad body, shape or datatype (naming the input), 401 without
// the bearer token (when one is set; the scheme is case-insensitive, the token compared in constant time), 404
// unknown model or version, 405 with Allow, 408/413/414/431 from the edge's limits, 429 with Retry-After (the
// deadline cannot be met now, or the node is full), 503 (no capacity, draining, a worker lost, too many request
// bytes at once). Every infer request's end is counted in fluidfaas_requests_total.
//
// Thread safety: handlers run on the edge's loop thread and never wait; the controller answers from its thread
// (the same one when they share the loop).
#pragma once

#include <memory>
#include <string>

#include "api/http_server.h"
#include "daemon/controller.h"

namespace fluidfaas::daemon {

struct HttpApiOptions {
  std::string token;  // non-empty: deploy, delete, load and unload need "Bearer <token>"
  api::HttpLimits limits;
  size_t max_control_body_bytes = 1 << 20;  // bodies of the routes that are not infer (deploy, index): JSON trees
  // The event loop to serve on, the controller's too (ControllerOptions::loop): an infer request is then read,
  // decided and answered on one thread. REQUIRES: it outlives the API and runs until its Stop. Null: its own.
  api::EventLoop* loop = nullptr;
};

class HttpApi {
 public:
  HttpApi(Controller& controller, HttpApiOptions options);
  ~HttpApi();

  // Binds and serves on the edge's thread; returns the bound port (port 0: any free port). IoError when the address
  // cannot be bound.
  Result<int> Start(const std::string& host, int port);
  // Closes every connection and stops the edge; answers that arrive later are dropped.
  void Stop();
  api::EdgeStats EdgeStats() const;

 private:
  struct Routes;
  std::string EdgeMetrics() const;
  Controller& controller_;
  HttpApiOptions options_;
  std::unique_ptr<Routes> routes_;
  std::unique_ptr<api::HttpServer> server_;
};

// A deployment's body ({"model": zoo model} or {"directory": a repository directory}, with "name", "slo_ms",
// "max_batch", "time_scale"), checked: the node's POST /v1/functions and the cluster's functions bucket.
Result<FunctionConfig> ParseFunctionConfig(const nlohmann::json& body);
// The body ParseFunctionConfig reads back as `f` (time_scale left out at 1: a node applies its own).
nlohmann::json FunctionConfigJson(const FunctionConfig& f);

}  // namespace fluidfaas::daemon
