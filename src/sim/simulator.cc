#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <random>
#include <unordered_map>
#include <variant>

#include "carrier/carrier.h"
#include "common/clock.h"
#include "policy/cluster_router.h"
#include "policy/cold_start.h"
#include "policy/lifecycle.h"

namespace fluidfaas::sim {
namespace {

using policy::Reason;

// The simulated node: the carrier's mechanism (loads, lanes that run batches, hops, releases, faults) and the
// host of its requests' records.
class Engine final : public carrier::Mechanism, public carrier::Host {
 public:
  // `records`: the number of arrivals whose records are kept, indexed by arrival (a cluster's engines); otherwise
  // they are kept as they come when options.keep_records, or only while open.
  Engine(ManualClock& clock, const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
         policy::Scheduler& scheduler, const SimOptions& options, size_t records = 0)
      : clock_(clock),
        slices_(slices),
        functions_(functions),
        keep_(options.keep_records || records > 0),
        scheduler_(scheduler),
        options_(options),
        carrier_(slices, scheduler, *this, *this, options.transfer),
        residents_(slices.size(), 0),
        active_since_(slices.size()),
        mps_busy_(slices.size(), 0.0),
        taken_(slices.size(), false),
        load_rng_(options.seed * 4 + 1),
        stage_rng_(options.seed * 4 + 2),
        worker_rng_(options.seed * 4 + 3),
        noise_rng_(options.seed * 4 + 4) {
    for (size_t s = 0; s < slices.size(); ++s) lanes_.push_back(Lane{s});
    for (size_t f = 0; f < functions.size(); ++f) {
      carrier_.AddFunction(static_cast<policy::FunctionId>(f),
                           carrier::CarriedFunction{functions[f].costs, functions[f].batched, functions[f].mps});
    }
    result_.slice_busy.assign(slices.size(), Duration{0});
    result_.slice_active.assign(slices.size(), Duration{0});
    result_.slice_timeline.resize(slices.size());
    result_.timeline_bucket = options.timeline_bucket;
    result_.requests.resize(records);
    result_.totals.functions.resize(functions.size());
    if (options.exec_noise_cv > 0) {
      const double sigma2 = std::log(1 + options.exec_noise_cv * options.exec_noise_cv);
      noise_ = std::lognormal_distribution<double>(-sigma2 / 2, std::sqrt(sigma2));
    }
  }

  // A cluster's engine: ticks and slice taking until `last_arrival` plus the drain; the router hands arrivals over
  // (Admit).
  void Start(TimePoint last_arrival) {
    last_at_ = last_arrival;
    end_ = last_arrival + options_.drain;
    StartTimers();
  }

  // Arrival `i`, now (a cluster's router sent it here).
  void Admit(size_t i, const Arrival& a) { Arrive(i, a); }
  const RequestRecord& record(size_t i) const { return keep_ ? result_.requests[i] : live_.at(i); }
  // The records of the requests still open here (without kept records: what a cluster counts as never ended).
  std::vector<RequestRecord> OpenRecords() const {
    std::vector<RequestRecord> open;
    for (const auto& [id, r] : live_) open.push_back(r);
    return open;
  }

  // Called once per request that ends here (completed, rejected or failed).
  std::function<void(size_t)> on_end;

  // A node on its own: its arrivals come from `arrivals`, one pending at a time, so a trace of any length takes
  // no more memory than its open requests.
  SimResult Run(const ArrivalStream& arrivals) {
    stream_ = &arrivals;
    Pull();
    StartTimers();
    ScheduleArrival();
    return Finish(static_cast<int64_t>(clock_.RunUntilIdle()));
  }

  SimResult Finish(int64_t events) {
    // Requests that never ended count as failed in the totals (Summarize); their records stay pending.
    const auto pending = [&](const RequestRecord& r) {
      result_.totals.Add(r);
      if (options_.on_record && !on_end) options_.on_record(r);
    };
    if (keep_) {
      for (const RequestRecord& r : result_.requests) {
        if (r.outcome == Outcome::kPending && r.function < functions_.size()) pending(r);
      }
    } else {
      for (const auto& [id, r] : live_) pending(r);
    }
    result_.events = events;
    result_.horizon = std::max(end_, clock_.Now()) - TimePoint{};
    result_.arrival_span = last_at_ - TimePoint{};
    for (size_t s = 0; s < slices_.size(); ++s) {
      if (residents_[s] > 0) result_.slice_active[s] += clock_.Now() - active_since_[s];
    }
    const carrier::Totals& totals = carrier_.totals();
    result_.launches = static_cast<int64_t>(totals.launches.load());
    result_.pipelines = static_cast<int64_t>(totals.pipelines.load());
    result_.migrations = static_cast<int64_t>(totals.migrations.load());
    result_.evictions = static_cast<int64_t>(totals.evictions.load());
    if (!carrier_.checker().Finish().ok()) Report(carrier_.checker().status().message());
    if (Status inv = scheduler_.Invariants(); !inv.ok()) Report(inv.message());
    return std::move(result_);
  }

