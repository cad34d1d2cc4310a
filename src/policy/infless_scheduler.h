// InflessScheduler: the INFless baseline (ASPLOS'22), as ARCHITECTURE.md describes it, on whole GPUs shared
// through MPS (MIG off): its cluster is one ClusterSlice per GPU, and every stage it places is an MPS share.
//
//  - Configuration: per function, the (SM share, batch) with the highest throughput per unit of GPU share whose
//    execution fits the budget (the SLO at batch 1, SLO/2 when batching) and whose batch can fill within its
//    timeout at the function's current rate; ties go to the smaller share (less fragmentation).
//  - Placement: greedy best fit: the GPU with enough free SM share and memory that is left with the least free
//    SM share (least fragmentation).
//  - Batching: built into every instance, timeout = SLO - execution time of the batch.
//  - Dispatch: every second (a tick) each function's next second of requests is split across its loaded
//    instances in proportion to their throughput (smooth weighted round robin); a request whose share goes to an
//    instance that cannot meet its deadline goes to the instance with the earliest estimated finish, and is
//    rejected at once when none meets it (as every policy here does).
//  - Scaling: a function with no instance starts one on its first request; every `scale_period`, a function
//    whose overflow (requests beyond its instances' capacity, per second) exceeded `overflow_threshold` of its
//    requests gets instances for the overflow rate; an instance that served nothing for `idle_periods` scaling
//    periods is retired.
//
// Thread safety: none (see Scheduler).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "policy/load_tracker.h"
#include "policy/scheduler.h"

namespace fluidfaas::policy {

struct InflessOptions {
  Duration split_period = Seconds(1);
  Duration scale_period = Seconds(10);
  double overflow_threshold = 0.03;
  int idle_periods = 3;
  double exec_budget_batching = 0.5;  // of the SLO, when the batch is larger than 1
  LoadCostModel load;
  LoadTrackerOptions tracker;
};

struct InflessConfig {
  int share = -1;          // MPS share index (the alone kind in MpsKinds)
  int batch = 1;
  double exec_ms = 0;      // one batch, alone
  double fraction = 0;     // of the GPU's SMs
  double throughput_rps = 0;
};

// The configuration rule above. `costs` are MPS costs (MpsKinds); `gpu_memory_mib` the GPU's memory.
std::optional<InflessConfig> ChooseInflessConfig(const BatchCosts& costs, double slo_ms, double rate_rps,
                                                 int64_t gpu_memory_mib, double exec_budget_batching = 0.5);

class InflessScheduler final : public Scheduler {
 public:
  // `gpus`: one ClusterSlice per whole GPU. Every function needs `mps` costs.
  InflessScheduler(std::vector<ClusterSlice> gpus, const std::vector<ServedFunction>& functions,
                   InflessOptions options = {});

  std::string_view name() const override { return "infless"; }
  void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) override;
  void OnStageFinished(const StageEvent& stage, TimePoint now, std::vector<Decision>& out) override;
  void OnLoadFinished(const LoadEvent& load, TimePoint now, std::vector<Decision>& out) override;
  void OnTick(TimePoint now, std::vector<Decision>& out) override;
  void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) override;

 private:
  struct Inst {
    FunctionId function = 0;
    size_t gpu = 0;
    InflessConfig config;
    int64_t memory_mib = 0;
    bool loading = true;
    TimePoint ready_at;
    int outstanding = 0;
    int64_t served_this_period = 0;
    int idle_periods = 0;
    double credit = 0;       // smooth weighted round robin
  };
  struct Fn {
    ServedFunction served;
    LoadTracker rate;
    std::vector<InstanceId> instances;
    int64_t arrivals_this_second = 0;
    int64_t overflow = 0;    // over the current scaling period
    int64_t arrivals = 0;    // over the current scaling period
  };
  struct Gpu {
    ClusterSlice info;
    double free_share = 1.0;
    int64_t free_mib = 0;
  };

  TimePoint EstimatedFinish(const Inst& inst, TimePoint now) const;
  double Capacity(const Fn& fn) const;  // requests per second of its instances
  std::optional<InstanceId> Launch(Fn& fn, TimePoint now, std::vector<Decision>& out);
  std::optional<InstanceId> PickWeighted(Fn& fn);
  void Retire(InstanceId id, std::vector<Decision>& out);

  InflessOptions options_;
  std::vector<Gpu> gpus_;
  std::map<FunctionId, Fn> functions_;
  std::map<InstanceId, Inst> instances_;
  InstanceId next_instance_ = 1;
  TimePoint next_scale_;
};

}  // namespace fluidfaas::policy
