#include "daemon/http_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <type_traits>
#include <vector>

#include "api/auth.h"
#include "api/oip_decode.h"
#include "api/router.h"
#include "common/float_text.h"
#include "common/half.h"
#include "common/limits.h"
#include "common/mutex.h"
#include "common/work_queue.h"
#include "daemon/generate_api.h"
#include "daemon/inference.h"
#include "model/zoo.h"

namespace fluidfaas::daemon {
namespace {

using api::HttpRequest;
using api::HttpResponse;
using api::JsonError;
using api::JsonResponse;
using api::Responder;
using api::RouteParams;
using nlohmann::json;

// The answer to a request turned away before the controller.
HttpResponse RefusalAnswer(const InferRefusal& r) {
  return JsonError(r.http_status, r.message, r.code);
}

// The answer to a failed deploy or load: its status and reason code.
HttpResponse DeployError(const Status& st) {
  switch (st.code()) {
    case StatusCode::kAlreadyExists: return JsonError(409, st.message(), "already_exists");
    case StatusCode::kNotFound: return JsonError(404, st.message(), "not_found");
    case StatusCode::kUnavailable: return JsonError(503, st.message(), "unavailable");
    case StatusCode::kFailedPrecondition: return JsonError(400, st.message(), "failed_precondition");
    default: return JsonError(400, st.message(), "bad_input");
  }
}

json ModelMetadata(const FunctionInfo& f) {
  if (f.generative) {
    // As Triton describes an LLM for its generate extension: text in, text out.
    json params = {{"generative", true},
                   {"ttft_slo_ms", f.slo_ms},
                   {"tpot_slo_ms", f.tpot_ms},
                   {"max_positions", f.max_positions},
                   {"design_context", f.design_context},
                   {"max_prompt", f.max_prompt},
                   {"time_scale", f.time_scale},
                   {"tokenizer", f.tokenizer != nullptr && !f.tokenizer->byte_level() ? "vocabulary" : "bytes"},
                   {"vocab", f.tokenizer != nullptr ? f.tokenizer->vocab() : 256}};
    if (f.directory.empty()) {
      params["zoo_model"] = f.model;
    } else {
      params["directory"] = f.directory;
    }
    return {{"name", f.name},
            {"versions", {"1"}},
            {"platform", f.directory.empty() ? "fluidfaas_generative" : "pytorch_torchscript_generative"},
            {"parameters", params},
            {"inputs", {{{"name", "text_input"}, {"datatype", "BYTES"}, {"shape", {1}}}}},
            {"outputs", {{{"name", "text_output"}, {"datatype", "BYTES"}, {"shape", {1}}}}}};
  }
  json params = {{"slo_ms", f.slo_ms}, {"max_batch", f.max_batch}, {"time_scale", f.time_scale}};
  if (f.directory.empty()) {
    params["zoo_model"] = f.model;
  } else {
    params["directory"] = f.directory;
  }
  return {{"name", f.name},
          {"versions", {"1"}},
          {"platform", Platform(f)},
          {"parameters", params},
          {"inputs", {{{"name", "input"}, {"datatype", f.datatype}, {"shape", WithBatch(f.input_shape, -1)}}}},
          {"outputs", {{{"name", "output"}, {"datatype", f.datatype}, {"shape", WithBatch(f.output_shape, -1)}}}}};
}

// Appends `text` as a JSON string. Names and ids are plain ASCII almost always; anything else is escaped, invalid
// UTF-8 replaced, by nlohmann's writer.
void AppendJsonString(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

// Appends the shortest decimal that reads back as `x` (std::to_chars); null when not finite, as nlohmann writes it.
template <typename Number>
void AppendNumber(std::string& out, Number x) {
  if constexpr (std::is_floating_point_v<Number>) {
    if (!std::isfinite(x)) {
      out += "null";
      return;
    }
  }
  char digits[32];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, x).ptr);
}

// The output's values as a JSON array, each the shortest decimal that reads back as the same float; a value that is
// not finite is written as 0. Written directly (common/float_text.h): building a json array of the values and
// printing it took a third of the daemon's time per request.
void AppendOutputData(std::string& out, const InferResult& r, const FunctionInfo& f) {
  const bool half = f.datatype == "FP16";
  const size_t n = r.output.size() / (half ? 2 : 4);
  const size_t start = out.size();
  out.resize(start + n * (kMaxFloatText + 1) + kFloatTextRoom + 2);
  char* p = out.data() + start;
  *p++ = '[';
  for (size_t i = 0; i < n; ++i) {
    float x = 0;
    if (half) {
      uint16_t h;
      std::memcpy(&h, r.output.data() + i * 2, 2);
      x = HalfToFloat(h);
    } else {
      std::memcpy(&x, r.output.data() + i * 4, 4);
    }
    if (i > 0) *p++ = ',';
    p = WriteShortestFloat(p, std::isfinite(x) ? x : 0.0f);
  }
  *p++ = ']';
  out.resize(static_cast<size_t>(p - out.data()));
}

// A JSON body of a control route: empty (null), an object, or an error answer.
std::optional<json> ControlBody(const HttpRequest& req, size_t limit, const Responder& responder) {
  if (req.body.size() > limit) {
    responder.Send(JsonError(413, "the body is over " + std::to_string(limit) + " bytes", "body_too_large"));
    return std::nullopt;
  }
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return json();
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    responder.Send(JsonError(400, "the body is not a JSON object", "bad_input"));
    return std::nullopt;
  }
  return body;
}

}  // namespace