  // The node as its report to a gateway says it (carrier::Carrier::MakeReport, as the daemon reports it); `kinds`
  // indexes the free slices' kinds.
  policy::NodeView View(const std::vector<policy::SliceKind>& kinds) const {
    carrier::Carrier::Report report = carrier_.MakeReport(clock_.Now());
    policy::NodeView view;
    view.functions = std::move(report.functions);
    for (const auto& [slice, free] : report.free) {
      const auto k = std::find(kinds.begin(), kinds.end(), slices_[slice].kind);
      if (k != kinds.end()) view.free.push_back(policy::NodeFreeSlice{static_cast<int>(k - kinds.begin()), free});
    }
    return view;
  }

  // ---- carrier::Mechanism
  Status Launch(const policy::LaunchDecision& d) override {
    if (std::string why = CheckLaunch(d); !why.empty()) {
      Report("launch of instance " + std::to_string(d.instance) + ": " + why);
      return Status::InvalidArgument(why);
    }
    NodeInstance& inst = instances_[d.instance];
    inst = NodeInstance{};
    inst.function = d.function;
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
    const bool fail =
        options_.faults.load > 0 && std::uniform_real_distribution<double>()(load_rng_) < options_.faults.load;
    clock_.ScheduleAfter(d.expected_load,
                         [this, id = d.instance, gen = inst.generation, fail] { Loaded(id, gen, fail); });
    return Status::Ok();
  }

  Status Submit(policy::InstanceId instance, uint64_t batch, std::span<const policy::RequestId> requests) override {
    auto it = instances_.find(instance);
    if (it == instances_.end()) return Status::NotFound("no instance " + std::to_string(instance));
    Enqueue(Task{
        instance, it->second.generation, batch, {requests.begin(), requests.end()}, 0, clock_.Now(), {}, Duration{0}});
    return Status::Ok();
  }

  Status Evict(policy::InstanceId instance, bool /*keep_warm*/) override {
    auto it = instances_.find(instance);
    if (it == instances_.end()) return Status::NotFound("no instance " + std::to_string(instance));
    Unplace(instance, it->second, /*lost_slice=*/std::nullopt);
    instances_.erase(it);
    return Status::Ok();
  }

  // ---- carrier::Host
  void Ended(policy::RequestId id, carrier::Ending ending, Reason code, const std::string& detail) override {
    RequestRecord& r = Rec(id);
    if (const carrier::OpenRequest* open = carrier_.Find(id)) r.routes = open->routes;
    r.outcome = ending == carrier::Ending::kRejected ? Outcome::kRejected : Outcome::kFailed;
    r.code = code;
    r.finished = clock_.Now();
    r.instance = 0;
    EndCount& c = result_.ends[{r.function, r.outcome, code}];
    if (c.count++ == 0) c.example = detail;
    Close(id);
  }

  void Later(std::function<void(TimePoint)> task) override {
    clock_.ScheduleAfter(Duration{0}, [this, task = std::move(task)] { task(clock_.Now()); });
  }

  void WakeAt(TimePoint at) override {
    clock_.ScheduleAt(at, [this] { carrier_.DispatchDue(clock_.Now()); });
  }

