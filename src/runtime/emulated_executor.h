// EmulatedExecutor: runs a zoo model's stage on an emulated slice (see executor.h): modelled time on the real
// clock, real output sizes, booked memory.
//
// Thread safety: as StageExecutor.
#pragma once

#include <memory>

#include "runtime/executor.h"

namespace fluidfaas::runtime {

// NotFound for an unknown zoo model, GPU type or profile; InvalidArgument for a block range outside the model.
Result<std::unique_ptr<StageExecutor>> MakeEmulatedExecutor(const StageSpec& spec);

}  // namespace fluidfaas::runtime
