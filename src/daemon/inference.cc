#include "daemon/inference.h"

#include "common/limits.h"

namespace fluidfaas::daemon {
std::string QuotedName(const std::string& name) {
  return "'" + name.substr(0, 2 * kMaxNameLength) + (name.size() > 2 * kMaxNameLength ? "...'" : "'");
}

std::vector<int64_t> WithBatch(const std::vector<int64_t>& per_sample, int64_t batch) {
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), per_sample.begin(), per_sample.end());
  return shape;
}

std::string_view Platform(const FunctionInfo& f) {
  return f.directory.empty() ? "fluidfaas_emulated" : "pytorch_torchscript";
}

std::variant<FunctionRef, InferRefusal> ResolveModel(Controller& c, const std::string& model,
                                                     const std::string& version, bool count) {
  auto f = c.Function(model);
  if (!f) {
    if (count) c.CountRefused(model, "unknown_function");
    return InferRefusal{404, "unknown_function", "unknown model " + QuotedName(model)};
  }
  if (!version.empty() && version != "1") {
    if (count) c.CountRefused(model, "unknown_version");
    return InferRefusal{
        404, "unknown_version",
        "model " + QuotedName(model) + " has no version " + QuotedName(version) + " (its one version is \"1\")"};
  }
  return f;
}

api::DecodeLimits DecodeLimitsFor(const FunctionInfo& f) {
  api::DecodeLimits limits;
  limits.max_elements = 1;
  for (int64_t d : f.input_shape) limits.max_elements *= static_cast<size_t>(d);
  return limits;
}

std::optional<InferRefusal> SubmitInfer(Controller& c, const FunctionInfo& f, const api::DecodedInput& input,
                                        std::string_view raw, std::optional<double> timeout_ms, InferDone done) {
  const auto refuse = [&](std::string message) {
    c.CountRefused(f.name, "bad_input");
    return InferRefusal{400, "bad_input", std::move(message)};
  };
  if (timeout_ms && !CheckRange("parameters.timeout_ms", *timeout_ms, 0.0, 1e7, true).ok()) {
    return refuse("parameters.timeout_ms must be a number in (0, 1e7]");
  }
  auto bytes = api::TensorBytes(input, f.datatype, WithBatch(f.input_shape, 1), raw);
  if (!bytes.ok()) return refuse(bytes.status().message());
  c.Infer(f.name, std::move(*bytes), timeout_ms, [done = std::move(done)](const InferResult& r) { done(r); });
  return std::nullopt;
}

int HttpStatusFor(const InferResult& r) {
  if (r.code == "unknown_function") return 404;
  if (r.code == "bad_input") return 400;
  if (r.code == "deadline_unreachable" || r.code == "overloaded") return 429;
  if (r.code == "stage_failed") return 500;
  return 503;  // no_capacity, draining, load_failed, worker_lost, slice_taken, function_removed, shutdown
}

}  // namespace fluidfaas::daemon
