#include "model/latency_model.h"

#include <algorithm>
#include <cmath>

#include "common/limits.h"

namespace fluidfaas::model {

bool IsCalibrated(const gpu::GpuType& type) {
  return type.model == gpu::GpuModel::kA100_80GB;
}

double LatencyModel::BlockMs(const Block& block, DType dtype, const gpu::GpuType& gpu, const gpu::MigProfile& slice,
                             int batch) const {
  const double bytes_per_elem = static_cast<double>(BytesPerElement(dtype));
  const bool fp16 = dtype == DType::kFp16;
  const double slice_share = static_cast<double>(slice.sms) / gpu.sms;
  const double gemm_flops_per_s = 1e12 * slice_share *
                                  (fp16 ? gpu.fp16_tensor_tflops * params_.fp16_matmul_efficiency
                                        : gpu.fp32_tflops * params_.fp32_matmul_efficiency);
  const double conv_flops_per_s =
      fp16 ? gemm_flops_per_s : 1e12 * slice_share * gpu.tf32_tensor_tflops * params_.tf32_conv_efficiency;
  const double bytes_per_s =
      std::min(gpu.memory_bandwidth_gbs * 1e9 * slice.memory_slices / gpu::kMemorySlices * params_.memory_efficiency,
               params_.sm_bandwidth_gbs * 1e9 * slice.sms);
  const double launch_s = params_.launch_us * 1e-6;
  const double overhead_s = params_.kernel_overhead_us * 1e-6;
  const double b = static_cast<double>(batch);
  // The host issues kernels back to back, one per launch cost, without waiting; the GPU runs each when it is
  // issued and the one before has finished.
  double issued = 0;
  double finished = 0;
  for (const Op& op : block.ops) {
    const double rate = op.op_class == Op::Class::kConv ? conv_flops_per_s : gemm_flops_per_s;
    const double compute = 2 * op.macs * b / rate;
    const double memory = (op.weight_elems + op.act_elems * b) * bytes_per_elem / bytes_per_s;
    const double kernel = overhead_s + std::max(compute, memory);
    for (int i = 0; i < op.count; ++i) {
      issued += launch_s;
      finished = std::max(finished, issued) + kernel;
    }
  }
  return finished * 1e3;
}

double LatencyModel::RangeMs(const FunctionSpec& f, size_t first, size_t last, const gpu::GpuType& gpu,
                             const gpu::MigProfile& slice, int batch) const {
  double ms = 0;
  for (size_t i = first; i <= last; ++i) ms += BlockMs(f.blocks[i], f.dtype, gpu, slice, batch);
  return ms;
}

int64_t LatencyModel::ReserveBytes(const gpu::MigProfile& slice) const {
  const double mib = memory_.reserve_base_mib + memory_.reserve_per_sm_mib * slice.sms;
  return static_cast<int64_t>(std::ceil(mib)) << 20;
}

int64_t LatencyModel::StageWeightBytes(const FunctionSpec& f, size_t first, size_t last) const {
  int64_t weights = 0;
  for (size_t i = first; i <= last; ++i) {
    const Block& b = f.blocks[i];
    weights += b.params;
    const bool owner_inside = b.tied_to >= static_cast<int>(first) && b.tied_to <= static_cast<int>(last);
    if (b.tied_to >= 0 && !owner_inside) weights += b.tied_params;
  }
  return weights * BytesPerElement(f.dtype);
}

int64_t LatencyModel::StageBytes(const FunctionSpec& f, size_t first, size_t last, int batch) const {
  int64_t peak = 0;
  int64_t state = 0;
  for (size_t i = first; i <= last; ++i) {
    peak = std::max(peak, f.blocks[i].peak_act_elems);
    state += f.blocks[i].state_elems;
  }
  // The stage's input and output buffers stay allocated while a block runs.
  const int64_t in = first == 0 ? 0 : f.blocks[first - 1].out_elems;
  const int64_t io = in + f.blocks[last].out_elems;
  // Saturating: a batch too large for any GPU stays "too large", never wraps to a small or negative size.
  const int64_t per_sample = SaturatingAdd(SaturatingAdd(peak, io), state);
  return SaturatingAdd(StageWeightBytes(f, first, last),
                       SaturatingMul(SaturatingMul(per_sample, batch), BytesPerElement(f.dtype)));
}

int64_t LatencyModel::StageMib(const FunctionSpec& f, size_t first, size_t last, const gpu::MigProfile& slice,
                               int batch) const {
  const int64_t bytes = SaturatingAdd(ReserveBytes(slice), StageBytes(f, first, last, batch));
  return SaturatingAdd(bytes, (1 << 20) - 1) >> 20;
}

}  // namespace fluidfaas::model
