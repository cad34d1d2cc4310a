#include "cluster/gateway.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <sstream>
#include <thread>

#include "api/auth.h"
#include "api/event_loop.h"
#include "api/router.h"
#include "cluster/function_sync.h"
#include "cluster/gateway_grpc.h"
#include "daemon/http_api.h"
#include "daemon/inference.h"
#include "model/zoo.h"

namespace fluidfaas::cluster {
namespace {

using api::HttpRequest;
using api::HttpResponse;
using api::JsonError;
using api::JsonResponse;
using api::Responder;
using api::RouteParams;

// The table's clock: the steady clock's own time, the same for every caller (a RealClock counts from its own
// construction and runs a timer thread the gateway does not need).
TimePoint SteadyNow() {
  return TimePoint{} + std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace

struct Gateway::Impl {
  // The edge's and the forwarder's loop: a call is read, sent on to its node and answered on one thread. First
  // here, so that it outlives both.
  api::EventLoop loop;
  GatewayOptions options;
  NodeTable table;
  std::unique_ptr<NatsConnection> nats;
  std::unique_ptr<KvBucket> bucket;
  std::unique_ptr<KvBucket> functions;
  std::unique_ptr<Forwarder> forwarder;
  std::unique_ptr<AsyncCalls> async;
  std::unique_ptr<GatewayGrpc> grpc;
  int grpc_port = 0;
  api::Router router;
  std::unique_ptr<api::HttpServer> server;
  int port = 0;
  std::thread watcher;
  std::atomic<bool> stop{false};
  std::atomic<bool> view_ready{false};
  std::atomic<uint64_t> next_request{1};

  // Metrics.
  Mutex metrics_mu;
  std::map<std::string, uint64_t> answers GUARDED_BY(metrics_mu);   // by code ("" for 2xx)
  std::map<std::string, uint64_t> forwards GUARDED_BY(metrics_mu);  // by node
  uint64_t retries GUARDED_BY(metrics_mu) = 0;

  explicit Impl(GatewayOptions o) : options(std::move(o)), table(options.routing, options.silence) {}

  void Count(const std::string& code) {
    MutexLock lock(metrics_mu);
    ++answers[code];
  }

  // ---------------------------------------------------------------- the nodes' reports
  void Watch() {
    while (!stop.load()) {
      Result<std::unique_ptr<KvWatcher>> w = bucket->WatchAll();
      if (!w.ok()) {
        spdlog::warn("gateway: watching the nodes: {}", w.status().message());
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      // Nodes report at least every 0.5 s: a watcher silent for twice the silence has most likely lost its
      // consumer (a restarted NATS server forgets it); a new one gets every node's latest report again.
      TimePoint heard = SteadyNow();
      TimePoint silence_checked = heard;
      while (!stop.load()) {
        Result<std::optional<KvEntry>> e = (*w)->Next(std::chrono::milliseconds(200));
        if (!e.ok()) {
          spdlog::warn("gateway: the nodes' watcher: {}; watching again", e.status().message());
          break;
        }
        // Every 100 ms, not per report: a thousand nodes send two thousand reports a second.
        if (SteadyNow() - silence_checked >= Millis(100)) {
          silence_checked = SteadyNow();
          AbandonSilentNodes();
        }
        if (!e->has_value()) {
          if ((*w)->caught_up()) view_ready = true;  // every node's latest report is in: queued calls may run
          if (SteadyNow() - heard > 2 * options.silence) {
            spdlog::warn("gateway: no report for {:.1f} s; watching the nodes again", ToSeconds(SteadyNow() - heard));
            break;
          }
          continue;
        }
        heard = SteadyNow();
        const KvEntry& entry = **e;
        if (entry.deleted) {
          spdlog::info("gateway: node {} left", entry.key);
          if (const std::string address = table.Address(entry.key); !address.empty()) forwarder->Forget(address);
          table.Remove(entry.key);
          continue;
        }
        Result<NodeReport> r = ParseNodeReport(entry.value);
        if (!r.ok()) {
          spdlog::warn("gateway: a report under '{}' was refused: {}", entry.key, r.status().message());
          continue;
        }
        if (r->node != entry.key) {
          spdlog::warn("gateway: the report under '{}' names node '{}': refused", entry.key, r->node);
          continue;
        }
        const bool known = table.Healthy(r->node, SteadyNow());
        table.Apply(*r, SteadyNow());
        if (!known) spdlog::info("gateway: node {} at {} is healthy", r->node, r->advertise);
      }
    }
  }

  // A node that stopped reporting (SIGSTOP, hung, cut off) will not answer the calls it holds: they end now, each
  // retried elsewhere while its SLO allows, else 502 node_lost, rather than waiting for the forwarder's timeout.
  void AbandonSilentNodes() {
    for (const auto& [node, address] : table.NewlySilent(SteadyNow())) {
      spdlog::warn("gateway: node {} fell silent (no report for {:.1f} s): its calls in flight are given up", node,
                   ToSeconds(options.silence));
      forwarder->Abort(address,
                       fmt::format("node {} fell silent: no report for {:.0f} ms", node, ToMillis(options.silence)));
    }
  }

  // ---------------------------------------------------------------- routes
  void Routes() {
    router.Add("GET", "/v2/health/live", [](HttpRequest&&, const RouteParams&, const Responder& r) {
      r.Send(HttpResponse{.status = 200, .body = ""});
    });
    router.Add("GET", "/v2/health/ready", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
      const bool ready = table.healthy_nodes(SteadyNow()) > 0;
      r.Send(ready ? HttpResponse{.status = 200, .body = ""}
                   : JsonError(503, "no healthy node in the cluster", "no_node"));
    });
    router.Add("GET", "/v1/cluster", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
      r.Send(JsonResponse(200, table.Json(SteadyNow())));
    });
    Functions();
    Repository();
    router.Add("POST", "/v1/async/{}", [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
      if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
      if (table.SloMs(p[0]) <= 0) {
        return r.Send(JsonError(404, "no node serves function " + daemon::QuotedName(p[0]), "unknown_function"));
      }
      r.Send(async->Submit(p[0], req));
    });
    router.Add("GET", "/v1/async/{}", [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
      if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
      r.Send(async->Lookup(p[0]));
    });
    router.Add("GET", "/metrics", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
      r.Send(HttpResponse{.status = 200, .content_type = "text/plain; version=0.0.4", .body = Metrics()});
    });
    // OpenAI's routes name the function in the body.
    for (const char* route : {"/v1/completions", "/v1/chat/completions"}) {
      router.Add("POST", route, [this](HttpRequest&& req, const RouteParams&, const Responder& r) {
        const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        const auto model = body.is_object() ? body.find("model") : body.end();
        if (model == body.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
          Count("bad_input");
          return r.Send(JsonResponse(400, {{"error",
                                            {{"message", "\"model\" must name a function"},
                                             {"type", "invalid_request_error"},
                                             {"code", "bad_input"}}}}));
        }
        const std::string name = model->get<std::string>();
        const auto flag = body.find("stream");
        const bool stream = flag != body.end() && flag->is_boolean() && flag->get<bool>();
        Call(std::move(req), name, r, stream ? Answer::kStream : Answer::kWatched);
      });
    }
    for (const std::string base : {"/v2/models/{}", "/v2/models/{}/versions/{}"}) {
      // Generation too: a stream (generate_stream, or OpenAI's with "stream": true) is passed on as the node writes
      // it (Forwarder's ForwardStream).
      for (const std::string route : {"/infer", "/generate", "/generate_stream"}) {
        const Answer how = route == "/infer"      ? Answer::kWhole
                           : route == "/generate" ? Answer::kWatched
                                                  : Answer::kStream;
        router.Add("POST", base + route, [this, how](HttpRequest&& req, const RouteParams& p, const Responder& r) {
          Call(std::move(req), p[0], r, how);
        });
      }
      for (const std::string tail : {"", "/ready"}) {
        router.Add("GET", base + tail, [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
          Call(std::move(req), p[0], r);
        });
      }
    }
  }

