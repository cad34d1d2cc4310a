// The model zoo: built-in functions at block granularity, with figures computed from each model's real layer
// shapes (torchvision ResNet and ViT, Hugging Face BERT and GPT-2, Llama 2).
//
//   resnet50, resnet152     224x224 images, fp32; blocks: stem, one per bottleneck, head
//   vit-b16, vit-l16        224x224 images (197 tokens), fp32; blocks: patch embedding, one per layer, head
//   bert-base, bert-large   128 tokens, fp32; blocks: embeddings, one per layer, pooler
//   gpt2-xl                 512-token prompt, fp16; blocks: embeddings, one per layer, ln_f + LM head
//   llama2-7b, llama2-13b   512-token prefill, fp16; blocks: embedding, one per layer, norm + LM head
//   tinyllama-1.1b          the same, with grouped-query attention (4 key/value heads)
//
// The decoder-only models also generate: BuildZooDecodeStep gives the same blocks for one decode step.
//
// Language-model heads compute the logits of the last position only (what a server needs to start
// generating). GPT-2's head reuses the token embedding's weights (Block::tied_to).
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "model/block.h"

namespace fluidfaas::model {

struct ZooOptions {
  int seq_len = 0;             // tokens per sample (prompt length); 0: the model's default
  std::optional<DType> dtype;  // nullopt: the model's default
};

struct ZooEntry {
  std::string_view name;
  std::string_view description;
  double published_params;  // parameter count as its paper or model card gives it
};

std::span<const ZooEntry> ZooModels();

// InvalidArgument for an unknown name (listing the known ones) or a sequence length out of range.
Result<FunctionSpec> BuildZooModel(std::string_view name, const ZooOptions& options = {});

// Whether `name` is a decoder-only language model of the zoo (gpt2-xl, the Llamas): one that can generate.
bool IsGenerativeZooModel(std::string_view name);

// The longest sequence (prompt and generated tokens) a transformer of the zoo takes; 0 for a CNN or unknown name.
int ZooMaxPositions(std::string_view name);

// One decode step of one sequence whose cache holds `context` tokens: the blocks of BuildZooModel (same names,
// parameters and cut points) working on one new token that attends to context + 1 keys, whose keys and values are
// read from the cache. A block's state_elems is its cache after the step; kv_elems_per_token what a token adds.
// InvalidArgument for a model that does not generate, a seq_len option, or a context outside
// 0..ZooMaxPositions - 1.
Result<FunctionSpec> BuildZooDecodeStep(std::string_view name, int context, const ZooOptions& options = {});

// A decoder-only language model of the GPT-2 family given by its dimensions (a generative TorchScript function's
// manifest): the blocks BuildZooModel gives gpt2-xl (embedding, one per layer, ln_f + LM head), at these sizes.
struct DecoderShape {
  std::string name;
  int64_t d = 0;  // hidden size
  int64_t heads = 0;
  int64_t ffn = 0;  // MLP inner size
  int64_t layers = 0;
  int64_t vocab = 0;
  int64_t max_positions = 0;
  DType dtype = DType::kFp32;
};
// A whole-sequence pass of `seq_len` tokens (2..max_positions). InvalidArgument for a shape out of range.
Result<FunctionSpec> BuildDecoderModel(const DecoderShape& shape, int seq_len);
// One decode step at `context` (0..max_positions - 1), as BuildZooDecodeStep.
Result<FunctionSpec> BuildDecoderStep(const DecoderShape& shape, int context);

}  // namespace fluidfaas::model
