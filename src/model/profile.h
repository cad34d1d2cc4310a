// Block profiles: per-block latency by (GPU type, slice profile, batch), as a value that can be saved as JSON
// and loaded back, so that figures measured on a real GPU replace the modelled ones for a function.
//
// BlockTimes is what the planner and the simulator read: ModelledBlockTimes prices blocks with the latency
// model; ProfiledBlockTimes answers from a profile where it has the (GPU, slice) and falls back to the model
// elsewhere. Between profiled batch sizes the time is interpolated linearly; beyond the largest it is
// extrapolated from the last two points (latency is close to linear in the batch once the slice is busy).
//
// JSON form:
//   {"function": "resnet50", "dtype": "fp32", "seq_len": 0, "source": "measured on ...",
//    "blocks": ["stem", "layer1.0", ...],
//    "entries": [{"gpu": "a100-80gb", "profile": "2g.20gb", "batch": 8, "block_ms": [0.41, ...]}, ...]}
//
// Thread safety: immutable values; const methods are safe from any thread.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/latency_model.h"

namespace fluidfaas::model {

struct ProfileEntry {
  std::string gpu;      // GPU type name ("a100-80gb")
  std::string profile;  // slice profile name ("2g.20gb")
  int batch = 1;
  std::vector<double> block_ms;  // one per block
};

struct FunctionProfile {
  std::string function;
  DType dtype = DType::kFp32;
  int seq_len = 0;
  std::string source;  // "modelled", or where the figures were measured
  std::vector<std::string> blocks;
  std::vector<ProfileEntry> entries;
};

// The model's figures for every slice profile of `gpus` at batch 1, 2, 4, ... up to f.max_batch.
FunctionProfile MakeModelledProfile(const FunctionSpec& f, const LatencyModel& model,
                                    const std::vector<const gpu::GpuType*>& gpus);

nlohmann::json ProfileToJson(const FunctionProfile& p);
// InvalidArgument naming the field for malformed JSON, negative times, a block count that disagrees, or a
// duplicate (gpu, profile, batch).
Result<FunctionProfile> ProfileFromJson(const nlohmann::json& j);

Status SaveProfile(const FunctionProfile& p, const std::string& path);
Result<FunctionProfile> LoadProfile(const std::string& path);

// InvalidArgument unless the profile describes `f`: same name, dtype, sequence length and block names.
Status CheckProfileMatches(const FunctionProfile& p, const FunctionSpec& f);

// Per-block latency of one function, whatever its source.
class BlockTimes {
 public:
  virtual ~BlockTimes() = default;
  // Milliseconds for block `index` of the function on one slice at `batch`.
  virtual double BlockMs(size_t index, const gpu::GpuType& gpu, const gpu::MigProfile& slice, int batch) const = 0;
  // Where the figure comes from: "modelled", "calibrated" or the profile's source.
  virtual std::string Source(const gpu::GpuType& gpu, const gpu::MigProfile& slice) const = 0;
};

class ModelledBlockTimes final : public BlockTimes {
 public:
  // `f` and `model` must outlive this object.
  ModelledBlockTimes(const FunctionSpec& f, const LatencyModel& model) : f_(f), model_(model) {}
  double BlockMs(size_t index, const gpu::GpuType& gpu, const gpu::MigProfile& slice, int batch) const override;
  std::string Source(const gpu::GpuType& gpu, const gpu::MigProfile& slice) const override;

 private:
  const FunctionSpec& f_;
  const LatencyModel& model_;
};

class ProfiledBlockTimes final : public BlockTimes {
 public:
  // `fallback` must outlive this object. REQUIRES: CheckProfileMatches(profile, f) passed.
  ProfiledBlockTimes(FunctionProfile profile, const BlockTimes& fallback);
  double BlockMs(size_t index, const gpu::GpuType& gpu, const gpu::MigProfile& slice, int batch) const override;
  std::string Source(const gpu::GpuType& gpu, const gpu::MigProfile& slice) const override;

 private:
  // Entries of one (gpu, profile), sorted by batch; nullptr when the profile has none.
  const std::vector<const ProfileEntry*>* Find(const gpu::GpuType& gpu, const gpu::MigProfile& slice) const;

  FunctionProfile profile_;
  const BlockTimes& fallback_;
  std::vector<std::pair<std::string, std::vector<const ProfileEntry*>>> by_slice_;  // key "gpu/profile"
};

}  // namespace fluidfaas::model
