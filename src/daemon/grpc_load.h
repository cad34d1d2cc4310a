// A closed-loop load client for the gRPC Open Inference Protocol, the gRPC counterpart of wrk in
// scripts/bench-edge.sh: `connections` channels (one HTTP/2 connection each), one ModelInfer call in flight on
// each, reissued as soon as its answer comes, for `duration`. Calls are asynchronous (gRPC's callback API), so the
// client spends no thread per connection either.
//
// Thread safety: RunGrpcLoad blocks the calling thread; it may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/time.h"

namespace fluidfaas::daemon {

struct GrpcLoadOptions {
  std::string target = "127.0.0.1:8001";  // HOST:PORT
  std::string model;                      // REQUIRES: deployed on the target
  int connections = 16;                   // REQUIRES: 1..1024
  Duration duration = Seconds(10);        // REQUIRES: > 0
};

struct GrpcLoadResult {
  uint64_t completed = 0;
  uint64_t failed = 0;  // any status but OK
  double seconds = 0;
  double requests_per_s = 0;  // completed / seconds
  double p50_ms = 0;
  double p99_ms = 0;
  std::string first_error;
};

Result<GrpcLoadResult> RunGrpcLoad(const GrpcLoadOptions& options);

}  // namespace fluidfaas::daemon
