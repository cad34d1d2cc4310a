#include "runtime/torch_executor.h"

#include <sys/mman.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/limits.h"
#include "model/manifest.h"
#include "model/torch_support.h"

namespace fluidfaas::runtime {
namespace {

torch::Device Device() {
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
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
      for (const Param& p : params_) bytes += ParamBytes(p);
      if (device_.is_cuda()) {
        for (Param& p : params_) {
          SetParameter(modules_[p.block], p.name, p.host.to(device_, /*non_blocking=*/true, /*copy=*/true));
        }
        torch::cuda::synchronize();
      } else {
        FF_RETURN_IF_ERROR(CopyToArena(bytes));
      }
      r.device_bytes = bytes;
      r.host_bytes = bytes;
      if (!warmed_up_) WarmUp();
    } catch (const std::exception& e) {
      return Status::ResourceExhausted("loading blocks " + std::to_string(spec_.first_block) + ".." +
                                       std::to_string(spec_.last_block) + " of " + manifest_.name + ": " +
                                       model::TorchMessage(e));
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
      bytes += ParamBytes(p);
    }
    arena_.reset();
    if (!keep_warm) {
      params_.clear();
      modules_.clear();
      warm_ = false;
      warmed_up_ = false;
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
                                     std::to_string(spec_.last_block) + ": " + model::TorchMessage(e));
    }
    return Status::Ok();
  }

 private:
  // TorchScript's profiling executor records the first runs of a module and optimises its graph after them: the
  // first batch of a fresh process takes tens of milliseconds more than the next (80 ms against 0.4 ms for the
  // example MLP), which would land on a client's request. Zero batches of 1 and of max_batch run here instead,
  // twice each, when the stage's input shape is known; once per set of modules (eviction to warm keeps them).
  void WarmUp() {
    if (spec_.input_shape.empty()) return;
    const auto scalar = manifest_.dtype == model::DType::kFp16 ? torch::kFloat16 : torch::kFloat32;
    for (int batch : {1, std::max(1, spec_.max_batch)}) {
      std::vector<int64_t> shape = {batch};
      shape.insert(shape.end(), spec_.input_shape.begin(), spec_.input_shape.end());
      for (int run = 0; run < 2; ++run) {
        torch::Tensor x = torch::zeros(shape, torch::TensorOptions().dtype(scalar).device(device_));
        for (torch::jit::Module& m : modules_) x = m.forward({x}).toTensor();
      }
    }
    if (device_.is_cuda()) torch::cuda::synchronize();
    warmed_up_ = true;
  }

  struct Param {
    size_t block = 0;  // index into modules_
    std::string name;
    torch::Tensor host;  // the warm copy (pinned when CUDA is there)
  };

  static int64_t ParamBytes(const Param& p) { return p.host.numel() * static_cast<int64_t>(p.host.element_size()); }

  // The CPU as the device: the device copies live in one arena of fresh memory, mapped with transparent huge pages
  // where the kernel offers them (512 times fewer page faults than 4 KiB pages for a large stage), freed whole at
  // eviction. Each parameter is a view of it.
  struct Arena {
    void* base = nullptr;
    size_t size = 0;
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    explicit Arena(size_t bytes) : size(std::max<size_t>(bytes, 1)) {
      base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED) {
        base = nullptr;
        return;
      }
      madvise(base, size, MADV_HUGEPAGE);
    }
    ~Arena() {
      if (base != nullptr) munmap(base, size);
    }
  };

  Status CopyToArena(int64_t bytes) {
    constexpr int64_t kAlign = 64;
    auto arena = std::make_unique<Arena>(static_cast<size_t>(bytes + kAlign * static_cast<int64_t>(params_.size())));
    if (arena->base == nullptr) return Status::ResourceExhausted("no memory for " + std::to_string(bytes) + " bytes");
    // Copies in up to four threads, each its own byte range: what bounds this copy is the kernel handing out
    // fresh pages, which the cores of the machine do in parallel.
    struct Piece {
      std::byte* dst;
      const std::byte* src;
      size_t len;
    };
    std::vector<Piece> pieces;
    auto* at = static_cast<std::byte*>(arena->base);
    for (Param& p : params_) {
      pieces.push_back({at, static_cast<const std::byte*>(p.host.data_ptr()), static_cast<size_t>(ParamBytes(p))});
      SetParameter(modules_[p.block], p.name, torch::from_blob(at, p.host.sizes(), p.host.options()));
      at += (ParamBytes(p) + kAlign - 1) / kAlign * kAlign;
    }
    const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
    const size_t share = (static_cast<size_t>(bytes) + threads - 1) / threads;
    auto copy_range = [&pieces](size_t from, size_t to) {  // bytes [from, to) of the concatenated pieces
      size_t offset = 0;
      for (const Piece& p : pieces) {
        const size_t lo = std::max(from, offset);
        const size_t hi = std::min(to, offset + p.len);
        if (lo < hi) std::memcpy(p.dst + (lo - offset), p.src + (lo - offset), hi - lo);
        offset += p.len;
      }
    };
    std::vector<std::thread> helpers;
    for (size_t t = 1; t < threads; ++t) helpers.emplace_back(copy_range, t * share, (t + 1) * share);
    copy_range(0, share);
    for (std::thread& h : helpers) h.join();
    arena_ = std::move(arena);
    return Status::Ok();
  }

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
  std::unique_ptr<Arena> arena_;  // the device copies when the device is the CPU
  bool warmed_up_ = false;        // these modules have run their warm-up batches
  bool warm_ = false;
};

}  // namespace