struct HttpApi::Routes {
  Controller& c;
  const HttpApiOptions& options;
  api::Router router;
  // Deploys build cost tables (and may inspect a TorchScript directory through a worker, about a second): they run
  // here, one at a time, off the loop thread, and answer when done (those asked for before the API stops too).
  WorkQueue deployer;

  Routes(Controller& controller, const HttpApiOptions& o) : c(controller), options(o) {
    Health();
    Models();
    AddGenerateRoutes(router, c, options.max_control_body_bytes);
    Repository();
    Node();
  }

  // The function a models route names, with its version checked; answers 404 itself when there is none.
  FunctionRef Model(const RouteParams& p, const Responder& r, bool count) {
    auto resolved = ResolveModel(c, p[0], p.size() > 1 ? p[1] : "", count);
    if (auto* refusal = std::get_if<InferRefusal>(&resolved)) {
      r.Send(RefusalAnswer(*refusal));
      return nullptr;
    }
    return std::get<FunctionRef>(std::move(resolved));
  }

  void Health() {
    router.Add("GET", "/v2/health/live", [](HttpRequest&&, const RouteParams&, const Responder& r) {
      r.Send(JsonResponse(200, {{"live", true}}));
    });
    router.Add("GET", "/v2/health/ready", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
      const bool ready = !c.draining();
      r.Send(JsonResponse(ready ? 200 : 503, {{"ready", ready}}));
    });
    router.Add("GET", "/v2", [](HttpRequest&&, const RouteParams&, const Responder& r) {
      r.Send(JsonResponse(200, {{"name", "fluidfaas"},
                                {"version", "0.1.0"},
                                {"extensions", {"model_repository", "binary_tensor_data", "generate"}}}));
    });
  }

  void Models() {
    for (const char* base : {"/v2/models/{}", "/v2/models/{}/versions/{}"}) {
      const std::string b = base;
      router.Add("GET", b, [this](HttpRequest&&, const RouteParams& p, const Responder& r) {
        if (auto f = Model(p, r, false)) r.Send(JsonResponse(200, ModelMetadata(*f)));
      });
      router.Add("GET", b + "/ready", [this](HttpRequest&&, const RouteParams& p, const Responder& r) {
        if (auto f = Model(p, r, false))
          r.Send(JsonResponse(c.draining() ? 503 : 200, {{"name", f->name}, {"ready", !c.draining()}}));
      });
      router.Add(
          "POST", b + "/infer",
          [this](HttpRequest&& req, const RouteParams& p, const Responder& r) { Infer(std::move(req), p, r); },
          [this](const RouteParams& p) { return InferBodyLimit(p[0]); });
    }
  }

  // An infer call's body holds one sample: at most 32 bytes of JSON per value (or 8 raw) and 64 KiB of the rest.
  // An unknown function's is answered 404 without reading much.
  size_t InferBodyLimit(const std::string& function) const {
    const auto f = c.Function(function);
    if (!f || f->generative) return options.max_control_body_bytes;
    const size_t elems = DecodeLimitsFor(*f).max_elements;  // deployed shapes hold under 2^31 values
    return elems > (SIZE_MAX >> 6) ? options.limits.max_body_bytes : elems * 32 + (size_t{64} << 10);
  }

  void Infer(HttpRequest&& req, const RouteParams& p, Responder responder) {
    const auto f = Model(p, responder, true);
    if (!f) return;
    if (f->generative) {
      c.CountRefused(f->name, "generative");
      return responder.Send(
          JsonError(400, "'" + f->name + "' generates text: POST .../generate or /v1/completions", "generative"));
    }
    const auto refuse = [&](const std::string& message) {
      c.CountRefused(f->name, "bad_input");
      responder.Send(JsonError(400, message, "bad_input"));
    };
    // Binary tensor extension: the first Inference-Header-Content-Length bytes are the JSON, the rest tensors.
    std::string_view header = req.body;
    std::string_view binary;
    if (req.HasHeader("Inference-Header-Content-Length")) {
      const std::string_view text = req.Header("Inference-Header-Content-Length");
      size_t n = 0;
      const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (err != std::errc() || end != text.data() + text.size() || n > req.body.size()) {
        return refuse("Inference-Header-Content-Length must be a byte count within the body");
      }
      header = header.substr(0, n);
      binary = std::string_view(req.body).substr(n);
    }
    auto decoded = api::DecodeInferJson(header, DecodeLimitsFor(*f));
    if (!decoded.ok()) return refuse(decoded.status().message());
    if (decoded->inputs.size() != 1) return refuse("\"inputs\" must be an array of one tensor");
    auto refusal = SubmitInfer(c, *f, decoded->inputs[0], binary, decoded->timeout_ms,
                               [responder, f, id = decoded->id, binary_out = decoded->binary_output](
                                   const InferResult& r) { responder.Send(InferAnswer(*f, id, binary_out, r)); });
    if (refusal) responder.Send(RefusalAnswer(*refusal));
  }

  static HttpResponse InferAnswer(const FunctionInfo& f, const std::optional<std::string>& id, bool binary_out,
                                  const InferResult& r) {
    if (r.outcome != Outcome::kCompleted) {
      HttpResponse e = JsonError(HttpStatusFor(r), r.detail, r.code);
      // Worth retrying soon: the deadline or the node's limit (429), or every slice busy (503 no_capacity).
      if (e.status == 429 || r.code == "no_capacity") e.headers.emplace_back("Retry-After", "1");
      return e;
    }
    // Written directly, not through a json document: building one cost a dozen allocations per answer on the
    // control thread (perf, binary form at 16 connections).
    std::string payload;
    payload.reserve(320 + (binary_out ? r.output.size() : 0));
    payload += "{\"model_name\":";
    AppendJsonString(payload, f.name);
    payload += ",\"model_version\":\"1\"";
    if (id) {
      payload += ",\"id\":";
      AppendJsonString(payload, *id);
    }
    payload += ",\"outputs\":[{\"name\":\"output\",\"datatype\":";
    AppendJsonString(payload, f.datatype);
    payload += ",\"shape\":[1";
    for (int64_t d : f.output_shape) {
      payload += ',';
      AppendNumber(payload, d);
    }
    payload += ']';
    if (binary_out) {
      payload += ",\"parameters\":{\"binary_data_size\":";
      AppendNumber(payload, r.output.size());
      payload += '}';
    } else {
      payload += ",\"data\":";
      AppendOutputData(payload, r, f);
    }
    payload += "}],\"parameters\":{\"instance\":";
    AppendNumber(payload, r.instance);
    for (const auto& [key, value] :
         {std::pair{",\"queue_ms\":", r.queue_ms}, std::pair{",\"compute_ms\":", r.compute_ms},
          std::pair{",\"total_ms\":", r.total_ms}}) {
      payload += key;
      AppendNumber(payload, value);
    }
    payload += "}}";
    if (!binary_out) return HttpResponse{.status = 200, .body = std::move(payload)};
    const size_t header_size = payload.size();
    HttpResponse res{.status = 200, .content_type = "application/octet-stream"};
    res.headers.emplace_back("Inference-Header-Content-Length", std::to_string(header_size));
    payload.append(reinterpret_cast<const char*>(r.output.data()), r.output.size());
    res.body = std::move(payload);
    return res;
  }

  // Model repository extension: the repository is the zoo and the node's function directories (--repository);
  // a directory's name wins over a zoo model's.
  void Repository() {
    router.Add("POST", "/v2/repository/index", [this](HttpRequest&& req, const RouteParams&, const Responder& r) {
      const auto body = ControlBody(req, options.max_control_body_bytes, r);
      if (!body) return;
      std::optional<bool> ready;
      if (body->is_object() && body->contains("ready")) {
        if (!(*body)["ready"].is_boolean()) return r.Send(JsonError(400, "\"ready\" must be a boolean", "bad_input"));
        ready = (*body)["ready"].get<bool>();
      }
      json out = json::array();
      std::set<std::string> listed;
      for (const FunctionInfo& f : c.Functions()) {
        if (ready.value_or(true)) out.push_back({{"name", f.name}, {"version", "1"}, {"state", "READY"}});
        listed.insert(f.name);
      }
      auto unloaded = [&](const std::string& name) {
        if (listed.insert(name).second && !ready.value_or(false)) {
          out.push_back({{"name", name}, {"version", "1"}, {"state", "UNAVAILABLE"}, {"reason", "unloaded"}});
        }
      };
      for (const std::string& name : c.RepositoryFunctions()) unloaded(name);
      for (const model::ZooEntry& z : model::ZooModels()) unloaded(std::string(z.name));
      r.Send(JsonResponse(200, out));
    });
    router.Add("POST", "/v2/repository/models/{}/load",
               [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
                 if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
                 if (!ControlBody(req, options.max_control_body_bytes, r)) return;
                 const std::string& name = p[0];
                 if (c.Function(name)) return r.Send(JsonResponse(200, json::object()));
                 const std::vector<std::string> dirs = c.RepositoryFunctions();
                 FunctionConfig f;
                 f.name = name;
                 (std::binary_search(dirs.begin(), dirs.end(), name) ? f.directory : f.model) = name;
                 Deploy(f, r, 200);
               });
    router.Add("POST", "/v2/repository/models/{}/unload",
               [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
                 if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
                 if (!ControlBody(req, options.max_control_body_bytes, r)) return;
                 Remove(p[0], r);
               });
  }

  void Deploy(FunctionConfig f, Responder r, int ok_status) {
    deployer.Push([this, f = std::move(f), r = std::move(r), ok_status] {
      const Status st = c.Deploy(f);
      if (!st.ok()) return r.Send(DeployError(st));
      const auto info = c.Function(f.name.empty() ? f.model + f.directory : f.name);
      r.Send(JsonResponse(ok_status, ok_status == 201 && info ? ModelMetadata(*info) : json::object()));
    });
  }
  void Remove(const std::string& name, const Responder& r) {
    const Status st = c.Remove(name);
    if (!st.ok()) return r.Send(JsonError(404, "unknown model " + QuotedName(name), "unknown_function"));
    r.Send(JsonResponse(200, json::object()));
  }

  void Node() {
    router.Add("GET", "/v1/node", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
      r.Send(JsonResponse(200, c.NodeJson()));
    });
    router.Add("GET", "/v1/functions", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
      json out = json::array();
      for (const FunctionInfo& f : c.Functions()) out.push_back(ModelMetadata(f));
      r.Send(JsonResponse(200, out));
    });
    router.Add("POST", "/v1/functions", [this](HttpRequest&& req, const RouteParams&, const Responder& r) {
      if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
      const auto body = ControlBody(req, options.max_control_body_bytes, r);
      if (!body) return;
      auto f = ParseFunctionConfig(*body);
      if (!f.ok()) return r.Send(JsonError(400, f.status().message(), "bad_input"));
      Deploy(std::move(*f), r, 201);
    });
    router.Add("DELETE", "/v1/functions/{}", [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
      if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
      Remove(p[0], r);
    });
  }
};

