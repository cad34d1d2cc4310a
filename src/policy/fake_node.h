// FakeNode: a small fake mechanism for FluidFaaSScheduler's tests, on the manual clock. Loads take the time the
// scheduler expects (or fail, for instances a test names), each instance runs one request at a time over all its
// slices, releases are acknowledged 1 ms after an eviction or retirement, a test can kill a slice's worker, and
// the answer rule (AnswerChecker) and the scheduler's invariants are checked after every call.
//
// Thread safety: test code, one thread.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "gpu/topology.h"
#include "model/zoo.h"
#include "policy/answer_checker.h"
#include "policy/fluidfaas_scheduler.h"

namespace fluidfaas::policy::fake {

using S = InstanceState;

inline const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

inline ClusterSlice Slice(const std::string& id, bool available = true) {
  const gpu::SliceId sid = *gpu::SliceId::Parse(id);
  return ClusterSlice{id, sid.gpu, SliceKind{&A100(), A100().FindProfile(sid.profile)}, available};
}

// A zoo function with its cost table.
struct Fn {
  explicit Fn(const std::string& name, FunctionId id, double slo_ms)
      : spec(std::make_shared<const model::FunctionSpec>(*model::BuildZooModel(name))), times(*spec, latency) {
    std::vector<SliceKind> kinds;
    for (const gpu::MigProfile& p : A100().profiles) kinds.push_back(SliceKind{&A100(), &p});
    costs = std::make_shared<const StageCostTable>(StageCostTable::Build(*spec, times, latency, 1, kinds));
    served = ServedFunction{id, spec, costs, slo_ms};
  }
  model::LatencyModel latency;
  std::shared_ptr<const model::FunctionSpec> spec;
  model::ModelledBlockTimes times;
  std::shared_ptr<const StageCostTable> costs;
  ServedFunction served;
};

class FakeNode {
 public:
  struct RequestRecord {
    FunctionId function = 0;
    std::vector<InstanceId> routed;
    int completions = 0;
    bool rejected = false;
    bool failed = false;
    TimePoint arrival;
    TimePoint finished;
  };

  FakeNode(ManualClock& clock, const std::vector<ClusterSlice>& slices, std::vector<ServedFunction> functions,
           FluidFaaSOptions options = {})
      : clock_(clock),
        scheduler_(std::move(FluidFaaSScheduler::Create(slices, std::move(functions), options)).value()),
        checker_(slices),
        slice_busy_(slices.size()) {}

  FluidFaaSScheduler& scheduler() { return *scheduler_; }
  // Loads of these instances fail.
  void FailLoadsOf(InstanceId id) { failing_loads_.insert(id); }
  std::map<RequestId, RequestRecord>& requests() { return requests_; }
  std::vector<StateDecision>& transitions() { return transitions_; }
  std::vector<MigrateDecision>& migrations() { return migrations_; }
  std::vector<InstanceId>& retired() { return retired_; }
  std::vector<InstanceId>& evicted() { return evicted_; }
  std::vector<LaunchDecision>& launches() { return launches_; }

