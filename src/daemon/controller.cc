#include "daemon/controller.h"

#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

std::string_view ToString(Outcome outcome) {
  switch (outcome) {
    case Outcome::kCompleted: return "completed";
    case Outcome::kRejected: return "rejected";
    case Outcome::kFailed: return "failed";
  }
  return "?";
}

Result<std::unique_ptr<Controller>> Controller::Start(ControllerOptions options,
                                                      const std::vector<FunctionConfig>& functions) {
  if (options.node.slices.empty()) return Status::InvalidArgument("the node has no slices");
  FF_RETURN_IF_ERROR(CheckRange("slo margin", options.slo_margin, 0.0, 0.5));
  FF_RETURN_IF_ERROR(CheckRange("late margin cap", options.late_margin_cap, 0.0, 0.5));
  FF_RETURN_IF_ERROR(CheckRange("cold start wait", ToSeconds(options.cold_start_wait), 0.0, 600.0));
  if (policy::UsesWholeGpus(options.policy)) {
    return Status::InvalidArgument("policy '" + options.policy +
                                   "' runs on whole GPUs with MPS, which the node "
                                   "daemon does not drive (the simulator does)");
  }
  std::unique_ptr<Controller> c(new Controller());
  c->impl_ = std::make_unique<Impl>();
  Impl& impl = *c->impl_;
  if (options.clock != nullptr) {
    impl.clock = options.clock;
  } else {
    impl.own_clock = std::make_unique<RealClock>();
    impl.clock = impl.own_clock.get();
  }
  // The runtime stamps its events in CLOCK_MONOTONIC; an injected mechanism in the clock's own nanoseconds.
  impl.epoch_ns = options.mechanism ? 0 : MonotonicNanos() - ToMicros(impl.clock->Now()) * 1000;
  const gpu::GpuType* type = nullptr;
  for (const gpu::Slice& s : options.node.slices) {
    const gpu::GpuType* t = options.node.gpus.at(static_cast<size_t>(s.gpu)).type;
    if (t->model != gpu::GpuModel::kA100_80GB) {
      return Status::Unimplemented("the daemon's cost tables are built for A100-80GB slices; slice " + s.id +
                                   " is on " + std::string(t->name));
    }
    type = t;
    impl.cluster.push_back(policy::ClusterSlice{s.id, s.gpu, policy::SliceKind{t, s.profile}, true});
  }
  impl.mps_shares = std::make_unique<gpu::MpsShares>(*type);
  // The scheduler books warm copies against the node's host memory, as the runtime does (runtime/residency.h):
  // it drops them first, so the runtime's own budget is only a backstop.
  policy::NodeLimits limits;
  limits.host_memory_mib = options.host_memory_bytes.value_or(runtime::DefaultHostMemoryBytes()) >> 20;
  FF_ASSIGN_OR_RETURN(impl.scheduler, policy::MakeScheduler(options.policy, impl.cluster, {}, limits));
  impl.options = options;

  runtime::RuntimeOptions ro = options.runtime;
  ro.worker_binary = options.worker_binary;
  ro.slices.clear();
  for (const gpu::Slice& s : options.node.slices) ro.slices.push_back(runtime::RuntimeSlice{s.id, s.uuid});
  if (options.host_memory_bytes) ro.host_memory_bytes = *options.host_memory_bytes;
  runtime::EventSink sink = [&impl](runtime::RuntimeEvent e) { impl.OnRuntimeEvent(std::move(e)); };
  if (options.mechanism) {
    FF_ASSIGN_OR_RETURN(c->runtime_, options.mechanism(std::move(sink)));
  } else {
    FF_ASSIGN_OR_RETURN(auto real, runtime::NodeRuntime::Start(ro, std::move(sink)));
    c->node_runtime_ = real.get();
    c->runtime_ = std::move(real);
  }
  impl.runtime = c->runtime_.get();
  impl.carrier = std::make_unique<carrier::Carrier>(impl.cluster, *impl.scheduler, impl, impl);
  impl.StartGeneration();
  for (const FunctionConfig& f : functions) {
    Status s;
    auto directory = impl.GenerativeDirectory(f);
    if (!directory.ok()) {
      s = directory.status();
    } else if (*directory) {
      s = impl.DeployGenerative(f, &**directory);
    } else if (f.generate) {
      s = impl.DeployGenerative(f, nullptr);
    } else {
      auto prepared = impl.Prepare(f);
      s = prepared.ok() ? impl.Install(std::move(*prepared)) : prepared.status();
    }
    if (!s.ok()) return s.WithContext("deploying '" + (f.name.empty() ? f.model + f.directory : f.name) + "'");
  }
  impl.Snapshot();
  impl.next_tick = impl.clock->Now() + kTick;
  if (impl.options.loop != nullptr) {
    impl.link = std::make_shared<Impl::LoopLink>();
    impl.link->impl = &impl;  // before any turn is posted: the loop reads it only in what is posted after this
    impl.options.loop->Post([l = impl.link] {
      if (l->impl != nullptr) l->impl->LoopTurn();
    });
  } else if (!impl.options.manual_loop) {
    impl.thread = std::thread([&impl] { impl.Loop(); });
  }
  return c;
}

