// Prometheus text: requests by outcome and code, latency histograms, the node's counters and gauges.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

void Controller::CountRefused(const std::string& function, std::string_view code) {
  MutexLock lock(impl_->mu);
  ++impl_->ends[{impl_->RefusedLabel(function), "rejected", std::string(code)}];
}

std::string Controller::MetricsText(const std::map<std::string, uint64_t>& edge_refusals) const {
  const Impl& impl = *impl_;
  const runtime::RuntimeStats rs = runtime_->Stats();
  MutexLock lock(impl.mu);
  std::ostringstream o;
  o << "# HELP fluidfaas_requests_total Requests that ended, by function, outcome and reason code.\n"
       "# TYPE fluidfaas_requests_total counter\n";
  for (const auto& [key, n] : impl.ends) {
    const auto& [function, outcome, code] = key;
    o << "fluidfaas_requests_total" << Labels({{"function", function}, {"outcome", outcome}, {"code", code}}) << ' '
      << n << '\n';
  }
  for (const auto& [code, n] : edge_refusals) {
    o << "fluidfaas_requests_total" << Labels({{"function", ""}, {"outcome", "rejected"}, {"code", code}}) << ' ' << n
      << '\n';
  }
  const auto histogram = [&o](const char* name, const char* help, const std::map<std::string, Histogram>& hs) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
    for (const auto& [function, h] : hs) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < std::size(kBuckets); ++i) {
        cumulative += h.counts[i];
        std::ostringstream le;
        le << kBuckets[i];
        o << name << "_bucket" << Labels({{"function", function}, {"le", le.str()}}) << ' ' << cumulative << '\n';
      }
      o << name << "_bucket" << Labels({{"function", function}, {"le", "+Inf"}}) << ' ' << h.count << '\n';
      o << name << "_sum" << Labels({{"function", function}}) << ' ' << h.sum << '\n';
      o << name << "_count" << Labels({{"function", function}}) << ' ' << h.count << '\n';
    }
  };
  histogram("fluidfaas_request_duration_seconds", "End-to-end latency of completed requests.", impl.latency_hist);
  histogram("fluidfaas_queue_duration_seconds", "Arrival to the start of the first stage, completed requests.",
            impl.queue_hist);
  histogram("fluidfaas_compute_duration_seconds", "Time in the stages, completed requests.", impl.compute_hist);
  histogram("fluidfaas_time_to_first_token_seconds", "Generation: arrival to the first token.", impl.ttft_hist);
  histogram("fluidfaas_time_per_output_token_seconds", "Generation: first to last token, per token after the first.",
            impl.tpot_hist);
  o << "# HELP fluidfaas_batches_total Batches completed, by function.\n"
       "# TYPE fluidfaas_batches_total counter\n";
  for (const auto& [function, b] : impl.batches) {
    o << "fluidfaas_batches_total" << Labels({{"function", function}}) << ' ' << b.batches << '\n';
  }
  o << "# HELP fluidfaas_batched_requests_total Requests in completed batches, by function (over batches_total: "
       "the mean batch size).\n"
       "# TYPE fluidfaas_batched_requests_total counter\n";
  for (const auto& [function, b] : impl.batches) {
    o << "fluidfaas_batched_requests_total" << Labels({{"function", function}}) << ' ' << b.requests << '\n';
  }
  o << "# HELP fluidfaas_generated_tokens_total Tokens generated, by function.\n"
       "# TYPE fluidfaas_generated_tokens_total counter\n";
  for (const auto& [function, n] : impl.gen_tokens) {
    o << "fluidfaas_generated_tokens_total" << Labels({{"function", function}}) << ' ' << n << '\n';
  }
  const auto gauge = [&o](const char* name, const char* type, const char* help, double v) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << v << '\n';
  };
  gauge("fluidfaas_open_requests", "gauge", "Requests admitted and not yet answered.", static_cast<double>(impl.open));
  gauge("fluidfaas_late_margin", "gauge",
        "Share of the SLO new requests are planned earlier, learned from late completions (beyond --slo-margin).",
        impl.LateMargin());
  gauge("fluidfaas_launches_total", "counter", "Instances launched.",
        static_cast<double>(impl.carrier->totals().launches.load()));
  gauge("fluidfaas_pipelines_total", "counter", "Instances launched as pipelines of two or more stages.",
        static_cast<double>(impl.carrier->totals().pipelines.load()));
  gauge("fluidfaas_migrations_total", "counter", "Pipelines migrated to one slice.",
        static_cast<double>(impl.carrier->totals().migrations.load()));
  gauge("fluidfaas_evictions_total", "counter", "Instances evicted to host memory.",
        static_cast<double>(impl.carrier->totals().evictions.load()));
  gauge("fluidfaas_answer_rule_violations", "gauge", "Violations of the answer rule seen on the decision stream.",
        static_cast<double>(impl.violations));
  gauge("fluidfaas_host_warm_bytes", "gauge", "Host memory held by warm copies.", static_cast<double>(rs.warm_bytes));
  gauge("fluidfaas_workers_alive", "gauge", "Worker processes running.", static_cast<double>(rs.workers_alive));
  gauge("fluidfaas_worker_restarts_total", "counter", "Worker processes restarted after a failure.",
        static_cast<double>(rs.worker_restarts));
  gauge("fluidfaas_batches_in_flight", "gauge", "Batches submitted to pipelines and not finished.",
        static_cast<double>(rs.batches_in_flight));
  return o.str();
}

}  // namespace fluidfaas::daemon
