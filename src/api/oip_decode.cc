#include "api/oip_decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/half.h"

namespace fluidfaas::api {
namespace {

using nlohmann::json;

// Where a value sits in the request, by its enclosing containers.
enum class Ctx {
  kTop,           // before the root
  kRoot,          // the request object
  kParameters,    // root.parameters
  kInputs,        // root.inputs
  kInput,         // root.inputs[i]
  kShape,         // root.inputs[i].shape
  kInputParams,   // root.inputs[i].parameters
  kData,          // root.inputs[i].data, at any depth
  kOutputs,       // root.outputs
  kOutput,        // root.outputs[i]
  kOutputParams,  // root.outputs[i].parameters
  kSkip,          // anything the decoder does not use
};

class InferSax {
 public:
  explicit InferSax(const DecodeLimits& limits) : limits_(limits) {}

  Result<DecodedInfer> Finish(bool parsed) {
    if (!parsed) return Status::InvalidArgument(error_.empty() ? "the body is not valid JSON" : error_);
    if (!saw_inputs_) return Status::InvalidArgument("\"inputs\" must be an array of tensors");
    return std::move(out_);
  }

  // ---- scalars
  bool null() { return Scalar("null"); }
  bool boolean(bool v) {
    if (In(Ctx::kParameters, "binary_data_output") || In(Ctx::kOutputParams, "binary_data")) {
      out_.binary_output = out_.binary_output || v;
      return true;
    }
    return Scalar("a boolean");
  }
  bool number_integer(int64_t v) { return Number(static_cast<double>(v), v); }
  bool number_unsigned(uint64_t v) {  // past INT64_MAX: larger than any tensor, so saturating changes no answer
    return Number(static_cast<double>(v), static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
  }
  bool number_float(double v, const std::string&) { return Number(v, std::nullopt); }
  bool string(std::string& v) {
    if (v.size() > limits_.max_string_bytes) {
      return Fail("a string of " + std::to_string(v.size()) + " bytes (at most " +
                  std::to_string(limits_.max_string_bytes) + ")");
    }
    if (In(Ctx::kRoot, "id")) {
      out_.id = std::move(v);
    } else if (In(Ctx::kInput, "name")) {
      Input().name = std::move(v);
    } else if (In(Ctx::kInput, "datatype")) {
      Input().datatype = std::move(v);
    } else if (In(Ctx::kData, nullptr)) {
      return Fail(Who() + ": data holds a string; expected numbers");
    } else if (In(Ctx::kShape, nullptr)) {
      return Fail(Who() + ": shape must hold integers");
    } else {
      return Other();
    }
    return true;
  }
  bool binary(json::binary_t&) { return Fail("binary values are not JSON"); }

  // ---- containers
  bool start_object(size_t) { return Open(false); }
  bool start_array(size_t) { return Open(true); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(std::string& k) {
    if (k.size() > limits_.max_string_bytes) return Fail("a key of " + std::to_string(k.size()) + " bytes");
    stack_.back().key = std::move(k);
    return true;
  }

  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception&) {
    if (error_.empty()) error_ = "the body is not valid JSON (at byte " + std::to_string(position) + ")";
    return false;
  }

 private:
  struct Frame {
    Ctx ctx;
    bool array;
    std::string key;  // an object's current member
  };

  // The value being read is member `key` of a container of context `ctx` (any member, or an array element, when
  // `key` is null).
  bool In(Ctx ctx, const char* key) const {
    if (stack_.empty() || stack_.back().ctx != ctx) return false;
    return key == nullptr || (!stack_.back().array && stack_.back().key == key);
  }
  DecodedInput& Input() { return out_.inputs.back(); }
  std::string Who() const {
    return out_.inputs.empty() ? std::string("inputs") : "input '" + out_.inputs.back().name + "'";
  }

  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }
  bool Other() {
    if (++others_ > limits_.max_other_values) {
      return Fail("more than " + std::to_string(limits_.max_other_values) + " values the request does not use");
    }
    return true;
  }
  bool Scalar(const char* what) {
    if (In(Ctx::kData, nullptr)) return Fail(Who() + ": data holds " + what + "; expected numbers");
    if (In(Ctx::kShape, nullptr)) return Fail(Who() + ": shape must hold integers");
    if (stack_.empty()) return Fail("the body is not a JSON object");
    return Other();
  }

  // `integer`: the value when it was written as an integer.
  bool Number(double v, std::optional<int64_t> integer) {
    if (In(Ctx::kData, nullptr)) {
      DecodedInput& in = Input();
      if (in.data.size() >= limits_.max_elements) {
        return Fail(Who() + ": data holds more than " + std::to_string(limits_.max_elements) + " values");
      }
      in.data.push_back(v);
      return true;
    }
    if (In(Ctx::kShape, nullptr)) {
      if (!integer) return Fail(Who() + ": shape must hold integers");
      if (Input().shape.size() >= 16) return Fail(Who() + ": shape has more than 16 dimensions");
      Input().shape.push_back(*integer);
      return true;
    }
    if (In(Ctx::kInputParams, "binary_data_size")) {
      if (!integer || *integer < 0) return Fail(Who() + ": binary_data_size must be a byte count");
      Input().binary_data_size = static_cast<uint64_t>(*integer);
      return true;
    }
    if (In(Ctx::kParameters, "timeout_ms")) {
      out_.timeout_ms = v;
      return true;
    }
    if (stack_.empty()) return Fail("the body is not a JSON object");
    return Other();
  }

