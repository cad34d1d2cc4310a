// The free-slice list of `fluidfaas plan --free` (gpu/topology.h): "0:2g.20gb@4,0:1g.10gb@6".
#include "fuzz/fuzz_common.h"
#include "gpu/gpu_type.h"
#include "gpu/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& type = fluidfaas::gpu::GetGpuType(fluidfaas::gpu::GpuModel::kA100_80GB);
  (void)fluidfaas::gpu::ParseSliceList(type, FuzzText(data, size));
  return 0;
}
