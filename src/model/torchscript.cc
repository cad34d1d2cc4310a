#include "model/torchscript.h"

#include <torch/script.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "common/strings.h"
#include "model/torch_support.h"

namespace fluidfaas::model {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  return "[" + Join(shape, ", ", [](int64_t d) { return std::to_string(d); }) + "]";
}

}  // namespace

struct TorchScriptFunction::Modules {
  std::vector<torch::jit::Module> blocks;
};

TorchScriptFunction::~TorchScriptFunction() = default;

Result<std::unique_ptr<TorchScriptFunction>> TorchScriptFunction::Load(const std::string& dir) {
  FF_ASSIGN_OR_RETURN(FunctionManifest manifest, ReadManifest(dir));
  std::unique_ptr<TorchScriptFunction> f(new TorchScriptFunction());
  f->dir_ = dir;
  f->modules_ = std::make_unique<Modules>();
  torch::NoGradGuard no_grad;

  for (size_t i = 0; i < manifest.blocks.size(); ++i) {
    const BlockFile& b = manifest.blocks[i];
    const std::string path = (std::filesystem::path(dir) / b.file).string();
    const std::string who = "block " + std::to_string(i) + " '" + b.name + "' (" + path + ")";
    if (!std::filesystem::exists(path)) return Status::NotFound(who + ": file not found");
    try {
      torch::jit::Module module = torch::jit::load(path, torch::kCPU);
      module.eval();
      int64_t params = 0;
      for (const torch::Tensor& p : module.parameters()) params += p.numel();
      f->block_params_.push_back(params);
      f->modules_->blocks.push_back(std::move(module));
    } catch (const std::exception& e) {
      return Status::InvalidArgument(who + ": not a loadable TorchScript file: " + TorchMessage(e));
    }
  }

  // Chain check: one zero sample through every block.
  std::vector<int64_t> shape = manifest.input_shape;
  shape.insert(shape.begin(), 1);
  torch::Tensor x;
  try {
    x = torch::zeros(shape, manifest.dtype == DType::kFp16 ? torch::kFloat16 : torch::kFloat32);
  } catch (const std::exception& e) {
    return Status::ResourceExhausted("a sample of the manifest's input_shape " + ShapeText(shape) +
                                     " cannot be allocated: " + TorchMessage(e));
  }
  for (size_t i = 0; i < manifest.blocks.size(); ++i) {
    const BlockFile& b = manifest.blocks[i];
    const std::string who = "block " + std::to_string(i) + " '" + b.name + "' (" + b.file + ")";
    const std::vector<int64_t> in_shape(x.sizes().begin(), x.sizes().end());
    try {
      torch::jit::IValue out = f->modules_->blocks[i].forward({x});
      if (!out.isTensor()) return Status::InvalidArgument(who + ": forward must return one tensor");
      x = out.toTensor();
    } catch (const std::exception& e) {
      const std::string from = i == 0 ? "the manifest's input_shape" : "block " + std::to_string(i - 1) + "'s output";
      return Status::InvalidArgument(who + ": rejects " + from + " of shape " + ShapeText(in_shape) + ": " +
                                     TorchMessage(e));
    }
    if (x.dim() < 1 || x.size(0) != 1) {
      return Status::InvalidArgument(who + ": output " + ShapeText({x.sizes().begin(), x.sizes().end()}) +
                                     " lost the batch dimension");
    }
    f->output_shapes_.emplace_back(x.sizes().begin() + 1, x.sizes().end());
  }
  f->manifest_ = std::move(manifest);
  return f;
}

