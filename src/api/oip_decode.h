// Decoding an Open Inference Protocol infer request (KServe v2): the JSON part read by a streaming (SAX) parse
// straight into the request's fields and each input's values, never into a JSON tree first, so that a body's
// memory is bounded by what the request may hold: at most `max_elements` values per input (the parse stops at
// the first value past it), a nesting depth of `max_depth`, and `max_other_values` values the decoder does not
// use (parameters it ignores, unknown fields). A 60 MB array costs as many values as the function takes, not a
// tree of 60 MB of numbers.
//
//   {"id"?, "parameters"?: {"timeout_ms"?, "binary_data_output"?, ...}, "inputs": [{"name", "datatype", "shape",
//    "parameters"?: {"binary_data_size"?}, "data"?: flat or nested array}], "outputs"?: [{"name",
//    "parameters"?: {"binary_data"?}}]}
//
// Then TensorBytes turns one decoded input (its `data`, or its slice of the binary part of a binary-extension
// request) into the bytes of a tensor of the function's datatype, checking shape, size and that every value is
// finite.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace fluidfaas::api {

struct DecodeLimits {
  size_t max_elements = 1 << 20;   // values in one input's data (the caller passes its function's sample size)
  size_t max_inputs = 16;          // entries in "inputs" and in "outputs"
  size_t max_depth = 32;           // nesting of arrays and objects
  size_t max_other_values = 4096;  // values of fields the decoder skips
  size_t max_string_bytes = 4096;  // "id", names, datatypes
};

struct DecodedInput {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::optional<uint64_t> binary_data_size;
  bool has_data = false;
  std::vector<double> data;  // flattened, row-major
};

struct DecodedInfer {
  std::optional<std::string> id;
  std::optional<double> timeout_ms;  // parameters.timeout_ms, as sent (checked by the caller)
  bool timeout_not_a_number = false;
  bool binary_output = false;  // parameters.binary_data_output, or an output's parameters.binary_data
  std::vector<DecodedInput> inputs;
};

// InvalidArgument with a message that names the field and, for malformed JSON, the byte offset.
Result<DecodedInfer> DecodeInferJson(std::string_view json, const DecodeLimits& limits);

// The bytes of a tensor of `datatype` ("FP32" or "FP16") and `shape` from `input`: its `data`, or `binary` when it
// declares binary_data_size. InvalidArgument naming the input for a wrong datatype, shape, size or a value that
// is not finite.
Result<std::vector<std::byte>> TensorBytes(const DecodedInput& input, std::string_view datatype,
                                           const std::vector<int64_t>& shape, std::string_view binary);

}  // namespace fluidfaas::api
