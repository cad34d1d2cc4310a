// The runtime's events (batches done or failed, loads, lost workers, releases), handed to the carrier.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

void Controller::Impl::BatchCompleted(runtime::BatchCompleted& done) {
  std::vector<carrier::StageRun> runs;
  runs.reserve(done.timings.size());
  double compute_ms = 0;  // the batch's, every request's
  for (const runtime::StageTiming& t : done.timings) {
    runs.push_back(carrier::StageRun{FromNanos(t.started_ns), FromNanos(t.finished_ns)});
    compute_ms += static_cast<double>(t.finished_ns - t.started_ns) / 1e6;
  }
  // Each request is answered with its output row before the scheduler hears of the stages' runs.
  const auto answer = [&](std::span<const RequestId> ids) {
    const size_t n = ids.size();
    const size_t row = n > 0 ? done.output.size() / n : 0;
    if (n > 0) {
      if (auto first = requests.find(ids[0]); first != requests.end()) {
        MutexLock lock(mu);
        BatchCount& b = batches[FunctionName(first->second.function)];
        ++b.batches;
        b.requests += n;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      auto r = requests.find(ids[i]);
      if (r == requests.end()) continue;
      InferResult result;
      result.instance = done.instance;
      result.dtype = done.dtype;
      result.shape = done.shape;
      if (!result.shape.empty()) result.shape[0] = 1;
      result.output.assign(done.output.begin() + static_cast<ptrdiff_t>(i * row),
                           done.output.begin() + static_cast<ptrdiff_t>((i + 1) * row));
      if (!runs.empty()) {
        result.queue_ms = static_cast<double>(ToMicros(runs.front().started - r->second.arrival)) / 1000.0;
        result.compute_ms = compute_ms;
      }
      Request req = std::move(r->second);
      requests.erase(r);
      Finish(req, std::move(result));
    }
  };
  carrier->BatchCompleted(done.instance, done.batch, runs, clock->Now(), answer);
  CountViolations();
}

void Controller::Impl::BatchFailed(const runtime::BatchFailed& failed) {
  carrier->BatchFailed(failed.instance, failed.batch, failed.stage, failed.detail, clock->Now());
  CountViolations();
}

void Controller::Impl::LoadDone(const runtime::LoadDone& load) {
  carrier->Loaded(load.instance, load.ok, load.detail, clock->Now());
  CountViolations();
}

void Controller::Impl::WorkerLost(runtime::WorkerLost& lost) {
  // The carrier knows which instances had a stage on the slice and what they had in flight (the runtime's lists
  // say the same).
  carrier->SliceLost(lost.slice, Reason::kWorkerLost, lost.detail, clock->Now());
  CountViolations();
}

void Controller::Impl::Released(const runtime::StageReleased& r) {
  carrier->Released(r.instance, r.slice, clock->Now());
  CountViolations();
}

void Controller::Impl::OnRuntimeEvent(runtime::RuntimeEvent e) {
  PostRuntime([this, e = std::move(e)]() mutable {
    if (GenRuntimeEvent(e)) return;  // a generative instance's, or a slice the generation node holds
    std::visit(
        [this](auto& event) {
          using T = std::decay_t<decltype(event)>;
          if constexpr (std::is_same_v<T, runtime::BatchCompleted>) BatchCompleted(event);
          if constexpr (std::is_same_v<T, runtime::BatchFailed>) BatchFailed(event);
          if constexpr (std::is_same_v<T, runtime::LoadDone>) LoadDone(event);
          if constexpr (std::is_same_v<T, runtime::WorkerLost>) WorkerLost(event);
          if constexpr (std::is_same_v<T, runtime::StageReleased>) Released(event);
        },
        e);
  });
}

}  // namespace fluidfaas::daemon
