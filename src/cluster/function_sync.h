// FunctionSync: a node's functions follow the cluster's functions bucket ("fluidfaas_functions": a deployment's
// JSON under its name, written by the gateway's POST /v1/functions). A function put there is deployed on the node
// (when the node has no function of that name: the node's own --functions stay its own); one deleted there is
// removed from the node, if the bucket had deployed it; one whose spec changed is deployed again. Any node can
// then serve any function: the gateway routes to the nodes that report it.
//
// A watcher can lose its consumer when the NATS server restarts, and a node can miss a delete while it is away:
// every `resync` the watch is made again, it delivers every function anew, and a function the bucket had deployed
// but no longer holds is removed.
//
// Thread safety: its own thread calls the target; Start and the destructor from one thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "cluster/nats.h"
#include "common/time.h"

namespace fluidfaas::cluster {

inline constexpr char kFunctionsBucket[] = "fluidfaas_functions";

struct SyncTarget {
  std::function<Status(const std::string& name, const std::string& spec)> deploy;
  std::function<Status(const std::string& name)> remove;
  std::function<bool(const std::string& name)> deployed;
};

class FunctionSync {
 public:
  static std::unique_ptr<FunctionSync> Start(KvBucket& bucket, SyncTarget target, Duration resync = Seconds(30));
  ~FunctionSync();
  FunctionSync(const FunctionSync&) = delete;
  FunctionSync& operator=(const FunctionSync&) = delete;

 private:
  FunctionSync(KvBucket& bucket, SyncTarget target, Duration resync)
      : bucket_(bucket), target_(std::move(target)), resync_(resync) {}
  void Loop();
  void Put(const std::string& name, const std::string& spec);
  void Delete(const std::string& name);

  KvBucket& bucket_;
  const SyncTarget target_;
  const Duration resync_;
  std::map<std::string, std::string> synced_;  // name -> spec deployed from the bucket (loop thread)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace fluidfaas::cluster
