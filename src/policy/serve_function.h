// A function as every policy serves it: its cost tables over A100-80GB MIG kinds (batch 1, batched, and MPS
// shares of whole GPUs) and its SLO. The simulator's presets and the node daemon build their functions here.
//
// Thread safety: pure functions.
#pragma once

#include <memory>

#include "common/result.h"
#include "gpu/mps.h"
#include "model/latency_model.h"
#include "model/profile.h"
#include "policy/scheduler.h"

namespace fluidfaas::policy {

// A function as every policy serves it on A100-80GB MIG slices (and MPS shares of whole GPUs), its blocks priced
// by `times` (the latency model, or a measured profile): its batch-1 cost table over every MIG kind, batched and
// MPS tables at 1, 2, 4, ... up to its max_batch (at most 32), and an SLO of `slo_scale` x its batch-1 latency on
// a full GPU. `times` is read while the tables are built, not kept.
Result<ServedFunction> ServeFunction(FunctionId id, std::shared_ptr<const model::FunctionSpec> spec,
                                     const model::BlockTimes& times, const model::LatencyModel& latency,
                                     const gpu::MpsShares& shares, double slo_scale);

// A zoo model as every policy serves it on A100-80GB MIG slices (and MPS shares of whole GPUs): its batch-1 and
// batched cost tables over every MIG kind, its MPS table, and an SLO of `slo_scale` x its batch-1 latency on a
// full GPU. The node daemon deploys functions with it; presets are built from it.
Result<ServedFunction> ServeZooModel(FunctionId id, std::shared_ptr<const model::FunctionSpec> spec,
                                     const model::LatencyModel& latency, const gpu::MpsShares& shares,
                                     double slo_scale);

}  // namespace fluidfaas::policy
