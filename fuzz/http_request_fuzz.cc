// The edge's request parser and checks (api::ParseHttpRequest, the same code the server runs on each request),
// then the router's path decoding on what it accepted. A refusal must be a 4xx with a code.
#include <cstdlib>
#include <variant>

#include "api/http_server.h"
#include "api/router.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fluidfaas::api::HttpLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_target_bytes = 1024;
  limits.max_body_bytes = 16384;
  const auto parsed = fluidfaas::api::ParseHttpRequest(FuzzText(data, size), limits);
  if (const auto* refusal = std::get_if<fluidfaas::api::HttpRefusal>(&parsed)) {
    if (refusal->status < 400 || refusal->status > 499 || refusal->code.empty()) std::abort();
    return 0;
  }
  const auto& request = std::get<fluidfaas::api::HttpRequest>(parsed);
  if (request.body.size() > limits.max_body_bytes) std::abort();
  (void)fluidfaas::api::PathSegments(request.target);
  (void)fluidfaas::api::JsonError(404, request.target, "not_found");
  return 0;
}
