// Migrator: a pipelined instance moves back to one slice when a slice that holds it alone frees up (design
// point 2). The plain instance is launched while the pipeline keeps serving; once it is loaded, Migrate sends
// new requests to it, the pipeline drains and is retired when its last request ends. It is refused only when
// the plain instance would be more than migrate_slowdown slower than the pipeline.
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "policy/placer.h"

namespace fluidfaas::policy {

class Migrator {
 public:
  Migrator(const FluidFaaSOptions& options, const SliceBooks& slices, InstanceTable& instances, Placer& placer,
           const std::map<FunctionId, ServedFunction>& functions)
      : options_(options), slices_(slices), instances_(instances), placer_(placer), functions_(functions) {}

  // Starts the migrations that pay off now.
  void Consider(TimePoint now, std::vector<Decision>& out);
  // A migration target finished loading (`ok`) or failed: the switch, or the pipeline carries on.
  void TargetLoaded(InstanceRec& target, bool ok, TimePoint now, std::vector<Decision>& out);

 private:
  const FluidFaaSOptions& options_;
  const SliceBooks& slices_;
  InstanceTable& instances_;
  Placer& placer_;
  const std::map<FunctionId, ServedFunction>& functions_;
  // What the last look saw: the slice books' version and the pipelines that could move. While both stand, every
  // plan would come out as it did (no migration), so the planner is not run again every tick.
  uint64_t seen_version_ = UINT64_MAX;
  std::vector<InstanceId> seen_pipelines_;
};

}  // namespace fluidfaas::policy
