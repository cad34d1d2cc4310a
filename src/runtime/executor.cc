#include "runtime/executor.h"

#include "common/limits.h"

namespace fluidfaas::runtime {

nlohmann::json StageSpec::ToJson() const {
  return {{"executor", executor},
          {"function", function},
          {"first_block", first_block},
          {"last_block", last_block},
          {"max_batch", max_batch},
          {"model", model},
          {"seq_len", seq_len},
          {"gpu", gpu},
          {"profile", profile},
          {"time_scale", time_scale},
          {"dir", dir},
          {"input_shape", input_shape},
          {"kv_pages", kv_pages},
          {"kv_page_tokens", kv_page_tokens}};
}

Result<StageSpec> StageSpec::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("stage spec: not an object");
  StageSpec s;
  auto text = [&](const char* field, std::string& out) -> Status {
    const auto it = j.find(field);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > 4096) {
      return Status::InvalidArgument(std::string("stage spec: \"") + field + "\" must be a string");
    }
    out = it->get<std::string>();
    return Status::Ok();
  };
  auto integer = [&](const char* field, int64_t lo, int64_t hi) -> Result<int64_t> {
    const auto it = j.find(field);
    if (it == j.end() || !it->is_number_integer()) {
      return Status::InvalidArgument(std::string("stage spec: \"") + field + "\" must be an integer");
    }
    const auto v = it->get<int64_t>();
    FF_RETURN_IF_ERROR(CheckRange(std::string("stage spec ") + field, v, lo, hi));
    return v;
  };
  FF_RETURN_IF_ERROR(text("executor", s.executor));
  if (s.executor != "emulated" && s.executor != "torchscript" && s.executor != "torchscript-generative") {
    return Status::InvalidArgument("stage spec: executor '" + s.executor +
                                   "' is not emulated, torchscript or torchscript-generative");
  }
  FF_RETURN_IF_ERROR(text("function", s.function));
  FF_ASSIGN_OR_RETURN(int64_t first, integer("first_block", 0, 1 << 20));
  FF_ASSIGN_OR_RETURN(int64_t last, integer("last_block", first, 1 << 20));
  FF_ASSIGN_OR_RETURN(int64_t max_batch, integer("max_batch", 1, kMaxBatch));
  FF_ASSIGN_OR_RETURN(int64_t seq, integer("seq_len", 0, 1 << 20));
  s.first_block = static_cast<size_t>(first);
  s.last_block = static_cast<size_t>(last);
  s.max_batch = static_cast<int>(max_batch);
  s.seq_len = static_cast<int>(seq);
  FF_RETURN_IF_ERROR(text("model", s.model));
  FF_RETURN_IF_ERROR(text("gpu", s.gpu));
  FF_RETURN_IF_ERROR(text("profile", s.profile));
  FF_RETURN_IF_ERROR(text("dir", s.dir));
  if (const auto shape = j.find("input_shape"); shape != j.end()) {  // optional
    if (!shape->is_array() || shape->size() > 8) {
      return Status::InvalidArgument("stage spec: \"input_shape\" must be a list of at most 8 dimensions");
    }
    int64_t elems = 1;
    for (const auto& d : *shape) {
      if (!d.is_number_integer()) return Status::InvalidArgument("stage spec: input_shape dimensions are integers");
      FF_RETURN_IF_ERROR(CheckRange("stage spec input_shape", d.get<int64_t>(), 1, kMaxTensorElements));
      elems = SaturatingMul(elems, d.get<int64_t>());
      s.input_shape.push_back(d.get<int64_t>());
    }
    if (elems > kMaxTensorElements) return Status::InvalidArgument("stage spec: input_shape is over the limit");
  }
  if (j.contains("kv_pages")) {  // optional
    FF_ASSIGN_OR_RETURN(s.kv_pages, integer("kv_pages", 1, int64_t{1} << 24));
    FF_ASSIGN_OR_RETURN(const int64_t page_tokens, integer("kv_page_tokens", 1, 4096));
    s.kv_page_tokens = static_cast<int>(page_tokens);
  }
  const auto scale = j.find("time_scale");
  if (scale == j.end() || !scale->is_number()) return Status::InvalidArgument("stage spec: \"time_scale\" missing");
  s.time_scale = scale->get<double>();
  FF_RETURN_IF_ERROR(CheckRange("stage spec time_scale", s.time_scale, 0.0, 1000.0, /*open_low=*/true));
  return s;
}

}  // namespace fluidfaas::runtime