 private:
  // A batch on its way through an instance's stages.
  struct Task {
    policy::InstanceId instance = 0;
    uint64_t generation = 0;  // of the instance's placement: a task of a lost placement is dropped
    uint64_t batch = 0;
    std::vector<policy::RequestId> requests;
    size_t stage = 0;
    TimePoint enqueued;
    std::vector<carrier::StageRun> runs;  // the stages behind it
    Duration hops{0};
  };
  // Where stages run one batch at a time: a slice (lanes [0, slices)) or an MPS share of a GPU.
  struct Lane {
    size_t slice = 0;
    double share = 1.0;  // of the slice's SMs (MPS); 1 for a slice
    bool mps = false;
    bool busy = false;
    policy::InstanceId running = 0;  // whose batch runs now
    uint64_t generation = 0;         // bumped when a lost worker resets the lane: its pending completion is void
    std::deque<Task> queue;
  };
  struct Stage {
    policy::StagePlacement place;
    size_t lane = 0;
    int kind = 0;           // in the function's cost tables (the MPS ones for an MPS stage)
    Duration time{0};       // batch 1, alone
    Duration hop{0};        // batch 1, to the next stage (0 after the last)
    int64_t out_bytes = 0;  // batch 1
  };
  struct NodeInstance {
    uint32_t function = 0;
    std::vector<Stage> stages;
    TimePoint load_started;
    uint64_t generation = 0;
  };

  void Report(std::string what) {
    if (result_.errors.size() < 20) result_.errors.push_back(std::move(what));
  }

  void ReportViolations() {
    if (carrier_.checker().violations() > 0 && !violation_reported_) {
      violation_reported_ = true;
      Report(carrier_.checker().status().message());
    }
  }

  // The deadline the scheduler and the batcher plan for: slo_margin of the SLO before the one hits are judged by.
  TimePoint PlannedDeadline(const RequestRecord& r) const {
    const TimePoint planned = r.deadline - MillisF(options_.slo_margin * functions_[r.function].slo_ms);
    return policy::ColdStartDeadline(r.arrival, planned, !r.cold_wait, options_.cold_start_wait);
  }

  // The record of request `id`: kept by arrival, or while open.
  RequestRecord& Rec(size_t id) {
    if (!keep_) return live_[id];
    if (id >= result_.requests.size()) result_.requests.resize(id + 1);
    return result_.requests[id];
  }

  // Request `id` ended: counted in the totals (and given to on_record, on a node alone), its record dropped unless
  // kept. A cluster's engine leaves on_record to the cluster, which knows when a request has ended for good.
  void Close(size_t id) {
    if (on_end) on_end(id);
    const RequestRecord& r = Rec(id);
    result_.totals.Add(r);
    if (options_.on_record && !on_end) options_.on_record(r);
    if (!keep_) live_.erase(id);
  }

  // The next arrival from the stream (or the end: the run then lasts until the last arrival plus the drain).
  void Pull() {
    next_ = (*stream_)();
    if (next_) {
      last_at_ = next_->at;
    } else {
      end_ = last_at_ + options_.drain;
    }
    if (deferred_take_) ScheduleTakeAt(*deferred_take_);
  }

  // One pending arrival event at a time keeps the event queue small on long traces.
  void ScheduleArrival() {
    if (!next_) return;
    clock_.ScheduleAt(next_->at, [this] {
      const Arrival a = *next_;
      const size_t id = next_id_++;
      Pull();
      Arrive(id, a);
      ScheduleArrival();
    });
  }

  void StartTimers() {
    // One pending tick at a time (like arrivals): the event queue stays small however long the run.
    if (TimePoint{} + options_.tick <= end_) clock_.ScheduleAt(TimePoint{} + options_.tick, [this] { Tick(); });
    if (options_.take.every > Duration{0} && !slices_.empty()) ScheduleTake();
  }

  void Arrive(size_t i, const Arrival& a) {
    RequestRecord& r = Rec(i);
    r.function = a.function;
    r.arrival = a.at;
    r.deadline = a.at + MillisF(functions_[a.function].slo_ms);
    if (options_.cold_start_wait > Duration{0}) r.cold_wait = !carrier_.Warm(a.function);
    carrier_.Arrive(policy::RequestEvent{i, r.function, r.arrival, PlannedDeadline(r)}, clock_.Now());
    ReportViolations();
  }

  // The run's end is the last arrival plus the drain: while arrivals remain it is not known yet (and lies past
  // any tick that asks).
  void Tick() {
    if (clock_.Now() + options_.tick <= end_) clock_.ScheduleAfter(options_.tick, [this] { Tick(); });
    if (options_.faults.worker > 0) {
      const double p = 1 - std::exp(-options_.faults.worker * ToSeconds(options_.tick));
      for (size_t s = 0; s < slices_.size(); ++s) {
        if (residents_[s] > 0 && !taken_[s] && std::uniform_real_distribution<double>()(worker_rng_) < p) {
          ++result_.workers_lost;
          LoseSlice(s, Reason::kWorkerLost, "the worker process died");
        }
      }
    }
    carrier_.Tick(clock_.Now());
    ReportViolations();
    if (Status inv = scheduler_.Invariants(); !inv.ok() && !invariant_reported_) {
      invariant_reported_ = true;
      Report(inv.message());
    }
  }

