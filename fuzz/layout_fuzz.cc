// The MIG layout parser (gpu/layout.h): "1g.10gb+2g.20gb+4g.40gb", "4g.40gb@0+2g.20gb@4", on every GPU type.
#include "fuzz/fuzz_common.h"
#include "gpu/gpu_type.h"
#include "gpu/layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using fluidfaas::gpu::GpuModel;
  const GpuModel models[] = {GpuModel::kA100_40GB, GpuModel::kA100_80GB, GpuModel::kH100_80GB, GpuModel::kH200_141GB};
  const auto& type = fluidfaas::gpu::GetGpuType(models[data[0] % 4]);
  const std::string text = FuzzText(data + 1, size - 1);
  (void)fluidfaas::gpu::ParseLayout(type, text);
  (void)fluidfaas::gpu::ParseLayout(type, text, fluidfaas::gpu::LayoutRules{.driver_before_r510 = true});
  return 0;
}
