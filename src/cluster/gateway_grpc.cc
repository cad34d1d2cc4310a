#include "cluster/gateway_grpc.h"

#include <grpcpp/grpcpp.h>
#include <strings.h>

#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

#include "api/auth.h"
#include "daemon/grpc_common.h"
#include "grpc_predict_v2.grpc.pb.h"

namespace fluidfaas::cluster {
namespace {

using api::HttpRequest;
using api::HttpResponse;
using nlohmann::json;

// A node's (or the gateway's) HTTP refusal as a gRPC status.
grpc::Status Refusal(const HttpResponse& r) {
  const json body = json::parse(r.body, nullptr, false);
  const std::string code = body.is_object() ? body.value("code", "") : "";
  const std::string message = body.is_object() ? body.value("error", "") : r.body.substr(0, 256);
  return daemon::GrpcStatusFor(r.status, code.empty() ? "status_" + std::to_string(r.status) : code, message);
}

std::string ModelPath(const std::string& name, const std::string& version) {
  return "/v2/models/" + name + (version.empty() ? "" : "/versions/" + version);
}

}  // namespace

struct GatewayGrpc::Service final : inference::GRPCInferenceService::CallbackService {
  Service(AsyncCalls::Invoke i, std::function<bool()> r, const Options& o)
      : invoke(std::move(i)), ready(std::move(r)), options(o) {}
  AsyncCalls::Invoke invoke;
  std::function<bool()> ready;
  const Options& options;

  using Ctx = grpc::CallbackServerContext;
  static grpc::ServerUnaryReactor* Done(Ctx* ctx, const grpc::Status& status) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  // The HTTP request a call becomes, with the caller's authorization; null when the call is not authorized.
  std::shared_ptr<HttpRequest> Request(Ctx* ctx, std::string method, std::string target) const {
    auto req = std::make_shared<HttpRequest>();
    req->method = std::move(method);
    req->target = std::move(target);
    const auto& md = ctx->client_metadata();
    if (const auto it = md.find("authorization"); it != md.end()) {
      req->headers.emplace_back("Authorization", std::string(it->second.data(), it->second.size()));
    }
    if (!api::Authorized(*req, options.token)) return nullptr;
    return req;
  }
  static grpc::Status Unauthenticated() {
    return {grpc::StatusCode::UNAUTHENTICATED, "unauthorized: the call needs 'authorization: Bearer <token>'"};
  }

