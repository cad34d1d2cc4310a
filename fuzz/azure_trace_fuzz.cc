// The Azure Functions 2019 trace reader (sim/azure_trace.h), strict and lenient, at a few rate scales.
#include "fuzz/fuzz_common.h"
#include "sim/azure_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  fluidfaas::sim::TraceOptions options;
  options.mix = {{"resnet50", 1}, {"bert-base", 2}, {"llama2-7b", 1}};
  options.max_functions = (data[0] & 4) != 0 ? 2 : 512;
  options.lenient = (data[0] & 1) != 0;
  options.rate_scale = (data[0] & 2) != 0 ? 0.5 : 1.0;
  options.seed = data[0];
  // A valid trace may ask for millions of arrivals; generating and sorting them under ASan takes longer than the
  // harness's per-input timeout without exercising anything new, so the fuzzer's runs are capped lower.
  options.max_invocations = 100'000;
  (void)fluidfaas::sim::ParseAzureTrace(FuzzText(data + 1, size - 1), "fuzz.csv", options);
  return 0;
}
