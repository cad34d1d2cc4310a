// Real TorchScript blocks through worker processes: a function split over 2 and 3 workers (one per emulated
// slice; the CPU is the device here) gives the same outputs as the whole function run in this process, and a
// migration from a pipeline to one worker under a stream answers every request once, with the right output.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "model/torchscript.h"
#include "runtime/runtime_test_util.h"

namespace fluidfaas::runtime {
namespace {

namespace fs = std::filesystem;
using testing::EmulatedSlices;
using testing::EventLog;

class TorchPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("tsp_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    ASSERT_TRUE(model::WriteExampleFunction(dir_.string()).ok());
    auto f = model::TorchScriptFunction::Load(dir_.string());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    function_ = std::move(*f);
    RuntimeOptions o;
    o.worker_binary = FLUIDFAAS_WORKER;
    o.slices = EmulatedSlices(3);
    auto rt = NodeRuntime::Start(o, log_.Sink());
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(*rt);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Stages at `cuts` (the last block of each stage but the last), on slices `slices`.
  PipelineSpec Pipeline(uint64_t instance, std::vector<size_t> cuts, std::vector<size_t> slices) const {
    PipelineSpec p;
    p.instance = instance;
    p.max_batch = 8;
    p.input_bytes_per_sample = 16 * sizeof(float);
    cuts.push_back(2);
    size_t first = 0;
    for (size_t i = 0; i < cuts.size(); ++i) {
      PipelineStage s;
      s.slice = slices[i];
      s.spec.executor = "torchscript";
      s.spec.function = "tiny-mlp";
      s.spec.dir = dir_.string();
      s.spec.first_block = first;
      s.spec.last_block = cuts[i];
      s.spec.max_batch = 8;
      int64_t elems = 1;
      for (int64_t d : function_->output_shapes()[cuts[i]]) elems *= d;
      s.output_bytes_per_sample = static_cast<uint64_t>(elems) * sizeof(float);
      p.stages.push_back(s);
      first = cuts[i] + 1;
    }
    return p;
  }

  static model::HostTensor Input(int batch, float seed) {
    model::HostTensor t{{batch, 16}, std::vector<float>(static_cast<size_t>(batch) * 16)};
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = std::sin(seed + 0.37f * static_cast<float>(i));
    return t;
  }

  Status Submit(uint64_t instance, uint64_t batch, const std::vector<uint64_t>& ids, const model::HostTensor& x) {
    const TensorView view{.dtype = static_cast<uint32_t>(model::DType::kFp32),
                          .shape = x.shape,
                          .bytes = std::as_bytes(std::span<const float>(x.data))};
    for (int i = 0; i < 10000; ++i) {
      Status s = runtime_->Submit(instance, batch, ids, view);
      if (s.code() != StatusCode::kResourceExhausted) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::DeadlineExceeded("ring stayed full");
  }

  // The output of a completed batch equals the whole function run here on the same input.
  void ExpectSameAsWholeFunction(const BatchCompleted& done, const model::HostTensor& x) const {
    auto want = function_->Run(0, 2, x);
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(done.shape, want->shape);
    ASSERT_EQ(done.output.size(), want->data.size() * sizeof(float));
    std::vector<float> got(want->data.size());
    std::memcpy(got.data(), done.output.data(), done.output.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_FLOAT_EQ(got[i], want->data[i]) << "element " << i;
  }

  fs::path dir_;
  std::unique_ptr<model::TorchScriptFunction> function_;
  EventLog log_;
  std::unique_ptr<NodeRuntime> runtime_;
};

TEST_F(TorchPipelineTest, TwoAndThreeWorkerSplitsGiveTheWholeFunctionsOutputs) {
  for (const auto& [instance, cuts, slices] :
       std::vector<std::tuple<uint64_t, std::vector<size_t>, std::vector<size_t>>>{{1, {1}, {0, 1}},
                                                                                   {2, {0, 1}, {0, 1, 2}}}) {
    ASSERT_TRUE(runtime_->Launch(Pipeline(instance, cuts, slices)).ok());
    auto loaded = log_.Next<LoadDone>();
    ASSERT_TRUE(loaded && loaded->ok) << (loaded ? loaded->detail : "no load event");
    std::map<uint64_t, model::HostTensor> inputs;
    for (uint64_t b = 0; b < 12; ++b) {
      const int batch = 1 + static_cast<int>(b % 8);
      inputs[b] = Input(batch, static_cast<float>(instance * 100 + b));
      std::vector<uint64_t> ids;
      for (int i = 0; i < batch; ++i) ids.push_back(b * 10 + static_cast<uint64_t>(i));
      ASSERT_TRUE(Submit(instance, b, ids, inputs[b]).ok());
    }
    for (int i = 0; i < 12; ++i) {
      auto done = log_.Next<BatchCompleted>();
      ASSERT_TRUE(done.has_value());
      EXPECT_EQ(done->instance, instance);
      EXPECT_EQ(done->timings.size(), cuts.size() + 1);
      ExpectSameAsWholeFunction(*done, inputs.at(done->batch));
    }
    ASSERT_TRUE(runtime_->Retire(instance).ok());
  }
}

TEST_F(TorchPipelineTest, MigrationToOneWorkerAnswersEachRequestOnceWithTheRightOutput) {
  ASSERT_TRUE(runtime_->Launch(Pipeline(1, {0, 1}, {0, 1, 2})).ok());
  ASSERT_TRUE(log_.Next<LoadDone>()->ok);
  std::map<uint64_t, model::HostTensor> inputs;
  uint64_t next = 0;
  auto send = [&](uint64_t instance, uint64_t until) {
    for (; next < until; ++next) {
      inputs[next] = Input(1, static_cast<float>(next));
      ASSERT_TRUE(Submit(instance, next, {next}, inputs[next]).ok());
    }
  };
  send(1, 40);
  ASSERT_TRUE(runtime_->Launch(Pipeline(2, {}, {2})).ok());  // loads while the pipeline serves
  send(1, 80);
  auto loaded = log_.Next<LoadDone>();
  ASSERT_TRUE(loaded && loaded->ok && loaded->instance == 2);
  send(2, 160);
  for (int i = 0; i < 500 && runtime_->InFlight(1) > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(runtime_->Retire(1).ok());
  std::map<uint64_t, uint64_t> answered;
  for (int i = 0; i < 160; ++i) {
    auto done = log_.Next<BatchCompleted>();
    ASSERT_TRUE(done.has_value()) << "a request was never answered";
    ASSERT_EQ(done->requests.size(), 1u);
    const uint64_t id = done->requests[0];
    EXPECT_TRUE(answered.emplace(id, done->instance).second) << "request " << id << " answered twice";
    EXPECT_EQ(done->instance, id < 80 ? 1u : 2u);
    ExpectSameAsWholeFunction(*done, inputs.at(id));
  }
  EXPECT_EQ(log_.Next<BatchCompleted>(std::chrono::milliseconds(50)), std::nullopt);
}

TEST_F(TorchPipelineTest, AnInputTheBlocksRejectFailsItsBatchAndTheStageServesOn) {
  ASSERT_TRUE(runtime_->Launch(Pipeline(1, {1}, {0, 1})).ok());
  ASSERT_TRUE(log_.Next<LoadDone>()->ok);
  model::HostTensor wrong{{2, 4}, std::vector<float>(8, 1.0f)};  // 4 features; fc1 takes 16
  ASSERT_TRUE(Submit(1, 0, {1, 2}, wrong).ok());
  auto failed = log_.Next<BatchFailed>();
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->stage, 0u);
  EXPECT_EQ(failed->requests, (std::vector<uint64_t>{1, 2}));
  EXPECT_FALSE(failed->detail.empty());
  const model::HostTensor good = Input(2, 1.0f);
  ASSERT_TRUE(Submit(1, 1, {3, 4}, good).ok());
  auto done = log_.Next<BatchCompleted>();
  ASSERT_TRUE(done.has_value());
  ExpectSameAsWholeFunction(*done, good);
}

}  // namespace
}  // namespace fluidfaas::runtime
