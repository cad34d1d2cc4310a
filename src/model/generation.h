// GenerationCosts: what generating tokens with a zoo language model costs on MIG slices, stage by stage.
//
// A generative request is a prefill (the prompt's P tokens in one pass, which yields the first token) and then
// decode steps, one per further token: a pass of one token per sequence over every block, each sequence reading
// its own cached keys and values (the KV cache). Both are priced by the latency model (latency_model.h): a prefill
// is the zoo's model at seq_len = P, a decode step is BuildZooDecodeStep at the sequence's context. A step of B
// sequences reads the weights once and each sequence's cache once, so at small B it is bound by the slice's memory
// bandwidth and the time per token falls nearly as 1/B; the cache reads grow with the context.
//
// Stages are block ranges [first, last] of spec(), the same cut points as the single-pass function's, so the
// planner's stages carry over. A batch's contexts enter through their mean: the cache reads, the only context-
// dependent term, are linear in the sum of the contexts.
//
// Prompt lengths and contexts are priced on grids (prompts 1, 16, 32, 64, then every 64; contexts every 64) and
// interpolated linearly between grid points: within 1% of the direct price (generation_test.cc).
//
// Thread safety: immutable after Build; const methods may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "gpu/gpu_type.h"
#include "model/latency_model.h"
#include "model/zoo.h"

namespace fluidfaas::model {

class GenerationCosts {
 public:
  // InvalidArgument for a zoo model that does not generate (IsGenerativeZooModel) or an unknown one.
  static Result<GenerationCosts> Build(std::string_view zoo_name, const LatencyModel& latency = LatencyModel(),
                                       const ZooOptions& options = {});
  // The same for a decoder given by its dimensions (a generative TorchScript function's manifest).
  static Result<GenerationCosts> Build(const DecoderShape& shape, const LatencyModel& latency = LatencyModel());

  // The model's blocks (its prefill at the default prompt): stages are ranges of these.
  const FunctionSpec& spec() const { return spec_; }
  // One decode step at `context` (0..max_positions() - 1): its blocks, as BuildZooDecodeStep gives them.
  Result<FunctionSpec> DecodeStep(int context) const;
  // The longest sequence, prompt and generated tokens together.
  int max_positions() const { return max_positions_; }
  const LatencyModel& latency() const { return latency_; }

  // Milliseconds to prefill `batch` prompts of `prompt` tokens on blocks [first, last].
  // REQUIRES: 1 <= prompt <= max_positions(), batch >= 1, first <= last < spec().blocks.size().
  double PrefillMs(size_t first, size_t last, const gpu::GpuType& gpu, const gpu::MigProfile& slice, int prompt,
                   int batch) const;
  // Milliseconds for one decode step of `batch` sequences whose caches hold `mean_context` tokens on average.
  // REQUIRES: 0 <= mean_context < max_positions(), batch >= 1.
  double DecodeStepMs(size_t first, size_t last, const gpu::GpuType& gpu, const gpu::MigProfile& slice, int batch,
                      double mean_context) const;

  // Cache bytes one token adds on blocks [first, last] (keys and values of each decoder layer there).
  int64_t KvBytesPerToken(size_t first, size_t last) const;
  // Bytes a stage ending at block `last` hands the next per sequence and decode step (one token's hidden state).
  int64_t StepHandoffBytes(size_t last) const;
  // Weights of blocks [first, last], bytes.
  int64_t WeightBytes(size_t first, size_t last) const;
  // Cache tokens a stage holds on `slice` beside its process reserve, its weights and the activations of a
  // prefill of `prefill_tokens` (the largest pass it admits); 0 when even those do not fit.
  int64_t KvCapacityTokens(size_t first, size_t last, const gpu::MigProfile& slice, int prefill_tokens) const;

 private:
  GenerationCosts(LatencyModel latency, int max_positions) : latency_(latency), max_positions_(max_positions) {}
  // Fills the grids from `prefill(seq_len)` (2..max_positions) and `step(context)`.
  template <typename Prefill, typename Step>
  static Result<GenerationCosts> FromBuilders(GenerationCosts c, Prefill&& prefill, Step&& step);

  LatencyModel latency_;
  int max_positions_ = 0;
  std::variant<std::string, DecoderShape> source_;  // a zoo model's name, or a decoder's dimensions
  FunctionSpec spec_;
  std::vector<int> prompts_;                // grid of prompt lengths, ascending
  std::vector<FunctionSpec> grid_prefill_;  // one per prompt length
  std::vector<int> contexts_;               // grid of contexts, ascending
  std::vector<FunctionSpec> grid_decode_;   // one per context
};

}  // namespace fluidfaas::model