  void ScheduleTake() {
    const double mean_s = ToSeconds(options_.take.every);
    ScheduleTakeAt(clock_.Now() + SecondsF(std::exponential_distribution<double>(1.0 / mean_s)(worker_rng_)));
  }

  // The next take at `at`, if the run lasts that long: while arrivals may still extend the run past the last one
  // seen plus the drain, a later take waits (deferred_take_) until they tell.
  void ScheduleTakeAt(TimePoint at) {
    deferred_take_.reset();
    if (at > end_) return;
    if (end_ == TimePoint::max() && at > last_at_ + options_.drain) {
      deferred_take_ = at;
      return;
    }
    clock_.ScheduleAt(at, [this] {
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
          carrier_.SliceFreed(s, clock_.Now());
        });
      }
      ScheduleTake();
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

  // Why the node cannot carry out a launch (a scheduler bug), or empty.
  std::string CheckLaunch(const policy::LaunchDecision& d) const {
    if (d.function >= functions_.size() || d.stages.empty()) return "bad function or no stages";
    if (d.max_batch < 1 || (d.max_batch > 1 && (functions_[d.function].batched == nullptr ||
                                                d.max_batch > functions_[d.function].batched->max_batch()))) {
      return "batch " + std::to_string(d.max_batch) + " has no cost table";
    }
    for (const auto& st : d.stages) {
      if (st.slice >= slices_.size()) return "slice out of range";
      if (taken_[st.slice]) return "slice " + slices_[st.slice].id + " is taken by another tenant";
      if (st.mps_share >= 0 && functions_[d.function].mps == nullptr) return "MPS stage without MPS costs";
    }
    return {};
  }

  void Loaded(policy::InstanceId id, uint64_t generation, bool fail) {
    auto it = instances_.find(id);
    if (it == instances_.end() || it->second.generation != generation) return;  // gone while loading
    // The requests routed while it loaded waited for it.
    if (const auto c = carrier_.instances().find(id); c != carrier_.instances().end()) {
      for (policy::RequestId req : c->second.queue) {
        const carrier::OpenRequest* open = carrier_.Find(req);
        const TimePoint since = std::max(it->second.load_started, open != nullptr ? open->routed : clock_.Now());
        Rec(req).load += clock_.Now() - std::min(since, clock_.Now());
      }
    }
    if (fail) ++result_.load_failures;
    carrier_.Loaded(id, !fail, fail ? "injected load failure" : "", clock_.Now());
    ReportViolations();
  }

  // The instance leaves its slices; each slice's memory is released release_delay later and the carrier hears it,
  // except a lost slice's (free with its process).
  void Unplace(policy::InstanceId id, const NodeInstance& inst, std::optional<size_t> lost_slice) {
    for (const Stage& st : inst.stages) {
      SetResident(st.place.slice, -1);
      if (lanes_[st.lane].mps) free_lanes_.push_back(st.lane);  // an MPS lane is the instance's own
      if (st.place.slice == lost_slice) continue;
      clock_.ScheduleAfter(options_.release_delay, [this, id, slice = st.place.slice] {
        carrier_.Released(id, slice, clock_.Now());
        ReportViolations();
      });
    }
  }

  // The worker of `slice` is gone (died, or the slice was taken): every instance with a stage there is lost with
  // its batches; lanes running their batches stop; the carrier hands their requests back to the scheduler.
  void LoseSlice(size_t slice, Reason reason, const char* detail) {
    std::vector<policy::InstanceId> lost;
    for (const auto& [id, inst] : instances_) {
      if (std::any_of(inst.stages.begin(), inst.stages.end(),
                      [slice](const Stage& st) { return st.place.slice == slice; })) {
        lost.push_back(id);
      }
    }
    const auto is_lost = [&](policy::InstanceId id) { return std::find(lost.begin(), lost.end(), id) != lost.end(); };
    std::vector<size_t> reset;
    for (size_t l = 0; l < lanes_.size(); ++l) {
      Lane& lane = lanes_[l];
      const bool mine = lane.slice == slice && (!lane.mps || lane.busy || !lane.queue.empty());
      const bool running_lost = lane.busy && is_lost(lane.running);
      std::erase_if(lane.queue, [&](const Task& t) { return is_lost(t.instance); });
      if (!mine && !running_lost) continue;
      if (lane.busy && lane.mps) mps_busy_[lane.slice] = std::max(0.0, mps_busy_[lane.slice] - lane.share);
      lane.busy = false;
      ++lane.generation;
      reset.push_back(l);
    }
    for (policy::InstanceId id : lost) {
      Unplace(id, instances_.at(id), slice);
      instances_.erase(id);
    }
    carrier_.SliceLost(slice, reason, detail, clock_.Now());
    ReportViolations();
    for (size_t l : reset) StartNext(l);
  }

