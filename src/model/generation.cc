#include "model/generation.h"

#include <algorithm>

#include "common/limits.h"

namespace fluidfaas::model {
namespace {

constexpr int kGridStep = 64;

// The value at `x` of a function known on an ascending `grid` (through `at(i)`), linear between grid points.
template <typename At>
double Interpolate(const std::vector<int>& grid, double x, At&& at) {
  const auto upper = std::lower_bound(grid.begin(), grid.end(), x);
  if (upper == grid.end()) return at(grid.size() - 1);
  const auto j = static_cast<size_t>(upper - grid.begin());
  if (j == 0 || *upper == x) return at(j);
  const double lo = grid[j - 1];
  const double t = (x - lo) / (*upper - lo);
  return (1 - t) * at(j - 1) + t * at(j);
}

}  // namespace

Result<GenerationCosts> GenerationCosts::Build(std::string_view zoo_name, const LatencyModel& latency,
                                               const ZooOptions& options) {
  if (!IsGenerativeZooModel(zoo_name)) {
    FF_RETURN_IF_ERROR(BuildZooModel(zoo_name, options).status());  // an unknown name says so, listing the zoo
    return Status::InvalidArgument(std::string(zoo_name) +
                                   " is not a decoder-only language model: it does not generate");
  }
  GenerationCosts c(latency, ZooMaxPositions(zoo_name));
  c.source_ = std::string(zoo_name);
  const std::optional<DType> dtype = options.dtype;  // none: the model's own, as BuildZooModel resolves it
  return FromBuilders(
      c,
      [&](int seq) { return BuildZooModel(zoo_name, {.seq_len = seq == 0 ? options.seq_len : seq, .dtype = dtype}); },
      [&](int context) { return BuildZooDecodeStep(zoo_name, context, {.seq_len = 0, .dtype = dtype}); });
}

Result<GenerationCosts> GenerationCosts::Build(const DecoderShape& shape, const LatencyModel& latency) {
  GenerationCosts c(latency, static_cast<int>(shape.max_positions));  // the shape is checked by the first build
  c.source_ = shape;
  return FromBuilders(
      c,
      [&](int seq) {
        // spec(): the whole-sequence pass at the zoo's default prompt, within the positions
        return BuildDecoderModel(shape, seq == 0 ? std::min<int>(512, static_cast<int>(shape.max_positions)) : seq);
      },
      [&](int context) { return BuildDecoderStep(shape, context); });
}

Result<FunctionSpec> GenerationCosts::DecodeStep(int context) const {
  if (const auto* name = std::get_if<std::string>(&source_)) {
    return BuildZooDecodeStep(*name, context, {.seq_len = 0, .dtype = spec_.dtype});
  }
  return BuildDecoderStep(std::get<DecoderShape>(source_), context);
}

template <typename Prefill, typename Step>
Result<GenerationCosts> GenerationCosts::FromBuilders(GenerationCosts c, Prefill&& prefill, Step&& step) {
  FF_ASSIGN_OR_RETURN(c.spec_, prefill(0));
  // A one-token prompt is a decode step on an empty cache.
  c.prompts_ = {1, 16, 32};
  for (int p = kGridStep; p < c.max_positions_; p += kGridStep) c.prompts_.push_back(p);
  c.prompts_.push_back(c.max_positions_);
  std::erase_if(c.prompts_, [&](int p) { return p > c.max_positions_; });
  c.prompts_.erase(std::unique(c.prompts_.begin(), c.prompts_.end()), c.prompts_.end());
  for (int p : c.prompts_) {
    FF_ASSIGN_OR_RETURN(FunctionSpec pass, p == 1 ? step(0) : prefill(p));
    c.grid_prefill_.push_back(std::move(pass));
  }
  for (int ctx = 0; ctx < c.max_positions_ - 1; ctx += kGridStep) c.contexts_.push_back(ctx);
  c.contexts_.push_back(c.max_positions_ - 1);
  for (int ctx : c.contexts_) {
    FF_ASSIGN_OR_RETURN(FunctionSpec s, step(ctx));
    c.grid_decode_.push_back(std::move(s));
  }
  return c;
}

double GenerationCosts::PrefillMs(size_t first, size_t last, const gpu::GpuType& gpu, const gpu::MigProfile& slice,
                                  int prompt, int batch) const {
  return Interpolate(prompts_, prompt,
                     [&](size_t i) { return latency_.RangeMs(grid_prefill_[i], first, last, gpu, slice, batch); });
}

double GenerationCosts::DecodeStepMs(size_t first, size_t last, const gpu::GpuType& gpu, const gpu::MigProfile& slice,
                                     int batch, double mean_context) const {
  return Interpolate(contexts_, mean_context,
                     [&](size_t i) { return latency_.RangeMs(grid_decode_[i], first, last, gpu, slice, batch); });
}

int64_t GenerationCosts::KvBytesPerToken(size_t first, size_t last) const {
  int64_t elems = 0;
  for (size_t i = first; i <= last; ++i) elems += spec_.blocks[i].kv_elems_per_token;
  return elems * BytesPerElement(spec_.dtype);
}

int64_t GenerationCosts::StepHandoffBytes(size_t last) const {
  return grid_decode_.front().blocks[last].ActivationOutBytes(spec_.dtype);
}

int64_t GenerationCosts::WeightBytes(size_t first, size_t last) const {
  return latency_.StageWeightBytes(spec_, first, last);
}

int64_t GenerationCosts::KvCapacityTokens(size_t first, size_t last, const gpu::MigProfile& slice,
                                          int prefill_tokens) const {
  // The prefill grid point at or above `prefill_tokens` bounds its activations from above.
  const auto at = std::lower_bound(prompts_.begin(), prompts_.end(), std::clamp(prefill_tokens, 1, max_positions_));
  const FunctionSpec& pass = grid_prefill_[static_cast<size_t>(at - prompts_.begin())];
  int64_t state_elems = 0;
  for (size_t i = first; i <= last; ++i) state_elems += pass.blocks[i].state_elems;
  // StageBytes counts the pass's own cache as its state; the cache is what this function sizes.
  const int64_t activations = latency_.StageBytes(pass, first, last, 1) - latency_.StageWeightBytes(pass, first, last) -
                              state_elems * BytesPerElement(pass.dtype);
  const int64_t used =
      SaturatingAdd(SaturatingAdd(latency_.ReserveBytes(slice), WeightBytes(first, last)), activations);
  const int64_t room = (static_cast<int64_t>(slice.memory_mib) << 20) - used;
  const int64_t per_token = KvBytesPerToken(first, last);
  if (room <= 0) return 0;
  return per_token == 0 ? INT64_MAX : room / per_token;
}

}  // namespace fluidfaas::model
