// GrpcApi: the Open Inference Protocol over gRPC (inference.GRPCInferenceService: ServerLive, ServerReady,
// ModelReady, ServerMetadata, ModelMetadata, ModelInfer), beside the HTTP API and sharing its infer core
// (daemon/inference.h). Served with gRPC's callback API: a ModelInfer call is handed to the controller and
// finished from the controller's answer, with no thread waiting on it.
//
// Inputs come as raw_input_contents (little-endian bytes, the form clients send by default) or as fp32_contents;
// the output is answered as raw_output_contents. parameters["timeout_ms"] (int64) is the request's deadline.
// Status codes: NOT_FOUND (unknown model or version), INVALID_ARGUMENT (bad input), RESOURCE_EXHAUSTED
// (deadline unreachable, overloaded), UNAVAILABLE (no capacity, draining, shutdown, a worker lost), INTERNAL (a
// stage failed); the message names the reason code first ("deadline_unreachable: ...").
//
// Thread safety: Start and Stop from one thread. Stop after Controller::Shutdown, which answers every open call.
#pragma once

#include <memory>
#include <string>

#include "daemon/controller.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace fluidfaas::daemon {

struct GrpcApiOptions {
  size_t max_message_bytes = size_t{64} << 20;  // a request's size; larger ones get RESOURCE_EXHAUSTED
};

class GrpcApi {
 public:
  GrpcApi(Controller& controller, GrpcApiOptions options);
  ~GrpcApi();

  // Binds host:port (0: any free port) and serves on gRPC's threads; returns the bound port. IoError when the
  // address cannot be bound.
  Result<int> Start(const std::string& host, int port);
  void Stop();

 private:
  struct Service;
  GrpcApiOptions options_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace fluidfaas::daemon
