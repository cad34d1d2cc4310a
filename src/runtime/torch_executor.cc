#include "runtime/torch_executor.h"

#include <torch/cuda.h>
#include <torch/script.h>

#include <filesystem>

#include "model/manifest.h"

namespace fluidfaas::runtime {
namespace {

torch::Device Device() {
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

std::string Cause(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  const std::string what = c10 != nullptr ? c10->what_without_backtrace() : e.what();
  return what.substr(0, what.find('\n'));
}

// Sets the parameter named "a.b.weight" of `m` (walking its submodules).
void SetParameter(torch::jit::Module m, const std::string& dotted, const torch::Tensor& value) {
  size_t start = 0;
  for (size_t dot = dotted.find('.'); dot != std::string::npos; dot = dotted.find('.', start)) {
    m = m.attr(dotted.substr(start, dot - start)).toModule();
    start = dot + 1;
  }
  m.setattr(dotted.substr(start), value);
}

class TorchExecutor final : public StageExecutor {
 public:
  TorchExecutor(StageSpec spec, model::FunctionManifest manifest)
      : spec_(std::move(spec)), manifest_(std::move(manifest)), device_(Device()) {}

  Result<LoadReport> Load() override {
    torch::NoGradGuard no_grad;
    LoadReport r;
    r.from_warm = warm_;
    const auto start = std::chrono::steady_clock::now();
    try {
      if (!warm_) FF_RETURN_IF_ERROR(ReadBlocks());
      int64_t bytes = 0;
      for (Param& p : params_) {
        SetParameter(modules_[p.block], p.name, p.host.to(device_, /*non_blocking=*/true, /*copy=*/true));
        bytes += p.host.numel() * static_cast<int64_t>(p.host.element_size());
      }
      if (device_.is_cuda()) torch::cuda::synchronize();
      r.device_bytes = bytes;
      r.host_bytes = bytes;
    } catch (const std::exception& e) {
      return Status::ResourceExhausted("loading blocks " + std::to_string(spec_.first_block) + ".." +
                                       std::to_string(spec_.last_block) + " of " + manifest_.name + ": " + Cause(e));
    }
    r.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    warm_ = true;
    return r;
  }

  int64_t Evict(bool keep_warm) override {
    torch::NoGradGuard no_grad;
    int64_t bytes = 0;
    for (Param& p : params_) {
      SetParameter(modules_[p.block], p.name, torch::empty({0}, p.host.options().device(device_)));
      bytes += p.host.numel() * static_cast<int64_t>(p.host.element_size());
    }
    if (!keep_warm) {
      params_.clear();
      modules_.clear();
      warm_ = false;
      return 0;
    }
    return bytes;
  }

  bool warm() const override { return warm_; }

  Status Run(const Slot& in, Slot& out) override {
    torch::NoGradGuard no_grad;
    const SlotHeader& h = *in.header;
    const auto dtype = static_cast<model::DType>(h.dtype);
    const auto scalar = dtype == model::DType::kFp16 ? torch::kFloat16 : torch::kFloat32;
    std::vector<int64_t> shape(h.shape, h.shape + h.rank);
    int64_t elems = 1;
    for (int64_t d : shape) elems = d > 0 && elems <= (int64_t{1} << 40) / d ? elems * d : -1;
    if (shape.empty() || elems < 0 || elems * model::BytesPerElement(dtype) != static_cast<int64_t>(h.payload_bytes) ||
        shape[0] != static_cast<int64_t>(h.count)) {
      return Status::InvalidArgument("input slot: shape and bytes disagree");
    }
    try {
      // A view of the slot: no copy here (on CUDA, .to() is the host-to-device transfer).
      torch::Tensor x = torch::from_blob(in.payload.data(), shape, scalar).to(device_);
      for (torch::jit::Module& m : modules_) x = m.forward({x}).toTensor();
      x = x.contiguous();
      const int64_t bytes = x.numel() * static_cast<int64_t>(x.element_size());
      if (bytes > static_cast<int64_t>(out.payload.size()) || x.dim() > kMaxRank) {
        return Status::ResourceExhausted("output of " + std::to_string(bytes) + " bytes over the slot's " +
                                         std::to_string(out.payload.size()));
      }
      torch::from_blob(out.payload.data(), x.sizes(), x.scalar_type()).copy_(x);
      out.header->payload_bytes = static_cast<uint64_t>(bytes);
      out.header->dtype = x.scalar_type() == torch::kFloat16 ? static_cast<uint32_t>(model::DType::kFp16)
                                                               : static_cast<uint32_t>(model::DType::kFp32);
      out.header->rank = static_cast<uint32_t>(x.dim());
      for (int64_t i = 0; i < x.dim(); ++i) out.header->shape[i] = x.size(i);
    } catch (const std::exception& e) {
      return Status::InvalidArgument(manifest_.name + " blocks " + std::to_string(spec_.first_block) + ".." +
                                     std::to_string(spec_.last_block) + ": " + Cause(e));
    }
    return Status::Ok();
  }

 private:
  struct Param {
    size_t block = 0;  // index into modules_
    std::string name;
    torch::Tensor host;  // the warm copy (pinned when CUDA is there)
  };

  // Cold path: disk to host.
  Status ReadBlocks() {
    modules_.clear();
    params_.clear();
    for (size_t i = spec_.first_block; i <= spec_.last_block; ++i) {
      const std::string path = (std::filesystem::path(spec_.dir) / manifest_.blocks[i].file).string();
      torch::jit::Module m = torch::jit::load(path, torch::kCPU);
      m.eval();
      for (const auto& p : m.named_parameters(/*recurse=*/true)) {
        torch::Tensor host = p.value.detach().contiguous();
        if (device_.is_cuda()) host = host.pin_memory();
        params_.push_back(Param{modules_.size(), p.name, host});
      }
      modules_.push_back(std::move(m));
    }
    return Status::Ok();
  }

  StageSpec spec_;
  model::FunctionManifest manifest_;
  torch::Device device_;
  std::vector<torch::jit::Module> modules_;
  std::vector<Param> params_;
  bool warm_ = false;
};

}  // namespace

std::string TorchDeviceName() {
  return torch::cuda::is_available() ? "cuda" : "cpu";
}

Result<std::unique_ptr<StageExecutor>> MakeTorchExecutor(const StageSpec& spec) {
  FF_ASSIGN_OR_RETURN(model::FunctionManifest manifest, model::ReadManifest(spec.dir));
  if (spec.first_block > spec.last_block || spec.last_block >= manifest.blocks.size()) {
    return Status::InvalidArgument("blocks [" + std::to_string(spec.first_block) + ", " +
                                   std::to_string(spec.last_block) + "] outside " + manifest.name + "'s 0.." +
                                   std::to_string(manifest.blocks.size() - 1));
  }
  return std::unique_ptr<StageExecutor>(new TorchExecutor(spec, std::move(manifest)));
}

}  // namespace fluidfaas::runtime
