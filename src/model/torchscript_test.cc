// TorchScript function directories: real blocks made here with LibTorch (forward defined from TorchScript
// source, saved), then loaded, chained and run.
#include "model/torchscript.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>
#include <fstream>

namespace fluidfaas::model {
namespace {

namespace fs = std::filesystem;

// y = act(x W^T + b), as a TorchScript module with its own parameters.
torch::jit::Module LinearBlock(const std::string& name, const torch::Tensor& w, const torch::Tensor& b, bool relu) {
  torch::jit::Module m(name);
  m.register_parameter("weight", w, /*is_buffer=*/false);
  m.register_parameter("bias", b, /*is_buffer=*/false);
  m.define(relu ? "def forward(self, x):\n    return torch.relu(torch.matmul(x, self.weight.t()) + self.bias)\n"
                : "def forward(self, x):\n    return torch.matmul(x, self.weight.t()) + self.bias\n");
  return m;
}

// y = x * scale, reshaped to [batch, 4, 8]: a block whose output is not flat.
torch::jit::Module ReshapeBlock() {
  torch::jit::Module m("reshape");
  m.register_buffer("scale", torch::full({1}, 0.5));
  m.define("def forward(self, x):\n    return (x * self.scale).reshape([x.size(0), 4, 8])\n");
  return m;
}

class TorchScriptTest : public testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    dir_ = fs::path(testing::TempDir()) /
           ("ts_" + std::string(testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    w0_ = torch::randn({32, 16});
    b0_ = torch::randn({32});
    w2_ = torch::randn({8, 32});
    b2_ = torch::randn({8});
    LinearBlock("fc1", w0_, b0_, true).save((dir_ / "fc1.pt").string());
    ReshapeBlock().save((dir_ / "reshape.pt").string());
    // The third block flattens [4, 8] back before its linear layer.
    torch::jit::Module fc2("fc2");
    fc2.register_parameter("weight", w2_, false);
    fc2.register_parameter("bias", b2_, false);
    fc2.define("def forward(self, x):\n    return torch.matmul(x.flatten(1), self.weight.t()) + self.bias\n");
    fc2.save((dir_ / "fc2.pt").string());
    WriteManifest(R"(name: tiny-mlp
slo_ms: 50
max_batch: 8
dtype: fp32
input_shape: [16]
blocks:
  - {name: fc1, file: fc1.pt}
  - {name: reshape, file: reshape.pt}
  - {name: fc2, file: fc2.pt}
)");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void WriteManifest(const std::string& text) { std::ofstream(dir_ / "manifest.yaml") << text; }

  // The whole computation, written directly.
  torch::Tensor Reference(const torch::Tensor& x) const {
    const torch::Tensor h = torch::relu(x.matmul(w0_.t()) + b0_) * 0.5;
    return h.matmul(w2_.t()) + b2_;
  }

  static HostTensor Host(const torch::Tensor& t) {
    const torch::Tensor c = t.contiguous();
    return HostTensor{{c.sizes().begin(), c.sizes().end()}, {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()}};
  }

  fs::path dir_;
  torch::Tensor w0_, b0_, w2_, b2_;
};

TEST_F(TorchScriptTest, BlocksInSequenceEqualTheWholeComputation) {
  Result<std::unique_ptr<TorchScriptFunction>> f = TorchScriptFunction::Load(dir_.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const torch::Tensor x = torch::randn({5, 16});
  Result<HostTensor> whole = (*f)->Run(0, 2, Host(x));
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->shape, (std::vector<int64_t>{5, 8}));
  const torch::Tensor want = Reference(x);
  const torch::Tensor got = torch::from_blob(whole->data.data(), {5, 8}, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5));

  // As a two-stage pipeline: stage 1 runs block 0, stage 2 runs blocks 1-2 on stage 1's output.
  Result<HostTensor> stage1 = (*f)->Run(0, 0, Host(x));
  ASSERT_TRUE(stage1.ok());
  EXPECT_EQ(stage1->shape, (std::vector<int64_t>{5, 32}));
  Result<HostTensor> stage2 = (*f)->Run(1, 2, *stage1);
  ASSERT_TRUE(stage2.ok());
  EXPECT_EQ(stage2->data, whole->data);
}

TEST_F(TorchScriptTest, ShapesAndParametersBecomeAFunctionSpec) {
  std::unique_ptr<TorchScriptFunction> f = std::move(TorchScriptFunction::Load(dir_.string())).value();
  EXPECT_EQ(f->output_shapes(), (std::vector<std::vector<int64_t>>{{32}, {4, 8}, {8}}));
  EXPECT_EQ(f->block_params(), (std::vector<int64_t>{32 * 16 + 32, 0, 8 * 32 + 8}));
  const FunctionSpec spec = f->ToFunctionSpec();
  EXPECT_EQ(spec.name, "tiny-mlp");
  EXPECT_DOUBLE_EQ(spec.slo_ms, 50);
  ASSERT_EQ(spec.blocks.size(), 3u);
  EXPECT_EQ(spec.blocks[1].out_elems, 32);
  EXPECT_EQ(spec.blocks[1].kind, BlockKind::kCustom);
  EXPECT_EQ(spec.output_shape, (std::vector<int64_t>{8}));
}

TEST_F(TorchScriptTest, ShapesThatDoNotChainNameTheBlock) {
  // fc2 replaced by a layer that expects 20 features.
  LinearBlock("fc2", torch::randn({8, 20}), torch::randn({8}), false).save((dir_ / "fc2.pt").string());
  WriteManifest(
      "name: m\nslo_ms: 5\ninput_shape: [16]\nblocks:\n  - {name: fc1, file: fc1.pt}\n"
      "  - {name: fc2, file: fc2.pt}\n");
  Result<std::unique_ptr<TorchScriptFunction>> f = TorchScriptFunction::Load(dir_.string());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("block 1 'fc2' (fc2.pt): rejects block 0's output of shape [1, 32]"),
            std::string::npos)
      << f.status().message();
}

TEST_F(TorchScriptTest, WrongInputShapeInTheManifestNamesTheFirstBlock) {
  WriteManifest("name: m\nslo_ms: 5\ninput_shape: [17]\nblocks:\n  - {name: fc1, file: fc1.pt}\n");
  Result<std::unique_ptr<TorchScriptFunction>> f = TorchScriptFunction::Load(dir_.string());
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("block 0 'fc1' (fc1.pt): rejects the manifest's input_shape of shape [1, 17]"),
            std::string::npos)
      << f.status().message();
  // Regression (hardening issue): the message ended at "The following operation failed in the TorchScript
  // interpreter." without LibTorch's own words for the cause.
  EXPECT_NE(f.status().message().find("RuntimeError: "), std::string::npos) << f.status().message();
}

