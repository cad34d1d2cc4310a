#include "cluster/nats.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>

namespace fluidfaas::cluster {
namespace {

Status Failed(const std::string& what, natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string detail = natsStatus_GetText(s);
  // libnats's last error adds where it failed ("(conn.c:2088): ...") and often the same words: kept only when it
  // says more.
  if (last != nullptr && std::string_view(last).find(detail) == std::string_view::npos) {
    detail += " (" + std::string(last) + ")";
  }
  return Status::Unavailable(what + ": " + detail);
}

void OnDisconnected(natsConnection* nc, void*) {
  // Closing a connection disconnects it too, on libnats's own thread, maybe while the process exits: say nothing
  // then (nothing is reconnecting, and the logger may be gone).
  if (natsConnection_IsClosed(nc)) return;
  spdlog::warn("nats: disconnected; reconnecting");
}
void OnReconnected(natsConnection*, void*) {
  spdlog::info("nats: reconnected");
}

}  // namespace

Result<std::unique_ptr<NatsConnection>> NatsConnection::Connect(const NatsOptions& o) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> guard(opts, natsOptions_Destroy);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, o.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, o.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, o.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, o.reconnect_wait_ms);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, OnDisconnected, nullptr);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, OnReconnected, nullptr);
  if (s == NATS_OK && !o.token.empty()) s = natsOptions_SetToken(opts, o.token.c_str());
  if (s == NATS_OK && !o.creds_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, o.creds_file.c_str(), nullptr);
  }
  if (s != NATS_OK) return Failed("nats options", s);
  if (o.replicas < 1 || o.replicas > 5) return Status::InvalidArgument("NATS replicas must be 1..5");
  std::unique_ptr<NatsConnection> c(new NatsConnection());
  c->replicas_ = o.replicas;
  s = natsConnection_Connect(&c->nc_, opts);
  if (s != NATS_OK) return Failed("cannot connect to NATS at " + o.url, s);
  s = natsConnection_JetStream(&c->js_, c->nc_, nullptr);
  if (s != NATS_OK) return Failed("JetStream", s);
  return c;
}

NatsConnection::~NatsConnection() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

bool NatsConnection::connected() const {
  return nc_ != nullptr && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

Result<std::unique_ptr<KvBucket>> NatsConnection::Bucket(const std::string& name, int history,
                                                         std::chrono::milliseconds ttl) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js_, name.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = name.c_str();
    cfg.History = static_cast<uint8_t>(std::clamp(history, 1, 64));
    cfg.TTL = std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();  // nanoseconds (cnats)
    cfg.Replicas = replicas_;
    s = js_CreateKeyValue(&kv, js_, &cfg);
    // Another process created it meanwhile: bind to theirs.
    if (s != NATS_OK) s = js_KeyValue(&kv, js_, name.c_str());
  }
  if (s != NATS_OK) return Failed("key-value bucket " + name, s);
  return std::unique_ptr<KvBucket>(new KvBucket(kv));
}

KvBucket::~KvBucket() {
  kvStore_Destroy(kv_);
}

Result<uint64_t> KvBucket::Put(const std::string& key, const std::string& value) {
  uint64_t rev = 0;
  const natsStatus s = kvStore_Put(&rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return Failed("put " + key, s);
  return rev;
}

namespace {
KvEntry ToEntry(kvEntry* e) {
  KvEntry out;
  out.key = kvEntry_Key(e);
  const int n = kvEntry_ValueLen(e);
  if (n > 0) out.value.assign(static_cast<const char*>(kvEntry_Value(e)), static_cast<size_t>(n));
  out.deleted = kvEntry_Operation(e) != kvOp_Put;
  out.revision = kvEntry_Revision(e);
  return out;
}
}  // namespace

Result<uint64_t> KvBucket::Create(const std::string& key, const std::string& value) {
  uint64_t rev = 0;
  const natsStatus s = kvStore_Create(&rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_OK) return rev;
  // The server refuses a create on a key with a value by its expected-last-sequence check.
  if (nats_GetLastError(nullptr) != nullptr &&
      std::string_view(nats_GetLastError(nullptr)).find("wrong last") != std::string_view::npos) {
    return Status::AlreadyExists("key " + key + " holds a value");
  }
  return Failed("create " + key, s);
}

Result<uint64_t> KvBucket::Update(const std::string& key, const std::string& value, uint64_t last) {
  uint64_t rev = 0;
  const natsStatus s = kvStore_Update(&rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size()), last);
  if (s == NATS_OK) return rev;
  if (nats_GetLastError(nullptr) != nullptr &&
      std::string_view(nats_GetLastError(nullptr)).find("wrong last") != std::string_view::npos) {
    return Status::FailedPrecondition("key " + key + " moved past revision " + std::to_string(last));
  }
  return Failed("update " + key, s);
}