Result<ReloadBench> MeasureReload(const std::string& dir, int mib, int trials) {
  FF_RETURN_IF_ERROR(CheckRange("--mib", int64_t{mib}, 1, 16384));
  FF_RETURN_IF_ERROR(CheckRange("--trials", int64_t{trials}, 1, 100));
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(mib) * (1 << 20) / sizeof(float)));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create '" + dir + "': " + ec.message());
  try {
    torch::jit::Module block("big");
    block.register_parameter("weight", torch::randn({side, side}), false);
    block.define("def forward(self, x):\n    return torch.matmul(x, self.weight.t())\n");
    block.save((std::filesystem::path(dir) / "big.pt").string());
  } catch (const std::exception& e) {
    return Status::IoError("writing the block: " + model::TorchMessage(e));
  }
  std::ofstream(std::filesystem::path(dir) / "manifest.yaml")
      << "name: reload-bench\nslo_ms: 1000\nmax_batch: 1\ninput_shape: [" << side
      << "]\nblocks:\n  - {name: big, file: big.pt}\n";
  StageSpec spec;
  spec.executor = "torchscript";
  spec.dir = dir;
  FF_ASSIGN_OR_RETURN(auto executor, MakeTorchExecutor(spec));
  ReloadBench out;
  out.device = TorchDeviceName();
  FF_ASSIGN_OR_RETURN(LoadReport cold, executor->Load());
  out.cold_ms = cold.load_ms;
  out.bytes = cold.host_bytes;
  std::vector<double> warm;
  for (int t = 0; t < trials; ++t) {
    executor->Evict(/*keep_warm=*/true);
    FF_ASSIGN_OR_RETURN(LoadReport r, executor->Load());
    if (!r.from_warm) return Status::Internal("reload did not use the warm copy");
    warm.push_back(r.load_ms);
  }
  std::sort(warm.begin(), warm.end());
  out.warm_ms = warm[warm.size() / 2];
  out.warm_gbs = static_cast<double>(out.bytes) / (out.warm_ms * 1e6);
  // The peer: single-thread memcpy of the same bytes into memory already faulted in (the physical limit of one
  // core; the warm path on the CPU also pays for fresh pages).
  std::vector<double> copies;
  const std::vector<char> src(static_cast<size_t>(out.bytes), 1);
  std::vector<char> dst(src.size(), 0);
  for (int t = 0; t < trials; ++t) {
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), src.size());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    copies.push_back(static_cast<double>(out.bytes) / (ms * 1e6));
    dst[static_cast<size_t>(t)] = static_cast<char>(t);
  }
  std::sort(copies.begin(), copies.end());
  out.memcpy_gbs = copies[copies.size() / 2];
  std::filesystem::remove_all(dir, ec);
  return out;
}

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