// Regression (hardening issue: input_shape [100000,100000,100000] let a c10::Error escape): refused by the
// manifest's element limit before LibTorch allocates anything.
TEST_F(TorchScriptTest, AHugeInputShapeIsAnErrorNotACrash) {
  WriteManifest("name: m\nslo_ms: 5\ninput_shape: [100000, 100000, 100000]\nblocks:\n  - {name: fc1, file: fc1.pt}\n");
  Result<std::unique_ptr<TorchScriptFunction>> f = TorchScriptFunction::Load(dir_.string());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("input_shape"), std::string::npos) << f.status().message();
}

TEST_F(TorchScriptTest, MissingOrCorruptFilesNameTheBlockAndFile) {
  fs::remove(dir_ / "reshape.pt");
  Result<std::unique_ptr<TorchScriptFunction>> missing = TorchScriptFunction::Load(dir_.string());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("block 1 'reshape'"), std::string::npos);
  EXPECT_NE(missing.status().message().find("reshape.pt): file not found"), std::string::npos);

  std::ofstream(dir_ / "reshape.pt") << "this is not a zip archive";
  Result<std::unique_ptr<TorchScriptFunction>> corrupt = TorchScriptFunction::Load(dir_.string());
  EXPECT_EQ(corrupt.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(corrupt.status().message().find("reshape.pt): not a loadable TorchScript file"), std::string::npos)
      << corrupt.status().message();
}