  grpc::ServerUnaryReactor* ServerLive(Ctx* ctx, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* res) override {
    res->set_live(true);
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerReady(Ctx* ctx, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* res) override {
    res->set_ready(ready());
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerMetadata(Ctx* ctx, const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* res) override {
    res->set_name("fluidfaas-gateway");
    res->set_version("0.1.0");
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelReady(Ctx* ctx, const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* res) override {
    auto http = Request(ctx, "GET", ModelPath(req->name(), req->version()) + "/ready");
    if (!http) return Done(ctx, Unauthenticated());
    auto* reactor = ctx->DefaultReactor();
    invoke(std::move(http), req->name(), [reactor, res](const HttpResponse& r) {
      if (r.status == 404) return reactor->Finish(Refusal(r));
      const json body = json::parse(r.body, nullptr, false);
      res->set_ready(r.status == 200 && (!body.is_object() || body.value("ready", true)));
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* ModelMetadata(Ctx* ctx, const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* res) override {
    auto http = Request(ctx, "GET", ModelPath(req->name(), req->version()));
    if (!http) return Done(ctx, Unauthenticated());
    auto* reactor = ctx->DefaultReactor();
    invoke(std::move(http), req->name(), [reactor, res](const HttpResponse& r) {
      if (r.status != 200) return reactor->Finish(Refusal(r));
      const json m = json::parse(r.body, nullptr, false);
      if (!m.is_object())
        return reactor->Finish({grpc::StatusCode::INTERNAL, "internal: a node's metadata is not JSON"});
      res->set_name(m.value("name", ""));
      res->set_platform(m.value("platform", ""));
      for (const json& v : m.value("versions", json::array()))
        res->add_versions(v.is_string() ? v.get<std::string>() : "");
      const auto tensors = [&m](const char* field, auto add) {
        for (const json& t : m.value(field, json::array())) {
          auto* out = add();
          out->set_name(t.value("name", ""));
          out->set_datatype(t.value("datatype", ""));
          for (const json& d : t.value("shape", json::array()))
            out->add_shape(d.is_number_integer() ? d.get<int64_t>() : -1);
        }
      };
      tensors("inputs", [res] { return res->add_inputs(); });
      tensors("outputs", [res] { return res->add_outputs(); });
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* ModelInfer(Ctx* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* res) override {
    auto http = Request(ctx, "POST", ModelPath(req->model_name(), req->model_version()) + "/infer");
    if (!http) return Done(ctx, Unauthenticated());
    // The binary tensor extension: a JSON header naming each input's bytes, then the bytes in order.
    json inputs = json::array();
    std::string tensors;
    if (req->raw_input_contents_size() > 0 && req->raw_input_contents_size() != req->inputs_size()) {
      return Done(ctx, daemon::GrpcStatusFor(400, "bad_input", "raw_input_contents must hold one entry per input"));
    }
    for (int i = 0; i < req->inputs_size(); ++i) {
      const auto& in = req->inputs(i);
      std::string bytes;
      if (req->raw_input_contents_size() > 0) {
        bytes = req->raw_input_contents(i);
      } else if (in.datatype() == "FP32" && in.has_contents()) {
        const auto& v = in.contents().fp32_contents();
        bytes.resize(static_cast<size_t>(v.size()) * sizeof(float));
        if (!bytes.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
      } else {
        return Done(ctx, daemon::GrpcStatusFor(400, "bad_input",
                                               "input '" + in.name() +
                                                   "': give raw_input_contents, or fp32_contents "
                                                   "for an FP32 input"));
      }
      inputs.push_back({{"name", in.name()},
                        {"datatype", in.datatype()},
                        {"shape", std::vector<int64_t>(in.shape().begin(), in.shape().end())},
                        {"parameters", {{"binary_data_size", bytes.size()}}}});
      tensors += bytes;
    }
    json header = {{"inputs", inputs}, {"parameters", {{"binary_data_output", true}}}};
    if (!req->id().empty()) header["id"] = req->id();
    if (const auto it = req->parameters().find("timeout_ms"); it != req->parameters().end()) {
      if (it->second.parameter_choice_case() != inference::InferParameter::kInt64Param) {
        return Done(ctx, daemon::GrpcStatusFor(400, "bad_input", "parameters.timeout_ms must be an int64 parameter"));
      }
      header["parameters"]["timeout_ms"] = it->second.int64_param();
    }
    const std::string head = header.dump(-1, ' ', false, json::error_handler_t::replace);
    http->headers.emplace_back("Content-Type", "application/octet-stream");
    http->headers.emplace_back("Inference-Header-Content-Length", std::to_string(head.size()));
    http->body = head + tensors;
    auto* reactor = ctx->DefaultReactor();
    invoke(std::move(http), req->model_name(), [reactor, res](const HttpResponse& r) {
      if (r.status != 200) return reactor->Finish(Refusal(r));
      size_t head_bytes = r.body.size();
      for (const auto& [name, value] : r.headers) {
        if (strcasecmp(name.c_str(), "Inference-Header-Content-Length") != 0) continue;
        size_t n = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec == std::errc() && end == value.data() + value.size() && n <= r.body.size()) head_bytes = n;
      }
      const json answer =
          json::parse(std::string_view(r.body).substr(0, std::min(head_bytes, r.body.size())), nullptr, false);
      if (!answer.is_object())
        return reactor->Finish({grpc::StatusCode::INTERNAL, "internal: a node's answer is not JSON"});
      res->set_model_name(answer.value("model_name", ""));
      res->set_model_version(answer.value("model_version", ""));
      res->set_id(answer.value("id", ""));
      size_t at = head_bytes;
      for (const json& o : answer.value("outputs", json::array())) {
        auto* out = res->add_outputs();
        out->set_name(o.value("name", ""));
        out->set_datatype(o.value("datatype", ""));
        for (const json& d : o.value("shape", json::array()))
          out->add_shape(d.is_number_integer() ? d.get<int64_t>() : 0);
        const size_t n = o.contains("parameters") ? o["parameters"].value("binary_data_size", size_t{0}) : 0;
        if (at + n > r.body.size()) {
          return reactor->Finish({grpc::StatusCode::INTERNAL, "internal: a node's answer is shorter than it says"});
        }
        res->add_raw_output_contents(r.body.data() + at, n);
        at += n;
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }
};

GatewayGrpc::GatewayGrpc(AsyncCalls::Invoke invoke, std::function<bool()> ready, Options options)
    : options_(std::move(options)),
      service_(std::make_unique<Service>(std::move(invoke), std::move(ready), options_)) {}

GatewayGrpc::~GatewayGrpc() {
  Stop();
}

Result<int> GatewayGrpc::Start(const std::string& host, int port) {
  int bound = 0;
  FF_ASSIGN_OR_RETURN(server_, daemon::StartGrpcServer(service_.get(), host, port, options_.max_message_bytes, bound));
  return bound;
}

void GatewayGrpc::Stop() {
  daemon::StopGrpcServer(server_);
}

}  // namespace fluidfaas::cluster