  // A request arriving at `at`; `age` makes it look older (it waited upstream), so its slack is smaller.
  RequestId Submit(FunctionId fn, TimePoint at, double slo_ms, Duration age = Duration{0}) {
    const RequestId id = next_request_++;
    clock_.ScheduleAt(at, [this, id, fn, slo_ms, age] {
      const TimePoint arrival = clock_.Now() - age;
      requests_[id] = RequestRecord{fn, {}, 0, false, false, arrival, {}};
      const RequestEvent event{id, fn, arrival, arrival + MillisF(slo_ms)};
      events_[id] = event;
      checker_.OnRequest(event);
      Apply([&](auto& out) { scheduler_->OnRequest(event, clock_.Now(), out); });
    });
    return id;
  }
  void SubmitEvery(FunctionId fn, TimePoint from, TimePoint to, Duration every, double slo_ms) {
    for (TimePoint t = from; t < to; t += every) Submit(fn, t, slo_ms);
  }
  void Ticks(TimePoint from, TimePoint to, Duration every = Seconds(1)) {
    for (TimePoint t = from; t <= to; t += every) {
      clock_.ScheduleAt(t, [this] { Apply([&](auto& out) { scheduler_->OnTick(clock_.Now(), out); }); });
    }
  }
  void FreeSlice(size_t slice, TimePoint at) {
    clock_.ScheduleAt(at,
                      [this, slice] { Apply([&](auto& out) { scheduler_->OnSliceFreed(slice, clock_.Now(), out); }); });
  }
  // The worker of `slice` dies at `at`: every request of the instances on it goes back to the scheduler.
  void KillWorker(size_t slice, TimePoint at) {
    clock_.ScheduleAt(at, [this, slice] {
      std::vector<RequestEvent> stranded;
      for (auto& [id, inst] : insts_) {
        if (std::find(inst.slices.begin(), inst.slices.end(), slice) == inst.slices.end()) continue;
        for (RequestId r : inst.queue) stranded.push_back(events_.at(r));
        if (inst.running) stranded.push_back(events_.at(inst.running_request));
        inst.queue.clear();
        inst.running = false;
        ++inst.generation;
      }
      const SliceLost event{slice, Reason::kWorkerLost, "killed by the test", stranded};
      checker_.OnSliceLost(event);
      Apply([&](auto& out) { scheduler_->OnSliceLost(event, clock_.Now(), out); });
    });
  }
  AnswerChecker& checker() { return checker_; }
  // Deploys or removes a function at `at`; the status goes to `status`.
  void Deploy(ServedFunction f, TimePoint at, Status* status) {
    clock_.ScheduleAt(at, [this, f = std::move(f), status] { *status = scheduler_->Deploy(f); });
  }
  void Remove(FunctionId f, TimePoint at, Status* status) {
    clock_.ScheduleAt(
        at, [this, f, status] { Apply([&](auto& out) { *status = scheduler_->Remove(f, clock_.Now(), out); }); });
  }

 private:
  struct Inst {
    std::vector<size_t> slices;
    Duration service{0};
    bool loaded = false;
    bool running = false;
    RequestId running_request = 0;
    uint64_t generation = 0;
    std::deque<RequestId> queue;
  };

  template <typename Call>
  void Apply(Call call) {
    std::vector<Decision> out;
    call(out);
    for (Decision& d : out) {
      checker_.OnDecision(d);
      std::visit([this](auto& decision) { this->Carry(decision); }, d);
    }
    checker_.EndCall();
    EXPECT_TRUE(checker_.status().ok()) << checker_.status().message();
    const Status inv = scheduler_->Invariants();
    EXPECT_TRUE(inv.ok()) << inv.message();
  }

