// The gRPC status of an Open Inference Protocol refusal, from its HTTP status and reason code: the node's gRPC
// service and the gateway's answer alike. The message names the reason code first ("deadline_unreachable: ...").
#pragma once

#include <grpcpp/support/status.h>

#include <string>

namespace fluidfaas::daemon {

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

}  // namespace fluidfaas::daemon
