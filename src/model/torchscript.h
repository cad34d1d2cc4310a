// TorchScript functions: a function directory holds a manifest and one TorchScript file per block.
//
//   my-function/
//     manifest.yaml      name, slo_ms, max_batch, dtype, input_shape (per sample), blocks (in order)
//     embed.pt, layer0.pt, ...
//
//   name: tiny-mlp
//   slo_ms: 50
//   max_batch: 8
//   dtype: fp32
//   input_shape: [16]
//   blocks:
//     - {name: fc1, file: fc1.pt}
//     - {name: fc2, file: fc2.pt}
//
// TorchScriptFunction::Load reads the manifest, loads every block with LibTorch, and runs a zero sample through
// the chain to check that each block accepts the previous block's output; every error names the file and the
// block. Blocks run on the CPU here (CUDA on GPU nodes, in the worker process of a slice).
//
// This header keeps LibTorch out of its users (tensors cross it as HostTensor); only the libraries and binaries
// that run blocks link LibTorch, because loading it costs most of a second and 160 MB per process.
//
// Thread safety: a loaded function may run from several threads at once (TorchScript modules are re-entrant in
// inference); Load is a plain function.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/block.h"
#include "model/manifest.h"

namespace fluidfaas::model {

// A dense float tensor in host memory, row-major; shape[0] is the batch.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class TorchScriptFunction {
 public:
  static Result<std::unique_ptr<TorchScriptFunction>> Load(const std::string& dir);
  ~TorchScriptFunction();

  const FunctionManifest& manifest() const { return manifest_; }
  // Output shape of each block, per sample (found by the chain check).
  const std::vector<std::vector<int64_t>>& output_shapes() const { return output_shapes_; }
  // Parameter count of each block.
  const std::vector<int64_t>& block_params() const { return block_params_; }

  // Runs blocks [first, last] on `input` (shape [batch, ...]); the output of `last`. InvalidArgument for a bad
  // range or an input that the first block rejects.
  Result<HostTensor> Run(size_t first, size_t last, const HostTensor& input) const;

  // The function as the planner sees it: blocks with parameters and activation sizes (no kernel list: latency
  // comes from a measured profile).
  FunctionSpec ToFunctionSpec() const;

 private:
  struct Modules;
  TorchScriptFunction() = default;

  std::string dir_;
  FunctionManifest manifest_;
  std::vector<std::vector<int64_t>> output_shapes_;
  std::vector<int64_t> block_params_;
  std::unique_ptr<Modules> modules_;
};

// Writes a small example function (a three-block MLP with seeded random weights: fc1 16->32 with ReLU, a
// reshape to [4, 8], fc2 32->8) into `dir`, creating it: a template for function authors.
Status WriteExampleFunction(const std::string& dir, bool force = false);

}  // namespace fluidfaas::model