  void Carry(const LaunchDecision& d) {
    launches_.push_back(d);
    Inst& inst = insts_[d.instance];
    inst.slices.clear();
    for (const StagePlacement& st : d.stages) inst.slices.push_back(st.slice);
    inst.service = d.expected_service;
    inst.loaded = false;
    const uint64_t generation = ++inst.generation;
    // Memory taken over from an eviction is free 1 ms after it (the acknowledgement comes then).
    const Duration wait = d.after_release.empty() ? Duration{0} : Millis(1);
    clock_.ScheduleAfter(wait + d.expected_load, [this, id = d.instance, generation] {
      Inst& in = insts_[id];
      if (in.generation != generation) return;
      if (failing_loads_.contains(id)) {
        std::vector<RequestEvent> stranded;
        for (RequestId r : in.queue) stranded.push_back(events_.at(r));
        in.queue.clear();
        const LoadFinished event{id, false, "failed by the test", stranded};
        checker_.OnLoadFinished(event);
        Apply([&](auto& out) { scheduler_->OnLoadFinished(event, clock_.Now(), out); });
        return;
      }
      in.loaded = true;
      const LoadFinished event{id, true, {}, {}};
      checker_.OnLoadFinished(event);
      Apply([&](auto& out) { scheduler_->OnLoadFinished(event, clock_.Now(), out); });
      TryStart(id);
    });
  }
  void Carry(const RouteDecision& d) {
    RequestRecord& r = requests_[d.request];
    r.routed.push_back(d.instance);  // twice only after a failure handed it back: the checker sees to that
    insts_[d.instance].queue.push_back(d.request);
    TryStart(d.instance);
  }
  void Carry(const RejectDecision& d) { requests_[d.request].rejected = true; }
  void Carry(const FailDecision& d) {
    requests_[d.request].failed = true;
    fail_codes_.push_back(d.code);
  }
  void Release(InstanceId id) {
    for (size_t slice : insts_[id].slices) {
      clock_.ScheduleAfter(Millis(1), [this, id, slice] {
        const Released event{id, slice};
        checker_.OnReleased(event);
        Apply([&](auto& out) { scheduler_->OnReleased(event, clock_.Now(), out); });
      });
    }
    ++insts_[id].generation;
  }
  void Carry(const EvictDecision& d) {
    EXPECT_TRUE(insts_[d.instance].queue.empty() && !insts_[d.instance].running) << "evicted a busy instance";
    insts_[d.instance].loaded = false;
    Release(d.instance);
    evicted_.push_back(d.instance);
  }
  void Carry(const StateDecision& d) { transitions_.push_back(d); }
  void Carry(const MigrateDecision& d) { migrations_.push_back(d); }
  void Carry(const RetireDecision& d) {
    EXPECT_TRUE(insts_[d.instance].queue.empty() && !insts_[d.instance].running) << "retired a busy instance";
    Release(d.instance);
    retired_.push_back(d.instance);
  }

  // Runs the instance's next request once it is loaded and all its slices are idle.
  void TryStart(InstanceId id) {
    Inst& inst = insts_[id];
    if (!inst.loaded || inst.running || inst.queue.empty()) return;
    TimePoint start = clock_.Now();
    for (size_t s : inst.slices) start = std::max(start, slice_busy_[s]);
    const TimePoint end = start + inst.service;
    for (size_t s : inst.slices) slice_busy_[s] = end;
    const RequestId req = inst.queue.front();
    inst.queue.pop_front();
    inst.running = true;
    inst.running_request = req;
    clock_.ScheduleAt(end, [this, id, req, start, end, generation = inst.generation] {
      Inst& in = insts_[id];
      if (in.generation != generation) return;  // its worker was killed
      in.running = false;
      RequestRecord& r = requests_[req];
      ++r.completions;
      r.finished = end;
      // The fake runs every stage at once: one report per stage, the last one completing the request.
      const RequestId batch[] = {req};
      for (size_t s = 0; s < in.slices.size(); ++s) {
        const StageFinished event{id, s, 0, s + 1 == in.slices.size(), batch, start, end};
        checker_.OnStageFinished(event);
        Apply([&](auto& out) { scheduler_->OnStageFinished(event, clock_.Now(), out); });
      }
      TryStart(id);
    });
  }

 public:
  std::vector<Reason> fail_codes_;

 private:
  ManualClock& clock_;
  std::unique_ptr<FluidFaaSScheduler> scheduler_;
  AnswerChecker checker_;
  std::map<RequestId, RequestEvent> events_;
  std::set<InstanceId> failing_loads_;
  std::vector<TimePoint> slice_busy_;
  std::map<InstanceId, Inst> insts_;
  std::map<RequestId, RequestRecord> requests_;
  std::vector<StateDecision> transitions_;
  std::vector<MigrateDecision> migrations_;
  std::vector<InstanceId> retired_;
  std::vector<InstanceId> evicted_;
  std::vector<LaunchDecision> launches_;
  RequestId next_request_ = 1;
};

inline TimePoint At(double seconds) {
  return TimePoint{} + SecondsF(seconds);
}

inline std::vector<S> StatesOf(const std::vector<StateDecision>& log, InstanceId id) {
  std::vector<S> out;
  for (const StateDecision& d : log) {
    if (d.instance == id) out.push_back(d.to);
  }
  return out;
}

}  // namespace fluidfaas::policy::fake
