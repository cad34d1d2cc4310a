// What the node's gRPC service (daemon/grpc_api.h) and the gateway's (cluster/gateway_grpc.h) share: a refusal's
// gRPC status, and starting and stopping the server.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <memory>
#include <string>

#include "common/result.h"

namespace fluidfaas::daemon {

// The gRPC status of an Open Inference Protocol refusal, from its HTTP status and reason code; the message names the
// reason code first ("deadline_unreachable: ...").
inline grpc::Status GrpcStatusFor(int http_status, const std::string& code, const std::string& message) {
  grpc::StatusCode c = grpc::StatusCode::INVALID_ARGUMENT;
  switch (http_status) {
    case 401: c = grpc::StatusCode::UNAUTHENTICATED; break;
    case 404: c = grpc::StatusCode::NOT_FOUND; break;
    case 413:
    case 429: c = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case 500: c = grpc::StatusCode::INTERNAL; break;
    case 502:
    case 503: c = grpc::StatusCode::UNAVAILABLE; break;
    default: break;
  }
  return grpc::Status(c, code + ": " + message);
}

// Serves `service` on host:port (0: any free port), requests up to `max_message_bytes` (larger ones get
// RESOURCE_EXHAUSTED). The server, and the bound port through `bound`; IoError when it cannot listen.
inline Result<std::unique_ptr<grpc::Server>> StartGrpcServer(grpc::Service* service, const std::string& host, int port,
                                                             size_t max_message_bytes, int& bound) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(max_message_bytes, INT32_MAX)));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) return Status::IoError("cannot listen for gRPC on " + host + ":" + std::to_string(port));
  return server;
}

// Calls still owed an answer are cancelled after a short grace. Idempotent.
inline void StopGrpcServer(std::unique_ptr<grpc::Server>& server) {
  if (!server) return;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  server.reset();
}

}  // namespace fluidfaas::daemon
