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

// Sleeps until `deadline_ns` (CLOCK_MONOTONIC): a nanosleep for most of it, then a short spin, so modelled times
// of a few hundred microseconds keep their shape.
void SleepUntilNanos(int64_t deadline_ns);

}  // namespace fluidfaas::runtime
