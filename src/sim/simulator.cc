#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <random>
#include <variant>

#include "common/clock.h"
#include "policy/answer_checker.h"
#include "policy/cold_start.h"

namespace fluidfaas::sim {
namespace {

using policy::Decision;
using policy::InstanceId;
using policy::Reason;

class Engine {
 public:
  Engine(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
         const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options)
      : slices_(slices),
        functions_(functions),
        arrivals_(arrivals),
        scheduler_(scheduler),
        options_(options),
        checker_(slices),
        residents_(slices.size(), 0),
        active_since_(slices.size()),
        mps_busy_(slices.size(), 0.0),
        taken_(slices.size(), false),
        load_rng_(options.seed * 4 + 1),
        stage_rng_(options.seed * 4 + 2),
        worker_rng_(options.seed * 4 + 3),
        noise_rng_(options.seed * 4 + 4) {
    for (size_t s = 0; s < slices.size(); ++s) lanes_.push_back(Lane{s});
    result_.slice_busy.assign(slices.size(), Duration{0});
    result_.slice_active.assign(slices.size(), Duration{0});
    result_.slice_timeline.resize(slices.size());
    result_.timeline_bucket = options.timeline_bucket;
    result_.requests.resize(arrivals.size());
    if (options.exec_noise_cv > 0) {
      const double sigma2 = std::log(1 + options.exec_noise_cv * options.exec_noise_cv);
      noise_ = std::lognormal_distribution<double>(-sigma2 / 2, std::sqrt(sigma2));
    }
  }

  SimResult Run() {
    const TimePoint end = (arrivals_.empty() ? TimePoint{} : arrivals_.back().at) + options_.drain;
    if (!arrivals_.empty()) clock_.ScheduleAt(arrivals_.front().at, [this] { Arrive(0); });
    // One pending tick at a time (like arrivals): the event queue stays small however long the run.
    if (TimePoint{} + options_.tick <= end) clock_.ScheduleAt(TimePoint{} + options_.tick, [this, end] { Tick(end); });
    if (options_.take.every > Duration{0} && !slices_.empty()) ScheduleTake(end);
    result_.events = static_cast<int64_t>(clock_.RunUntilIdle());
    result_.horizon = std::max(end, clock_.Now()) - TimePoint{};
    result_.arrival_span = arrivals_.empty() ? Duration{0} : arrivals_.back().at - TimePoint{};
    for (size_t s = 0; s < slices_.size(); ++s) {
      if (residents_[s] > 0) result_.slice_active[s] += clock_.Now() - active_since_[s];
    }
    if (!checker_.Finish().ok()) Report(checker_.status().message());
    if (Status inv = scheduler_.Invariants(); !inv.ok()) Report(inv.message());
    return std::move(result_);
  }

 private:
  struct Task {
    uint64_t request;
    InstanceId instance;
    size_t stage;
    TimePoint enqueued;
    uint64_t generation;  // of the instance's placement: a task of a lost placement is dropped
  };
  // Where stages run one batch at a time: a slice (lanes [0, slices)) or an MPS share of a GPU.
  struct Lane {
    size_t slice = 0;
    double share = 1.0;  // of the slice's SMs (MPS); 1 for a slice
    bool mps = false;
    bool busy = false;
    InstanceId running = 0;   // whose batch runs now
    uint64_t generation = 0;  // bumped when a lost worker resets the lane: its pending completion is void
    std::deque<Task> queue;
    TimePoint wake_at = TimePoint::max();  // a pending batch-timeout wake-up
  };
  struct Stage {
    policy::StagePlacement place;
    size_t lane = 0;
    int kind = 0;           // in the function's cost tables (the MPS ones for an MPS stage)
    Duration time{0};       // batch 1, alone
    Duration hop{0};        // batch 1, to the next stage (0 after the last)
    Duration after{0};      // batch 1: this stage's hop and every later stage with its hop
    int64_t out_bytes = 0;  // batch 1
  };
  struct Instance {
    uint32_t function = 0;
    std::vector<Stage> stages;
    int max_batch = 1;
    Duration batch_timeout{0};
    bool batch_by_deadline = false;
    bool loaded = false;
    std::vector<uint64_t> waiting;  // routed while loading
    TimePoint load_started;
    uint64_t generation = 0;
  };

