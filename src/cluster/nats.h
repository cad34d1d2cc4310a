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
#include <string_view>
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
  // Copies JetStream keeps of the buckets and streams this connection creates (1..5, at most the servers of the
  // NATS cluster): 3 on a 3-server cluster survives a server's restart. Those already made keep theirs.
  int replicas = 1;
};

class KvBucket;
class WorkQueue;

struct WorkQueueOptions {
  std::string stream;    // the JetStream stream, created when missing (work-queue retention, file storage)
  std::string subject;   // its one subject
  std::string consumer;  // the durable pull consumer every worker shares
  std::chrono::milliseconds ack_wait{30000};  // a message fetched and not acknowledged within this is delivered again
};

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
  // The work queue, its stream and consumer created when missing.
  Result<std::unique_ptr<WorkQueue>> Queue(const WorkQueueOptions& options);
  bool connected() const;

 private:
  NatsConnection() = default;
  int replicas_ = 1;
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
  // Puts only where the key holds no value: AlreadyExists otherwise.
  Result<uint64_t> Create(const std::string& key, const std::string& value);
  // Puts only where the key's revision is still `last` (compare-and-set): FailedPrecondition when it has moved.
  Result<uint64_t> Update(const std::string& key, const std::string& value, uint64_t last);
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

// A message taken from a work queue: acknowledged (removed from the stream), or left to be delivered again.
class QueuedMessage {
 public:
  ~QueuedMessage();  // neither acknowledged nor refused: delivered again after the ack wait
  QueuedMessage(const QueuedMessage&) = delete;
  QueuedMessage& operator=(const QueuedMessage&) = delete;
  std::string_view data() const;
  uint64_t deliveries() const;                  // 1 the first time
  void Ack();                                   // done with: removed from the stream
  void InProgress();                            // still working on it: the ack wait starts again
  void Retry(std::chrono::milliseconds delay);  // deliver it again after `delay`

 private:
  friend class WorkQueue;
  explicit QueuedMessage(natsMsg* m) : msg_(m) {}
  natsMsg* msg_;
};

class WorkQueue {
 public:
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  // Publishes into the stream and waits for the server to store it. `id`: de-duplicates a publish repeated within
  // the stream's duplicate window (2 minutes).
  Status Publish(const std::string& data, const std::string& id);
  // Up to `max` messages, waiting up to `timeout` for the first; none on timeout.
  Result<std::vector<std::unique_ptr<QueuedMessage>>> Fetch(int max, std::chrono::milliseconds timeout);

 private:
  friend class NatsConnection;
  WorkQueue(jsCtx* js, natsSubscription* sub, std::string subject) : js_(js), sub_(sub), subject_(std::move(subject)) {}
  jsCtx* js_;
  natsSubscription* sub_;
  std::string subject_;
};

}  // namespace fluidfaas::cluster