  // Deployments for the whole cluster: kept in the functions bucket, which every node follows (FunctionSync).
  // Puts `f` in the functions bucket, which every node follows: the answer `ok_status` (202 for /v1/functions, 200
  // for the repository's load) or why not.
  HttpResponse DeployToCluster(daemon::FunctionConfig f, int ok_status) const {
    if (f.name.empty()) f.name = f.model.empty() ? f.directory : f.model;
    if (Status s = CheckNodeName(f.name); !s.ok()) {
      return JsonError(400, "function name " + daemon::QuotedName(f.name) + ": " + s.message(), "bad_input");
    }
    Result<uint64_t> put = functions->Put(f.name, daemon::FunctionConfigJson(f).dump());
    if (!put.ok()) return JsonError(503, put.status().message(), "nats_unavailable");
    spdlog::info("gateway: function {} deployed to the cluster", f.name);
    return JsonResponse(ok_status, {{"name", f.name}, {"state", "deploying"}, {"revision", *put}});
  }
  HttpResponse RemoveFromCluster(const std::string& name, int ok_status) const {
    Result<std::optional<KvEntry>> e = functions->Get(name);
    if (!e.ok()) return JsonError(503, e.status().message(), "nats_unavailable");
    if (!e->has_value() || (*e)->deleted) {
      return JsonError(404, "no function " + daemon::QuotedName(name) + " deployed to the cluster", "unknown_function");
    }
    if (Status s = functions->Delete(name); !s.ok()) return JsonError(503, s.message(), "nats_unavailable");
    return JsonResponse(ok_status, {{"name", name}, {"state", "removing"}});
  }

