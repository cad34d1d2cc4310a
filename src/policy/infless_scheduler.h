// InflessScheduler: the INFless baseline (ASPLOS'22), as ARCHITECTURE.md describes it, on whole GPUs shared
// through MPS (MIG off): its cluster is one ClusterSlice per GPU, and every stage it places is an MPS share.
//
//  - Configuration: per function, the (SM share, batch) with the highest throughput per unit of GPU share whose
//    execution fits the budget (the SLO at batch 1, SLO/2 when batching) and whose batch can fill within its
//    timeout at the function's current rate; ties go to the smaller share (less fragmentation).
//  - Placement: greedy best fit: the GPU with enough free SM share and memory that is left with the least free
//    SM share (least fragmentation).
//  - Batching: built into every instance, timeout = SLO - execution time of the batch. The execution time is
//    taken at (1 + interference_margin) x the share's time alone: INFless plans for the slowdown MPS co-location
//    brings (its paper sizes resources with interference in mind); without the margin a full batch that waited
//    its whole timeout finishes past the SLO whenever the GPU is busy. This project's choice, shown by its
//    sensitivity row (docs/simulator.md).
//  - Dispatch: every split period (1 s) each function's requests are split across its loaded
//    instances in proportion to their throughput (smooth weighted round robin); a request whose share goes to an
//    instance that cannot meet its deadline goes to the instance with the earliest estimated finish, and is
//    rejected at once when none meets it (as every policy here does).
//  - Scaling: a function with no instance starts one on its first request; every `scale_period`, a function
//    whose overflow exceeded `overflow_threshold` of its requests gets instances for the overflow rate; an
//    instance that served nothing for `idle_periods` scaling periods is retired. Overflow is the requests its
//    instances could not take: beyond their capacity in the split period, or turned away by them within it
//    (`refusals_overflow`). Capacity is the instances' throughput alone; MPS neighbours slow them, and a burst
//    inside one split fills their queues, so counting the requests beyond it alone let a function lose 7% of its
//    requests for good at a rate one GPU serves (docs/simulator.md, "One hot function").
//
// Thread safety: none (see Scheduler).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/result.h"
#include "policy/baseline_scheduler.h"
#include "policy/load_tracker.h"

namespace fluidfaas::policy {

struct InflessOptions {
  Duration split_period = Seconds(1);
  Duration scale_period = Seconds(10);
  double overflow_threshold = 0.03;
  int idle_periods = 3;
  double exec_budget_batching = 0.5;  // of the SLO, when the batch is larger than 1
  double interference_margin = 0.3;   // the batch timeout plans for this slowdown (the simulator's MPS factor)
  bool refusals_overflow = true;      // a request its instances turn away counts as overflow (policy spec:
                                      // infless:refusals=off counts only arrivals beyond capacity, as before)
  LoadCostModel load;
  LoadTrackerOptions tracker;
};

struct InflessConfig {
  int share = -1;  // MPS share index (the alone kind in MpsKinds)
  int batch = 1;
  double exec_ms = 0;   // one batch, alone
  double fraction = 0;  // of the GPU's SMs
  double throughput_rps = 0;
};

// The configuration rule above. `costs` are MPS costs (MpsKinds); `gpu_memory_mib` the GPU's memory.
std::optional<InflessConfig> ChooseInflessConfig(const BatchCosts& costs, double slo_ms, double rate_rps,
                                                 int64_t gpu_memory_mib, double exec_budget_batching = 0.5);

struct InflessInstance {
  FunctionId function = 0;
  size_t slice = 0;  // the GPU
  bool loading = true;
  int outstanding = 0;
  InflessConfig config;
  TimePoint ready_at;
  int64_t served_this_period = 0;
  int idle_periods = 0;
  double credit = 0;  // smooth weighted round robin
};

struct InflessFunction {
  ServedFunction served;
  std::vector<InstanceId> instances;
  bool removed = false;
  LoadTracker rate;
  int64_t arrivals_this_split = 0;  // in the current split period
  int64_t overflow = 0;             // over the current scaling period
  int64_t arrivals = 0;             // over the current scaling period
};

class InflessScheduler final : public BaselineScheduler<InflessInstance, InflessFunction> {
 public:
  // `gpus`: one ClusterSlice per whole GPU. Every function needs `mps` costs.
  static Result<std::unique_ptr<InflessScheduler>> Create(std::vector<ClusterSlice> gpus,
                                                          std::vector<ServedFunction> functions,
                                                          InflessOptions options = {});

  std::string_view name() const override { return "infless"; }
  void OnTick(TimePoint now, std::vector<Decision>& out) override;

 private:
  InflessScheduler(std::vector<ClusterSlice> gpus, InflessOptions options);

  std::optional<Refusal> Admit(InflessFunction& fn, const RequestEvent& request, TimePoint now,
                               std::vector<Decision>& out) override;
  InflessFunction MakeFn(ServedFunction&& served) override {
    return InflessFunction{std::move(served), {}, false, LoadTracker(options_.tracker)};
  }
  void Retired(InstanceId id, const InflessInstance& inst) override;
  void ReleaseDone(const Released& released) override;
  void SliceGone(size_t gpu) override;

  TimePoint EstimatedFinish(const InflessInstance& inst, TimePoint now) const;
  bool Loaded(const InflessFunction& fn) const;      // one of its instances has loaded
  double Capacity(const InflessFunction& fn) const;  // requests per second of its instances
  std::optional<InstanceId> Launch(InflessFunction& fn, TimePoint now, std::vector<Decision>& out);
  std::optional<InstanceId> PickWeighted(InflessFunction& fn);
  void Split(TimePoint now);  // a new split period when it is due

  InflessOptions options_;
  std::vector<double> free_share_;                                   // per GPU: SM share not held by an instance
  std::map<InstanceId, std::pair<size_t, double>> share_releasing_;  // GPU and SM share of retired instances,
                                                                     // until their release
  TimePoint next_split_;
  TimePoint next_scale_;
};

}  // namespace fluidfaas::policy
