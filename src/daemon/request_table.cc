// Open requests: arrival, the answer, the one place a request's callback runs.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

void Controller::Impl::Answer(RequestId id, Outcome outcome, Reason code, const std::string& detail) {
  auto it = requests.find(id);
  if (it == requests.end()) return;
  Request r = std::move(it->second);
  requests.erase(it);
  InferResult result;
  result.outcome = outcome;
  result.code = std::string(policy::ToString(code));
  result.detail = detail;
  Finish(r, std::move(result));
}

double Controller::Impl::LateMargin() const {
  const TimePoint at = TimePoint{} + std::chrono::microseconds(late_margin_at_us.load(std::memory_order_relaxed));
  return LatenessMargin::Applied(late_margin.load(std::memory_order_relaxed), clock->Now() - at, kLateHold);
}

void Controller::Impl::Finish(const Request& r, InferResult result) {
  result.total_ms = static_cast<double>(ToMicros(clock->Now() - r.arrival)) / 1000.0;
  const std::string& name = FunctionName(r.function);
  {
    MutexLock lock(mu);
    ++ends[{name, std::string(daemon::ToString(result.outcome)), result.code}];
    if (result.outcome == Outcome::kCompleted) {
      if (options.late_margin_cap > 0 && r.slo_ms > 0) {
        const TimePoint now = clock->Now();
        lateness.Observe(now, ToMillis(now - r.deadline) / r.slo_ms);
        late_margin.store(std::min(lateness.learned(), options.late_margin_cap), std::memory_order_relaxed);
        late_margin_at_us.store(ToMicros(now), std::memory_order_relaxed);
      }
      latency_hist[name].Observe(result.total_ms / 1000.0);
      queue_hist[name].Observe(std::max(0.0, result.queue_ms) / 1000.0);
      compute_hist[name].Observe(result.compute_ms / 1000.0);
    }
    --open;
    open_bytes -= std::min(open_bytes, r.input.size());
    if (open == 0) idle.notify_all();
  }
  spdlog::debug("{} request: {} {} {}", name, daemon::ToString(result.outcome), result.code, result.detail);
  r.done(std::move(result));
}

const std::string& Controller::Impl::FunctionName(FunctionId id) const {
  static const std::string kUnknown = "unknown";
  const Function* f = FindFunction(id);
  return f != nullptr ? f->info->name : kUnknown;
}

void Controller::Impl::Arrive(RequestId id, Request r) {
  if (closing) return AnswerShutdown(r);
  // A newcomer's request (no deadline of its own) to a function with no loaded instance waits for the cold
  // start, as Knative's activator holds requests while a service scales from zero (policy::ColdStartDeadline).
  if (!r.own_deadline) {
    r.deadline = policy::ColdStartDeadline(r.arrival, r.deadline, carrier->Warm(r.function), options.cold_start_wait);
  }
  const policy::RequestEvent event{id, r.function, r.arrival, r.deadline};
  arrival_rates[r.function].Add(r.arrival);
  requests.emplace(id, std::move(r));
  carrier->Arrive(event, clock->Now());
  CountViolations();
}

}  // namespace fluidfaas::daemon