  // The model repository extension over the cluster: the index lists every function a node reports or the
  // functions bucket holds (READY when a healthy node serves it); load deploys a zoo model by its name, else a
  // repository directory of that name, to every node; unload removes it.
  void Repository() {
    router.Add("POST", "/v2/repository/index", [this](HttpRequest&& req, const RouteParams&, const Responder& r) {
      std::optional<bool> ready;
      if (!req.body.empty()) {
        const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
        if (!body.is_object()) return r.Send(JsonError(400, "the body is not a JSON object", "bad_input"));
        if (body.contains("ready")) {
          if (!body["ready"].is_boolean()) return r.Send(JsonError(400, "\"ready\" must be a boolean", "bad_input"));
          ready = body["ready"].get<bool>();
        }
      }
      std::map<std::string, bool> all = table.Functions(SteadyNow());
      if (Result<std::vector<std::string>> keys = functions->Keys(); keys.ok()) {
        for (const std::string& k : *keys) all.try_emplace(k, false);
      }
      nlohmann::json out = nlohmann::json::array();
      for (const auto& [name, served] : all) {
        if (ready && *ready != served) continue;
        nlohmann::json e = {{"name", name}, {"version", "1"}, {"state", served ? "READY" : "UNAVAILABLE"}};
        if (!served) e["reason"] = "no healthy node serves it yet";
        out.push_back(std::move(e));
      }
      r.Send(JsonResponse(200, out));
    });
    router.Add("POST", "/v2/repository/models/{}/load",
               [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
                 if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
                 daemon::FunctionConfig f;
                 f.name = p[0];
                 const bool zoo = std::any_of(model::ZooModels().begin(), model::ZooModels().end(),
                                              [&](const model::ZooEntry& m) { return m.name == p[0]; });
                 (zoo ? f.model : f.directory) = p[0];
                 r.Send(DeployToCluster(std::move(f), 200));
               });
    router.Add("POST", "/v2/repository/models/{}/unload",
               [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
                 if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
                 r.Send(RemoveFromCluster(p[0], 200));
               });
  }

