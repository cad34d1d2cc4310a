#include "runtime/emulated_executor.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "common/limits.h"
#include "gpu/gpu_type.h"
#include "model/latency_model.h"
#include "model/load_cost.h"
#include "model/zoo.h"
#include "runtime/worker_process.h"

namespace fluidfaas::runtime {
namespace {

std::atomic<bool> first_load_done{false};  // in this process

class EmulatedExecutor final : public StageExecutor {
 public:
  EmulatedExecutor(StageSpec spec, model::FunctionSpec f, const gpu::GpuType* gpu, const gpu::MigProfile* slice)
      : spec_(std::move(spec)), f_(std::move(f)), gpu_(gpu), slice_(slice) {
    weight_bytes_ = latency_.StageWeightBytes(f_, spec_.first_block, spec_.last_block);
  }

  Result<LoadReport> Load() override {
    // The charge every policy is charged (model::LoadCostModel): disk to host to device, or host to device.
    const model::LoadCostModel cost;
    LoadReport r;
    r.from_warm = warm_;
    // A cold load is charged the process start too (CUDA and the framework initialised, which an emulated worker
    // skips): the process's first load counts the time since the node spawned it against that.
    double ms = ToMicros(cost.LoadTime(weight_bytes_, warm_)) / 1000.0;
    if (!warm_ && !first_load_done.exchange(true)) {
      ms -= static_cast<double>(MonotonicNanos() - WorkerSpawnedNanos()) / 1e6 / spec_.time_scale;
    }
    const int64_t start = MonotonicNanos();
    SleepUntilNanos(start + static_cast<int64_t>(std::max(0.0, ms) * spec_.time_scale * 1e6));
    r.load_ms = static_cast<double>(MonotonicNanos() - start) / 1e6;
    r.device_bytes =
        latency_.StageBytes(f_, spec_.first_block, spec_.last_block, spec_.max_batch) + latency_.ReserveBytes(*slice_);
    r.host_bytes = weight_bytes_;
    warm_ = true;
    return r;
  }

  int64_t Evict(bool keep_warm) override {
    warm_ = keep_warm;
    return keep_warm ? weight_bytes_ : 0;
  }
  bool warm() const override { return warm_; }

  Status Run(const Slot& in, Slot& out) override {
    const int batch = static_cast<int>(in.header->count);
    if (batch < 1 || batch > spec_.max_batch) {
      return Status::InvalidArgument("batch of " + std::to_string(batch) + " (max " + std::to_string(spec_.max_batch) +
                                     ")");
    }
    const int64_t start = MonotonicNanos();
    const double ms = latency_.RangeMs(f_, spec_.first_block, spec_.last_block, *gpu_, *slice_, batch);
    const model::Block& last = f_.blocks[spec_.last_block];
    const int64_t bytes = SaturatingMul(last.ActivationOutBytes(f_.dtype), batch);
    if (bytes > static_cast<int64_t>(out.payload.size())) {
      return Status::ResourceExhausted("output of " + std::to_string(bytes) + " bytes over the slot's " +
                                       std::to_string(out.payload.size()));
    }
    std::memset(out.payload.data(), 0x5a, static_cast<size_t>(bytes));
    out.header->payload_bytes = static_cast<uint64_t>(bytes);
    out.header->dtype = static_cast<uint32_t>(f_.dtype);
    out.header->rank = 2;
    out.header->shape[0] = batch;
    out.header->shape[1] = last.out_elems;
    SleepUntilNanos(start + static_cast<int64_t>(ms * spec_.time_scale * 1e6));
    return Status::Ok();
  }

 private:
  StageSpec spec_;
  model::FunctionSpec f_;
  const gpu::GpuType* gpu_;
  const gpu::MigProfile* slice_;
  model::LatencyModel latency_;
  int64_t weight_bytes_ = 0;
  bool warm_ = false;
};

}  // namespace

Result<std::unique_ptr<StageExecutor>> MakeEmulatedExecutor(const StageSpec& spec) {
  model::ZooOptions options;
  options.seq_len = spec.seq_len;
  FF_ASSIGN_OR_RETURN(model::FunctionSpec f, model::BuildZooModel(spec.model, options));
  FF_ASSIGN_OR_RETURN(const gpu::GpuType* gpu, gpu::FindGpuType(spec.gpu));
  const gpu::MigProfile* slice = gpu->FindProfile(spec.profile);
  if (slice == nullptr) {
    return Status::NotFound("profile '" + spec.profile + "' on " + spec.gpu + " (one of " + gpu->ProfileNames() + ")");
  }
  if (spec.first_block > spec.last_block || spec.last_block >= f.blocks.size()) {
    return Status::InvalidArgument("blocks [" + std::to_string(spec.first_block) + ", " +
                                   std::to_string(spec.last_block) + "] outside " + spec.model + "'s 0.." +
                                   std::to_string(f.blocks.size() - 1));
  }
  return std::unique_ptr<StageExecutor>(new EmulatedExecutor(spec, std::move(f), gpu, slice));
}

}  // namespace fluidfaas::runtime
