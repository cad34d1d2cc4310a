#include "daemon/grpc_api.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "daemon/grpc_common.h"
#include "daemon/inference.h"
#include "grpc_predict_v2.grpc.pb.h"

namespace fluidfaas::daemon {

namespace {

grpc::Status ToGrpc(const InferRefusal& r) {
  return GrpcStatusFor(r.http_status, r.code, r.message);
}

}  // namespace

struct GrpcApi::Service final : inference::GRPCInferenceService::CallbackService {
  explicit Service(Controller& controller) : c(controller) {}
  Controller& c;

  using Ctx = grpc::CallbackServerContext;
  static grpc::ServerUnaryReactor* Done(Ctx* ctx, const grpc::Status& status) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  grpc::ServerUnaryReactor* ServerLive(Ctx* ctx, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* res) override {
    res->set_live(true);
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerReady(Ctx* ctx, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* res) override {
    res->set_ready(!c.draining());
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelReady(Ctx* ctx, const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* res) override {
    auto resolved = ResolveModel(c, req->name(), req->version(), false);
    if (auto* refusal = std::get_if<InferRefusal>(&resolved)) {
      return Done(ctx, ToGrpc(*refusal));
    }
    res->set_ready(!c.draining());
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerMetadata(Ctx* ctx, const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* res) override {
    res->set_name("fluidfaas");
    res->set_version("0.1.0");
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelMetadata(Ctx* ctx, const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* res) override {
    auto resolved = ResolveModel(c, req->name(), req->version(), false);
    if (auto* refusal = std::get_if<InferRefusal>(&resolved)) {
      return Done(ctx, ToGrpc(*refusal));
    }
    const FunctionInfo& f = *std::get<FunctionRef>(resolved);
    res->set_name(f.name);
    res->add_versions("1");
    res->set_platform(std::string(Platform(f)));
    const auto tensor = [&f](inference::ModelMetadataResponse::TensorMetadata* t, const char* name,
                             const std::vector<int64_t>& shape) {
      t->set_name(name);
      t->set_datatype(f.datatype);  // "BYTES" for a generative function's text
      for (int64_t d : WithBatch(shape, -1)) t->add_shape(d);
    };
    if (f.generative) {
      res->set_platform("fluidfaas_generative");
      tensor(res->add_inputs(), "text_input", {});
      tensor(res->add_outputs(), "text_output", {});
      return Done(ctx, grpc::Status::OK);
    }
    tensor(res->add_inputs(), "input", f.input_shape);
    tensor(res->add_outputs(), "output", f.output_shape);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelInfer(Ctx* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* res) override {
    auto resolved = ResolveModel(c, req->model_name(), req->model_version(), true);
    if (auto* refusal = std::get_if<InferRefusal>(&resolved)) {
      return Done(ctx, ToGrpc(*refusal));
    }
    const FunctionRef ref = std::get<FunctionRef>(std::move(resolved));
    const FunctionInfo& f = *ref;
    const auto refuse = [&](const std::string& message) {
      c.CountRefused(f.name, "bad_input");
      return Done(ctx, GrpcStatusFor(400, "bad_input", message));
    };
    if (f.generative) {
      c.CountRefused(f.name, "generative");
      return Done(ctx,
                  GrpcStatusFor(400, "generative", "'" + f.name + "' generates text: use the HTTP generate routes"));
    }
    if (req->inputs_size() != 1) return refuse("inputs must hold one tensor");
    const auto& in = req->inputs(0);
    api::DecodedInput input;
    input.name = in.name();
    input.datatype = in.datatype();
    input.shape.assign(in.shape().begin(), in.shape().end());
    std::string_view raw;
    if (req->raw_input_contents_size() > 0) {
      if (req->raw_input_contents_size() != 1 || in.has_contents()) {
        return refuse("raw_input_contents must hold one entry per input, and no input then has contents");
      }
      raw = req->raw_input_contents(0);
      input.binary_data_size = raw.size();
    } else if (in.has_contents()) {
      const auto limits = DecodeLimitsFor(f);
      if (static_cast<size_t>(in.contents().fp32_contents_size()) > limits.max_elements) {
        return refuse("input '" + input.name + "': more than " + std::to_string(limits.max_elements) + " values");
      }
      input.has_data = true;
      input.data.assign(in.contents().fp32_contents().begin(), in.contents().fp32_contents().end());
    }
    std::optional<double> timeout_ms;
    if (const auto it = req->parameters().find("timeout_ms"); it != req->parameters().end()) {
      if (it->second.parameter_choice_case() != inference::InferParameter::kInt64Param) {
        return refuse("parameters.timeout_ms must be an int64 parameter");
      }
      timeout_ms = static_cast<double>(it->second.int64_param());
    }
    auto* reactor = ctx->DefaultReactor();
    std::string id = req->id();
    auto refusal =
        SubmitInfer(c, f, input, raw, timeout_ms, [reactor, res, ref, id = std::move(id)](const InferResult& r) {
          if (r.outcome != Outcome::kCompleted)
            return reactor->Finish(GrpcStatusFor(HttpStatusFor(r), r.code, r.detail));
          res->set_model_name(ref->name);
          res->set_model_version("1");
          res->set_id(id);
          auto* out = res->add_outputs();
          out->set_name("output");
          out->set_datatype(ref->datatype);
          for (int64_t d : WithBatch(ref->output_shape, 1)) out->add_shape(d);
          res->add_raw_output_contents(reinterpret_cast<const char*>(r.output.data()), r.output.size());
          reactor->Finish(grpc::Status::OK);
        });
    if (refusal) reactor->Finish(ToGrpc(*refusal));
    return reactor;
  }
};

GrpcApi::GrpcApi(Controller& controller, GrpcApiOptions options)
    : options_(options), service_(std::make_unique<Service>(controller)) {}

GrpcApi::~GrpcApi() {
  Stop();
}

Result<int> GrpcApi::Start(const std::string& host, int port) {
  int bound = 0;
  FF_ASSIGN_OR_RETURN(server_, StartGrpcServer(service_.get(), host, port, options_.max_message_bytes, bound));
  return bound;
}

void GrpcApi::Stop() {
  // Calls still owed an answer are cancelled after a short grace (the controller answers them on Shutdown).
  StopGrpcServer(server_);
}

}  // namespace fluidfaas::daemon