  void Functions() {
    router.Add("GET", "/v1/functions", [this](HttpRequest&&, const RouteParams&, const Responder& r) {
      Result<std::vector<std::string>> keys = functions->Keys();
      if (!keys.ok()) return r.Send(JsonError(503, keys.status().message(), "nats_unavailable"));
      nlohmann::json out = nlohmann::json::array();
      for (const std::string& k : *keys) {
        Result<std::optional<KvEntry>> e = functions->Get(k);
        if (!e.ok() || !e->has_value() || (*e)->deleted) continue;
        nlohmann::json spec = nlohmann::json::parse((*e)->value, nullptr, false);
        if (!spec.is_discarded()) out.push_back(std::move(spec));
      }
      r.Send(JsonResponse(200, out));
    });
    router.Add("POST", "/v1/functions", [this](HttpRequest&& req, const RouteParams&, const Responder& r) {
      if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
      const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded()) return r.Send(JsonError(400, "the body is not JSON", "bad_input"));
      Result<daemon::FunctionConfig> f = daemon::ParseFunctionConfig(body);
      if (!f.ok()) return r.Send(JsonError(400, f.status().message(), "bad_input"));
      r.Send(DeployToCluster(std::move(*f), 202));
    });
    router.Add("DELETE", "/v1/functions/{}", [this](HttpRequest&& req, const RouteParams& p, const Responder& r) {
      if (!api::Authorized(req, options.token)) return r.Send(api::Unauthorized());
      r.Send(RemoveFromCluster(p[0], 202));
    });
  }

  struct Attempt {
    std::shared_ptr<const HttpRequest> request;  // shared with the forwarder: its body is sent, not copied
    std::string function;
    std::function<void(HttpResponse)> answer;  // once
    uint64_t id = 0;
    TimePoint arrival;
    double slo_ms = 0;
    std::vector<std::string> tried;
    std::optional<HttpResponse> refusal;          // the last node's 429 or 503, answered when no other node is left
    std::shared_ptr<const ForwardStream> stream;  // a stream passed on as it comes (generate_stream)
    std::function<bool()> began;                  // ... whose head has gone to the client: it runs nowhere else
    std::shared_ptr<std::atomic<bool>> stop;      // set when the client has gone (a watched or streamed call)
  };

  // How a call's answer goes back: whole (infer, metadata: short); whole, with the client watched (a generation
  // answered whole: its client leaving stops the node's sequence); or streamed as the node writes it.
  enum class Answer { kWhole, kWatched, kStream };

  // A streamed call's client side: the stream opened with the node's head, its pieces written as they come, ended
  // with the node's end, or cut when the node is lost mid-stream (the client must not take it for a whole one).
  struct ClientStream {
    Responder responder;
    api::StreamWriter writer;
    std::atomic<bool> began{false};
  };

  // The client left before its answer: the call goes to no other node. Its answer is not read by anyone.
  void ClientGone(Attempt& a) {
    Count("client_gone");
    a.answer(JsonError(503, "the client closed its connection before the answer", "client_gone"));
  }

