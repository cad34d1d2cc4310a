// The Open Inference Protocol's infer call without its transport, shared by the HTTP routes (http_api.cc) and the
// gRPC service (grpc_api.cc): which function a call names, the checks of its input, and the submission to the
// controller. Each transport decodes its own wire format into an api::DecodedInput and writes its own answer.
//
// Thread safety: any thread (the controller is thread-safe).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api/oip_decode.h"
#include "daemon/controller.h"

namespace fluidfaas::daemon {

// A request turned away before the controller: the HTTP status, the reason code and a message for people.
struct InferRefusal {
  int http_status = 400;
  std::string code;
  std::string message;
};

// A name from outside (a URL, a request), quoted for a message and cut at twice the longest plain name.
std::string QuotedName(const std::string& name);

// `per_sample` with a leading batch dimension of `batch` (-1 in metadata: variable).
std::vector<int64_t> WithBatch(const std::vector<int64_t>& per_sample, int64_t batch);
// The protocol's platform name of a function: an emulated zoo model or a TorchScript directory.
std::string_view Platform(const FunctionInfo& f);

// The function `model` names at `version` ("" or "1": its one version), or a 404 refusal (unknown_function,
// unknown_version), counted in fluidfaas_requests_total when `count`.
std::variant<FunctionRef, InferRefusal> ResolveModel(Controller& c, const std::string& model,
                                                     const std::string& version, bool count);

// The decode limits of an input to `f`: at most its sample size in values.
api::DecodeLimits DecodeLimitsFor(const FunctionInfo& f);

using InferDone = std::function<void(const InferResult&)>;

// Checks `input` (one sample of the function's datatype and shape; `raw` holds its bytes when it declares
// binary_data_size) and the timeout (0, 1e7] ms, then submits it: `done` runs once, later, with the outcome. A
// refusal is returned (and counted) instead, and `done` is not called.
std::optional<InferRefusal> SubmitInfer(Controller& c, const FunctionInfo& f, const api::DecodedInput& input,
                                        std::string_view raw, std::optional<double> timeout_ms, InferDone done);

// The HTTP status of an outcome that is not completed: 404, 400, 429 (deadline, overload), 500 (a stage failed),
// else 503.
int HttpStatusFor(const InferResult& r);

}  // namespace fluidfaas::daemon
