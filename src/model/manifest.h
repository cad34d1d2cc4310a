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

}  // namespace fluidfaas::model
