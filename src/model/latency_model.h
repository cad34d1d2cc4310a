// LatencyModel: how long a block takes on a MIG slice at a batch size, and how much memory a stage needs.
//
// Roofline per kernel. Every kernel a block launches (Block::ops) runs on the GPU for a fixed overhead plus the
// longer of:
//   - compute: 2 x multiply-adds x batch / (slice SMs x peak FLOP/s per SM x efficiency); the peak is the FP16
//     tensor-core one for fp16, and for fp32 the FP32 CUDA-core one for GEMMs and the TF32 tensor-core one for
//     convolutions (PyTorch's defaults since 1.12: TF32 for cuDNN convolutions, not for matmuls);
//   - memory:  (weights + activations x batch) bytes / (slice bandwidth x memory efficiency), where a slice has
//     memory_slices / 8 of the GPU's DRAM bandwidth;
// The host issues one kernel per launch cost (an eager framework's per-operator overhead) without waiting, and
// the GPU runs each kernel once it is issued and the previous one is done; a block's time is when its last
// kernel ends. Small kernels are thus hidden behind launches (why batch-1 latency barely improves beyond a 2g
// slice) and large ones queue up. The launch cost and the three fp32 efficiencies are fitted to the MIGProfiler
// A100-80GB measurements (`fluidfaas zoo calibrate --fit`); H100 and H200 reuse them with their own SMs, peaks and
// bandwidth, which makes their figures modelled rather than calibrated.
//
// Memory of a stage on a slice: a per-process reserve (CUDA context, library handles and workspaces; from the
// same measurements: about 1.3 GiB plus 4.25 MiB per SM) + the stage's weights + its activations for the batch.
//
// Thread safety: immutable after construction; const methods may be called from any thread.
#pragma once

#include <cstdint>

#include "gpu/gpu_type.h"
#include "model/block.h"

namespace fluidfaas::model {

struct LatencyModelParams {
  // Host time to launch one kernel, microseconds. Fitted.
  double launch_us = 28.48;
  // GPU time every kernel takes beyond its roofline time (start-up, tail wave), microseconds. Fitted.
  double kernel_overhead_us = 14.74;
  // Achieved fraction of the FP32 CUDA-core peak in GEMM kernels (fp32 models). Fitted.
  double fp32_matmul_efficiency = 0.935;
  // Achieved fraction of the TF32 tensor-core peak in convolution kernels (fp32 models). Fitted with the 4g/3g
  // ratio constraints (calibration.h): whole-model latencies alone pin down the sum of a ResNet's convolution and
  // bandwidth-bound time, not the split (without the constraints the fit runs into the bound of 1).
  double tf32_conv_efficiency = 0.770;
  // Achieved fraction of the FP16 tensor-core peak in GEMM kernels (fp16 models). Assumed: no fp16 data.
  double fp16_matmul_efficiency = 0.55;
  // Achieved fraction of a slice's DRAM bandwidth. Fitted.
  double memory_efficiency = 0.518;
  // DRAM bandwidth one SM can draw, GB/s: a bandwidth-bound kernel on a slice with few SMs per memory slice is
  // limited by the SMs' outstanding requests, not by the DRAM (a 3g.40gb slice has the 4g.40gb's memory and 3/4 of
  // its SMs). Fitted, with the 4g/3g ratio constraints.
  double sm_bandwidth_gbs = 10.67;
};

struct MemoryModelParams {
  // Per-process reserve: base + per_sm x the slice's SMs, MiB. From MIGProfiler's memory in use at batch 1 less
  // the weights: 1350 MiB on a 1g and 1708 on a 7g for ResNet-50 and ViT-B/16 (cuDNN loaded), 1106 and 1460 for
  // BERT; so 4.25 MiB per SM, and the base of the CNNs (the larger one) for everybody.
  double reserve_base_mib = 1290;
  double reserve_per_sm_mib = 4.25;
};

// Which GPU types the latency parameters were fitted on. Other types are modelled.
bool IsCalibrated(const gpu::GpuType& type);

class LatencyModel {
 public:
  explicit LatencyModel(LatencyModelParams latency = {}, MemoryModelParams memory = {})
      : params_(latency), memory_(memory) {}

  const LatencyModelParams& params() const { return params_; }

  // Milliseconds for one call of `block` on `batch` samples. REQUIRES: batch >= 1.
  double BlockMs(const Block& block, DType dtype, const gpu::GpuType& gpu, const gpu::MigProfile& slice,
                 int batch) const;

  // Sum of BlockMs over blocks [first, last] of `f`.
  double RangeMs(const FunctionSpec& f, size_t first, size_t last, const gpu::GpuType& gpu,
                 const gpu::MigProfile& slice, int batch) const;
  double ModelMs(const FunctionSpec& f, const gpu::GpuType& gpu, const gpu::MigProfile& slice, int batch) const {
    return RangeMs(f, 0, f.blocks.size() - 1, gpu, slice, batch);
  }

  // Per-process reserve on a slice, bytes.
  int64_t ReserveBytes(const gpu::MigProfile& slice) const;
  // Weights of blocks [first, last], bytes; tied weights count only when their owner is outside the range.
  int64_t StageWeightBytes(const FunctionSpec& f, size_t first, size_t last) const;
  // StageWeightBytes plus activations for `batch`: the largest block peak plus the stage's input and output
  // buffers, plus every block's kept state. Bytes, without the process reserve.
  int64_t StageBytes(const FunctionSpec& f, size_t first, size_t last, int batch) const;
  // Reserve + StageBytes, MiB (rounded up).
  int64_t StageMib(const FunctionSpec& f, size_t first, size_t last, const gpu::MigProfile& slice, int batch) const;
  // Whether the stage fits the slice's memory.
  bool Fits(const FunctionSpec& f, size_t first, size_t last, const gpu::MigProfile& slice, int batch) const {
    return StageMib(f, first, last, slice, batch) <= slice.memory_mib;
  }

 private:
  LatencyModelParams params_;
  MemoryModelParams memory_;
};

}  // namespace fluidfaas::model