Result<FunctionConfig> ParseFunctionConfig(const nlohmann::json& body) {
  auto text = [&body](const char* field) {
    const auto it = body.is_object() ? body.find(field) : body.end();
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!body.is_object() || text("model").empty() == text("directory").empty()) {
    return Status::InvalidArgument(
        "body: {\"model\": zoo model} or {\"directory\": a function directory of the repository}, with "
        "\"name\", \"slo_ms\", \"max_batch\", \"time_scale\"; \"generate\": true and \"tpot_ms\" for a zoo model "
        "that generates");
  }
  FunctionConfig f;
  f.model = text("model");
  f.directory = text("directory");
  f.name = text("name");
  if (body.contains("generate")) {
    if (!body["generate"].is_boolean()) return Status::InvalidArgument("generate must be a boolean");
    f.generate = body["generate"].get<bool>();
  }
  if (body.contains("tpot_ms")) {
    if (!body["tpot_ms"].is_number()) return Status::InvalidArgument("tpot_ms must be a number");
    f.tpot_ms = body["tpot_ms"].get<double>();
    FF_RETURN_IF_ERROR(CheckRange("tpot_ms", f.tpot_ms, 0.0, 1e6, /*open_low=*/true));
  }
  for (const char* field : {"slo_ms", "time_scale", "max_batch"}) {
    if (!body.contains(field)) continue;
    const json& v = body[field];
    const std::string name(field);
    if (name == "max_batch" ? !v.is_number_integer() : !v.is_number()) {
      return Status::InvalidArgument(name + (name == "max_batch" ? " must be an integer" : " must be a number"));
    }
    if (name == "max_batch") {
      const auto b = v.get<int64_t>();
      FF_RETURN_IF_ERROR(CheckRange("max_batch", b, 1, kMaxBatch));
      f.max_batch = static_cast<int>(b);
    } else {
      (name == "slo_ms" ? f.slo_ms : f.time_scale) = v.get<double>();
    }
  }
  return f;
}
nlohmann::json FunctionConfigJson(const FunctionConfig& f) {
  nlohmann::json j = {{"name", f.name}};
  if (f.time_scale != 1.0) j["time_scale"] = f.time_scale;
  if (!f.model.empty()) j["model"] = f.model;
  if (!f.directory.empty()) j["directory"] = f.directory;
  if (f.slo_ms > 0) j["slo_ms"] = f.slo_ms;
  if (f.max_batch > 0) j["max_batch"] = f.max_batch;
  if (f.generate) j["generate"] = true;
  if (f.tpot_ms > 0) j["tpot_ms"] = f.tpot_ms;
  return j;
}

