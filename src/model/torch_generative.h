// Generative TorchScript functions: a decoder split into blocks that carry their KV caches.
//
//   tiny-gpt/
//     manifest.yaml      kind: generative, vocab, d_model, heads, max_positions, blocks (embed, layers, head)
//     embed.pt           forward(tokens [B, T] int64, start [B] int64) -> hidden [B, T, D]
//     layer0.pt, ...     forward(x [B, T, D], past_k [B, H, P, Dh], past_v, past_len [B] int64)
//                            -> (x' [B, T, D], k [B, H, T, Dh], v [B, H, T, Dh])
//     head.pt            forward(x [B, T, D]) -> next token [B] int64 (greedy, from the last position)
//
// A layer attends to its past keys and values (the first past_len[b] of P, padding after) and causally to the T
// new ones, and returns the new keys and values for its caller to keep. The caller is a GenerativeStage: blocks
// [first, last] of such a function, as a worker of one slice would run them, holding the KV cache of every
// sequence it serves in a paged pool (fixed-size pages per layer, a page table per sequence, as vLLM's
// PagedAttention keeps them). Stages pass hidden states to the next as HostTensors, the bytes a ring carries.
//
// WriteGenerativeExample writes a tiny byte-level GPT (256 tokens, 4 layers) with random weights;
// GenerateWithoutCache runs one from its blocks in one process, recomputing every position at every step: the
// reference a pipeline of stages must match token for token.
//
// Thread safety: a stage is used by one thread (its worker's); Load and the free functions are plain.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/manifest.h"
#include "model/torchscript.h"

namespace fluidfaas::model {

// Writes the example into `dir` (AlreadyExists when it is not empty, unless `force`).
Status WriteGenerativeExample(const std::string& dir, bool force);

// A stage's input or output: token ids (the first stage's input, the last stage's output: one per sequence) or
// hidden states [B, T, D].
struct StageData {
  std::vector<int64_t> tokens;
  HostTensor hidden;
};

class GenerativeStage {
 public:
  // Blocks [first, last] of the function in `dir`, with a pool of `pages` pages of `page_tokens` tokens for each
  // of its layers.
  static Result<std::unique_ptr<GenerativeStage>> Load(const std::string& dir, size_t first, size_t last, int64_t pages,
                                                       int page_tokens = 16);
  ~GenerativeStage();

  // One sequence's prompt (or, for a later stage, its hidden states [1, T, D]): its cache filled, its output.
  Result<StageData> Prefill(uint64_t seq, const StageData& in);
  // One decode step of `seqs` (each prefilled), an input row each: token ids, or hidden states [B, 1, D].
  Result<StageData> Decode(const std::vector<uint64_t>& seqs, const StageData& in);
  // Frees a sequence's pages (finished, cancelled or preempted).
  void Free(uint64_t seq);

  int64_t free_pages() const;
  size_t sequences() const;
  const GenerativeManifest& manifest() const;

 private:
  struct Impl;
  explicit GenerativeStage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Greedy generation of `count` tokens after `prompt` with every block of `dir` in one process and no cache.
Result<std::vector<int64_t>> GenerateWithoutCache(const std::string& dir, const std::vector<int64_t>& prompt,
                                                  int count);

}  // namespace fluidfaas::model
