#include "cluster/function_sync.h"

#include <spdlog/spdlog.h>

namespace fluidfaas::cluster {

std::unique_ptr<FunctionSync> FunctionSync::Start(KvBucket& bucket, SyncTarget target, Duration resync) {
  std::unique_ptr<FunctionSync> s(new FunctionSync(bucket, std::move(target), resync));
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

FunctionSync::~FunctionSync() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void FunctionSync::Put(const std::string& name, const std::string& spec) {
  const auto it = synced_.find(name);
  if (it != synced_.end() && it->second == spec) return;
  if (it == synced_.end() && target_.deployed(name)) {
    spdlog::info("cluster: function {} is this node's own; the cluster's deployment of it is not applied", name);
    return;
  }
  if (it != synced_.end()) {  // a new spec: the old deployment goes first
    if (Status s = target_.remove(name); !s.ok()) spdlog::warn("cluster: removing {}: {}", name, s.message());
    synced_.erase(it);
  }
  if (Status s = target_.deploy(name, spec); !s.ok()) {
    spdlog::warn("cluster: function {} not deployed on this node: {}", name, s.message());
    return;
  }
  spdlog::info("cluster: function {} deployed from the cluster", name);
  synced_[name] = spec;
}

void FunctionSync::Delete(const std::string& name) {
  if (synced_.erase(name) == 0) return;
  if (Status s = target_.remove(name); !s.ok()) {
    spdlog::warn("cluster: removing {}: {}", name, s.message());
    return;
  }
  spdlog::info("cluster: function {} removed (deleted from the cluster)", name);
}

void FunctionSync::Loop() {
  while (!stop_.load()) {
    Result<std::unique_ptr<KvWatcher>> w = bucket_.WatchAll();
    if (!w.ok()) {
      spdlog::warn("cluster: watching the functions: {}", w.status().message());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    std::set<std::string> seen;  // in this watch's initial values
    bool initial = true;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(resync_);
    while (!stop_.load() && std::chrono::steady_clock::now() < until) {
      Result<std::optional<KvEntry>> e = (*w)->Next(std::chrono::milliseconds(200));
      if (!e.ok()) {
        spdlog::warn("cluster: the functions' watcher: {}; watching again", e.status().message());
        break;
      }
      if (initial && (*w)->caught_up()) {
        initial = false;
        // What the bucket no longer holds was deleted while this watch was away.
        std::vector<std::string> gone;
        for (const auto& [name, spec] : synced_) {
          if (seen.count(name) == 0) gone.push_back(name);
        }
        for (const std::string& name : gone) Delete(name);
      }
      if (!e->has_value()) continue;
      const KvEntry& entry = **e;
      if (initial) seen.insert(entry.key);
      if (entry.deleted) {
        Delete(entry.key);
      } else {
        Put(entry.key, entry.value);
      }
    }
  }
}

}  // namespace fluidfaas::cluster
