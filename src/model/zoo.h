// The model zoo: built-in functions at block granularity, with figures computed from each model's real layer
// shapes (torchvision ResNet and ViT, Hugging Face BERT and GPT-2, Llama 2).
//
//   resnet50, resnet152     224x224 images, fp32; blocks: stem, one per bottleneck, head
//   vit-b16, vit-l16        224x224 images (197 tokens), fp32; blocks: patch embedding, one per layer, head
//   bert-base, bert-large   128 tokens, fp32; blocks: embeddings, one per layer, pooler
//   gpt2-xl                 512-token prompt, fp16; blocks: embeddings, one per layer, ln_f + LM head
//   llama2-7b, llama2-13b   512-token prefill, fp16; blocks: embedding, one per layer, norm + LM head
//
// Language-model heads compute the logits of the last position only (what a server needs to start
// generating). GPT-2's head reuses the token embedding's weights (Block::tied_to).
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <span>
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

}  // namespace fluidfaas::model