  bool Open(bool array) {
    if (stack_.size() >= limits_.max_depth) {
      return Fail("the body nests deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    Ctx ctx = Ctx::kSkip;
    if (stack_.empty()) {
      if (array) return Fail("the body is not a JSON object");
      ctx = Ctx::kRoot;
    } else if (In(Ctx::kData, nullptr)) {
      if (!array) return Fail(Who() + ": data holds an object; expected numbers");
      ctx = Ctx::kData;  // nested data: flattened in row-major order
    } else if (In(Ctx::kShape, nullptr)) {
      return Fail(Who() + ": shape must hold integers");
    } else if (In(Ctx::kRoot, "parameters") && !array) {
      ctx = Ctx::kParameters;
    } else if (In(Ctx::kRoot, "inputs")) {
      if (!array) return Fail("\"inputs\" must be an array of tensors");
      if (saw_inputs_) return Fail("\"inputs\" appears twice");
      saw_inputs_ = true;
      ctx = Ctx::kInputs;
    } else if (In(Ctx::kInputs, nullptr)) {
      if (array) return Fail("inputs[" + std::to_string(out_.inputs.size()) + "] is not an object");
      if (out_.inputs.size() >= limits_.max_inputs) {
        return Fail("more than " + std::to_string(limits_.max_inputs) + " inputs");
      }
      out_.inputs.emplace_back();
      ctx = Ctx::kInput;
    } else if (In(Ctx::kInput, "shape")) {
      if (!array) return Fail(Who() + ": shape must be an array of integers");
      Input().shape.clear();
      ctx = Ctx::kShape;
    } else if (In(Ctx::kInput, "data")) {
      if (!array) return Fail(Who() + ": data must be an array of numbers");
      if (Input().has_data) return Fail(Who() + ": data appears twice");
      Input().has_data = true;
      ctx = Ctx::kData;
    } else if (In(Ctx::kInput, "parameters") && !array) {
      ctx = Ctx::kInputParams;
    } else if (In(Ctx::kRoot, "outputs") && array) {
      ctx = Ctx::kOutputs;
    } else if (In(Ctx::kOutputs, nullptr) && !array) {
      if (++outputs_ > limits_.max_inputs) return Fail("more than " + std::to_string(limits_.max_inputs) + " outputs");
      ctx = Ctx::kOutput;
    } else if (In(Ctx::kOutput, "parameters") && !array) {
      ctx = Ctx::kOutputParams;
    } else if (!Other()) {
      return false;
    }
    stack_.push_back(Frame{ctx, array, {}});
    return true;
  }
  bool Close() {
    stack_.pop_back();
    return true;
  }

  const DecodeLimits& limits_;
  std::vector<Frame> stack_;
  DecodedInfer out_;
  bool saw_inputs_ = false;
  size_t others_ = 0;
  size_t outputs_ = 0;
  std::string error_;
};

std::string ShapeText(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

Result<DecodedInfer> DecodeInferJson(std::string_view text, const DecodeLimits& limits) {
  InferSax sax(limits);
  const bool parsed = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, /*strict=*/true);
  return sax.Finish(parsed);
}

Result<std::vector<std::byte>> TensorBytes(const DecodedInput& in, std::string_view datatype,
                                           const std::vector<int64_t>& shape, std::string_view binary) {
  const std::string who = "input '" + in.name + "'";
  if (in.name.empty()) return Status::InvalidArgument("an input has no \"name\"");
  if (in.datatype != datatype) return Status::InvalidArgument(who + ": datatype must be " + std::string(datatype));
  if (in.shape != shape) {
    return Status::InvalidArgument(who + ": shape " + ShapeText(in.shape) + ", expected " + ShapeText(shape));
  }
  const bool half = datatype == "FP16";
  if (!half && datatype != "FP32") return Status::InvalidArgument(who + ": datatype " + std::string(datatype));
  size_t elems = 1;
  for (int64_t d : shape) elems *= static_cast<size_t>(d);
  const size_t width = half ? 2 : 4;
  const size_t want_bytes = elems * width;
  std::vector<std::byte> bytes(want_bytes);
  if (in.binary_data_size) {
    if (in.has_data) return Status::InvalidArgument(who + ": both data and binary_data_size");
    if (*in.binary_data_size != want_bytes || binary.size() != want_bytes) {
      return Status::InvalidArgument(who + ": binary_data_size must be " + std::to_string(want_bytes) +
                                     " and match the bytes after the JSON header (" + std::to_string(binary.size()) +
                                     ")");
    }
    std::memcpy(bytes.data(), binary.data(), want_bytes);
    for (size_t i = 0; i < elems; ++i) {  // numbers from outside are finite
      float x = 0;
      if (half) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + i * 2, 2);
        x = HalfToFloat(h);
      } else {
        std::memcpy(&x, bytes.data() + i * 4, 4);
      }
      if (!std::isfinite(x)) return Status::InvalidArgument(who + ": element " + std::to_string(i) + " is not finite");
    }
    return bytes;
  }
  if (!binary.empty()) return Status::InvalidArgument("binary data after the header, but no input asks for it");
  if (!in.has_data || in.data.size() != elems) {
    return Status::InvalidArgument(who + ": \"data\" must hold " + std::to_string(elems) + " numbers (flat or nested)");
  }
  for (size_t i = 0; i < elems; ++i) {
    const double d = in.data[i];
    if (!std::isfinite(d) || std::abs(d) > 3.4e38) {
      return Status::InvalidArgument(who + ": data[" + std::to_string(i) + "] is not a finite float");
    }
    if (half) {
      const uint16_t h = FloatToHalf(static_cast<float>(d));
      std::memcpy(bytes.data() + i * 2, &h, 2);
    } else {
      const auto x = static_cast<float>(d);
      std::memcpy(bytes.data() + i * 4, &x, 4);
    }
  }
  return bytes;
}

}  // namespace fluidfaas::api
