// A generation step's message: what a pipeline of generative stages (executor "torchscript-generative") passes
// through its rings, as the payload of a batch of one request (the step). The first stage reads token ids and
// writes hidden states; a middle stage reads and writes hidden states; the last writes the next token of each
// sequence. A free message passes through every stage, each freeing the sequences' KV pages.
//
//   prefill  one sequence, its prompt (T tokens) or their hidden states [1, T, D]
//   decode   N sequences, one token each, or hidden states [N, 1, D]
//   free     N sequences, no data
//
// Encoded as a header (magic, kind, counts), the sequence ids, the token ids, the hidden states, padded to whole
// 4-byte words so that a ring slot can carry it as an fp32 tensor [1, words].
//
// Thread safety: plain values and functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace fluidfaas::runtime {

struct GenStepMessage {
  enum class Kind : uint32_t { kPrefill = 1, kDecode = 2, kFree = 3 };
  Kind kind = Kind::kDecode;
  std::vector<uint64_t> sequences;
  uint32_t tokens_per_sequence = 1;   // T
  std::vector<int64_t> tokens;        // ids, when the message carries them
  std::vector<int64_t> hidden_shape;  // [N, T, D] when it carries hidden states
  std::vector<float> hidden;
};

std::vector<std::byte> EncodeStep(const GenStepMessage& m);
// InvalidArgument for bytes that are not a whole, consistent message.
Result<GenStepMessage> DecodeStep(std::span<const std::byte> bytes);

}  // namespace fluidfaas::runtime