Result<std::optional<KvEntry>> KvBucket::Get(const std::string& key) {
  kvEntry* e = nullptr;
  const natsStatus s = kvStore_Get(&e, kv_, key.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<KvEntry>();
  if (s != NATS_OK) return Failed("get " + key, s);
  KvEntry out = ToEntry(e);
  kvEntry_Destroy(e);
  return std::optional<KvEntry>(std::move(out));
}

Status KvBucket::Delete(const std::string& key) {
  const natsStatus s = kvStore_Delete(kv_, key.c_str());
  return s == NATS_OK ? Status::Ok() : Failed("delete " + key, s);
}

Result<std::vector<std::string>> KvBucket::Keys() {
  kvKeysList list{};
  const natsStatus s = kvStore_Keys(&list, kv_, nullptr);
  if (s == NATS_NOT_FOUND) return std::vector<std::string>();
  if (s != NATS_OK) return Failed("keys", s);
  std::vector<std::string> keys(list.Keys, list.Keys + list.Count);
  kvKeysList_Destroy(&list);
  return keys;
}

Result<std::unique_ptr<KvWatcher>> KvBucket::WatchAll() {
  kvWatcher* w = nullptr;
  const natsStatus s = kvStore_WatchAll(&w, kv_, nullptr);
  if (s != NATS_OK) return Failed("watch", s);
  return std::unique_ptr<KvWatcher>(new KvWatcher(w));
}

KvWatcher::~KvWatcher() {
  kvWatcher_Stop(w_);
  kvWatcher_Destroy(w_);
}

Result<std::optional<KvEntry>> KvWatcher::Next(std::chrono::milliseconds timeout) {
  kvEntry* e = nullptr;
  const natsStatus s = kvWatcher_Next(&e, w_, timeout.count());
  if (s == NATS_TIMEOUT) return std::optional<KvEntry>();
  if (s != NATS_OK) return Failed("watcher", s);
  if (e == nullptr) {  // the initial values are all in
    caught_up_ = true;
    return std::optional<KvEntry>();
  }
  KvEntry out = ToEntry(e);
  kvEntry_Destroy(e);
  return std::optional<KvEntry>(std::move(out));
}

Result<std::unique_ptr<WorkQueue>> NatsConnection::Queue(const WorkQueueOptions& o) {
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = o.stream.c_str();
  const char* subjects[] = {o.subject.c_str()};
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_WorkQueuePolicy;
  sc.Storage = js_FileStorage;
  sc.Replicas = replicas_;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(nullptr, js_, &sc, nullptr, &jerr);
  if (s != NATS_OK && jerr != JSStreamNameExistErr) return Failed("stream " + o.stream, s);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = o.consumer.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(o.ack_wait).count();  // nanoseconds (cnats)
  cc.MaxDeliver = -1;  // the worker decides when to give up, and says why
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = o.stream.c_str();
  so.Config = cc;
  natsSubscription* sub = nullptr;
  s = js_PullSubscribe(&sub, js_, o.subject.c_str(), o.consumer.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) return Failed("consumer " + o.consumer + " of stream " + o.stream, s);
  return std::unique_ptr<WorkQueue>(new WorkQueue(js_, sub, o.subject));
}

WorkQueue::~WorkQueue() {
  natsSubscription_Destroy(sub_);
}

Status WorkQueue::Publish(const std::string& data, const std::string& id) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = id.c_str();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsPubAck* ack = nullptr;
  const natsStatus s = js_Publish(&ack, js_, subject_.c_str(), data.data(), static_cast<int>(data.size()), &po, &jerr);
  if (ack != nullptr) jsPubAck_Destroy(ack);
  return s == NATS_OK ? Status::Ok() : Failed("publish to " + subject_, s);
}

Result<std::vector<std::unique_ptr<QueuedMessage>>> WorkQueue::Fetch(int max, std::chrono::milliseconds timeout) {
  natsMsgList list{};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = natsSubscription_Fetch(&list, sub_, max, timeout.count(), &jerr);
  std::vector<std::unique_ptr<QueuedMessage>> out;
  if (s == NATS_TIMEOUT) return out;
  if (s != NATS_OK) return Failed("fetch", s);
  for (int i = 0; i < list.Count; ++i) {
    out.push_back(std::unique_ptr<QueuedMessage>(new QueuedMessage(list.Msgs[i])));
    list.Msgs[i] = nullptr;  // owned by the QueuedMessage now
  }
  natsMsgList_Destroy(&list);
  return out;
}

QueuedMessage::~QueuedMessage() {
  natsMsg_Destroy(msg_);
}

std::string_view QueuedMessage::data() const {
  return {natsMsg_GetData(msg_), static_cast<size_t>(natsMsg_GetDataLength(msg_))};
}

uint64_t QueuedMessage::deliveries() const {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg_) != NATS_OK) return 1;
  const uint64_t n = meta->NumDelivered;
  jsMsgMetaData_Destroy(meta);
  return n;
}

void QueuedMessage::Ack() {
  natsMsg_Ack(msg_, nullptr);
}

void QueuedMessage::InProgress() {
  natsMsg_InProgress(msg_, nullptr);
}

void QueuedMessage::Retry(std::chrono::milliseconds delay) {
  natsMsg_NakWithDelay(msg_, delay.count(), nullptr);
}

}  // namespace fluidfaas::cluster