  void Enqueue(Task task) {
    const NodeInstance& inst = instances_.at(task.instance);
    const size_t lane = inst.stages[task.stage].lane;
    task.enqueued = clock_.Now();
    lanes_[lane].queue.push_back(std::move(task));
    StartNext(lane);
  }

  const NodeInstance* Current(const Task& t) const {
    auto it = instances_.find(t.instance);
    return it == instances_.end() || it->second.generation != t.generation ? nullptr : &it->second;
  }

  void StartNext(size_t lane_index) {
    Lane& lane = lanes_[lane_index];
    while (!lane.queue.empty() && Current(lane.queue.front()) == nullptr) lane.queue.pop_front();  // lost
    if (lane.busy || lane.queue.empty()) return;
    Task task = std::move(lane.queue.front());
    lane.queue.pop_front();
    const NodeInstance& inst = *Current(task);
    const Stage& st = inst.stages[task.stage];
    const int batch = static_cast<int>(task.requests.size());
    const Duration run = RunTime(inst, st, batch, lane);
    const bool fail =
        options_.faults.stage > 0 && std::uniform_real_distribution<double>()(stage_rng_) < options_.faults.stage;
    lane.busy = true;
    lane.running = task.instance;
    const Duration busy =
        lane.mps ? Duration(static_cast<int64_t>(static_cast<double>(run.count()) * lane.share)) : run;
    result_.slice_busy[lane.slice] += busy;
    AddToTimeline(lane.slice, clock_.Now(), run, lane.mps ? lane.share : 1.0);
    if (lane.mps) mps_busy_[lane.slice] += lane.share;
    task.runs.push_back(carrier::StageRun{clock_.Now(), clock_.Now() + run});
    clock_.ScheduleAfter(run, [this, lane_index, gen = lane.generation, task = std::move(task), fail]() mutable {
      if (lanes_[lane_index].generation != gen) return;  // the worker was lost: the carrier handed its requests back
      Idle(lane_index);
      StageDone(std::move(task), fail);
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

  void Idle(size_t lane_index) {
    Lane& l = lanes_[lane_index];
    l.busy = false;
    l.running = 0;
    if (l.mps) mps_busy_[l.slice] = std::max(0.0, mps_busy_[l.slice] - l.share);
    StartNext(lane_index);
  }

  // A batch ended at a stage: on to the next stage after the hop, or the carrier hears it completed (or failed).
  void StageDone(Task task, bool failed) {
    const NodeInstance* inst = Current(task);
    if (inst == nullptr) return;  // lost meanwhile: its requests were handed back
    if (failed) {
      ++result_.stage_failures;
      carrier_.BatchFailed(task.instance, task.batch, task.stage, "injected stage failure", clock_.Now());
      ReportViolations();
      return;
    }
    if (task.stage + 1 == inst->stages.size()) {
      carrier_.BatchCompleted(task.instance, task.batch, task.runs, clock_.Now(),
                              [&](std::span<const policy::RequestId> ids) { Complete(task, ids); });
      ReportViolations();
      return;
    }
    const Stage& st = inst->stages[task.stage];
    const size_t n = task.requests.size();
    const Duration hop = n == 1 ? st.hop : MillisF(options_.transfer.HopMs(st.out_bytes * static_cast<int64_t>(n)));
    task.hops += hop;
    ++task.stage;
    clock_.ScheduleAfter(hop, [this, task = std::move(task)]() mutable {
      if (Current(task) != nullptr) Enqueue(std::move(task));
    });
  }

  // The batch's requests completed: judged against their SLO; their time split into load wait, compute, transfer
  // and the rest (queues).
  void Complete(const Task& task, std::span<const policy::RequestId> ids) {
    Duration compute{0};
    for (const carrier::StageRun& run : task.runs) compute += run.finished - run.started;
    for (policy::RequestId id : ids) {
      RequestRecord& r = Rec(id);
      if (const carrier::OpenRequest* open = carrier_.Find(id)) r.routes = open->routes;
      r.finished = clock_.Now();
      r.outcome = r.finished <= r.deadline ? Outcome::kHit : Outcome::kMiss;
      r.instance = task.instance;
      r.compute = compute;
      r.transfer = task.hops;
      r.queue = r.finished - r.arrival - r.load - r.compute - r.transfer;
      Close(id);
    }
  }

  Duration RunTime(const NodeInstance& inst, const Stage& st, int batch, const Lane& lane) {
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

  ManualClock& clock_;
  const std::vector<policy::ClusterSlice>& slices_;
  const std::vector<SimFunction>& functions_;
  const bool keep_;  // records kept (result_.requests), else only the open ones (live_)
  std::unordered_map<size_t, RequestRecord> live_;
  const ArrivalStream* stream_ = nullptr;
  std::optional<Arrival> next_;  // the next arrival, pulled from the stream
  size_t next_id_ = 0;
  TimePoint last_at_{};                     // the last arrival seen
  TimePoint end_ = TimePoint::max();        // the last arrival plus the drain, once known
  std::optional<TimePoint> deferred_take_;  // see ScheduleTakeAt
  policy::Scheduler& scheduler_;
  const SimOptions& options_;
  carrier::Carrier carrier_;
  std::vector<Lane> lanes_;
  std::vector<size_t> free_lanes_;
  std::vector<int> residents_;           // per slice
  std::vector<TimePoint> active_since_;  // per slice
  std::vector<double> mps_busy_;         // per slice: SM share of its busy MPS lanes
  std::vector<bool> taken_;              // per slice: held by another tenant
  std::map<policy::InstanceId, NodeInstance> instances_;
  uint64_t generations_ = 0;
  std::mt19937_64 load_rng_, stage_rng_, worker_rng_, noise_rng_;
  std::lognormal_distribution<double> noise_;
  bool violation_reported_ = false;
  bool invariant_reported_ = false;
  SimResult result_;
};

}  // namespace

// The gateway's bound on the nodes one call is sent to (cluster::GatewayOptions::max_tries' default).
constexpr size_t kMaxTries = 3;
// How often a node looks at its report to publish it when it changed (cluster::ReporterOptions::poll's default).
constexpr Duration kReportPoll = Millis(100);

SimResult SimulateCluster(const std::vector<std::vector<policy::ClusterSlice>>& nodes,
                          const std::vector<SimFunction>& functions, const std::vector<Arrival>& arrivals,
                          std::span<policy::Scheduler* const> schedulers, policy::Routing routing,
                          const SimOptions& options) {
  std::vector<policy::SliceKind> kinds;
  for (const auto& node : nodes) {
    for (const policy::ClusterSlice& s : node) {
      if (std::find(kinds.begin(), kinds.end(), s.kind) == kinds.end()) kinds.push_back(s.kind);
    }
  }
  std::vector<policy::RoutedFunction> routed;
  routed.reserve(functions.size());
  for (const SimFunction& f : functions) routed.push_back(policy::RoutedFunction{f.costs, f.slo_ms});
  const policy::ClusterRouter router(routing, kinds, routed);

  ManualClock clock;
  std::vector<SimOptions> node_options(nodes.size(), options);
  std::vector<std::unique_ptr<Engine>> engines;
  std::vector<int64_t> outstanding(nodes.size(), 0);
  std::vector<policy::NodeView> views(nodes.size());
  // The gateway sees each node as its last report says it: a node publishes its report when it changed, looked at
  // every kReportPoll (cluster/reporter.h), so a view is refreshed when that much older; the outstanding counts are
  // the gateway's own, always current, and each request sent is charged to its node's view until the next report
  // (ClusterRouter::ChargeMs). A node that turned a call away is passed over for that function until its
  // next report (cluster::NodeTable::MarkBusy).
  std::vector<TimePoint> viewed(nodes.size(), TimePoint::min());
  const auto refresh = [&](size_t n) {
    if (viewed[n] != TimePoint::min() && clock.Now() - viewed[n] < kReportPoll) return;
    views[n] = engines[n]->View(kinds);
    viewed[n] = clock.Now();
  };
  const auto mark_busy = [&](size_t n, uint32_t function) {
    for (policy::NodeFunction& f : views[n].functions) {
      if (f.function == function) f.finish_ms = std::max(f.finish_ms, 1e9);
    }
  };
  // With records kept, each request's is the one of the node it was last sent to; without, each request is counted
  // in `finals` when it finally ends (a rejection retried elsewhere is not an end), and what is open is by id only.
  const bool keep = options.keep_records;
  std::vector<size_t> sent_to(keep ? arrivals.size() : 0, 0);
  std::unordered_map<size_t, std::vector<uint32_t>> tried;  // nodes each open request was sent to
  std::unordered_map<size_t, RequestRecord> retrying;       // rejected and sent on: its rejection, should none take it
  RequestTotals finals;
  finals.functions.resize(functions.size());
  std::map<std::tuple<uint32_t, Outcome, policy::Reason>, int64_t> final_ends;
  const auto final_end = [&](const RequestRecord& r) {
    if (options.on_record) options.on_record(r);
    if (keep) return;  // counted from the records at the end
    finals.Add(r);
    if (r.outcome == Outcome::kRejected || r.outcome == Outcome::kFailed) ++final_ends[{r.function, r.outcome, r.code}];
  };
  std::function<void(size_t)> route;
  for (size_t n = 0; n < nodes.size(); ++n) {
    node_options[n].seed = options.seed + 7919 * n;  // each node its own faults and noise
    // Other tenants take a slice of the whole cluster every `take.every`: a node's slices as often as their share.
    size_t total = 0;
    for (const auto& node : nodes) total += node.size();
    if (!nodes[n].empty()) {
      node_options[n].take.every =
          Duration(static_cast<int64_t>(static_cast<double>(options.take.every.count()) * static_cast<double>(total) /
                                        static_cast<double>(nodes[n].size())));
    }
    engines.push_back(std::make_unique<Engine>(clock, nodes[n], functions, *schedulers[n], node_options[n],
                                               keep ? arrivals.size() : 0));
    // As the gateway does: a request turned away before it ran goes to the next node while its SLO allows, at most
    // kMaxTries nodes in all (cluster/gateway.h).
    engines.back()->on_end = [&, n](size_t id) {
      --outstanding[n];
      const RequestRecord& r = engines[n]->record(id);
      if (r.outcome == Outcome::kRejected) {
        mark_busy(n, r.function);
        if (tried[id].size() < kMaxTries && clock.Now() - r.arrival < MillisF(functions[r.function].slo_ms)) {
          if (!keep) retrying[id] = r;
          clock.ScheduleAfter(Duration{0}, [&route, id] { route(id); });
          return;
        }
      }
      final_end(r);
      tried.erase(id);
    };
  }
  const TimePoint last = arrivals.empty() ? TimePoint{} : arrivals.back().at;
  for (auto& e : engines) e->Start(last);
  route = [&](size_t i) {
    for (size_t n = 0; n < nodes.size(); ++n) {
      refresh(n);
      views[n].outstanding = outstanding[n];
    }
    const Arrival& a = arrivals[i];
    const double room_ms = functions[a.function].slo_ms * (1 - options.slo_margin) - ToMillis(clock.Now() - a.at);
    const std::optional<size_t> to = router.Route(a.function, room_ms, i, views, tried[i]);
    if (!to) {  // every node tried: the last one's rejection stands
      if (auto it = retrying.find(i); it != retrying.end()) {
        final_end(it->second);
        retrying.erase(it);
      } else {  // no node at all
        RequestRecord r;
        r.function = a.function;
        r.arrival = a.at;
        r.deadline = a.at + MillisF(functions[a.function].slo_ms);
        r.outcome = Outcome::kRejected;
        final_end(r);
      }
      tried.erase(i);
      return;
    }
    retrying.erase(i);
    views[*to].ChargeSent(a.function, router.ChargeMs(a.function));
    if (keep) sent_to[i] = *to;
    tried[i].push_back(static_cast<uint32_t>(*to));
    ++outstanding[*to];
    engines[*to]->Admit(i, a);
  };
  std::function<void(size_t)> arrive = [&](size_t i) {
    route(i);
    if (i + 1 < arrivals.size()) clock.ScheduleAt(arrivals[i + 1].at, [&arrive, i] { arrive(i + 1); });
  };
  if (!arrivals.empty()) clock.ScheduleAt(arrivals.front().at, [&arrive] { arrive(0); });
  const auto events = static_cast<int64_t>(clock.RunUntilIdle());

  SimResult all;
  if (keep) all.requests.resize(arrivals.size());
  all.timeline_bucket = options.timeline_bucket;
  for (size_t n = 0; n < engines.size(); ++n) {
    for (const RequestRecord& open : engines[n]->OpenRecords()) final_end(open);  // never ended: failed
    SimResult r = engines[n]->Finish(n == 0 ? events : 0);
    for (size_t i = 0; i < sent_to.size(); ++i) {
      if (sent_to[i] == n) all.requests[i] = r.requests[i];
    }
    all.slice_busy.insert(all.slice_busy.end(), r.slice_busy.begin(), r.slice_busy.end());
    all.slice_active.insert(all.slice_active.end(), r.slice_active.begin(), r.slice_active.end());
    for (auto& line : r.slice_timeline) all.slice_timeline.push_back(std::move(line));
    all.horizon = std::max(all.horizon, r.horizon);
    all.arrival_span = r.arrival_span;
    all.launches += r.launches;
    all.pipelines += r.pipelines;
    all.migrations += r.migrations;
    all.evictions += r.evictions;
    all.events += r.events;
    all.load_failures += r.load_failures;
    all.stage_failures += r.stage_failures;
    all.workers_lost += r.workers_lost;
    all.slices_taken += r.slices_taken;
    for (std::string& e : r.errors) all.errors.push_back("node " + std::to_string(n) + ": " + std::move(e));
    for (auto& [key, c] : r.ends) {
      if (all.ends[key].example.empty()) all.ends[key].example = c.example;
    }
  }
  // Totals, rejections and failures as the requests finally ended (one retried elsewhere counts where it ended).
  if (keep) {
    all.totals.functions.resize(functions.size());
    for (const RequestRecord& q : all.requests) {
      if (q.outcome == Outcome::kPending && options.on_record) options.on_record(q);
      all.totals.Add(q);
      if (q.outcome == Outcome::kRejected || q.outcome == Outcome::kFailed)
        ++all.ends[{q.function, q.outcome, q.code}].count;
    }
  } else {
    all.totals = std::move(finals);
    for (const auto& [key, count] : final_ends) all.ends[key].count = count;
  }
  std::erase_if(all.ends, [](const auto& e) { return e.second.count == 0; });
  return all;
}

SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const ArrivalStream& arrivals, policy::Scheduler& scheduler, const SimOptions& options) {
  ManualClock clock;
  return Engine(clock, slices, functions, scheduler, options).Run(arrivals);
}

SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options) {
  size_t next = 0;
  const ArrivalStream stream = [&]() -> std::optional<Arrival> {
    if (next == arrivals.size()) return std::nullopt;
    return arrivals[next++];
  };
  return Simulate(slices, functions, stream, scheduler, options);
}

std::string_view ToString(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPending: return "pending";
    case Outcome::kHit: return "hit";
    case Outcome::kMiss: return "miss";
    case Outcome::kRejected: return "rejected";
    case Outcome::kFailed: return "failed";
  }
  return "?";
}

void RequestTotals::Add(const RequestRecord& r) {
  ++requests;
  FunctionTotals* f = r.function < functions.size() ? &functions[r.function] : nullptr;
  if (f != nullptr) ++f->requests;
  if (r.outcome == Outcome::kRejected || r.outcome == Outcome::kFailed || r.outcome == Outcome::kPending) {
    const bool failed_here = r.outcome != Outcome::kRejected;  // a request that never ended counts as failed
    (failed_here ? failed : rejected) += 1;
    all_ms += ToMillis(r.deadline - r.arrival);
    if (f != nullptr) (failed_here ? f->failed : f->rejected) += 1;
    return;
  }
  const Duration latency = r.finished - r.arrival;
  const double ms = ToMillis(latency);
  all_ms += ms;
  (r.outcome == Outcome::kHit ? hits : late) += 1;
  if (f != nullptr) {
    f->hits += r.outcome == Outcome::kHit;
    f->completed_ms += ms;
  }
  completed.Add(latency);
  completed_ms += ms;
  queue_ms += ToMillis(r.queue);
  load_ms += ToMillis(r.load);
  compute_ms += ToMillis(r.compute);
  transfer_ms += ToMillis(r.transfer);
}

}  // namespace fluidfaas::sim
