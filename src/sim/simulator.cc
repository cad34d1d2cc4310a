#include "sim/simulator.h"

#include <algorithm>
#include <deque>
#include <variant>

#include "common/clock.h"

namespace fluidfaas::sim {
namespace {

using policy::Decision;
using policy::InstanceId;

class Engine {
 public:
  Engine(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
         const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options)
      : slices_(slices), functions_(functions), arrivals_(arrivals), scheduler_(scheduler), options_(options),
        slice_state_(slices.size()) {
    result_.slice_busy.assign(slices.size(), Duration{0});
    result_.slice_active.assign(slices.size(), Duration{0});
    result_.requests.resize(arrivals.size());
  }

  SimResult Run() {
    const TimePoint end = (arrivals_.empty() ? TimePoint{} : arrivals_.back().at) + options_.drain;
    if (!arrivals_.empty()) clock_.ScheduleAt(arrivals_.front().at, [this] { Arrive(0); });
    for (TimePoint t = TimePoint{} + options_.tick; t <= end; t += options_.tick) {
      clock_.ScheduleAt(t, [this] { Apply([this](auto& out) { scheduler_.OnTick(clock_.Now(), out); }); });
    }
    result_.events = static_cast<int64_t>(clock_.RunUntilIdle());
    result_.horizon = std::max(end, clock_.Now()) - TimePoint{};
    for (size_t s = 0; s < slices_.size(); ++s) {
      if (slice_state_[s].residents > 0) result_.slice_active[s] += clock_.Now() - slice_state_[s].active_since;
    }
    return std::move(result_);
  }

 private:
  struct Task {
    uint64_t request;
    InstanceId instance;
    size_t stage;
    TimePoint enqueued;
  };
  struct SliceState {
    bool busy = false;
    std::deque<Task> queue;
    int residents = 0;
    TimePoint active_since;
  };
  struct Instance {
    uint32_t function = 0;
    std::vector<policy::StagePlacement> stages;
    std::vector<Duration> stage_time;
    std::vector<Duration> hop_time;
    bool loaded = false;
    std::vector<uint64_t> waiting;  // routed while loading
    TimePoint load_started;
  };

  template <typename Call>
  void Apply(Call call) {
    std::vector<Decision> out;
    call(out);
    for (Decision& d : out) std::visit([this](auto& decision) { this->Carry(decision); }, d);
  }

  void Arrive(size_t i) {
    const Arrival& a = arrivals_[i];
    RequestRecord& r = result_.requests[i];
    r.function = a.function;
    r.arrival = a.at;
    r.deadline = a.at + MillisF(functions_[a.function].slo_ms);
    Apply([&](auto& out) {
      scheduler_.OnRequest(policy::RequestEvent{i, a.function, r.arrival, r.deadline}, clock_.Now(), out);
    });
    if (r.outcome == Outcome::kPending && r.instance == 0) {
      result_.errors.push_back("request " + std::to_string(i) + " was neither routed nor rejected");
      r.outcome = Outcome::kRejected;
    }
    // One pending arrival event at a time keeps the event queue small on long traces.
    if (i + 1 < arrivals_.size()) clock_.ScheduleAt(arrivals_[i + 1].at, [this, i] { Arrive(i + 1); });
  }

  void SetResident(size_t slice, int delta) {
    SliceState& s = slice_state_[slice];
    if (s.residents == 0 && delta > 0) s.active_since = clock_.Now();
    s.residents += delta;
    if (s.residents == 0 && delta < 0) result_.slice_active[slice] += clock_.Now() - s.active_since;
  }

  void Carry(const policy::LaunchDecision& d) {
    ++result_.launches;
    if (d.stages.size() > 1) ++result_.pipelines;
    Instance& inst = instances_[d.instance];
    for (const auto& st : inst.stages) SetResident(st.slice, -1);  // a reload replaces the old placement
    inst.function = d.function;
    inst.stages = d.stages;
    inst.loaded = false;
    inst.load_started = clock_.Now();
    inst.stage_time.clear();
    inst.hop_time.clear();
    const SimFunction& f = functions_[d.function];
    for (size_t s = 0; s < d.stages.size(); ++s) {
      const auto& st = d.stages[s];
      SetResident(st.slice, +1);
      const int k = f.costs->KindIndex(slices_[st.slice].kind);
      inst.stage_time.push_back(MillisF(f.costs->ComputeMs(k, st.first_block, st.last_block)));
      inst.hop_time.push_back(s + 1 < d.stages.size() ? MillisF(options_.transfer.HopMs(f.costs->OutBytes(st.last_block)))
                                                     : Duration{0});
    }
    clock_.ScheduleAfter(d.expected_load, [this, id = d.instance] { Loaded(id); });
  }

