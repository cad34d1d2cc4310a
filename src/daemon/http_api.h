// HttpApi: the node daemon's HTTP surface on cpp-httplib.
//
//   Open Inference Protocol (KServe v2), so existing clients work:
//     GET  /v2/health/live, /v2/health/ready, /v2 (server metadata), /v2/models/{m}, /v2/models/{m}/ready
//     POST /v2/models/{m}/infer              JSON body: one input, shape [1, ...] (one sample: the node batches)
//     POST /v2/repository/index, /v2/repository/models/{m}/load, /unload   (model repository extension: the
//                                            node's function directories (--repository), then zoo models)
//   FluidFaaS's own:
//     GET  /v1/node                          slices, residents, instances and pipelines, host memory
//     GET  /v1/functions, DELETE /v1/functions/{name}
//     POST /v1/functions {"model" | "directory", "name", "slo_ms", "max_batch", "time_scale"}
//     GET  /metrics                          Prometheus text format
//
// Errors are {"error": "...", "code": "..."}: 400 bad body, shape or datatype (naming the input), 401 without the
// bearer token (when one is set), 404 unknown model, 413 body over the limit, 429 with Retry-After (the deadline
// cannot be met now, or the node is full), 503 (no capacity, draining, a worker lost).
//
// Thread safety: handlers run on the server's pool; the controller is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "daemon/controller.h"

namespace httplib {
class Server;
}

namespace fluidfaas::daemon {

struct HttpApiOptions {
  std::string token;                         // non-empty: deploy, delete, load and unload need "Bearer <token>"
  size_t max_body_bytes = size_t{64} << 20;  // larger bodies get 413
  // A connection holds a handler thread while it is open (keep-alive included; a handler waiting on inference
  // holds it too): threads start on demand up to this many, then new connections wait for one to close.
  size_t max_connections = 1024;
  int keep_alive_seconds = 5;  // an idle keep-alive connection is closed after this
  int listen_backlog = 1024;   // connections the kernel completes before the server accepts them
};

class HttpApi {
 public:
  HttpApi(Controller& controller, HttpApiOptions options);
  ~HttpApi();

  // Binds and serves until Stop (blocking). IoError when the address cannot be bound. port 0: any free port.
  Status Listen(const std::string& host, int port);
  // Binds now, to serve with ListenAfterBind; returns the port.
  Result<int> Bind(const std::string& host, int port);
  void ListenAfterBind();
  void Stop();

 private:
  void Routes();
  void WidenListenBacklog(int port) const;
  Controller& controller_;
  HttpApiOptions options_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace fluidfaas::daemon
