#include "gpu/gpu_type.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "common/strings.h"

namespace fluidfaas::gpu {
namespace {

// Placement masks ({starts}:size in the MIG guide).
constexpr uint8_t kAny1 = 0b0111'1111;  // {0..6}:1
constexpr uint8_t kEven = 0b0101'0101;  // {0,2,4,6}:2
constexpr uint8_t kTwo = 0b0001'0101;   // {0,2,4}:2
constexpr uint8_t kHalf = 0b0001'0001;  // {0,4}:4
constexpr uint8_t kZero = 0b0000'0001;  // {0}

// Columns: id, name, SM slices, memory slices, memory MiB, SMs, placements, max count, +me.
// NOLINTNEXTLINE(readability-identifier-naming): named after the GPU model
constexpr std::array<MigProfile, 7> kA100_40GB = {{
    {19, "1g.5gb", 1, 1, 4864, 14, kAny1, 7, false},
    {20, "1g.5gb+me", 1, 1, 4864, 14, kAny1, 1, true},
    {15, "1g.10gb", 1, 2, 9856, 14, kEven, 4, false},
    {14, "2g.10gb", 2, 2, 9856, 28, kTwo, 3, false},
    {9, "3g.20gb", 3, 4, 19968, 42, kHalf, 2, false},
    {5, "4g.20gb", 4, 4, 19968, 56, kZero, 1, false},
    {0, "7g.40gb", 7, 8, 40192, 98, kZero, 1, false},
}};

// NOLINTNEXTLINE(readability-identifier-naming): named after the GPU model
constexpr std::array<MigProfile, 7> kA100_80GB = {{
    {19, "1g.10gb", 1, 1, 9856, 14, kAny1, 7, false},
    {20, "1g.10gb+me", 1, 1, 9856, 14, kAny1, 1, true},
    {15, "1g.20gb", 1, 2, 19968, 14, kEven, 4, false},
    {14, "2g.20gb", 2, 2, 19968, 28, kTwo, 3, false},
    {9, "3g.40gb", 3, 4, 40192, 42, kHalf, 2, false},
    {5, "4g.40gb", 4, 4, 40192, 56, kZero, 1, false},
    {0, "7g.80gb", 7, 8, 80384, 98, kZero, 1, false},
}};

// `nvidia-smi mig -lgip` on an H100 80GB HBM3: 9.75, 19.62, 39.50 and 79.25 GiB; 16, 26 (1g.20gb), 32, 60, 64
// and 132 SMs.
// NOLINTNEXTLINE(readability-identifier-naming): named after the GPU model
constexpr std::array<MigProfile, 7> kH100_80GB = {{
    {19, "1g.10gb", 1, 1, 9984, 16, kAny1, 7, false},
    {20, "1g.10gb+me", 1, 1, 9984, 16, kAny1, 1, true},
    {15, "1g.20gb", 1, 2, 20096, 26, kEven, 4, false},
    {14, "2g.20gb", 2, 2, 20096, 32, kTwo, 3, false},
    {9, "3g.40gb", 3, 4, 40448, 60, kHalf, 2, false},
    {5, "4g.40gb", 4, 4, 40448, 64, kZero, 1, false},
    {0, "7g.80gb", 7, 8, 81152, 132, kZero, 1, false},
}};

// Modelled: H100's SM counts (same die) and the nominal size of each profile times H100's ratio of reported
// to nominal memory (about 0.975 GiB per GB). Replace with NVML's figures when a H200 reports them.
// NOLINTNEXTLINE(readability-identifier-naming): named after the GPU model
constexpr std::array<MigProfile, 7> kH200_141GB = {{
    {19, "1g.18gb", 1, 1, 17920, 16, kAny1, 7, false},
    {20, "1g.18gb+me", 1, 1, 17920, 16, kAny1, 1, true},
    {15, "1g.35gb", 1, 2, 34944, 26, kEven, 4, false},
    {14, "2g.35gb", 2, 2, 34944, 32, kTwo, 3, false},
    {9, "3g.71gb", 3, 4, 70912, 60, kHalf, 2, false},
    {5, "4g.71gb", 4, 4, 70912, 64, kZero, 1, false},
    {0, "7g.141gb", 7, 8, 140800, 132, kZero, 1, false},
}};

// Bandwidth, FP16 tensor and FP32 peaks from NVIDIA's data sheets (SXM parts, dense).
const std::array<GpuType, 4> kGpuTypes = {{
    {GpuModel::kA100_40GB, "a100-40gb", "NVIDIA A100-SXM4-40GB", 40960, 108, 1555.0, 312.0, 19.5, 156.0, kA100_40GB},
    {GpuModel::kA100_80GB, "a100-80gb", "NVIDIA A100-SXM4-80GB", 81920, 108, 2039.0, 312.0, 19.5, 156.0, kA100_80GB},
    {GpuModel::kH100_80GB, "h100-80gb", "NVIDIA H100 80GB HBM3", 81559, 132, 3350.0, 989.0, 67.0, 494.7, kH100_80GB},
    {GpuModel::kH200_141GB, "h200-141gb", "NVIDIA H200", 143771, 132, 4800.0, 989.0, 67.0, 494.7, kH200_141GB},
}};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

std::string MigProfile::PlacementsToString() const {
  std::string out = "{";
  for (int s = 0; s < kMemorySlices; ++s) {
    if (!AllowsStart(s)) continue;
    if (out.size() > 1) out += ",";
    out += std::to_string(s);
  }
  return out + "}:" + std::to_string(memory_slices);
}

const MigProfile* GpuType::FindProfile(std::string_view profile_name) const {
  const std::string wanted = Lower(profile_name);
  for (const MigProfile& p : profiles) {
    if (p.name == wanted) return &p;
  }
  return nullptr;
}

const MigProfile* GpuType::FindProfileById(int id) const {
  for (const MigProfile& p : profiles) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const MigProfile& GpuType::FullProfile() const {
  return *FindProfileById(0);
}

std::string GpuType::ProfileNames() const {
  return Join(profiles, ", ", [](const MigProfile& p) { return p.name; });
}

std::span<const GpuType> AllGpuTypes() {
  return kGpuTypes;
}

const GpuType& GetGpuType(GpuModel model) {
  for (const GpuType& t : kGpuTypes) {
    if (t.model == model) return t;
  }
  return kGpuTypes[1];  // unreachable: every GpuModel has a row
}

Result<const GpuType*> FindGpuType(std::string_view name) {
  const std::string wanted = Lower(name);
  for (const GpuType& t : kGpuTypes) {
    if (t.name == wanted) return &t;
  }
  return Status::InvalidArgument("unknown GPU type '" + std::string(name) +
                                 "' (known: " + Join(kGpuTypes, ", ", [](const GpuType& t) { return t.name; }) + ")");
}

Result<const GpuType*> GpuTypeFromProductName(std::string_view product, int64_t memory_mib) {
  const std::string p = Lower(product);
  const auto has = [&p](std::string_view s) { return p.find(s) != std::string::npos; };
  if (has("a100")) {
    return &GetGpuType(has("80gb") || memory_mib > 60000 ? GpuModel::kA100_80GB : GpuModel::kA100_40GB);
  }
  // H100 NVL (94 GB) has other MIG profiles; it is not modelled.
  if (has("h100") && !has("nvl")) return &GetGpuType(GpuModel::kH100_80GB);
  if (has("h200")) return &GetGpuType(GpuModel::kH200_141GB);
  return Status::Unimplemented(
      "GPU '" + std::string(product) +
      "' is not a GPU type FluidFaaS models (supported: A100-40GB, A100-80GB, H100-80GB, H200-141GB). To add it: its "
      "MIG profiles (or none) and memory in src/gpu/gpu_type.cc, its latency calibration in data/calibration "
      "(docs/latency-model.md); until then run the node emulated (node config discovery: emulated)");
}

}  // namespace fluidfaas::gpu