Result<HostTensor> TorchScriptFunction::Run(size_t first, size_t last, const HostTensor& input) const {
  if (first > last || last >= modules_->blocks.size()) {
    return Status::InvalidArgument("block range [" + std::to_string(first) + ", " + std::to_string(last) +
                                   "] outside 0.." + std::to_string(modules_->blocks.size() - 1));
  }
  const int64_t elems = std::accumulate(input.shape.begin(), input.shape.end(), int64_t{1}, std::multiplies<>());
  if (input.shape.empty() || elems != static_cast<int64_t>(input.data.size())) {
    return Status::InvalidArgument("input of shape " + ShapeText(input.shape) + " holds " +
                                   std::to_string(input.data.size()) + " values");
  }
  torch::NoGradGuard no_grad;
  torch::Tensor x = ToTorch(input);
  if (manifest_.dtype == DType::kFp16) x = x.to(torch::kFloat16);
  for (size_t i = first; i <= last; ++i) {
    try {
      x = modules_->blocks[i].forward({x}).toTensor();
    } catch (const std::exception& e) {
      return Status::InvalidArgument("block " + std::to_string(i) + " '" + manifest_.blocks[i].name +
                                     "': " + TorchMessage(e));
    }
  }
  return FromTorch(x);
}

FunctionSpec TorchScriptFunction::ToFunctionSpec() const {
  FunctionSpec f;
  f.name = manifest_.name;
  f.dtype = manifest_.dtype;
  f.slo_ms = manifest_.slo_ms;
  f.max_batch = manifest_.max_batch;
  f.input_shape = manifest_.input_shape;
  f.output_shape = output_shapes_.back();
  for (size_t i = 0; i < manifest_.blocks.size(); ++i) {
    Block b;
    b.name = manifest_.blocks[i].name;
    b.kind = BlockKind::kCustom;
    b.params = block_params_[i];
    b.out_elems = std::accumulate(output_shapes_[i].begin(), output_shapes_[i].end(), int64_t{1}, std::multiplies<>());
    const int64_t in_elems =
        i == 0 ? std::accumulate(f.input_shape.begin(), f.input_shape.end(), int64_t{1}, std::multiplies<>())
               : f.blocks[i - 1].out_elems;
    b.peak_act_elems = in_elems + b.out_elems;
    f.blocks.push_back(std::move(b));
  }
  return f;
}

Status WriteExampleFunction(const std::string& dir, bool force) {
  std::error_code ec;
  if (!force && std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return Status::AlreadyExists("'" + dir + "' exists and is not empty (--force writes into it anyway)");
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create '" + dir + "': " + ec.message());
  try {
    torch::manual_seed(2026);
    torch::jit::Module fc1("fc1");
    fc1.register_parameter("weight", torch::randn({32, 16}) * 0.25, false);
    fc1.register_parameter("bias", torch::randn({32}) * 0.1, false);
    fc1.define("def forward(self, x):\n    return torch.relu(torch.matmul(x, self.weight.t()) + self.bias)\n");
    fc1.save((std::filesystem::path(dir) / "fc1.pt").string());
    torch::jit::Module reshape("reshape");
    reshape.define("def forward(self, x):\n    return x.reshape([x.size(0), 4, 8])\n");
    reshape.save((std::filesystem::path(dir) / "reshape.pt").string());
    torch::jit::Module fc2("fc2");
    fc2.register_parameter("weight", torch::randn({8, 32}) * 0.18, false);
    fc2.register_parameter("bias", torch::randn({8}) * 0.1, false);
    fc2.define("def forward(self, x):\n    return torch.matmul(x.flatten(1), self.weight.t()) + self.bias\n");
    fc2.save((std::filesystem::path(dir) / "fc2.pt").string());
  } catch (const std::exception& e) {
    return Status::IoError("cannot write the example blocks into '" + dir + "': " + TorchMessage(e));
  }
  std::ofstream manifest(std::filesystem::path(dir) / "manifest.yaml");
  manifest << "# A FluidFaaS function: blocks run in this order; each .pt is a TorchScript module.\n"
              "name: tiny-mlp\n"
              "slo_ms: 50\n"
              "max_batch: 8\n"
              "dtype: fp32\n"
              "input_shape: [16]\n"
              "blocks:\n"
              "  - {name: fc1, file: fc1.pt}\n"
              "  - {name: reshape, file: reshape.pt}\n"
              "  - {name: fc2, file: fc2.pt}\n";
  if (!manifest) return Status::IoError("cannot write '" + dir + "/manifest.yaml'");
  return Status::Ok();
}

}  // namespace fluidfaas::model
