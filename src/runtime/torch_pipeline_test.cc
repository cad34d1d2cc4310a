// Real TorchScript blocks through worker processes: a function split over 2 and 3 workers (one per emulated
// slice; the CPU is the device here) gives the same outputs as the whole function run in this process, and a
// migration from a pipeline to one worker under a stream answers every request once, with the right output.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "model/torch_generative.h"
#include "model/torchscript.h"
#include "runtime/generative_step.h"
#include "runtime/runtime_test_util.h"

namespace fluidfaas::runtime {
namespace {

namespace fs = std::filesystem;
using testing::EmulatedSlices;
using testing::EventLog;

// The node's runtime on three emulated slices (the CPU as their device), with this build's worker.
Result<std::unique_ptr<NodeRuntime>> StartRuntime(EventLog& log) {
  RuntimeOptions o;
  o.worker_binary = FLUIDFAAS_WORKER;
  o.slices = EmulatedSlices(3);
  return NodeRuntime::Start(o, log.Sink());
}

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
    auto rt = StartRuntime(log_);
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

// A generative function through worker processes: each stage's worker keeps the KV caches of its layers, steps
// pass hidden states through the rings, and the tokens are those of the whole model run in this process.
class TorchGenerativePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / "tgp_example";
    fs::remove_all(dir_);
    ASSERT_TRUE(model::WriteGenerativeExample(dir_.string(), /*force=*/true).ok());
    auto rt = StartRuntime(log_);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(*rt);
  }
  void TearDown() override { fs::remove_all(dir_); }

  PipelineSpec Pipeline(uint64_t instance, const std::vector<std::pair<size_t, size_t>>& ranges) const {
    constexpr uint64_t kStepBytes = 64 << 10;
    PipelineSpec p;
    p.instance = instance;
    p.max_batch = 1;
    p.input_bytes_per_sample = kStepBytes;
    for (size_t i = 0; i < ranges.size(); ++i) {
      PipelineStage s;
      s.slice = i;
      s.spec.executor = "torchscript-generative";
      s.spec.function = "tiny-gpt";
      s.spec.dir = dir_.string();
      s.spec.first_block = ranges[i].first;
      s.spec.last_block = ranges[i].second;
      s.spec.kv_pages = 32;
      s.spec.kv_page_tokens = 8;
      s.output_bytes_per_sample = kStepBytes;
      p.stages.push_back(s);
    }
    return p;
  }

  // One step through the pipeline: its message as a batch of one, the last stage's message back.
  Result<GenStepMessage> Step(uint64_t instance, const GenStepMessage& m) {
    const std::vector<std::byte> bytes = EncodeStep(m);
    const TensorView view{.dtype = static_cast<uint32_t>(model::DType::kFp32),
                          .shape = {1, static_cast<int64_t>(bytes.size() / 4)},
                          .bytes = bytes};
    const uint64_t id = next_++;
    const std::vector<uint64_t> ids = {id};
    FF_RETURN_IF_ERROR(runtime_->Submit(instance, id, ids, view));
    for (;;) {
      auto done = log_.Next<BatchCompleted>(std::chrono::seconds(30));
      if (!done) return Status::DeadlineExceeded("no answer to step " + std::to_string(id));
      if (done->batch != id) continue;
      return DecodeStep(done->output);
    }
  }

  fs::path dir_;
  EventLog log_;
  std::unique_ptr<NodeRuntime> runtime_;
  uint64_t next_ = 1;
};

TEST_F(TorchGenerativePipelineTest, TwoAndThreeWorkersGenerateTheSameTokensAsOneProcess) {
  const std::vector<std::vector<int64_t>> prompts = {{72, 105, 33}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11}};
  constexpr int kCount = 20;
  std::vector<std::vector<int64_t>> want;
  for (const auto& p : prompts) {
    auto r = model::GenerateWithoutCache(dir_.string(), p, kCount);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    want.push_back(*r);
  }
  uint64_t instance = 0;
  for (const auto& ranges :
       std::vector<std::vector<std::pair<size_t, size_t>>>{{{0, 2}, {3, 5}}, {{0, 1}, {2, 3}, {4, 5}}}) {
    ++instance;
    ASSERT_TRUE(runtime_->Launch(Pipeline(instance, ranges)).ok());
    auto loaded = log_.Next<LoadDone>();
    ASSERT_TRUE(loaded && loaded->ok) << (loaded ? loaded->detail : "no load event");
    std::vector<std::vector<int64_t>> got(prompts.size());
    std::vector<uint64_t> seqs;
    for (size_t p = 0; p < prompts.size(); ++p) {
      seqs.push_back(p + 1);
      auto out = Step(instance, {.kind = GenStepMessage::Kind::kPrefill,
                                 .sequences = {seqs.back()},
                                 .tokens_per_sequence = static_cast<uint32_t>(prompts[p].size()),
                                 .tokens = prompts[p]});
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      ASSERT_EQ(out->tokens.size(), 1u);
      got[p].push_back(out->tokens[0]);
    }
    for (int i = 1; i < kCount; ++i) {
      GenStepMessage decode{.kind = GenStepMessage::Kind::kDecode, .sequences = seqs};
      for (const auto& g : got) decode.tokens.push_back(g.back());
      auto out = Step(instance, decode);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      ASSERT_EQ(out->tokens.size(), seqs.size());
      for (size_t p = 0; p < seqs.size(); ++p) got[p].push_back(out->tokens[p]);
    }
    EXPECT_EQ(got, want) << ranges.size() << " workers";
    // Freed in every stage: the same ids prefill again from scratch.
    ASSERT_TRUE(Step(instance, {.kind = GenStepMessage::Kind::kFree, .sequences = seqs}).ok());
    auto again = Step(instance, {.kind = GenStepMessage::Kind::kPrefill,
                                 .sequences = {1},
                                 .tokens_per_sequence = static_cast<uint32_t>(prompts[0].size()),
                                 .tokens = prompts[0]});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->tokens.at(0), want[0][0]);
    ASSERT_TRUE(runtime_->Retire(instance).ok());
  }
}

TEST(GenStepMessageTest, RoundTripsAndRefusesWhatIsNotAWholeMessage) {
  const GenStepMessage m{.kind = GenStepMessage::Kind::kDecode,
                         .sequences = {3, 4},
                         .tokens_per_sequence = 1,
                         .hidden_shape = {2, 1, 2},
                         .hidden = {1, 2, 3, 4}};
  const std::vector<std::byte> bytes = EncodeStep(m);
  EXPECT_EQ(bytes.size() % 4, 0u);
  auto back = DecodeStep(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->sequences, m.sequences);
  EXPECT_EQ(back->hidden, m.hidden);
  EXPECT_EQ(back->hidden_shape, m.hidden_shape);
  EXPECT_FALSE(DecodeStep(std::span(bytes).first(bytes.size() - 8)).ok());
  std::vector<std::byte> bad = bytes;
  bad[0] = std::byte{0};
  EXPECT_FALSE(DecodeStep(bad).ok());
}

}  // namespace
}  // namespace fluidfaas::runtime
