// Admission: Controller::Infer's checks (function, draining, the node's limits, input size) before a request is posted.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

void Controller::Infer(const std::string& function, std::vector<std::byte> input, std::optional<double> timeout_ms,
                       InferCallback done) {
  Impl& impl = *impl_;
  InferResult refusal;
  refusal.outcome = Outcome::kRejected;
  Impl::Request r;
  r.input = std::move(input);
  r.done = std::move(done);
  {
    MutexLock lock(impl.mu);
    const auto it = impl.functions.find(function);
    if (it == impl.functions.end() || it->second.removed) {
      refusal.code = std::string(policy::ToString(Reason::kUnknownFunction));
      refusal.detail = "no function '" + function + "' is deployed";
    } else if (impl.stop) {
      refusal.code = "shutdown";
      refusal.detail = "the node has stopped";
    } else if (impl.draining) {
      refusal.code = "draining";
      refusal.detail = "the node is draining: it takes no new request";
    } else if (impl.open >= impl.options.max_open_requests ||
               impl.open_bytes + r.input.size() > impl.options.max_open_bytes) {
      refusal.code = std::string(policy::ToString(Reason::kOverloaded));
      refusal.detail = "the node has " + std::to_string(impl.open) + " requests (" +
                       std::to_string(impl.open_bytes >> 20) + " MiB of inputs) open: its limit";
    } else if (r.input.size() != it->second.input_bytes) {
      refusal.code = "bad_input";
      refusal.detail = "input of " + std::to_string(r.input.size()) + " bytes; '" + function + "' takes " +
                       std::to_string(it->second.input_bytes);
    } else {
      ++impl.open;
      impl.open_bytes += r.input.size();
      r.function = it->second.id;
      r.arrival = impl.clock->Now();
      const double slo = timeout_ms.value_or(it->second.info->slo_ms);
      // The scheduler plans for a deadline a margin early: what the HTTP exchange and the client take is
      // outside its model, and so is what a saturated node adds (the learned part).
      r.slo_ms = slo;
      r.own_deadline = timeout_ms.has_value();
      r.deadline = r.arrival + MillisF(slo * (1 - impl.options.slo_margin - impl.LateMargin()));
      // Queued under the same lock that saw the loop running: a Shutdown after this finds it (Close answers
      // it), so no admitted request can fall between the check and the queue.
      impl.PostLocked([&impl, r = std::move(r)]() mutable {
        const RequestId id = impl.next_request++;
        impl.Arrive(id, std::move(r));
      });
      return;
    }
    ++impl.ends[{impl.RefusedLabel(function), "rejected", refusal.code}];
  }
  r.done(std::move(refusal));
}

}  // namespace fluidfaas::daemon
