// FunctionRepository: the TorchScript functions a node may deploy (`fluidfaas serve --repository DIR`).
//
//   DIR/
//     tiny-mlp/            one function directory per function (model/torchscript.h): manifest.yaml, a .pt per
//       manifest.yaml      block, and optionally profile.json (model/profile.h: measured block times that
//       fc1.pt ...         replace the latency model's for the slices they cover)
//
// A function is named by its directory's name, a plain name (common/limits.h), never a path: Resolve follows
// symbolic links and refuses a directory that ends up outside the repository, so neither "..", "/etc" nor a link
// can reach beyond it. Block files are checked to stay inside their directory by the manifest parser.
//
// Inspect gives the function as the planner sees it. The daemon does not link LibTorch, so it runs
// `fluidfaas-worker check DIR --json` (10 s deadline, 1 MiB of output), which loads the blocks and chains a zero
// sample through them: each block's parameter count and output shape. Work per sample is an assumption the
// directory can override: one multiply-add per parameter (exact for dense layers, where each weight is used once
// per sample; convolutions and attention do more), priced by the latency model as one GEMM reading the weights
// once per batch and the block's input and output per sample. A profile.json measured on the node's GPU replaces
// these modelled times (`fluidfaas zoo profile`'s format).
//
// Thread safety: immutable after Open; Inspect may run from several threads at once (each runs its own check).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/block.h"
#include "model/manifest.h"
#include "model/profile.h"
#include "model/tokenizer.h"

namespace fluidfaas::daemon {

struct InspectedFunction {
  std::string name;  // the directory's name
  std::string dir;   // its resolved path
  model::FunctionSpec spec;
  std::vector<std::vector<int64_t>> block_inputs;  // the input shape of each block, per sample
  std::optional<model::FunctionProfile> profile;   // from profile.json
};

// A generative function directory (kind: generative) as the daemon serves it.
struct InspectedGenerative {
  std::string name;  // the directory's name
  std::string dir;   // its resolved path
  model::GenerativeManifest manifest;
  std::shared_ptr<const model::Tokenizer> tokenizer;  // the manifest's, or byte-level
};

class FunctionRepository {
 public:
  // NotFound unless `dir` is a directory. `worker_binary` runs the checks.
  static Result<FunctionRepository> Open(const std::string& dir, std::string worker_binary);

  const std::string& root() const { return root_; }
  // The resolved directory of function `name`: InvalidArgument for a name that is not plain or a directory that
  // resolves outside the repository, NotFound when there is no such directory with a manifest.yaml.
  Result<std::string> Resolve(std::string_view name) const;
  // Names of the function directories (those with a manifest.yaml), sorted.
  std::vector<std::string> List() const;
  // Loads and checks the function's blocks through the worker (see above). InvalidArgument with the worker's
  // reason for a directory that does not load; Unavailable when the worker has no LibTorch.
  Result<InspectedFunction> Inspect(std::string_view name) const;
  // Whether the directory of `name` holds a generative function (kind: generative); false when it does not resolve.
  bool IsGenerative(std::string_view name) const;
  // Reads a generative function's manifest and has the worker load its blocks and generate a few tokens (the same
  // deadlines as Inspect). InvalidArgument for a manifest or blocks that do not load.
  Result<InspectedGenerative> InspectGenerative(std::string_view name) const;

 private:
  FunctionRepository(std::string root, std::string worker) : root_(std::move(root)), worker_(std::move(worker)) {}
  Result<nlohmann::json> Check(const std::string& name, const std::string& dir) const;
  std::string root_;
  std::string worker_;
};

// The planner's view of a function from `fluidfaas-worker check --json`'s output (see above), and each block's
// input shape per sample into `block_inputs` when given. InvalidArgument naming the field for anything missing,
// negative, non-finite or out of range.
Result<model::FunctionSpec> SpecFromCheck(const nlohmann::json& check,
                                          std::vector<std::vector<int64_t>>* block_inputs = nullptr);

}  // namespace fluidfaas::daemon
