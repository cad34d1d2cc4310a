// A function directory's manifest (model/manifest.h).
#include "fuzz/fuzz_common.h"
#include "model/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)fluidfaas::model::ParseManifest(FuzzText(data, size), "manifest.yaml");
  return 0;
}
