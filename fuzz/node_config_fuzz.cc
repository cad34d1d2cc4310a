// The node config (gpu/node_config.h): YAML parsed, checked, validated, and the node emulated from it.
#include "common/config.h"
#include "fuzz/fuzz_common.h"
#include "gpu/node_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto doc = fluidfaas::config::ParseYaml(FuzzText(data, size), "fuzz");
  if (!doc.ok()) return 0;
  auto config = fluidfaas::gpu::ParseNodeConfig(*doc);
  if (!config.ok() || !fluidfaas::gpu::ValidateNodeConfig(*config).ok()) return 0;
  (void)fluidfaas::gpu::EmulateNode(*config);
  return 0;
}
