// TorchExecutor: a stage of a TorchScript function directory (model/torchscript.h) run through LibTorch, on the
// device this process sees: CUDA when the LibTorch build has it and a device is visible (a worker sees exactly
// its slice through CUDA_VISIBLE_DEVICES), the CPU otherwise. The same code serves both: Debian's LibTorch is
// CPU-only; a CUDA LibTorch found through CMAKE_PREFIX_PATH takes the CUDA path.
//
// Residency: a cold load reads the stage's block files (disk to host), keeps every parameter as a host copy
// (pinned when CUDA is there) and copies them to the device. Evict(keep_warm) drops the device copies only; the
// next Load is a host-to-device copy of each parameter (on the CPU "device", a copy into fresh memory, which is
// what the warm path costs there). Inputs are read in place from the input slot (a view, no copy); the output is
// written into the output slot by one copy (on CUDA, that copy is the device-to-host transfer).
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

// "cuda" or "cpu": where TorchExecutors in this process run.
std::string TorchDeviceName();

}  // namespace fluidfaas::runtime
