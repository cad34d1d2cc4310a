// ExclusiveScheduler: the common serverless default, as a baseline. Each instance holds one slice alone (no
// pipelines, no sharing) and is kept for `keep_alive` after its last request, then retired.
//
// Routing: the instance with the earliest estimated finish that meets the deadline (its slice's queue as
// SliceBooks estimates it, corrected by measurement); else start one more instance on the smallest free slice
// that fits and serves the function (one load in flight per function); else reject at once.
//
// Thread safety: none (see Scheduler).
#pragma once

#include <memory>
#include <vector>

#include "common/result.h"
#include "policy/baseline_scheduler.h"

namespace fluidfaas::policy {

struct ExclusiveOptions {
  Duration keep_alive = Seconds(600);  // the usual serverless keep-alive: 10 minutes
  LoadCostModel load;                  // the same load costs as FluidFaaS
};

struct ExclusiveInstance {
  FunctionId function = 0;
  size_t slice = 0;
  bool loading = true;
  int outstanding = 0;
  TimePoint ready_at;
  TimePoint last_request;
  Duration service{0};
};

struct ExclusiveFunction {
  ServedFunction served;
  std::vector<InstanceId> instances;
  bool removed = false;
};

class ExclusiveScheduler final : public BaselineScheduler<ExclusiveInstance, ExclusiveFunction> {
 public:
  static Result<std::unique_ptr<ExclusiveScheduler>> Create(std::vector<ClusterSlice> slices,
                                                            std::vector<ServedFunction> functions,
                                                            ExclusiveOptions options = {});

  std::string_view name() const override { return "exclusive"; }
  void OnTick(TimePoint now, std::vector<Decision>& out) override;

 private:
  ExclusiveScheduler(std::vector<ClusterSlice> slices, ExclusiveOptions options)
      : BaselineScheduler(std::move(slices), false, false), options_(options) {}

  std::optional<Refusal> Admit(ExclusiveFunction& fn, const RequestEvent& request, TimePoint now,
                               std::vector<Decision>& out) override;
  TimePoint Finish(const ExclusiveInstance& inst, TimePoint now) const;

  ExclusiveOptions options_;
};

}  // namespace fluidfaas::policy