  void Call(HttpRequest&& req, const std::string& function, Responder r, Answer how = Answer::kWhole) {
    if (!api::Authorized(req, options.token)) {
      Count("unauthorized");
      return r.Send(api::Unauthorized());
    }
    if (how != Answer::kStream) {
      std::shared_ptr<std::atomic<bool>> gone;
      if (how == Answer::kWatched) {
        gone = std::make_shared<std::atomic<bool>>(false);
        r.OnGone([this, gone] {
          gone->store(true);
          forwarder->Interrupt(gone);
        });
      }
      Run(
          std::make_shared<const HttpRequest>(std::move(req)), function,
          [r = std::move(r)](HttpResponse response) { r.Send(std::move(response)); }, nullptr, nullptr, gone);
      return;
    }
    // The forwarder's callbacks (head, chunks, then the answer) run one after another on its loop thread.
    auto client = std::make_shared<ClientStream>();
    client->responder = std::move(r);
    auto fs = std::make_shared<ForwardStream>();
    fs->head = [this, client, stop = fs->stop](const HttpResponse& head) {
      client->writer = client->responder.Stream(head, [this, stop] {
        stop->store(true);
        forwarder->Interrupt(stop);  // now, not at the stream's next piece
      });
      client->began = true;
    };
    fs->chunk = [client](std::string_view bytes) { client->writer.Write(std::string(bytes)); };
    Run(
        std::make_shared<const HttpRequest>(std::move(req)), function,
        [client](HttpResponse response) {
          if (!client->began) return client->responder.Send(std::move(response));
          if (response.status < 400) client->writer.End();
          // Unended (the node lost mid-stream): the last copies dropped cut the client's connection.
          client->writer = api::StreamWriter();
          client->responder = Responder();
        },
        fs, [client] { return client->began.load(); });
  }

  // One call through the routing, synchronous or asynchronous: `answer` is called once. A stream's pieces go to
  // `stream` as they come; once `began` says its head went out, the call is tried on no other node.
  void Run(std::shared_ptr<const HttpRequest> request, const std::string& function,
           std::function<void(HttpResponse)> answer, std::shared_ptr<const ForwardStream> stream = nullptr,
           std::function<bool()> began = nullptr, std::shared_ptr<std::atomic<bool>> gone = nullptr) {
    auto a = std::make_shared<Attempt>();
    a->request = std::move(request);
    a->function = function;
    a->answer = std::move(answer);
    a->stop = gone ? std::move(gone) : stream ? stream->stop : nullptr;
    a->stream = std::move(stream);
    a->began = std::move(began);
    a->id = next_request.fetch_add(1);
    a->arrival = SteadyNow();
    a->slo_ms = table.SloMs(function);
    Forward(std::move(a));
  }