HttpApi::HttpApi(Controller& controller, HttpApiOptions options)
    : controller_(controller), options_(std::move(options)), routes_(std::make_unique<Routes>(controller_, options_)) {
  // The controller's metrics, then the edge's (which only this object sees).
  routes_->router.Add("GET", "/metrics", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
    r.Send(HttpResponse{.status = 200,
                        .content_type = "text/plain; version=0.0.4",
                        .body = controller_.MetricsText(server_->Stats().refusals) + EdgeMetrics()});
  });
  const api::Router& router = routes_->router;
  server_ = std::make_unique<api::HttpServer>(
      options_.limits, [&router](HttpRequest&& req, Responder r) { router.Handle(std::move(req), std::move(r)); },
      [this, &router](std::string_view method, std::string_view target) {
        return router.BodyLimit(method, target, options_.max_control_body_bytes);
      },
      options_.loop);
}

HttpApi::~HttpApi() {
  Stop();
}

Result<int> HttpApi::Start(const std::string& host, int port) {
  return server_->Start(host, port);
}

void HttpApi::Stop() {
  server_->Stop();
}

api::EdgeStats HttpApi::EdgeStats() const {
  return server_->Stats();
}

std::string HttpApi::EdgeMetrics() const {
  const api::EdgeStats s = server_->Stats();
  std::string o;
  const auto metric = [&o](const char* name, const char* type, const char* help, uint64_t v) {
    o += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n' + name + ' ' +
         std::to_string(v) + '\n';
  };
  metric("fluidfaas_http_connections", "gauge", "Open HTTP connections.", s.connections_open);
  metric("fluidfaas_http_connections_accepted_total", "counter", "HTTP connections accepted.", s.connections_accepted);
  metric("fluidfaas_http_connections_evicted_total", "counter",
         "Idle HTTP connections closed to make room for a new one.", s.connections_evicted);
  metric("fluidfaas_http_idle_closed_total", "counter", "HTTP connections closed after the idle timeout.",
         s.idle_closed);
  metric("fluidfaas_http_requests_total", "counter", "HTTP requests whose headers were read.", s.requests);
  metric("fluidfaas_http_streams_total", "counter", "Answers streamed (server-sent events).", s.streams);
  metric("fluidfaas_http_streams_cut_total", "counter", "Streams whose connection closed before their end.",
         s.streams_cut);
  metric("fluidfaas_http_abandoned_total", "counter",
         "Requests answered whole whose client left first (a generation: its sequence stopped).", s.abandoned);
  metric("fluidfaas_http_inflight_bytes", "gauge", "Request body bytes held by the edge.", s.inflight_bytes);
  o += "# HELP fluidfaas_http_refusals_total Requests or connections the edge refused, by code.\n"
       "# TYPE fluidfaas_http_refusals_total counter\n";
  for (const auto& [code, n] : s.refusals) {
    o += "fluidfaas_http_refusals_total{code=\"" + code + "\"} " + std::to_string(n) + '\n';
  }
  return o;
}

}  // namespace fluidfaas::daemon