  void Report(std::string what) {
    if (result_.errors.size() < 20) result_.errors.push_back(std::move(what));
  }

  // One scheduler call: its decisions are checked against the answer rule and carried out, in order.
  template <typename Call>
  void Apply(Call call) {
    std::vector<Decision>& out = decisions_;  // reused: no call is made while another's decisions are carried
    out.clear();
    call(out);
    for (Decision& d : out) {
      checker_.OnDecision(d);
      std::visit([this](auto& decision) { this->Carry(decision); }, d);
    }
    checker_.EndCall();
    if (checker_.violations() > 0 && !violation_reported_) {
      violation_reported_ = true;
      Report(checker_.status().message());
    }
  }

  policy::RequestEvent EventOf(uint64_t i) const {
    const RequestRecord& r = result_.requests[i];
    return policy::RequestEvent{i, r.function, r.arrival, PlannedDeadline(r)};
  }

  // The deadline the scheduler and the batcher plan for: slo_margin of the SLO before the one hits are judged by.
  TimePoint PlannedDeadline(const RequestRecord& r) const {
    const TimePoint planned = r.deadline - MillisF(options_.slo_margin * functions_[r.function].slo_ms);
    return policy::ColdStartDeadline(r.arrival, planned, !r.cold_wait, options_.cold_start_wait);
  }

  void Arrive(size_t i) {
    const Arrival& a = arrivals_[i];
    RequestRecord& r = result_.requests[i];
    r.function = a.function;
    r.arrival = a.at;
    r.deadline = a.at + MillisF(functions_[a.function].slo_ms);
    if (options_.cold_start_wait > Duration{0}) {
      r.cold_wait = std::none_of(instances_.begin(), instances_.end(), [&](const auto& entry) {
        return entry.second.function == a.function && entry.second.loaded;
      });
    }
    arrived_ = i + 1;
    const policy::RequestEvent event = EventOf(i);
    checker_.OnRequest(event);
    Apply([&](auto& out) { scheduler_.OnRequest(event, clock_.Now(), out); });
    // One pending arrival event at a time keeps the event queue small on long traces.
    if (i + 1 < arrivals_.size()) clock_.ScheduleAt(arrivals_[i + 1].at, [this, i] { Arrive(i + 1); });
  }

  void Tick(TimePoint end) {
    if (clock_.Now() + options_.tick <= end) clock_.ScheduleAfter(options_.tick, [this, end] { Tick(end); });
    if (options_.faults.worker > 0) {
      const double p = 1 - std::exp(-options_.faults.worker * ToSeconds(options_.tick));
      for (size_t s = 0; s < slices_.size(); ++s) {
        if (residents_[s] > 0 && !taken_[s] && std::uniform_real_distribution<double>()(worker_rng_) < p) {
          ++result_.workers_lost;
          LoseSlice(s, Reason::kWorkerLost, "the worker process died");
        }
      }
    }
    Apply([this](auto& out) { scheduler_.OnTick(clock_.Now(), out); });
    if (Status inv = scheduler_.Invariants(); !inv.ok() && !invariant_reported_) {
      invariant_reported_ = true;
      Report(inv.message());
    }
  }