  void Forward(std::shared_ptr<Attempt> a) {
    if (stop.load()) {
      Count("shutdown");
      return a->answer(JsonError(503, "the gateway is stopping", "shutdown"));
    }
    if (a->stop && a->stop->load()) return ClientGone(*a);
    const TimePoint now = SteadyNow();
    const double room_ms = a->slo_ms > 0 ? a->slo_ms - ToMillis(now - a->arrival) : 1e9;
    const std::optional<RouteChoice> to = table.Route(a->function, room_ms, a->id, now, a->tried);
    if (!to) {
      if (a->refusal) {
        Count("node_" + std::to_string(a->refusal->status));
        return a->answer(std::move(*a->refusal));
      }
      if (a->tried.empty() && table.SloMs(a->function) <= 0) {
        Count("unknown_function");
        return a->answer(
            JsonError(404, "no node serves function " + daemon::QuotedName(a->function), "unknown_function"));
      }
      Count(a->tried.empty() ? "no_node" : "node_lost");
      return a->answer(
          a->tried.empty()
              ? Retryable(JsonError(503, "no node can take " + daemon::QuotedName(a->function) + " now", "no_node"))
              : JsonError(502, "the nodes tried for the call failed", "node_lost"));
    }
    a->tried.push_back(to->node);
    table.Sent(to->node, a->function);
    {
      MutexLock lock(metrics_mu);
      ++forwards[to->node];
    }
    forwarder->Send(
        to->advertise, a->request,
        [this, a, node = to->node](ForwardResult res) mutable {
          table.Answered(node);
          if (!res.answered && res.error == "client_gone") return ClientGone(*a);
          if (a->began && a->began()) {  // the client has part of this node's stream: no other node continues it
            Count(res.answered ? "" : "node_lost");
            if (!res.answered) spdlog::warn("gateway: {} on node {} cut mid-stream: {}", a->function, node, res.error);
            return a->answer(res.answered ? std::move(res.response)
                                          : JsonError(502, "node " + node + " was lost mid-stream", "node_lost"));
          }
          // Turned away before it ran (the node's deadline or limit, or no slice): the next node may take it.
          if (res.answered && (res.response.status == 429 || res.response.status == 503)) {
            table.MarkBusy(node, a->function);
            a->refusal = res.response;
            const bool time_left = a->slo_ms <= 0 || ToMillis(SteadyNow() - a->arrival) < a->slo_ms;
            if (static_cast<int>(a->tried.size()) < options.max_tries && time_left) {
              {
                MutexLock lock(metrics_mu);
                ++retries;
              }
              return Forward(std::move(a));
            }
          }
          if (res.answered) {
            Count(res.response.status < 400 ? "" : "node_" + std::to_string(res.response.status));
            return a->answer(std::move(res.response));
          }
          if (!res.reached) {
            table.MarkUnreachable(node);
            forwarder->Forget(table.Address(node));
          }
          spdlog::warn("gateway: {} on node {}: {}", a->function, node, res.error);
          // Not reached: the call never ran there. Reached and lost: it may have, but an infer call is a pure function
          // of its input, so it runs again elsewhere while its SLO allows.
          const bool time_left = a->slo_ms <= 0 || ToMillis(SteadyNow() - a->arrival) < a->slo_ms;
          if (static_cast<int>(a->tried.size()) < options.max_tries && (!res.reached || time_left)) {
            {
              MutexLock lock(metrics_mu);
              ++retries;
            }
            return Forward(std::move(a));
          }
          Count("node_lost");
          a->answer(JsonError(502, "node " + node + " was lost with the call: " + res.error, "node_lost"));
        },
        a->stream, a->stop);
  }

