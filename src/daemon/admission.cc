// Admission: Controller::Infer's checks (function, draining, the node's limits, input size) before a request is posted.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

std::optional<std::pair<std::string, std::string>> Controller::Impl::NodeRefusal(size_t input_bytes) const {
  if (stop) return std::pair<std::string, std::string>{"shutdown", "the node has stopped"};
  if (draining) return std::pair<std::string, std::string>{"draining", "the node is draining: it takes no new request"};
  if (open >= options.max_open_requests || open_bytes + input_bytes > options.max_open_bytes) {
    return std::pair<std::string, std::string>{std::string(policy::ToString(Reason::kOverloaded)),
                                               "the node has " + std::to_string(open) + " requests (" +
                                                   std::to_string(open_bytes >> 20) +
                                                   " MiB of inputs) open: its limit"};
  }
  return std::nullopt;
}

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
    } else if (auto node = impl.NodeRefusal(r.input.size())) {
      std::tie(refusal.code, refusal.detail) = std::move(*node);
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
