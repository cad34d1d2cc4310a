// ExclusiveScheduler: the common serverless default, as a baseline. Each instance holds one slice alone (no
// pipelines, no sharing) and is kept for `keep_alive` after its last request, then retired.
//
// Routing: the instance with the earliest estimated finish that meets the deadline; else start one more
// instance on the smallest free slice that fits and serves the function (one load in flight per function);
// else reject at once.
//
// Thread safety: none (see Scheduler).
#pragma once

#include <map>
#include <vector>

#include "policy/fluidfaas_scheduler.h"

namespace fluidfaas::policy {

struct ExclusiveOptions {
  Duration keep_alive = Seconds(600);  // the usual serverless keep-alive: 10 minutes
  LoadCostModel load;                  // the same load costs as FluidFaaS
};

class ExclusiveScheduler final : public Scheduler {
 public:
  ExclusiveScheduler(std::vector<ClusterSlice> slices, std::vector<ServedFunction> functions,
                     ExclusiveOptions options = {});

  std::string_view name() const override { return "exclusive"; }
  void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) override;
  void OnStageFinished(const StageEvent& stage, TimePoint now, std::vector<Decision>& out) override;
  void OnLoadFinished(const LoadEvent& load, TimePoint now, std::vector<Decision>& out) override;
  void OnTick(TimePoint now, std::vector<Decision>& out) override;
  void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) override;

 private:
  struct Inst {
    FunctionId function = 0;
    size_t slice = 0;
    bool loading = true;
    TimePoint ready_at;
    TimePoint last_request;
    Duration service{0};
    int outstanding = 0;
  };
  struct SliceRec {
    ClusterSlice info;
    bool taken = false;
    TimePoint busy_until;
  };

  const ServedFunction* Function(FunctionId id) const;

  ExclusiveOptions options_;
  std::vector<SliceRec> slices_;
  std::vector<ServedFunction> functions_;
  std::map<InstanceId, Inst> instances_;
  InstanceId next_instance_ = 1;
};

}  // namespace fluidfaas::policy