  void ScheduleTake(TimePoint end) {
    const double mean_s = ToSeconds(options_.take.every);
    const TimePoint at = clock_.Now() + SecondsF(std::exponential_distribution<double>(1.0 / mean_s)(worker_rng_));
    if (at > end) return;
    clock_.ScheduleAt(at, [this, end] {
      std::vector<size_t> candidates;
      for (size_t s = 0; s < slices_.size(); ++s) {
        if (!taken_[s]) candidates.push_back(s);
      }
      if (!candidates.empty()) {
        const size_t s = candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(worker_rng_)];
        ++result_.slices_taken;
        taken_[s] = true;
        LoseSlice(s, Reason::kSliceTaken, "another tenant took the slice");
        clock_.ScheduleAfter(options_.take.hold, [this, s] {
          taken_[s] = false;
          Apply([&](auto& out) { scheduler_.OnSliceFreed(s, clock_.Now(), out); });
        });
      }
      ScheduleTake(end);
    });
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
        if (st.slice >= slices_.size()) {
          why = "slice out of range";
        } else if (taken_[st.slice]) {
          why = "slice " + slices_[st.slice].id + " is taken by another tenant";
        }
        if (st.mps_share >= 0 && functions_[d.function].mps == nullptr) why = "MPS stage without MPS costs";
      }
    }
    if (why.empty()) return true;
    Report("launch of instance " + std::to_string(d.instance) + ": " + why);
    return false;
  }

  void Carry(const policy::LaunchDecision& d) {
    if (!CheckLaunch(d)) return;
    ++result_.launches;
    if (d.stages.size() > 1) ++result_.pipelines;
    Instance& inst = instances_[d.instance];
    inst.function = d.function;
    inst.max_batch = d.max_batch;
    inst.batch_timeout = d.batch_timeout;
    inst.batch_by_deadline = d.batch_by_deadline;
    inst.loaded = false;
    inst.load_started = clock_.Now();
    inst.generation = ++generations_;
    const SimFunction& f = functions_[d.function];
    for (size_t s = 0; s < d.stages.size(); ++s) {
      Stage st;
      st.place = d.stages[s];
      SetResident(st.place.slice, +1);
      const auto& p = st.place;
      if (p.mps_share >= 0) {
        const double share =
            static_cast<double>(f.mps->one().kinds()[p.mps_share].profile->sms) / slices_[p.slice].kind.gpu->sms;
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
    for (size_t s = inst.stages.size() - 1; s-- > 0;) {
      inst.stages[s].after = inst.stages[s].hop + inst.stages[s + 1].time + inst.stages[s + 1].after;
    }
    // The load starts once the memory it takes over is released.
    TimePoint start = clock_.Now();
    for (InstanceId prior : d.after_release) {
      if (auto it = released_at_.find(prior); it != released_at_.end()) start = std::max(start, it->second);
    }
    const bool fail =
        options_.faults.load > 0 && std::uniform_real_distribution<double>()(load_rng_) < options_.faults.load;
    clock_.ScheduleAt(start + d.expected_load,
                      [this, id = d.instance, gen = inst.generation, fail] { Loaded(id, gen, fail); });
  }

  void Loaded(InstanceId id, uint64_t generation, bool fail) {
    auto it = instances_.find(id);
    if (it == instances_.end() || it->second.generation != generation) return;  // lost while loading
    Instance& inst = it->second;
    std::vector<uint64_t> waiting;
    waiting.swap(inst.waiting);
    for (uint64_t req : waiting) {
      result_.requests[req].load += clock_.Now() - std::max(inst.load_started, result_.requests[req].arrival);
    }
    if (fail) {
      ++result_.load_failures;
      std::vector<policy::RequestEvent> stranded;
      for (uint64_t req : waiting) {
        result_.requests[req].instance = 0;
        stranded.push_back(EventOf(req));
      }
      const policy::LoadFinished event{id, false, "injected load failure", stranded};
      checker_.OnLoadFinished(event);
      Apply([&](auto& out) { scheduler_.OnLoadFinished(event, clock_.Now(), out); });
      return;
    }
    inst.loaded = true;
    const policy::LoadFinished event{id, true, {}, {}};
    checker_.OnLoadFinished(event);
    Apply([&](auto& out) { scheduler_.OnLoadFinished(event, clock_.Now(), out); });
    for (uint64_t req : waiting) {
      if (result_.requests[req].instance == id) Enqueue(req, id, 0);
    }
  }

  void Carry(const policy::RouteDecision& d) {
    RequestRecord& r = result_.requests[d.request];
    auto it = instances_.find(d.instance);
    if (it == instances_.end() || it->second.stages.empty()) {
      Report("request " + std::to_string(d.request) + " routed to unknown or unplaced instance " +
             std::to_string(d.instance));
      End(d.request, Outcome::kFailed, Reason::kNoCapacity, "routed nowhere");
      return;
    }
    r.instance = d.instance;
    ++r.routes;
    if (!it->second.loaded) {
      it->second.waiting.push_back(d.request);
      return;
    }
    Enqueue(d.request, d.instance, 0);
  }

  void End(uint64_t req, Outcome outcome, Reason code, const std::string& detail) {
    RequestRecord& r = result_.requests[req];
    r.outcome = outcome;
    r.code = code;
    r.finished = clock_.Now();
    r.instance = 0;
    EndCount& c = result_.ends[{r.function, outcome, code}];
    if (c.count++ == 0) c.example = detail;
  }

  void Carry(const policy::RejectDecision& d) { End(d.request, Outcome::kRejected, d.code, d.detail); }
  void Carry(const policy::FailDecision& d) { End(d.request, Outcome::kFailed, d.code, d.detail); }
  void Carry(const policy::EvictDecision& d) {
    ++result_.evictions;
    auto it = instances_.find(d.instance);
    if (it != instances_.end()) Unplace(d.instance, it->second);
  }
  void Carry(const policy::StateDecision&) {}
  void Carry(const policy::MigrateDecision&) { ++result_.migrations; }
  void Carry(const policy::RetireDecision& d) {
    auto it = instances_.find(d.instance);
    if (it == instances_.end()) return;
    Unplace(d.instance, it->second);
    instances_.erase(it);
  }

  // The instance leaves its slices; each releases its memory release_delay later, and the scheduler hears it.
  void Unplace(InstanceId id, Instance& inst) {
    const TimePoint done = clock_.Now() + options_.release_delay;
    for (const Stage& st : inst.stages) {
      SetResident(st.place.slice, -1);
      // An MPS lane is the instance's own; it goes back now (the scheduler only evicts or retires idle
      // instances, and a lost one's lane was reset).
      if (lanes_[st.lane].mps) free_lanes_.push_back(st.lane);
      clock_.ScheduleAt(done, [this, id, slice = st.place.slice] {
        if (auto at = released_at_.find(id); at != released_at_.end() && at->second <= clock_.Now())
          released_at_.erase(at);
        const policy::Released event{id, slice};
        checker_.OnReleased(event);
        Apply([&](auto& out) { scheduler_.OnReleased(event, clock_.Now(), out); });
      });
    }
    released_at_[id] = done;
    inst.stages.clear();
    inst.loaded = false;
    inst.generation = ++generations_;  // whatever is still in flight for the old placement is void
  }

  // The worker of `slice` is gone (died, or the slice was taken): every instance with a stage there loses its
  // requests in flight, which go back to the scheduler; lanes running their batches stop.
  void LoseSlice(size_t slice, Reason reason, const char* detail) {
    std::vector<InstanceId> lost;
    for (auto& [id, inst] : instances_) {
      if (std::any_of(inst.stages.begin(), inst.stages.end(),
                      [slice](const Stage& st) { return st.place.slice == slice; })) {
        lost.push_back(id);
      }
    }
    std::vector<policy::RequestEvent> stranded;
    for (uint64_t i = 0; i < arrived_; ++i) {
      RequestRecord& r = result_.requests[i];
      if (r.outcome != Outcome::kPending || r.instance == 0) continue;
      if (std::find(lost.begin(), lost.end(), r.instance) == lost.end()) continue;
      r.instance = 0;
      stranded.push_back(EventOf(i));
    }
    std::vector<size_t> reset;
    for (size_t l = 0; l < lanes_.size(); ++l) {
      Lane& lane = lanes_[l];
      const bool mine = lane.slice == slice && (!lane.mps || lane.busy || !lane.queue.empty());
      const bool running_lost = lane.busy && std::find(lost.begin(), lost.end(), lane.running) != lost.end();
      std::erase_if(lane.queue,
                    [&](const Task& t) { return std::find(lost.begin(), lost.end(), t.instance) != lost.end(); });
      if (!mine && !running_lost) continue;
      if (lane.busy && lane.mps) mps_busy_[lane.slice] = std::max(0.0, mps_busy_[lane.slice] - lane.share);
      lane.busy = false;
      ++lane.generation;
      lane.wake_at = TimePoint::max();
      reset.push_back(l);
    }
    for (InstanceId id : lost) {
      Instance& inst = instances_.at(id);
      inst.waiting.clear();
      inst.loaded = false;
      inst.generation = ++generations_;
    }
    const policy::SliceLost event{slice, reason, detail, stranded};
    checker_.OnSliceLost(event);
    Apply([&](auto& out) { scheduler_.OnSliceLost(event, clock_.Now(), out); });
    for (size_t l : reset) StartNext(l);
  }

  void Enqueue(uint64_t req, InstanceId id, size_t stage) {
    const Instance& inst = instances_.at(id);
    const size_t lane = inst.stages[stage].lane;
    lanes_[lane].queue.push_back(Task{req, id, stage, clock_.Now(), inst.generation});
    StartNext(lane);
  }

  const Instance* Current(const Task& t) const {
    auto it = instances_.find(t.instance);
    return it == instances_.end() || it->second.generation != t.generation ? nullptr : &it->second;
  }

  void StartNext(size_t lane_index) {
    Lane& lane = lanes_[lane_index];
    while (!lane.queue.empty() && Current(lane.queue.front()) == nullptr) lane.queue.pop_front();  // handed back
    if (lane.busy || lane.queue.empty()) return;
    const Task front = lane.queue.front();
    const Instance& inst = *Current(front);
    const Stage& st = inst.stages[front.stage];
    // The batch: the requests of the same instance and stage queued back to back at the front.
    size_t batch = 1;
    if (inst.max_batch > 1) {
      while (batch < lane.queue.size() && batch < static_cast<size_t>(inst.max_batch) &&
             lane.queue[batch].instance == front.instance && lane.queue[batch].stage == front.stage &&
             lane.queue[batch].generation == front.generation) {
        ++batch;
      }
      if (inst.batch_by_deadline) batch = DeadlineCut(lane, inst, st, batch);
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
    const Duration hop = batch == 1
                             ? st.hop
                             : (front.stage + 1 < inst.stages.size()
                                    ? MillisF(options_.transfer.HopMs(st.out_bytes * static_cast<int64_t>(batch)))
                                    : Duration{0});
    const bool fail =
        options_.faults.stage > 0 && std::uniform_real_distribution<double>()(stage_rng_) < options_.faults.stage;
    lane.busy = true;
    lane.running = front.instance;
    const Duration busy =
        lane.mps ? Duration(static_cast<int64_t>(static_cast<double>(run.count()) * lane.share)) : run;
    result_.slice_busy[lane.slice] += busy;
    AddToTimeline(lane.slice, clock_.Now(), run, lane.mps ? lane.share : 1.0);
    if (lane.mps) mps_busy_[lane.slice] += lane.share;
    std::vector<Task> tasks(lane.queue.begin(), lane.queue.begin() + static_cast<std::ptrdiff_t>(batch));
    lane.queue.erase(lane.queue.begin(), lane.queue.begin() + static_cast<std::ptrdiff_t>(batch));
    const TimePoint started = clock_.Now();
    for (const Task& t : tasks) Started(t, run);
    clock_.ScheduleAfter(run, [this, lane_index, gen = lane.generation, tasks = std::move(tasks), hop, started, fail] {
      if (lanes_[lane_index].generation != gen) return;  // the worker was lost: the batch's requests went back
      Idle(lane_index);
      BatchDone(tasks, hop, started, fail);
    });
  }

  // The longest run of the `batch` requests at the front of `lane` that, run together now, still leaves each of
  // them its deadline (at least one): a batcher that never makes a request late by adding others to its batch.
  size_t DeadlineCut(const Lane& lane, const Instance& inst, const Stage& st, size_t batch) const {
    const SimFunction& f = functions_[inst.function];
    TimePoint earliest = TimePoint::max();
    size_t fits = 1;
    for (size_t n = 1; n <= batch; ++n) {
      earliest = std::min(earliest, PlannedDeadline(result_.requests[lane.queue[n - 1].request]) - st.after);
      if (n == 1) continue;
      const Duration run =
          MillisF(f.batched->ComputeMs(st.kind, st.place.first_block, st.place.last_block, static_cast<int>(n)));
      if (clock_.Now() + run > earliest) break;
      fits = n;
    }
    return fits;
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
    l.running = 0;
    if (l.mps) mps_busy_[l.slice] = std::max(0.0, mps_busy_[l.slice] - l.share);
    StartNext(lane_index);
  }

  // A batch ended at a stage: the scheduler hears what ran (or that it failed); then on to the next stage after
  // the hop, or the requests are complete.
  void BatchDone(const std::vector<Task>& tasks, Duration hop, TimePoint started, bool failed) {
    const Task& first = tasks.front();
    const Instance* inst = Current(first);
    if (inst == nullptr) return;                       // lost meanwhile: its requests were handed back
    std::vector<policy::RequestId>& ids = batch_ids_;  // reused, like decisions_
    ids.clear();
    for (const Task& t : tasks) ids.push_back(t.request);
    const InstanceId id = first.instance;
    if (failed) {
      ++result_.stage_failures;
      for (const Task& t : tasks) result_.requests[t.request].instance = 0;
      const policy::StageFailed event{id, first.stage, ++batches_, ids, "injected stage failure"};
      checker_.OnStageFailed(event);
      Apply([&](auto& out) { scheduler_.OnStageFailed(event, clock_.Now(), out); });
      return;
    }
    const bool last = first.stage + 1 == inst->stages.size();
    if (last) {
      for (const Task& t : tasks) {
        RequestRecord& r = result_.requests[t.request];
        r.finished = clock_.Now();
        r.outcome = r.finished <= r.deadline ? Outcome::kHit : Outcome::kMiss;
      }
    }
    const policy::StageFinished event{id, first.stage, ++batches_, last, ids, started, clock_.Now()};
    checker_.OnStageFinished(event);
    Apply([&](auto& out) { scheduler_.OnStageFinished(event, clock_.Now(), out); });
    if (last) return;
    for (const Task& t : tasks) {
      result_.requests[t.request].transfer += hop;
      clock_.ScheduleAfter(hop, [this, t] {
        if (Current(t) != nullptr && result_.requests[t.request].instance == t.instance)
          Enqueue(t.request, t.instance, t.stage + 1);
      });
    }
  }

  Duration RunTime(const Instance& inst, const Stage& st, int batch, const Lane& lane) {
    const SimFunction& f = functions_[inst.function];
    const auto& p = st.place;
    const double noise = options_.exec_noise_cv > 0 ? noise_(noise_rng_) : 1.0;
    if (!lane.mps) {
      const Duration alone =
          batch == 1 ? st.time : MillisF(f.batched->ComputeMs(st.kind, p.first_block, p.last_block, batch));
      return noise == 1.0 ? alone : Duration(static_cast<int64_t>(static_cast<double>(alone.count()) * noise));
    }
    const double alone = f.mps->ComputeMs(st.kind, p.first_block, p.last_block, batch);
    const double rest = 1.0 - lane.share;
    const double busy_others = rest > 1e-9 ? std::min(1.0, mps_busy_[lane.slice] / rest) : 0.0;
    return MillisF(alone * (1 + options_.mps_interference * busy_others) * noise);
  }

  const std::vector<policy::ClusterSlice>& slices_;
  const std::vector<SimFunction>& functions_;
  const std::vector<Arrival>& arrivals_;
  policy::Scheduler& scheduler_;
  const SimOptions& options_;
  ManualClock clock_;
  policy::AnswerChecker checker_;
  std::vector<Lane> lanes_;
  std::vector<size_t> free_lanes_;
  std::vector<int> residents_;           // per slice
  std::vector<TimePoint> active_since_;  // per slice
  std::vector<double> mps_busy_;         // per slice: SM share of its busy MPS lanes
  std::vector<bool> taken_;              // per slice: held by another tenant
  std::map<InstanceId, Instance> instances_;
  std::map<InstanceId, TimePoint> released_at_;  // when an evicted or retired instance's memory is free
  uint64_t generations_ = 0;
  uint64_t batches_ = 0;
  uint64_t arrived_ = 0;
  std::mt19937_64 load_rng_, stage_rng_, worker_rng_, noise_rng_;
  std::lognormal_distribution<double> noise_;
  std::vector<Decision> decisions_;
  std::vector<policy::RequestId> batch_ids_;
  bool violation_reported_ = false;
  bool invariant_reported_ = false;
  SimResult result_;
};

}  // namespace

SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options) {
  return Engine(slices, functions, arrivals, scheduler, options).Run();
}

}  // namespace fluidfaas::sim
