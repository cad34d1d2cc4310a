// The gRPC form of the Open Inference Protocol, end to end: a real gRPC client against the daemon's service.
#include "daemon/grpc_api.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstring>

#include "daemon/daemon_test_util.h"
#include "grpc_predict_v2.grpc.pb.h"

namespace fluidfaas::daemon {
namespace {

class GrpcApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_.Start(testing::EmulatedNodeOptions(), {FunctionConfig{"bert", "bert-base", 0, 0.05}});
    if (HasFatalFailure()) return;
    grpc_ = std::make_unique<GrpcApi>(daemon_.controller(), GrpcApiOptions{});
    auto port = grpc_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    stub_ = inference::GRPCInferenceService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(*port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (grpc_) {
      daemon_.controller().Shutdown();
      grpc_->Stop();
    }
    daemon_.Stop();
  }
  static inference::ModelInferRequest RawRequest(const std::string& model, int values = 128) {
    inference::ModelInferRequest req;
    req.set_model_name(model);
    req.set_id("g1");
    auto* in = req.add_inputs();
    in->set_name("input");
    in->set_datatype("FP32");
    in->add_shape(1);
    in->add_shape(values);
    std::vector<float> data(static_cast<size_t>(values), 0.25f);
    req.add_raw_input_contents(reinterpret_cast<const char*>(data.data()), data.size() * 4);
    return req;
  }
  grpc::Status Infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* res) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->ModelInfer(&ctx, req, res);
  }

  testing::TestDaemon daemon_;
  std::unique_ptr<GrpcApi> grpc_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

TEST_F(GrpcApiTest, HealthAndMetadata) {
  grpc::ClientContext live_ctx;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&live_ctx, {}, &live).ok());
  EXPECT_TRUE(live.live());
  grpc::ClientContext meta_ctx;
  inference::ModelMetadataRequest meta_req;
  meta_req.set_name("bert");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(stub_->ModelMetadata(&meta_ctx, meta_req, &meta).ok());
  EXPECT_EQ(meta.versions(0), "1");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).shape(0), -1);
  EXPECT_EQ(meta.inputs(0).shape(1), 128);
  grpc::ClientContext ready_ctx;
  inference::ModelReadyRequest ready_req;
  ready_req.set_name("bert");
  ready_req.set_version("2");
  inference::ModelReadyResponse ready;
  EXPECT_EQ(stub_->ModelReady(&ready_ctx, ready_req, &ready).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcApiTest, InfersFromRawAndTypedContentsAsHttpDoes) {
  inference::ModelInferResponse res;
  const grpc::Status st = Infer(RawRequest("bert"), &res);  // a newcomer: waits for the cold start
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(res.model_name(), "bert");
  EXPECT_EQ(res.id(), "g1");
  ASSERT_EQ(res.outputs_size(), 1);
  EXPECT_EQ(res.outputs(0).shape(0), 1);
  ASSERT_EQ(res.raw_output_contents_size(), 1);
  EXPECT_EQ(res.raw_output_contents(0).size(), 768u * 4);
  // The same values as typed contents give the same output.
  inference::ModelInferRequest typed = RawRequest("bert");
  typed.clear_raw_input_contents();
  for (int i = 0; i < 128; ++i) typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(0.25f);
  inference::ModelInferResponse typed_res;
  ASSERT_TRUE(Infer(typed, &typed_res).ok());
  EXPECT_EQ(typed_res.raw_output_contents(0), res.raw_output_contents(0));
}

TEST_F(GrpcApiTest, RefusalsCarryTheProtocolsCodes) {
  inference::ModelInferResponse res;
  EXPECT_EQ(Infer(RawRequest("nope"), &res).error_code(), grpc::StatusCode::NOT_FOUND);
  inference::ModelInferRequest versioned = RawRequest("bert");
  versioned.set_model_version("7");
  EXPECT_EQ(Infer(versioned, &res).error_code(), grpc::StatusCode::NOT_FOUND);
  const grpc::Status short_input = Infer(RawRequest("bert", 64), &res);
  EXPECT_EQ(short_input.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(short_input.error_message().rfind("bad_input", 0), 0u) << short_input.error_message();
  inference::ModelInferRequest nan = RawRequest("bert");
  std::string bytes = nan.raw_input_contents(0);
  const float bad = std::nanf("");
  std::memcpy(bytes.data(), &bad, 4);
  nan.set_raw_input_contents(0, bytes);
  EXPECT_EQ(Infer(nan, &res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  inference::ModelInferRequest fast = RawRequest("bert");
  (*fast.mutable_parameters())["timeout_ms"].set_int64_param(-3);
  EXPECT_EQ(Infer(fast, &res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace fluidfaas::daemon
