// A function directory's manifest: what FluidFaaS needs to know of a TorchScript function before loading it.
//
//   name: tiny-mlp          # a plain name (common/limits.h): 1..63 of [A-Za-z0-9._-]
//   slo_ms: 50              # (0, 1e7]
//   max_batch: 8            # 1..4096 (default 1)
//   dtype: fp32             # fp32 | fp16 (default fp32)
//   input_shape: [16]       # per sample; every dimension >= 1, at most 2^31 elements in all
//   blocks:                 # 1..1024, in order; files relative to the directory, never outside it
//     - {name: fc1, file: fc1.pt}
//
// Parsing needs no LibTorch (the fuzzer and the daemon read manifests without it); TorchScriptFunction::Load
// (torchscript.h) reads the manifest with it and then loads the blocks. Every error names the file and field.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/block.h"

namespace fluidfaas::model {

// Blocks a function directory's manifest may list (single-pass and generative alike).
inline constexpr size_t kMaxBlocks = 1024;

struct BlockFile {
  std::string name;
  std::string file;  // relative to the function directory
};

struct FunctionManifest {
  std::string name;
  double slo_ms = 0;
  int max_batch = 1;
  DType dtype = DType::kFp32;
  std::vector<int64_t> input_shape;  // per sample
  std::vector<BlockFile> blocks;
};

// Parses and validates manifest text; `source` names it in errors.
Result<FunctionManifest> ParseManifest(const std::string& text, const std::string& source);

// Reads and validates DIR/manifest.yaml (at most kMaxConfigBytes).
Result<FunctionManifest> ReadManifest(const std::string& dir);

// A generative function's directory (kind: generative): a decoder split into an embed block, layers and a head,
// each layer carrying its KV cache (model/torch_generative.h has the blocks' signatures).
//
//   name: tiny-gpt
//   kind: generative
//   vocab: 256            # 2..2^20; without a tokenizer it must be 256: byte-level text (a token is a byte)
//   tokenizer: vocab.txt  # optional: the vocabulary, one token per line as a JSON string (model/tokenizer.h)
//   d_model: 32           # 1..65536
//   heads: 4              # divides d_model
//   ffn: 64               # optional: the MLP's inner size (default 4 x d_model), for its cost
//   max_positions: 256    # 2..65536: the longest sequence, prompt and generated tokens together
//   slo_ms: 200           # optional: the time to first token objective
//   tpot_ms: 50           # optional: the time per output token objective
//   blocks:
//     - {name: embed, file: embed.pt, kind: embed}
//     - {name: layer0, file: layer0.pt, kind: layer}
//     - {name: head, file: head.pt, kind: head}
struct GenerativeManifest {
  std::string name;
  int vocab = 256;
  std::string tokenizer;  // the vocabulary file, relative to the directory; empty: byte-level
  int d_model = 0;
  int heads = 0;
  int ffn = 0;  // the MLP's inner size (default 4 x d_model): its cost, not its load
  int max_positions = 0;
  double slo_ms = 0;   // time to first token objective (optional; 0: the daemon's default)
  double tpot_ms = 0;  // time per output token objective (optional; 0: the daemon's default)
  struct Block {
    std::string name;
    std::string file;
    enum class Kind { kEmbed, kLayer, kHead } kind = Kind::kLayer;
  };
  std::vector<Block> blocks;  // embed, layers..., head
};

// Whether DIR/manifest.yaml declares `kind: generative` (false when there is none or it does not parse).
bool IsGenerativeDirectory(const std::string& dir);

// Reads DIR/manifest.yaml of a generative function. InvalidArgument naming the field for a bad one.
Result<GenerativeManifest> ReadGenerativeManifest(const std::string& dir);

}  // namespace fluidfaas::model
