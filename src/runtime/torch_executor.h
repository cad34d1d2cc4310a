// TorchExecutor: a stage of a TorchScript function directory (model/torchscript.h) run through LibTorch, on the
// device this process sees: CUDA when the LibTorch build has it and a device is visible (a worker sees exactly
// its slice through CUDA_VISIBLE_DEVICES), the CPU otherwise. The same code serves both: Debian's LibTorch is
// CPU-only; a CUDA LibTorch found through CMAKE_PREFIX_PATH takes the CUDA path.
//
// Residency: a cold load reads the stage's block files (disk to host), keeps every parameter as a host copy
// (pinned when CUDA is there) and copies them to the device. Evict(keep_warm) drops the device copies only; the
// next Load is a host-to-device copy of each parameter (on the CPU "device", a copy into a fresh arena mapped with
// transparent huge pages, freed whole at eviction). Inputs are read in place from the input slot (a view, no copy); the
// output is written into the output slot by one copy (on CUDA, that copy is the device-to-host transfer).
//
// Only the worker binary compiles this file.
//
// Thread safety: as StageExecutor.
#pragma once

#include <memory>
#include <string>

#include "runtime/executor.h"

namespace fluidfaas::runtime {

// NotFound / InvalidArgument from the manifest, or for a block range outside it. Loads nothing yet.
Result<std::unique_ptr<StageExecutor>> MakeTorchExecutor(const StageSpec& spec);

// A stage of a generative function (executor "torchscript-generative", torch_generative_executor.cc).
Result<std::unique_ptr<StageExecutor>> MakeTorchGenerativeExecutor(const StageSpec& spec);

// "cuda" or "cpu": where TorchExecutors in this process run.
std::string TorchDeviceName();

// The reload paths of one TorchScript stage, measured in this process: a function directory with one linear
// block of about `mib` MiB of fp32 weights is written to `dir`, loaded cold (disk to host to device), evicted to
// warm and reloaded `trials` times (host to device), beside single-thread memcpy of the same bytes.
struct ReloadBench {
  std::string device;
  int64_t bytes = 0;
  double cold_ms = 0;
  double warm_ms = 0;  // median of the trials
  double warm_gbs = 0;
  double memcpy_gbs = 0;  // single-thread memcpy of the same bytes into memory already faulted in
};
Result<ReloadBench> MeasureReload(const std::string& dir, int mib, int trials);

}  // namespace fluidfaas::runtime
