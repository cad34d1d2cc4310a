#include "cluster/async_calls.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <random>

#include "daemon/inference.h"

namespace fluidfaas::cluster {
namespace {

using api::HttpRequest;
using api::HttpResponse;
using api::JsonError;
using nlohmann::json;

// A call's id: 128 random bits in hex (a key and a NATS message id).
std::string NewId() {
  static Mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  MutexLock lock(mu);
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

bool IsId(std::string_view id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string StateText(const json& state) {
  return state.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The message: "ID\nMODEL\n" then the call's body.
struct Envelope {
  std::string id, model;
  std::string_view body;
};
std::optional<Envelope> Open(std::string_view data) {
  const size_t a = data.find('\n');
  const size_t b = a == std::string_view::npos ? a : data.find('\n', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  Envelope e{std::string(data.substr(0, a)), std::string(data.substr(a + 1, b - a - 1)), data.substr(b + 1)};
  if (!IsId(e.id) || e.model.empty()) return std::nullopt;
  return e;
}

// Ran out of room or lost its node: worth another attempt later.
bool Retryable(int status) {
  return status == 429 || status == 503 || status == 502;
}

}  // namespace

struct AsyncCalls::Running {  // NOLINT(bugprone-exception-escape): json's implicit members
  std::unique_ptr<QueuedMessage> message;
  std::string id;
  json state;  // as last written
  uint64_t revision = 0;
};

Result<std::unique_ptr<AsyncCalls>> AsyncCalls::Start(NatsConnection& nats, AsyncOptions options, Invoke invoke,
                                                      std::function<bool()> ready) {
  if (options.max_in_flight < 1 || options.max_attempts < 1) {
    return Status::InvalidArgument("async: max_in_flight and max_attempts must be at least 1");
  }
  std::unique_ptr<AsyncCalls> a(new AsyncCalls(options, std::move(invoke), std::move(ready)));
  FF_ASSIGN_OR_RETURN(a->calls_, nats.Bucket(kAsyncBucket, 1, options.keep));
  FF_ASSIGN_OR_RETURN(a->queue_, nats.Queue(WorkQueueOptions{.stream = kAsyncStream,
                                                             .subject = "fluidfaas.async",
                                                             .consumer = "fluidfaas-gateways",
                                                             .ack_wait = options.ack_wait}));
  a->ender_ = std::thread([p = a.get()] { p->EndQueued(); });
  a->worker_ = std::thread([p = a.get()] { p->Work(); });
  return a;
}

AsyncCalls::~AsyncCalls() {
  Stop();
  {
    MutexLock lock(mu_);
    // The calls running end through the forwarder, which the gateway stops after this worker: bounded by its
    // timeout.
    lock.WaitFor(ended_, std::chrono::seconds(30), [this] {
      mu_.AssertHeld();
      return running_.empty();
    });
    ender_stop_ = true;
  }
  ends_ready_.notify_all();
  if (ender_.joinable()) ender_.join();
}

void AsyncCalls::QueueEnd(std::shared_ptr<Running> run, HttpResponse response) {
  {
    MutexLock lock(mu_);
    ends_.emplace_back(std::move(run), std::move(response));
  }
  ends_ready_.notify_one();
}

void AsyncCalls::EndQueued() {
  for (;;) {
    std::pair<std::shared_ptr<Running>, HttpResponse> end;
    {
      MutexLock lock(mu_);
      lock.Wait(ends_ready_, [this] {
        mu_.AssertHeld();
        return !ends_.empty() || ender_stop_;
      });
      if (ends_.empty()) return;  // stopping, and every end queued is recorded
      end = std::move(ends_.front());
      ends_.pop_front();
    }
    try {
      End(end.first, end.second);
    } catch (const std::exception& e) {
      spdlog::error("async: call {}: {}", end.first->id, e.what());  // delivered again after the ack wait
    }
  }
}

void AsyncCalls::Stop() {
  stop_ = true;
  if (worker_.joinable()) worker_.join();
}

HttpResponse AsyncCalls::Submit(const std::string& model, const HttpRequest& request) {
  if (request.HasHeader("Inference-Header-Content-Length")) {
    return JsonError(415, "asynchronous calls take JSON bodies, not the binary tensor extension", "unsupported_media");
  }
  if (request.body.size() > options_.max_body_bytes) {
    return JsonError(413,
                     "an asynchronous call's body is at most " + std::to_string(options_.max_body_bytes) +
                         " bytes (it rides a NATS message); call synchronously",
                     "body_too_large");
  }
  const std::string id = NewId();
  const json state = {{"id", id}, {"model", model}, {"state", "queued"}, {"attempts", 0}};
  if (auto created = calls_->Create(id, StateText(state)); !created.ok()) {
    return JsonError(503, "the call queue is unavailable: " + created.status().message(), "queue_unavailable");
  }
  std::string data = id + "\n" + model + "\n";
  data += request.body;
  if (Status s = queue_->Publish(data, id); !s.ok()) {
    (void)calls_->Delete(id);
    return JsonError(503, "the call queue is unavailable: " + s.message(), "queue_unavailable");
  }
  {
    MutexLock lock(mu_);
    ++counts_.accepted;
  }
  return api::JsonResponse(202, {{"id", id}, {"state", "queued"}});
}

HttpResponse AsyncCalls::Lookup(const std::string& id) {
  if (!IsId(id)) return JsonError(404, "no asynchronous call " + daemon::QuotedName(id), "unknown_call");
  auto entry = calls_->Get(id);
  if (!entry.ok()) return JsonError(503, "the call store is unavailable: " + entry.status().message(), "unavailable");
  if (!*entry || (*entry)->deleted) {
    return JsonError(404, "no asynchronous call " + id + " (or it is older than its keep time)", "unknown_call");
  }
  return HttpResponse{.status = 200, .body = (*entry)->value};
}

void AsyncCalls::Work() {
  auto last_progress = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    size_t free = 0;
    {
      MutexLock lock(mu_);
      free = static_cast<size_t>(options_.max_in_flight) - std::min(running_.size(), size_t(options_.max_in_flight));
    }
    // Calls that run long keep their messages: the ack wait starts again a few times per wait.
    if (std::chrono::steady_clock::now() - last_progress > options_.ack_wait / 3) {
      last_progress = std::chrono::steady_clock::now();
      MutexLock lock(mu_);
      for (auto& [id, run] : running_) run->message->InProgress();
    }
    if (free == 0 || !ready_()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    auto fetched = queue_->Fetch(static_cast<int>(std::min<size_t>(free, 16)), std::chrono::milliseconds(200));
    if (!fetched.ok()) {
      spdlog::warn("async: {}", fetched.status().message());
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    for (auto& m : *fetched) Take(std::move(m));
  }
}

void AsyncCalls::Take(std::unique_ptr<QueuedMessage> message) {
  const std::optional<Envelope> e = Open(message->data());
  if (!e) {
    spdlog::error("async: a message that is not a call was dropped");
    return message->Ack();
  }
  auto entry = calls_->Get(e->id);
  if (!entry.ok()) return;  // NATS is away: left unacknowledged, the message comes again after the ack wait
  json state = *entry && !(*entry)->deleted ? json::parse((*entry)->value, nullptr, false) : json();
  const uint64_t revision = *entry ? (*entry)->revision : 0;
  if (!state.is_object()) state = {{"id", e->id}, {"model", e->model}, {"state", "queued"}, {"attempts", 0}};
  const std::string now = state.value("state", "");
  if (now == "completed" || now == "failed") return message->Ack();  // ended: this is a delivery too many
  if (now == "running") {
    // Claimed by a worker that stopped before the call ended: it may have run; it is not run twice.
    state["state"] = "failed";
    state["code"] = "gateway_lost";
    state["error"] = "the gateway running the call stopped, or could not record its end; it may or may not have run";
    if (calls_->Update(e->id, StateText(state), revision).ok()) {
      MutexLock lock(mu_);
      ++counts_.failed["gateway_lost"];
    }
    return message->Ack();
  }
  state["state"] = "running";
  state["attempts"] = state.value("attempts", 0) + 1;
  auto claimed = calls_->Update(e->id, StateText(state), revision);
  if (!claimed.ok()) {
    // Moved under us (another delivery's worker), or NATS is away: either way not ours to run now.
    if (claimed.status().code() == StatusCode::kFailedPrecondition) message->Ack();
    return;
  }
  auto run = std::make_shared<Running>();
  run->id = e->id;
  run->state = std::move(state);
  run->revision = *claimed;
  auto request = std::make_shared<HttpRequest>();
  request->method = "POST";
  request->target = "/v2/models/" + e->model + "/infer";
  request->headers = {{"Content-Type", "application/json"}};
  request->body = std::string(e->body);
  run->message = std::move(message);
  {
    MutexLock lock(mu_);
    running_[run->id] = run;
  }
  // Ended once: by the answer, or, when the call is dropped unanswered (the gateway stopping), as a 503 that puts
  // it back in the queue for another gateway.
  struct EndOnce {
    AsyncCalls* calls = nullptr;
    std::shared_ptr<Running> run;
    std::atomic<bool> done{false};
    ~EndOnce() {
      if (!done.load()) calls->QueueEnd(run, JsonError(503, "the gateway stopped with the call", "shutdown"));
    }
  };
  auto once = std::make_shared<EndOnce>();
  once->calls = this;
  once->run = std::move(run);
  invoke_(std::move(request), e->model, [once](const HttpResponse& response) {
    if (!once->done.exchange(true)) once->calls->QueueEnd(once->run, response);
  });
}

void AsyncCalls::End(const std::shared_ptr<Running>& run, const HttpResponse& response) {
  json& state = run->state;
  const int attempts = state.value("attempts", 1);
  bool again = false;
  std::string code;
  if (response.status < 300) {
    json answer = json::parse(response.body, nullptr, false);
    state["state"] = "completed";
    state.erase("code");  // an earlier attempt's
    state.erase("error");
    state["response"] = answer.is_discarded() ? json(response.body) : std::move(answer);
  } else {
    const json error = json::parse(response.body, nullptr, false);
    code = error.is_object() ? error.value("code", "") : "";
    if (code.empty()) code = "status_" + std::to_string(response.status);
    again = Retryable(response.status) && attempts < options_.max_attempts;
    state["state"] = again ? "queued" : "failed";
    state["code"] = code;
    state["error"] = error.is_object() ? error.value("error", "") : response.body.substr(0, 256);
  }
  std::string text = StateText(state);
  if (!again && text.size() > options_.max_body_bytes) {
    state.erase("response");
    state["state"] = "failed";
    state["code"] = code = "result_too_large";
    state["error"] = "the answer is over the call store's value limit; call synchronously";
    text = StateText(state);
  }
  const auto written = calls_->Update(run->id, text, run->revision);
  // The message is answered under mu_: the worker's InProgress on the calls running takes it too.
  MutexLock lock(mu_);
  if (!written.ok()) {
    // Left unacknowledged: delivered again, it finds the call "running" and fails it "gateway_lost".
    spdlog::warn("async: call {}: its end was not recorded: {}", run->id, written.status().message());
  } else if (again) {
    run->message->Retry(options_.retry_delay);
  } else {
    run->message->Ack();
  }
  if (again) {
    ++counts_.retried;
  } else if (state["state"] == "completed") {
    ++counts_.completed;
  } else {
    ++counts_.failed[code];
  }
  running_.erase(run->id);
  ended_.notify_all();
}

AsyncCounts AsyncCalls::Counts() const {
  MutexLock lock(mu_);
  return counts_;
}

size_t AsyncCalls::in_flight() const {
  MutexLock lock(mu_);
  return running_.size();
}

}  // namespace fluidfaas::cluster
