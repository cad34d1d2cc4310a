// The Open Inference Protocol's infer decoder: the first byte says how much of the rest is the JSON header (the
// binary tensor extension's split), the JSON is decoded by the streaming parser, and each input is turned into a
// tensor of an FP32 and an FP16 function ([1, 4]).
#include <cstdlib>

#include "api/oip_decode.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text = FuzzText(data + 1, size - 1);
  const size_t binary = std::min<size_t>(data[0] % 33, text.size());  // 0..32 trailing raw bytes
  const std::string_view json(text.data(), text.size() - binary);
  const std::string_view raw(text.data() + json.size(), binary);
  fluidfaas::api::DecodeLimits limits;
  limits.max_elements = 4;
  limits.max_other_values = 64;
  const auto decoded = fluidfaas::api::DecodeInferJson(json, limits);
  if (!decoded.ok()) return 0;
  for (const auto& input : decoded->inputs) {
    if (input.data.size() > limits.max_elements) std::abort();
    for (const char* datatype : {"FP32", "FP16"}) {
      const auto bytes = fluidfaas::api::TensorBytes(input, datatype, {1, 4}, raw);
      if (bytes.ok() && bytes->size() != (datatype[2] == '3' ? 16u : 8u)) std::abort();
    }
  }
  return 0;
}
