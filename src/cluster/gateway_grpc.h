// GatewayGrpc: the gateway's gRPC form of the Open Inference Protocol (inference.GRPCInferenceService), as a node
// serves it (daemon/grpc_api.h). Each call is translated into the node's HTTP form and runs through the gateway's
// routing, retries and failure handling (cluster/gateway.h), so gRPC clients get the same cluster as HTTP ones:
//   ModelInfer      -> POST /v2/models/{m}/infer with the binary tensor extension (raw_input_contents or
//                      fp32_contents in; raw_output_contents out)
//   ModelMetadata   -> GET /v2/models/{m}[/versions/{v}]
//   ModelReady      -> GET /v2/models/{m}[/versions/{v}]/ready
//   ServerLive      -> true while the gateway runs; ServerReady -> a healthy node is known
// A node's refusal keeps its HTTP meaning (daemon/grpc_common.h): NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
// UNAVAILABLE (no node, node lost), the reason code first in the message. With a token, calls carry the metadata
// "authorization: Bearer <token>" (else UNAUTHENTICATED).
//
// Thread safety: Start and Stop from one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cluster/async_calls.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace fluidfaas::cluster {

class GatewayGrpc {
 public:
  struct Options {
    std::string token;                            // "": none
    size_t max_message_bytes = size_t{64} << 20;  // larger requests get RESOURCE_EXHAUSTED
  };
  GatewayGrpc(AsyncCalls::Invoke invoke, std::function<bool()> ready, Options options);
  ~GatewayGrpc();
  GatewayGrpc(const GatewayGrpc&) = delete;
  GatewayGrpc& operator=(const GatewayGrpc&) = delete;

  // Binds host:port (0: any free port); the bound port. IoError when it cannot.
  Result<int> Start(const std::string& host, int port);
  // Calls still running are cancelled after a short grace. Idempotent.
  void Stop();

 private:
  struct Service;
  Options options_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace fluidfaas::cluster
