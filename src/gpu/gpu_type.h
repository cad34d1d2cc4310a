// GPU types and their MIG profiles: the facts of NVIDIA's MIG user guide, as data.
//
// Sources: ../shared/calibration/mig_profiles.md (profile ids, slices, placements, max counts; A100-80GB memory
// as NVML reports it), `nvidia-smi mig -lgip` on an H100 80GB HBM3 (H100 memory and SM counts). H200 memory per
// profile is modelled (the profile's nominal size scaled like H100's), not read off a GPU: see gpu_type.cc.
//
// Everything here is immutable static data; the pointers and references handed out live for the whole program.
// Thread safety: read-only, safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace fluidfaas::gpu {

// A GPU has 8 memory slices and 7 compute (SM) slices.
inline constexpr int kMemorySlices = 8;
inline constexpr int kSmSlices = 7;

enum class GpuModel { kA100_40GB, kA100_80GB, kH100_80GB, kH200_141GB };

// One MIG GPU-instance profile of one GPU type.
struct MigProfile {
  int id;                  // NVML GPU-instance profile id: 19, 20, 15, 14, 9, 5 or 0
  std::string_view name;   // "2g.20gb"; media-extension profiles end in "+me"
  int sm_slices;           // compute slices used, of kSmSlices
  int memory_slices;       // memory slices used, of kMemorySlices (a 3g takes 4)
  int memory_mib;          // usable device memory, MiB
  int sms;                 // streaming multiprocessors
  uint8_t placement_mask;  // bit s set: the instance may start at memory slice s
  int max_count;           // most instances of this profile on one GPU
  bool media_extensions;   // a "+me" profile (at most one +me instance per GPU)

  // One of the five classic profiles (1g, 2g, 3g, 4g, 7g with one memory slice per compute slice, no +me).
  bool classic() const { return id == 19 || id == 14 || id == 9 || id == 5 || id == 0; }
  bool AllowsStart(int start) const { return start >= 0 && start < kMemorySlices && (placement_mask >> start) & 1; }
  // Memory slices [start, start + memory_slices) as a bit mask.
  uint8_t MemoryMask(int start) const { return static_cast<uint8_t>(((1u << memory_slices) - 1u) << start); }
  // "{0,2,4}:2", as the MIG user guide writes placements.
  std::string PlacementsToString() const;
};

struct GpuType {
  GpuModel model;
  std::string_view name;                 // "a100-80gb": the name used in configs and on the command line
  std::string_view product;              // "NVIDIA A100-SXM4-80GB"
  int memory_mib;                        // whole-GPU memory, MiB
  int sms;                               // whole-GPU SMs
  double memory_bandwidth_gbs;           // whole-GPU DRAM bandwidth, GB/s
  double fp16_tensor_tflops;             // dense FP16 tensor-core peak, TFLOP/s
  double fp32_tflops;                    // FP32 CUDA-core peak (no tensor cores), TFLOP/s
  double tf32_tensor_tflops;             // dense TF32 tensor-core peak, TFLOP/s
  std::span<const MigProfile> profiles;  // in NVML id order of the MIG guide table (19, 20, 15, 14, 9, 5, 0)

  // nullptr when the profile does not exist on this GPU type.
  const MigProfile* FindProfile(std::string_view profile_name) const;
  const MigProfile* FindProfileById(int id) const;
  // The whole-GPU profile (id 0, "7g.80gb" on an A100-80GB).
  const MigProfile& FullProfile() const;
  // "1g.10gb, 1g.10gb+me, ...": for error messages.
  std::string ProfileNames() const;
};

std::span<const GpuType> AllGpuTypes();
const GpuType& GetGpuType(GpuModel model);

// Looks a type up by its config name ("a100-80gb", case-insensitive). InvalidArgument listing the known names.
Result<const GpuType*> FindGpuType(std::string_view name);

// Maps the product name NVML reports ("NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3") and the GPU's total
// memory to a type. Unimplemented for GPUs FluidFaaS does not model.
Result<const GpuType*> GpuTypeFromProductName(std::string_view product, int64_t memory_mib);

}  // namespace fluidfaas::gpu
