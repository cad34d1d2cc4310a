// The runtime's events (batches done or failed, loads, lost workers, releases) as the scheduler's.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

void Controller::Impl::BatchCompleted(runtime::BatchCompleted& done) {
  const std::optional<std::vector<RequestId>> taken = TakeBatch(done.instance, done.batch);
  if (!taken) return;
  const std::vector<RequestId>& ids = *taken;
  const size_t n = ids.size();
  const size_t row = n > 0 ? done.output.size() / n : 0;
  // Answer first (their output rows), then tell the scheduler every stage's run.
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
    if (!done.timings.empty()) {
      result.queue_ms =
          static_cast<double>(ToMicros(FromNanos(done.timings.front().started_ns) - r->second.arrival)) / 1000.0;
      for (const runtime::StageTiming& t : done.timings) {
        result.compute_ms += static_cast<double>(t.finished_ns - t.started_ns) / 1e6;
      }
    }
    // The request ends with its last stage's event below; the answer goes out now.
    Request req = std::move(r->second);
    requests.erase(r);
    Finish(req, std::move(result));
  }
  for (size_t s = 0; s < done.timings.size(); ++s) {
    const policy::StageFinished event{done.instance,
                                      s,
                                      done.batch,
                                      s + 1 == done.timings.size(),
                                      ids,
                                      FromNanos(done.timings[s].started_ns),
                                      FromNanos(done.timings[s].finished_ns)};
    checker->OnStageFinished(event);
    Apply([&](auto& out) { scheduler->OnStageFinished(event, clock->Now(), out); });
  }
  Dispatch(done.instance);
}

void Controller::Impl::BatchFailed(const runtime::BatchFailed& failed) {
  const std::optional<std::vector<RequestId>> taken = TakeBatch(failed.instance, failed.batch);
  if (!taken) return;
  const std::vector<RequestId>& ids = *taken;
  for (RequestId r : ids) {
    if (auto it = requests.find(r); it != requests.end()) it->second.instance = 0;
  }
  const policy::StageFailed event{failed.instance, failed.stage, failed.batch, ids, failed.detail};
  checker->OnStageFailed(event);
  Apply([&](auto& out) { scheduler->OnStageFailed(event, clock->Now(), out); });
  Dispatch(failed.instance);
}

void Controller::Impl::LoadDone(const runtime::LoadDone& load) {
  auto it = instances.find(load.instance);
  if (it == instances.end()) return;
  std::vector<policy::RequestEvent> stranded;
  if (load.ok) {
    it->second.loaded = true;
  } else {
    for (RequestId r : it->second.queue) {
      requests.at(r).instance = 0;
      stranded.push_back(EventOf(r));
    }
    it->second.queue.clear();
  }
  const policy::LoadFinished event{load.instance, load.ok, load.detail, stranded};
  checker->OnLoadFinished(event);
  Apply([&](auto& out) { scheduler->OnLoadFinished(event, clock->Now(), out); });
  if (load.ok) Dispatch(load.instance);
}

void Controller::Impl::WorkerLost(runtime::WorkerLost& lost) {
  std::vector<policy::RequestEvent> stranded;
  for (const runtime::StrandedBatch& b : lost.stranded) {
    auto it = batches.find(b.batch);
    if (it == batches.end()) continue;
    for (RequestId r : it->second) {
      if (requests.contains(r)) stranded.push_back(EventOf(r));
    }
    batches.erase(it);
  }
  for (InstanceId id : lost.instances) {
    auto it = instances.find(id);
    if (it == instances.end()) continue;
    for (RequestId r : it->second.queue) stranded.push_back(EventOf(r));
    // Its other slices' releases come as StageReleased; the lost slice's memory is free now.
    for (const policy::StagePlacement& st : it->second.stages) {
      if (st.slice != lost.slice) releasing.insert({id, st.slice});
    }
    instances.erase(it);
  }
  std::erase_if(releasing, [&](const auto& p) { return p.second == lost.slice; });
  for (const policy::RequestEvent& e : stranded) requests.at(e.id).instance = 0;
  const policy::SliceLost event{lost.slice, Reason::kWorkerLost, lost.detail, stranded};
  checker->OnSliceLost(event);
  Apply([&](auto& out) { scheduler->OnSliceLost(event, clock->Now(), out); });
  LaunchDeferred();
}

void Controller::Impl::Released(const runtime::StageReleased& r) {
  releasing.erase({r.instance, r.slice});
  const policy::Released event{r.instance, r.slice};
  checker->OnReleased(event);
  Apply([&](auto& out) { scheduler->OnReleased(event, clock->Now(), out); });
  LaunchDeferred();
}

void Controller::Impl::OnRuntimeEvent(runtime::RuntimeEvent e) {
  PostRuntime([this, e = std::move(e)]() mutable {
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
