// AsyncCalls: the cluster's asynchronous invocations (POST /v1/async/{model}, GET /v1/async/{id}) on a JetStream
// work queue, so that an accepted call survives a gateway, node or NATS restart and ends exactly once.
//
// A call is a key in the key-value bucket "fluidfaas_async" (its state, kept 24 h) and a message in the stream
// FLUIDFAAS_ASYNC (work-queue retention, file storage), which every gateway's pull consumer shares:
//
//   Submit    key created "queued", then the message published (de-duplicated by the call's id); 202 {"id"}.
//   a worker  fetches the message and claims the call: "queued" -> "running" by compare-and-set on the key's
//             revision, so two deliveries of one message can never both run it; then runs it through the
//             gateway's routing (the same path as a synchronous call) and writes "completed" (the node's answer)
//             or "failed" (its code), then acknowledges the message.
//   again     a message delivered again whose call is "running" was claimed by a worker that stopped before it
//             ended (a gateway killed): the call may or may not have run, so it is not run again but "failed" with
//             code "gateway_lost". A call that finds no capacity (429, 503) or loses its node (502) goes back to
//             "queued" and its message is delivered again after `retry_delay`, up to `max_attempts` runs, then
//             "failed" with the last code.
//
// So every accepted call ends "completed" or "failed" with a reason, never twice, and none is lost while the stream
// keeps its messages. A call's body rides the message: at most `max_body_bytes` (NATS's payload limit is 1 MiB),
// JSON only (the binary extension's bodies are refused with 415).
//
// Thread safety: Submit and Result from any thread; the worker runs on its own thread, and so do its calls' ends
// (a KV write and the message's answer, NATS round trips: on the forwarder's thread they held up every call it
// forwards).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "api/http_server.h"
#include "cluster/nats.h"
#include "common/mutex.h"

namespace fluidfaas::cluster {

inline constexpr char kAsyncBucket[] = "fluidfaas_async";
inline constexpr char kAsyncStream[] = "FLUIDFAAS_ASYNC";

struct AsyncOptions {
  std::chrono::milliseconds ack_wait{30000};    // a worker that stops is noticed this long after it took a call
  std::chrono::milliseconds retry_delay{1000};  // before a call without capacity runs again
  int max_attempts = 20;
  int max_in_flight = 64;  // calls one gateway runs at once
  size_t max_body_bytes = 900 << 10;
  std::chrono::milliseconds keep{std::chrono::hours(24)};  // a call's state, from its last change
};

struct AsyncCounts {
  uint64_t accepted = 0;
  uint64_t completed = 0;
  std::map<std::string, uint64_t> failed;  // by code
  uint64_t retried = 0;
};

class AsyncCalls {
 public:
  // Runs one infer call through the gateway's routing; `done` is called once, from any thread.
  using Invoke = std::function<void(std::shared_ptr<const api::HttpRequest> request, const std::string& model,
                                    std::function<void(api::HttpResponse)> done)>;

  // Creates (or binds to) the bucket, the stream and the shared consumer, and starts the worker, which takes calls
  // once `ready` (a new gateway's view of the nodes is complete: a call run before would find no node).
  static Result<std::unique_ptr<AsyncCalls>> Start(NatsConnection& nats, AsyncOptions options, Invoke invoke,
                                                   std::function<bool()> ready);
  ~AsyncCalls();  // Stop, then waits for the calls it runs to end
  AsyncCalls(const AsyncCalls&) = delete;
  AsyncCalls& operator=(const AsyncCalls&) = delete;

  // Takes no more messages (the calls running end as they will).
  void Stop();

  // POST /v1/async/{model}: 202 {"id", "state": "queued"}; 413 over the body limit; 415 for a binary body; 503
  // when the queue cannot take it (NATS down).
  api::HttpResponse Submit(const std::string& model, const api::HttpRequest& request);
  // GET /v1/async/{id}: 200 {"id", "model", "state", "attempts", ["response"], ["code", "error"]}; 404 unknown.
  api::HttpResponse Lookup(const std::string& id);

  AsyncCounts Counts() const;
  size_t in_flight() const;

 private:
  struct Running;
  AsyncCalls(AsyncOptions options, Invoke invoke, std::function<bool()> ready)
      : options_(options), invoke_(std::move(invoke)), ready_(std::move(ready)) {}
  void Work();
  void Take(std::unique_ptr<QueuedMessage> message);
  // Hands a call's answer to the ender thread, which records it (End).
  void QueueEnd(std::shared_ptr<Running> run, api::HttpResponse response);
  void EndQueued();
  void End(const std::shared_ptr<Running>& run, const api::HttpResponse& response);

  const AsyncOptions options_;
  const Invoke invoke_;
  const std::function<bool()> ready_;
  std::unique_ptr<KvBucket> calls_;
  std::unique_ptr<WorkQueue> queue_;
  std::thread worker_;
  std::thread ender_;
  std::atomic<bool> stop_{false};

  mutable Mutex mu_;
  std::condition_variable_any ended_;
  std::map<std::string, std::shared_ptr<Running>> running_ GUARDED_BY(mu_);
  std::deque<std::pair<std::shared_ptr<Running>, api::HttpResponse>> ends_ GUARDED_BY(mu_);
  bool ender_stop_ GUARDED_BY(mu_) = false;
  std::condition_variable_any ends_ready_;
  AsyncCounts counts_ GUARDED_BY(mu_);
};

}  // namespace fluidfaas::cluster