TEST_F(TorchScriptTest, MalformedManifestsNameTheFileAndField) {
  const std::pair<const char*, const char*> cases[] = {
      {"name: m\ninput_shape: [16]\nblocks: [{name: a, file: fc1.pt}]\n", "manifest: missing required key 'slo_ms'"},
      {"name: m\nslo_ms: 5\ninput_shape: [16]\nblocks: []\n", "manifest.blocks: expected a list of 1..1024 blocks"},
      {"name: m\nslo_ms: 5\ninput_shape: [16]\nblocks: [{name: a}]\n",
       "manifest.blocks[0]: missing required key 'file'"},
      {"name: m\nslo_ms: -1\ninput_shape: [16]\nblocks: [{name: a, file: fc1.pt}]\n",
       "manifest.slo_ms: -1 is not in (0, 1e+07]"},
      {"name: m\nslo_ms: 5\ndtype: int8\ninput_shape: [16]\nblocks: [{name: a, file: fc1.pt}]\n",
       "manifest.dtype: unknown dtype 'int8'"},
      {"name: m\nslo_ms: 5\ninput_shape: [0]\nblocks: [{name: a, file: fc1.pt}]\n",
       "manifest.input_shape: 0 is not in 1..2147483648"},
      {"name: m\nslo: 5\n", "manifest: unknown key 'slo'"},
      {"name: [unclosed\n", "manifest.yaml:"},
  };
  for (const auto& [text, want] : cases) {
    WriteManifest(text);
    Result<FunctionManifest> m = ReadManifest(dir_.string());
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_NE(m.status().message().find(want), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find("manifest.yaml"), std::string::npos) << m.status().message();
  }
  fs::remove(dir_ / "manifest.yaml");
  EXPECT_EQ(ReadManifest(dir_.string()).status().code(), StatusCode::kNotFound);
}

TEST_F(TorchScriptTest, RunRejectsBadRangesAndInputs) {
  std::unique_ptr<TorchScriptFunction> f = std::move(TorchScriptFunction::Load(dir_.string())).value();
  EXPECT_FALSE(f->Run(2, 1, Host(torch::zeros({1, 16}))).ok());
  EXPECT_FALSE(f->Run(0, 3, Host(torch::zeros({1, 16}))).ok());
  EXPECT_FALSE(f->Run(0, 0, HostTensor{{2, 16}, std::vector<float>(5)}).ok());
  Result<HostTensor> wrong = f->Run(0, 0, Host(torch::zeros({1, 17})));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("block 0 'fc1'"), std::string::npos);
}

TEST(TorchScriptExampleTest, ExampleFunctionLoadsAndRuns) {
  const fs::path dir = fs::path(testing::TempDir()) / "ts_example";
  fs::remove_all(dir);
  ASSERT_TRUE(WriteExampleFunction(dir.string()).ok());
  Result<std::unique_ptr<TorchScriptFunction>> f = TorchScriptFunction::Load(dir.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->manifest().name, "tiny-mlp");
  Result<HostTensor> y = (*f)->Run(0, 2, HostTensor{{2, 16}, std::vector<float>(32, 1.0f)});
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->shape, (std::vector<int64_t>{2, 8}));
  // Regression (hardening issue: `example DIR` overwrote an existing directory silently).
  const Status again = WriteExampleFunction(dir.string());
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.message();
  EXPECT_TRUE(WriteExampleFunction(dir.string(), /*force=*/true).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace fluidfaas::model