  static HttpResponse Retryable(HttpResponse r) {
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  std::string Metrics() {
    std::ostringstream out;
    const TimePoint now = SteadyNow();
    out << "# HELP fluidfaas_gateway_answers_total Calls answered by the gateway, by code (\"\" for a success).\n"
        << "# TYPE fluidfaas_gateway_answers_total counter\n";
    MutexLock lock(metrics_mu);
    for (const auto& [code, n] : answers)
      out << "fluidfaas_gateway_answers_total{code=\"" << code << "\"} " << n << '\n';
    out << "# HELP fluidfaas_gateway_forwards_total Calls forwarded, by node.\n"
        << "# TYPE fluidfaas_gateway_forwards_total counter\n";
    for (const auto& [node, n] : forwards)
      out << "fluidfaas_gateway_forwards_total{node=\"" << node << "\"} " << n << '\n';
    out << "# HELP fluidfaas_gateway_retries_total Calls sent to another node after one failed.\n"
        << "# TYPE fluidfaas_gateway_retries_total counter\n"
        << "fluidfaas_gateway_retries_total " << retries << '\n'
        << "# HELP fluidfaas_gateway_healthy_nodes Nodes heard from within the silence.\n"
        << "# TYPE fluidfaas_gateway_healthy_nodes gauge\n"
        << "fluidfaas_gateway_healthy_nodes " << table.healthy_nodes(now) << '\n';
    const AsyncCounts a = async->Counts();
    out << "# HELP fluidfaas_gateway_async_total Asynchronous calls by this gateway: accepted, then each end by "
           "outcome and code, and each attempt put back in the queue.\n"
        << "# TYPE fluidfaas_gateway_async_total counter\n"
        << "fluidfaas_gateway_async_total{event=\"accepted\",code=\"\"} " << a.accepted << '\n'
        << "fluidfaas_gateway_async_total{event=\"completed\",code=\"\"} " << a.completed << '\n'
        << "fluidfaas_gateway_async_total{event=\"retried\",code=\"\"} " << a.retried << '\n';
    for (const auto& [code, n] : a.failed)
      out << "fluidfaas_gateway_async_total{event=\"failed\",code=\"" << code << "\"} " << n << '\n';
    out << "# HELP fluidfaas_gateway_async_running Asynchronous calls this gateway runs now.\n"
        << "# TYPE fluidfaas_gateway_async_running gauge\n"
        << "fluidfaas_gateway_async_running " << async->in_flight() << '\n';
    return out.str();
  }
};

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options, const std::string& host, int port) {
  if (options.max_tries < 1 || options.max_tries > 16) return Status::InvalidArgument("max_tries: 1 to 16");
  auto impl = std::make_unique<Impl>(std::move(options));
  Impl& g = *impl;
  FF_ASSIGN_OR_RETURN(g.nats, NatsConnection::Connect(g.options.nats));
  FF_ASSIGN_OR_RETURN(g.bucket, g.nats->Bucket(g.options.bucket));
  FF_ASSIGN_OR_RETURN(g.functions, g.nats->Bucket(kFunctionsBucket));
  g.loop.Start();
  ForwarderOptions forward = g.options.forward;
  forward.loop = &g.loop;
  g.forwarder = std::make_unique<Forwarder>(forward);
  FF_ASSIGN_OR_RETURN(
      g.async, AsyncCalls::Start(
                   *g.nats, g.options.async,
                   [&g](std::shared_ptr<const HttpRequest> request, const std::string& model,
                        std::function<void(HttpResponse)> done) { g.Run(std::move(request), model, std::move(done)); },
                   [&g] { return g.view_ready.load(); }));
  g.Routes();
  g.server = std::make_unique<api::HttpServer>(
      g.options.limits, [&g](HttpRequest&& req, Responder r) { g.router.Handle(std::move(req), std::move(r)); },
      [&g](std::string_view method, std::string_view target) {
        return g.router.BodyLimit(method, target, g.options.limits.max_body_bytes);
      },
      &g.loop);
  FF_ASSIGN_OR_RETURN(g.port, g.server->Start(host, port));
  if (!g.options.grpc_host.empty()) {
    g.grpc = std::make_unique<GatewayGrpc>(
        [&g](std::shared_ptr<const HttpRequest> request, const std::string& model,
             std::function<void(HttpResponse)> done) { g.Run(std::move(request), model, std::move(done)); },
        [&g] { return g.table.healthy_nodes(SteadyNow()) > 0; },
        GatewayGrpc::Options{.token = g.options.token, .max_message_bytes = g.options.limits.max_body_bytes});
    FF_ASSIGN_OR_RETURN(g.grpc_port, g.grpc->Start(g.options.grpc_host, g.options.grpc_port));
  }
  g.watcher = std::thread([&g] { g.Watch(); });
  spdlog::info("gateway: listening on {}:{}, nodes from NATS {} bucket {}, routing {}", host, g.port,
               g.options.nats.url, g.options.bucket, policy::ToString(g.options.routing));
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::~Gateway() {
  impl_->stop = true;
  if (impl_->async) impl_->async->Stop();  // takes no more queued calls
  if (impl_->grpc) impl_->grpc->Stop();    // gRPC calls running end first (a short grace)
  if (impl_->server) impl_->server->Stop();
  if (impl_->watcher.joinable()) impl_->watcher.join();
  // Calls in flight are answered (their responders drop into 500s if not; asynchronous ones go back to the queue).
  impl_->forwarder.reset();
  impl_->async.reset();
  impl_->loop.Stop();
}

int Gateway::port() const {
  return impl_->port;
}

int Gateway::grpc_port() const {
  return impl_->grpc_port;
}

TimePoint Gateway::Now() const {
  return SteadyNow();
}

NodeTable& Gateway::table() {
  return impl_->table;
}

AsyncCalls& Gateway::async() {
  return *impl_->async;
}

}  // namespace fluidfaas::cluster
