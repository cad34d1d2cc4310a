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
        residents_(slices.size(), 0), active_since_(slices.size()), mps_busy_(slices.size(), 0.0) {
    for (size_t s = 0; s < slices.size(); ++s) lanes_.push_back(Lane{s});
    result_.slice_busy.assign(slices.size(), Duration{0});
    result_.slice_active.assign(slices.size(), Duration{0});
    result_.slice_timeline.resize(slices.size());
    result_.timeline_bucket = options.timeline_bucket;
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
    result_.arrival_span = arrivals_.empty() ? Duration{0} : arrivals_.back().at - TimePoint{};
    for (size_t s = 0; s < slices_.size(); ++s) {
      if (residents_[s] > 0) result_.slice_active[s] += clock_.Now() - active_since_[s];
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
  // Where stages run one batch at a time: a slice (lanes [0, slices)) or an MPS share of a GPU.
  struct Lane {
    size_t slice = 0;
    double share = 1.0;        // of the slice's SMs (MPS); 1 for a slice
    bool mps = false;
    bool busy = false;
    std::deque<Task> queue;
    TimePoint wake_at = TimePoint::max();  // a pending batch-timeout wake-up
  };
  struct Stage {
    policy::StagePlacement place;
    size_t lane = 0;
    int kind = 0;              // in the function's cost tables (the MPS ones for an MPS stage)
    Duration time{0};          // batch 1, alone
    Duration hop{0};           // batch 1, to the next stage (0 after the last)
    int64_t out_bytes = 0;     // batch 1
  };
  struct Instance {
    uint32_t function = 0;
    std::vector<Stage> stages;
    int max_batch = 1;
    Duration batch_timeout{0};
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
    if (residents_[slice] == 0 && delta > 0) active_since_[slice] = clock_.Now();
    residents_[slice] += delta;
    if (residents_[slice] == 0 && delta < 0) result_.slice_active[slice] += clock_.Now() - active_since_[slice];
  }

  size_t NewMpsLane(size_t slice, double share) {
    size_t lane;
    if (!free_lanes_.empty()) {
      lane = free_lanes_.back();
      free_lanes_.pop_back();
      lanes_[lane] = Lane{};
    } else {
      lane = lanes_.size();
      lanes_.emplace_back();
    }
    lanes_[lane].slice = slice;
    lanes_[lane].share = share;
    lanes_[lane].mps = true;
    return lane;
  }

  // An error for a decision the mechanism cannot carry out; the launch is dropped.
  bool CheckLaunch(const policy::LaunchDecision& d) {
    std::string why;
    if (d.function >= functions_.size() || d.stages.empty()) {
      why = "bad function or no stages";
    } else if (d.max_batch < 1 || (d.max_batch > 1 && (functions_[d.function].batched == nullptr ||
                                                        d.max_batch > functions_[d.function].batched->max_batch()))) {
      why = "batch " + std::to_string(d.max_batch) + " has no cost table";
    } else {
      for (const auto& st : d.stages) {
        if (st.slice >= slices_.size()) why = "slice out of range";
        if (st.mps_share >= 0 && functions_[d.function].mps == nullptr) why = "MPS stage without MPS costs";
      }
    }
    if (why.empty()) return true;
    result_.errors.push_back("launch of instance " + std::to_string(d.instance) + ": " + why);
    return false;
  }

  void Carry(const policy::LaunchDecision& d) {
    if (!CheckLaunch(d)) return;
    ++result_.launches;
    if (d.stages.size() > 1) ++result_.pipelines;
    Instance& inst = instances_[d.instance];
    Unplace(inst);  // a reload replaces the old placement
    inst.function = d.function;
    inst.max_batch = d.max_batch;
    inst.batch_timeout = d.batch_timeout;
    inst.loaded = false;
    inst.load_started = clock_.Now();
    const SimFunction& f = functions_[d.function];
    for (size_t s = 0; s < d.stages.size(); ++s) {
      Stage st;
      st.place = d.stages[s];
      SetResident(st.place.slice, +1);
      const auto& p = st.place;
      if (p.mps_share >= 0) {
        const double share = static_cast<double>(f.mps->one().kinds()[p.mps_share].profile->sms) /
                             slices_[p.slice].kind.gpu->sms;
        st.lane = NewMpsLane(p.slice, std::min(1.0, share));
        st.kind = p.mps_share;
        st.time = MillisF(f.mps->ComputeMs(st.kind, p.first_block, p.last_block, 1));
      } else {
        st.lane = p.slice;
        st.kind = f.costs->KindIndex(slices_[p.slice].kind);
        st.time = MillisF(f.costs->ComputeMs(st.kind, p.first_block, p.last_block));
      }
      st.out_bytes = f.costs->OutBytes(p.last_block);
      st.hop = s + 1 < d.stages.size() ? MillisF(options_.transfer.HopMs(st.out_bytes)) : Duration{0};
      inst.stages.push_back(st);
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
    if (it == instances_.end() || it->second.stages.empty()) {
      result_.errors.push_back("request routed to unknown or unplaced instance " + std::to_string(d.instance));
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

  void Carry(const policy::RejectDecision& d) {
    RequestRecord& r = result_.requests[d.request];
    r.outcome = Outcome::kRejected;
    ++result_.rejections[{r.function, d.reason.substr(0, d.reason.find(" ("))}];
  }
  void Carry(const policy::EvictDecision& d) {
    ++result_.evictions;
    auto it = instances_.find(d.instance);
    if (it != instances_.end()) Unplace(it->second);
  }
  void Carry(const policy::StateDecision&) {}
  void Carry(const policy::MigrateDecision&) { ++result_.migrations; }
  void Carry(const policy::RetireDecision& d) {
    auto it = instances_.find(d.instance);
    if (it == instances_.end()) return;
    Unplace(it->second);
    instances_.erase(it);
  }

  void Unplace(Instance& inst) {
    for (const Stage& st : inst.stages) {
      SetResident(st.place.slice, -1);
      // An MPS lane is the instance's own; it goes back once its queue is empty and it is idle (the scheduler
      // only retires idle instances, so it is).
      if (lanes_[st.lane].mps) free_lanes_.push_back(st.lane);
    }
    inst.stages.clear();
    inst.loaded = false;
  }

  void Enqueue(uint64_t req, InstanceId id, size_t stage) {
    const size_t lane = instances_.at(id).stages[stage].lane;
    lanes_[lane].queue.push_back(Task{req, id, stage, clock_.Now()});
    StartNext(lane);
  }

  void StartNext(size_t lane_index) {
    Lane& lane = lanes_[lane_index];
    if (lane.busy || lane.queue.empty()) return;
    const Task front = lane.queue.front();
    auto it = instances_.find(front.instance);
    if (it == instances_.end() || front.stage >= it->second.stages.size()) {
      lane.queue.pop_front();
      result_.errors.push_back("instance " + std::to_string(front.instance) + " left with a request in flight");
      result_.requests[front.request].outcome = Outcome::kRejected;
      StartNext(lane_index);
      return;
    }
    const Instance& inst = it->second;
    const Stage& st = inst.stages[front.stage];
    // The batch: the requests of the same instance and stage queued back to back at the front.
    size_t batch = 1;
    if (inst.max_batch > 1) {
      while (batch < lane.queue.size() && batch < static_cast<size_t>(inst.max_batch) &&
             lane.queue[batch].instance == front.instance && lane.queue[batch].stage == front.stage) {
        ++batch;
      }
      const TimePoint due = front.enqueued + inst.batch_timeout;
      if (batch < static_cast<size_t>(inst.max_batch) && clock_.Now() < due) {
        if (lane.wake_at != due) {
          lane.wake_at = due;
          clock_.ScheduleAt(due, [this, lane_index, due] {
            if (lanes_[lane_index].wake_at != due) return;
            lanes_[lane_index].wake_at = TimePoint::max();
            StartNext(lane_index);
          });
        }
        return;
      }
    }
    lane.wake_at = TimePoint::max();
    const Duration run = RunTime(inst, st, static_cast<int>(batch), lane);
    const Duration hop =
        batch == 1 ? st.hop
                   : (front.stage + 1 < inst.stages.size()
                          ? MillisF(options_.transfer.HopMs(st.out_bytes * static_cast<int64_t>(batch)))
                          : Duration{0});
    lane.busy = true;
    const Duration busy = lane.mps ? Duration(static_cast<int64_t>(run.count() * lane.share)) : run;
    result_.slice_busy[lane.slice] += busy;
    AddToTimeline(lane.slice, clock_.Now(), run, lane.mps ? lane.share : 1.0);
    if (lane.mps) mps_busy_[lane.slice] += lane.share;
    if (batch == 1) {  // the common case, without a vector per request
      const Task task = front;
      lane.queue.pop_front();
      Started(task, run);
      clock_.ScheduleAfter(run, [this, lane_index, task, hop] {
        Idle(lane_index);
        Done(task, hop);
      });
      return;
    }
    std::vector<Task> tasks(lane.queue.begin(), lane.queue.begin() + static_cast<std::ptrdiff_t>(batch));
    lane.queue.erase(lane.queue.begin(), lane.queue.begin() + static_cast<std::ptrdiff_t>(batch));
    for (const Task& t : tasks) Started(t, run);
    clock_.ScheduleAfter(run, [this, lane_index, tasks = std::move(tasks), hop] {
      Idle(lane_index);
      for (const Task& task : tasks) Done(task, hop);
    });
  }

  // Spreads a busy interval [start, start + run) over the slice's timeline buckets, weighted by `share`.
  void AddToTimeline(size_t slice, TimePoint start, Duration run, double share) {
    const int64_t bucket = options_.timeline_bucket.count();
    if (bucket <= 0) return;
    std::vector<Duration>& line = result_.slice_timeline[slice];
    int64_t t = (start - TimePoint{}).count();
    const int64_t end = t + run.count();
    while (t < end) {
      const size_t i = static_cast<size_t>(t / bucket);
      const int64_t next = std::min(end, static_cast<int64_t>(i + 1) * bucket);
      if (line.size() <= i) line.resize(i + 1, Duration{0});
      line[i] += Duration(static_cast<int64_t>(static_cast<double>(next - t) * share));
      t = next;
    }
  }

  void Started(const Task& t, Duration run) {
    RequestRecord& r = result_.requests[t.request];
    r.queue += clock_.Now() - t.enqueued;
    r.compute += run;
  }

  void Idle(size_t lane_index) {
    Lane& l = lanes_[lane_index];
    l.busy = false;
    if (l.mps) mps_busy_[l.slice] = std::max(0.0, mps_busy_[l.slice] - l.share);
    StartNext(lane_index);
  }

  // A stage of `task` ended: on to the next stage after the hop, or the request is done.
  void Done(const Task& task, Duration hop) {
    const Instance& in = instances_.at(task.instance);
    if (task.stage + 1 < in.stages.size()) {
      result_.requests[task.request].transfer += hop;
      clock_.ScheduleAfter(hop, [this, task] { Enqueue(task.request, task.instance, task.stage + 1); });
    } else {
      Finish(task.request, task.instance);
    }
  }

  Duration RunTime(const Instance& inst, const Stage& st, int batch, const Lane& lane) const {
    const SimFunction& f = functions_[inst.function];
    const auto& p = st.place;
    if (!lane.mps) {
      return batch == 1 ? st.time : MillisF(f.batched->ComputeMs(st.kind, p.first_block, p.last_block, batch));
    }
    const double alone = f.mps->ComputeMs(st.kind, p.first_block, p.last_block, batch);
    const double rest = 1.0 - lane.share;
    const double busy_others = rest > 1e-9 ? std::min(1.0, mps_busy_[lane.slice] / rest) : 0.0;
    return MillisF(alone * (1 + options_.mps_interference * busy_others));
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
  std::vector<Lane> lanes_;
  std::vector<size_t> free_lanes_;
  std::vector<int> residents_;           // per slice
  std::vector<TimePoint> active_since_;  // per slice
  std::vector<double> mps_busy_;         // per slice: SM share of its busy MPS lanes
  std::map<InstanceId, Instance> instances_;
  SimResult result_;
};

}  // namespace

SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options) {
  return Engine(slices, functions, arrivals, scheduler, options).Run();
}

}  // namespace fluidfaas::sim
