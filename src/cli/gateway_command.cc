// fluidfaas gateway: the cluster's front door (cluster/gateway.h).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include "cluster/gateway.h"

namespace fluidfaas::cli {
namespace {

struct GatewayFlags {
  std::string listen = "127.0.0.1:8080";
  std::string nats = "nats://127.0.0.1:4222";
  std::string token_file;
  std::string nats_creds;
  int nats_replicas = 1;
  std::string nats_token_file;
  std::string routing = "warm-first";
  double silence_s = 2;
  int max_tries = 3;
  double async_ack_wait_s = 30;
  int async_in_flight = 64;
  int async_attempts = 20;
  std::string grpc_listen = "off";
};

Result<std::string> TokenFrom(const std::string& file, const char* flag) {
  if (file.empty()) return std::string();
  auto text = ReadBoundedFile(file, 4096, flag);
  if (!text.ok()) return text.status();
  return TrimToken(*text);
}

int RunGateway(const GatewayFlags& f) {
  const auto fail = [](const Status& s, int code) {
    std::cerr << "fluidfaas gateway: " << s.message() << '\n';
    return code;
  };
  auto listen = ParseListen(f.listen, "--listen");
  if (!listen.ok()) return fail(listen.status(), kExitBadInput);
  std::pair<std::string, int> grpc_listen;
  if (f.grpc_listen != "off") {
    auto parsed = ParseListen(f.grpc_listen, "--grpc-listen");
    if (!parsed.ok()) return fail(parsed.status(), kExitBadInput);
    grpc_listen = *parsed;
  }
  auto routing = policy::ParseRouting(f.routing);
  if (!routing.ok()) return fail(routing.status(), kExitBadInput);
  if (Status s = CheckRange("--silence", f.silence_s, 0.1, 3600); !s.ok()) return fail(s, kExitBadInput);
  if (Status s = CheckRange("--max-tries", int64_t{f.max_tries}, 1, 16); !s.ok()) return fail(s, kExitBadInput);
  auto token = TokenFrom(f.token_file, "--token-file");
  if (!token.ok()) return fail(token.status(), kExitBadInput);
  auto nats_token = TokenFrom(f.nats_token_file, "--nats-token-file");
  if (!nats_token.ok()) return fail(nats_token.status(), kExitBadInput);
  if (!grpc_listen.first.empty() && !Loopback(grpc_listen.first) && token->empty()) {
    return fail(Status::InvalidArgument("gRPC on " + grpc_listen.first +
                                        " (not loopback) needs --token-file: every call then needs that bearer token"),
                kExitBadInput);
  }
  if (!Loopback(listen->first) && token->empty()) {
    return fail(Status::InvalidArgument("listening on " + listen->first +
                                        " (not loopback) needs --token-file: every call then needs that bearer token"),
                kExitBadInput);
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  cluster::GatewayOptions o;
  o.nats.url = f.nats;
  o.nats.name = "fluidfaas-gateway";
  o.nats.token = *nats_token;
  o.nats.creds_file = f.nats_creds;
  o.nats.replicas = f.nats_replicas;
  o.routing = *routing;
  o.silence = SecondsF(f.silence_s);
  o.token = *token;
  o.max_tries = f.max_tries;
  o.async.ack_wait = std::chrono::milliseconds(static_cast<int64_t>(f.async_ack_wait_s * 1000));
  o.async.max_in_flight = f.async_in_flight;
  o.async.max_attempts = f.async_attempts;
  o.grpc_host = grpc_listen.first;
  o.grpc_port = grpc_listen.second;
  o.limits.max_connections = static_cast<size_t>(std::min<uint64_t>(16384, api::RaiseOpenFileLimit() / 2));
  auto gateway = cluster::Gateway::Start(o, listen->first, listen->second);
  if (!gateway.ok()) {
    return fail(gateway.status(),
                gateway.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure);
  }
  std::cerr << "fluidfaas gateway: listening on http://" << listen->first << ':' << (*gateway)->port()
            << ", nodes from " << f.nats << ", routing " << f.routing << "\n  (try: curl http://" << listen->first
            << ':' << (*gateway)->port() << "/v1/cluster)\n";
  if ((*gateway)->grpc_port() > 0) {
    std::cerr << "gRPC (inference.GRPCInferenceService) on " << grpc_listen.first << ':' << (*gateway)->grpc_port()
              << '\n';
  }
  int sig = -1;
  while (sig < 0) sig = sigwaitinfo(&signals, nullptr);
  spdlog::warn("gateway: signal {}: stopping", sig);
  gateway->reset();
  return kExitOk;
}

}  // namespace

void AddGatewayCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<GatewayFlags>();
  CLI::App* g = app.add_subcommand(
      "gateway",
      "The cluster's front door: the Open Inference Protocol over HTTP, each call routed to a node that reports "
      "into NATS (fluidfaas serve --nats ... --node NAME); GET /v1/cluster shows the nodes");
  g->add_option("--listen", f->listen, "HOST:PORT (port 0: any free port)")->capture_default_str();
  g->add_option("--nats", f->nats, "NATS server URL (JetStream on: nats-server -js)")->capture_default_str();
  g->add_option("--token-file", f->token_file, "File holding the bearer token every call must carry")
      ->check(CLI::ExistingFile);
  g->add_option("--nats-creds", f->nats_creds, "NATS credentials file (nkey/JWT)")->check(CLI::ExistingFile);
  g->add_option("--nats-token-file", f->nats_token_file, "File holding the NATS server's token")
      ->check(CLI::ExistingFile);
  g->add_option(
       "--nats-replicas", f->nats_replicas,
       "Copies of the buckets and streams it creates (at most the NATS cluster's servers: 3 survives a restart)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  g->add_option("--routing", f->routing, "warm-first (the design), hash-home (OpenWhisk) or least-loaded")
      ->capture_default_str();
  g->add_option("--silence", f->silence_s, "Seconds without a report before a node is unhealthy")
      ->capture_default_str();
  g->add_option("--max-tries", f->max_tries, "Nodes a call may be sent to when nodes fail under it")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  g->add_option("--grpc-listen", f->grpc_listen,
                "HOST:PORT for the gRPC form of the protocol (port 0: any free port), or off")
      ->capture_default_str();
  g->add_option("--async-ack-wait", f->async_ack_wait_s,
                "Seconds before an asynchronous call taken by a gateway that stopped is taken up again")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  g->add_option("--async-in-flight", f->async_in_flight, "Asynchronous calls this gateway runs at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  g->add_option("--async-attempts", f->async_attempts,
                "Runs of an asynchronous call that finds no capacity or loses its node before it fails")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  g->callback([f, &exit_code] { exit_code = RunGateway(*f); });
}

}  // namespace fluidfaas::cli