Controller::~Controller() {
  if (impl_ == nullptr) return;
  Shutdown();
  runtime_.reset();  // its threads may still post; the queue outlives them (and drops what they post)
}

size_t Controller::RunPending() {
  const std::optional<size_t> ran = impl_->Turn(/*wait=*/false);
  return ran.value_or(0);
}

void Controller::Shutdown() {
  {
    MutexLock lock(impl_->mu);
    if (impl_->stop) return;
    impl_->stop = true;
    impl_->wake.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->link != nullptr) CutLoop();
  impl_->Close();
}

// On a loop: no turn runs after this, and none is running (the cut runs on the loop, or the loop has ended).
void Controller::CutLoop() {
  const auto link = impl_->link;
  TaskLoop& loop = *impl_->options.loop;
  if (loop.InLoop()) {
    link->impl = nullptr;
    return;
  }
  auto cut = std::make_shared<std::promise<void>>();
  auto done = cut->get_future();
  if (!loop.Post([link, cut] {
        link->impl = nullptr;
        cut->set_value();
      })) {
    link->impl = nullptr;  // the loop has ended: nothing of this controller runs there any more
    return;
  }
  try {
    done.get();
  } catch (const std::future_error&) {
    link->impl = nullptr;  // dropped unrun by a loop that stopped meanwhile: nothing runs there any more
  }
}

FunctionRef Controller::Function(const std::string& name) const {
  MutexLock lock(impl_->mu);
  if (const auto g = impl_->gen_functions.find(name); g != impl_->gen_functions.end() && !g->second.removed) {
    return g->second.info;
  }
  const auto it = impl_->functions.find(name);
  if (it == impl_->functions.end() || it->second.removed) return nullptr;
  return it->second.info;
}

std::vector<FunctionInfo> Controller::Functions() const {
  MutexLock lock(impl_->mu);
  std::vector<FunctionInfo> out;
  for (const auto& [name, f] : impl_->functions) {
    if (!f.removed) out.push_back(*f.info);
  }
  for (const auto& [name, f] : impl_->gen_functions) {
    if (!f.removed) out.push_back(*f.info);
  }
  std::sort(out.begin(), out.end(), [](const FunctionInfo& a, const FunctionInfo& b) { return a.name < b.name; });
  return out;
}

bool Controller::Drain(Duration timeout) {
  MutexLock lock(impl_->mu);
  impl_->draining = true;
  return lock.WaitFor(impl_->idle, std::chrono::microseconds(ToMicros(timeout)), [this] {
    impl_->mu.AssertHeld();
    return impl_->open == 0;
  });
}

bool Controller::draining() const {
  MutexLock lock(impl_->mu);
  return impl_->draining;
}

size_t Controller::open_requests() const {
  MutexLock lock(impl_->mu);
  return impl_->open;
}

}  // namespace fluidfaas::daemon