  void Loaded(InstanceId id) {
    auto it = instances_.find(id);
    if (it == instances_.end()) return;
    Instance& inst = it->second;
    inst.loaded = true;
    Apply([&](auto& out) { scheduler_.OnLoadFinished(policy::LoadEvent{id, true}, clock_.Now(), out); });
    std::vector<uint64_t> waiting;
    waiting.swap(inst.waiting);
    for (uint64_t req : waiting) {
      result_.requests[req].load += clock_.Now() - std::max(inst.load_started, result_.requests[req].arrival);
      Enqueue(req, id, 0);
    }
  }

  void Carry(const policy::RouteDecision& d) {
    RequestRecord& r = result_.requests[d.request];
    if (r.instance != 0) {
      result_.errors.push_back("request " + std::to_string(d.request) + " routed twice");
      return;
    }
    auto it = instances_.find(d.instance);
    if (it == instances_.end()) {
      result_.errors.push_back("request routed to unknown instance " + std::to_string(d.instance));
      r.outcome = Outcome::kRejected;
      return;
    }
    r.instance = d.instance;
    if (!it->second.loaded) {
      it->second.waiting.push_back(d.request);
      return;
    }
    Enqueue(d.request, d.instance, 0);
  }

  void Carry(const policy::RejectDecision& d) { result_.requests[d.request].outcome = Outcome::kRejected; }
  void Carry(const policy::EvictDecision& d) {
    ++result_.evictions;
    Unplace(d.instance);
  }
  void Carry(const policy::StateDecision&) {}
  void Carry(const policy::MigrateDecision&) { ++result_.migrations; }
  void Carry(const policy::RetireDecision& d) {
    Unplace(d.instance);
    instances_.erase(d.instance);
  }

  void Unplace(InstanceId id) {
    auto it = instances_.find(id);
    if (it == instances_.end()) return;
    for (const auto& st : it->second.stages) SetResident(st.slice, -1);
    it->second.stages.clear();
    it->second.loaded = false;
  }

  void Enqueue(uint64_t req, InstanceId id, size_t stage) {
    const size_t slice = instances_.at(id).stages[stage].slice;
    slice_state_[slice].queue.push_back(Task{req, id, stage, clock_.Now()});
    StartNext(slice);
  }

  void StartNext(size_t slice) {
    SliceState& s = slice_state_[slice];
    if (s.busy || s.queue.empty()) return;
    const Task task = s.queue.front();
    s.queue.pop_front();
    auto it = instances_.find(task.instance);
    if (it == instances_.end() || task.stage >= it->second.stages.size()) {
      result_.errors.push_back("instance " + std::to_string(task.instance) + " left with a request in flight");
      result_.requests[task.request].outcome = Outcome::kRejected;
      StartNext(slice);
      return;
    }
    const Instance& inst = it->second;
    RequestRecord& r = result_.requests[task.request];
    r.queue += clock_.Now() - task.enqueued;
    const Duration run = inst.stage_time[task.stage];
    const Duration hop = inst.hop_time[task.stage];
    r.compute += run;
    result_.slice_busy[slice] += run;
    s.busy = true;
    clock_.ScheduleAfter(run, [this, slice, task, hop] {
      slice_state_[slice].busy = false;
      StartNext(slice);
      const Instance& in = instances_.at(task.instance);
      if (task.stage + 1 < in.stages.size()) {
        result_.requests[task.request].transfer += hop;
        clock_.ScheduleAfter(hop, [this, task] { Enqueue(task.request, task.instance, task.stage + 1); });
        return;
      }
      Finish(task.request, task.instance);
    });
  }

  void Finish(uint64_t req, InstanceId id) {
    RequestRecord& r = result_.requests[req];
    r.finished = clock_.Now();
    r.outcome = r.finished <= r.deadline ? Outcome::kHit : Outcome::kMiss;
    const TimePoint started = r.finished - r.compute - r.transfer;
    Apply([&](auto& out) {
      scheduler_.OnStageFinished(policy::StageEvent{req, id, 0, true, started, r.finished}, clock_.Now(), out);
    });
  }

  const std::vector<policy::ClusterSlice>& slices_;
  const std::vector<SimFunction>& functions_;
  const std::vector<Arrival>& arrivals_;
  policy::Scheduler& scheduler_;
  const SimOptions& options_;
  ManualClock clock_;
  std::vector<SliceState> slice_state_;
  std::map<InstanceId, Instance> instances_;
  SimResult result_;
};

}  // namespace

SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options) {
  return Engine(slices, functions, arrivals, scheduler, options).Run();
}

}  // namespace fluidfaas::sim
