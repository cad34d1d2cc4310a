// Reporter: a node's heartbeat into the cluster. Every `poll` it takes the node's report (the controller's
// ClusterReport) and publishes it into the nodes bucket under the node's name when what routing reads has changed,
// and at least every `interval` however quiet the node is (the fields only people read, which move with every call,
// ride on those: publishing on their change tripled the reports under load and cost the cluster 2.5 points of SLO
// hits in scripts/cluster-vs-sim.sh). On a clean stop it deletes its key: the gateway drops the node at once
// instead of waiting out the silence.
//
// Thread safety: its own thread; Start and the destructor from one thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cluster/nats.h"
#include "cluster/report.h"
#include "common/time.h"

namespace fluidfaas::cluster {

inline constexpr char kNodesBucket[] = "fluidfaas_nodes";

struct ReporterOptions {
  std::string node;       // its key; CheckNodeName
  std::string advertise;  // HOST:PORT the gateway sends requests to
  Duration interval = Millis(500);
  Duration poll = Millis(100);
};

class Reporter {
 public:
  // `bucket` outlives the reporter; `source` is called on the reporter's thread.
  static Result<std::unique_ptr<Reporter>> Start(KvBucket& bucket, ReporterOptions options,
                                                 std::function<NodeReport()> source);
  ~Reporter();
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  uint64_t published() const { return published_.load(); }
  // Stops publishing without deleting the key (as a node that hangs would): for tests of the gateway's aging.
  void Freeze();

 private:
  Reporter(KvBucket& bucket, ReporterOptions options, std::function<NodeReport()> source)
      : bucket_(bucket), options_(std::move(options)), source_(std::move(source)) {}
  void Loop();

  KvBucket& bucket_;
  const ReporterOptions options_;
  const std::function<NodeReport()> source_;
  std::atomic<uint64_t> published_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool frozen_ = false;
  std::thread thread_;
};

}  // namespace fluidfaas::cluster
