// A thin RAII layer over the NATS C client (libnats, cnats 3.4): a connection that reconnects by itself, and
// JetStream key-value buckets with their watchers. Every failure is a Status naming the NATS error.
//
// The server's facts this relies on (Debian's nats-server 2.9.10): kvConfig.TTL is in nanoseconds; a watcher hears
// no event when a key expires, so whoever needs freshness ages entries itself (the gateway does); max_payload is
// 1 MiB by default, so reports and specs ride NATS and tensors do not.
//
// Thread safety: a connection and a bucket may be used from any thread (cnats locks inside); one watcher belongs
// to one thread at a time.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace fluidfaas::cluster {

struct NatsOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::string name = "fluidfaas";  // the connection's name in the server's monitoring
  std::string token;               // "": none
  std::string creds_file;          // an nkey/JWT credentials file; "": none
  int64_t connect_timeout_ms = 2000;
  int64_t reconnect_wait_ms = 250;  // reconnects forever, this far apart
};

class KvBucket;

class NatsConnection {
 public:
  // Connects (the first attempt must succeed: Unavailable naming the URL otherwise); reconnects forever after.
  static Result<std::unique_ptr<NatsConnection>> Connect(const NatsOptions& options);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // The bucket `name`, created when missing with `history` values per key (1..64) and `ttl` (0: none).
  Result<std::unique_ptr<KvBucket>> Bucket(const std::string& name, int history = 1,
                                           std::chrono::milliseconds ttl = std::chrono::milliseconds(0));
  bool connected() const;

 private:
  NatsConnection() = default;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

struct KvEntry {
  std::string key;
  std::string value;
  bool deleted = false;  // a delete or purge marker
  uint64_t revision = 0;
};

class KvWatcher {
 public:
  ~KvWatcher();
  KvWatcher(const KvWatcher&) = delete;
  KvWatcher& operator=(const KvWatcher&) = delete;
  // The next change within `timeout`: an entry; nullopt on timeout or once the initial values have all been
  // delivered (then `caught_up()` turns true). An error when the watcher is broken.
  Result<std::optional<KvEntry>> Next(std::chrono::milliseconds timeout);
  bool caught_up() const { return caught_up_; }

 private:
  friend class KvBucket;
  explicit KvWatcher(kvWatcher* w) : w_(w) {}
  kvWatcher* w_;
  bool caught_up_ = false;
};

class KvBucket {
 public:
  ~KvBucket();
  KvBucket(const KvBucket&) = delete;
  KvBucket& operator=(const KvBucket&) = delete;
  Result<uint64_t> Put(const std::string& key, const std::string& value);
  Result<std::optional<KvEntry>> Get(const std::string& key);
  Status Delete(const std::string& key);
  // Every key that holds a value now.
  Result<std::vector<std::string>> Keys();
  // Every key's latest value first, then changes as they happen.
  Result<std::unique_ptr<KvWatcher>> WatchAll();

 private:
  friend class NatsConnection;
  explicit KvBucket(kvStore* kv) : kv_(kv) {}
  kvStore* kv_;
};

}  // namespace fluidfaas::cluster
