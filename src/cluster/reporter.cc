#include "cluster/reporter.h"

#include <spdlog/spdlog.h>

namespace fluidfaas::cluster {

Result<std::unique_ptr<Reporter>> Reporter::Start(KvBucket& bucket, ReporterOptions options,
                                                  std::function<NodeReport()> source) {
  FF_RETURN_IF_ERROR(CheckNodeName(options.node));
  if (options.advertise.empty()) return Status::InvalidArgument("a node needs an address to advertise");
  std::unique_ptr<Reporter> r(new Reporter(bucket, std::move(options), std::move(source)));
  r->thread_ = std::thread([p = r.get()] { p->Loop(); });
  return r;
}

Reporter::~Reporter() {
  bool frozen = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    frozen = frozen_;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!frozen) {
    if (Status s = bucket_.Delete(options_.node); !s.ok()) spdlog::warn("cluster: leaving: {}", s.message());
  }
}

void Reporter::Freeze() {
  std::lock_guard<std::mutex> lock(mu_);
  frozen_ = true;
}

void Reporter::Loop() {
  uint64_t seq = 0;
  std::string last;
  auto last_sent = std::chrono::steady_clock::time_point{};
  bool warned = false;
  for (;;) {
    // Held while a report is taken and published: once Freeze returns, nothing more is published.
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, options_.poll, [&] { return stop_; })) return;
    if (frozen_) continue;
    NodeReport r = source_();
    r.node = options_.node;
    r.advertise = options_.advertise;
    r.interval_ms = ToMillis(options_.interval) >= 1 ? static_cast<int64_t>(ToMillis(options_.interval)) : 1;
    // What changed, of what routing reads: the fields only people read (each instance's queue, the recent rate,
    // host memory) move with every call and ride along on the periodic reports instead.
    NodeReport routed = r;
    routed.seq = 0;
    routed.host_free_mib = 0;
    for (ReportedFunction& f : routed.functions) {
      f.rate_per_s = 0;
      f.instances.clear();
    }
    const std::string content = ToJsonText(routed);
    const auto now = std::chrono::steady_clock::now();
    if (content == last && now - last_sent < options_.interval) continue;
    r.seq = ++seq;
    const Result<uint64_t> put = bucket_.Put(options_.node, ToJsonText(r));
    if (!put.ok()) {
      if (!warned) spdlog::warn("cluster: report not published: {}", put.status().message());
      warned = true;
      continue;  // NATS reconnects by itself; the next report goes out then
    }
    if (warned) spdlog::info("cluster: reports published again");
    warned = false;
    last = content;
    last_sent = now;
    ++published_;
  }
}

}  // namespace fluidfaas::cluster
