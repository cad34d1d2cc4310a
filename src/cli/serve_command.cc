// fluidfaas serve: the node daemon. fluidfaas invoke | deploy | functions: its command-line client.
#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/event_loop.h"
#include "api/http_server.h"
#include "cli/commands.h"
#include "cli/table.h"
#include "cluster/function_sync.h"
#include "cluster/reporter.h"
#include "common/strings.h"
#include "daemon/grpc_api.h"
#include "daemon/http_api.h"
#include "gpu/node_config.h"

namespace fluidfaas::cli {

// HOST:PORT of the flag `flag`.
Result<std::pair<std::string, int>> ParseListen(const std::string& text, const std::string& flag) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return Status::InvalidArgument(flag + ": expected HOST:PORT");
  const std::string host = text.substr(0, colon);
  int port = -1;
  try {
    port = std::stoi(text.substr(colon + 1));
  } catch (...) {
  }
  if (port < 0 || port > 65535) return Status::InvalidArgument(flag + ": port must be in 0..65535");
  return std::make_pair(host, port);
}

// A token file's content without surrounding whitespace (a trailing newline is the usual way to write one).
std::string TrimToken(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

bool Loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1";
}

namespace {

using nlohmann::json;

struct ServeOptions {
  std::string config_path;
  std::string listen = "127.0.0.1:8000";
  std::string grpc_listen;  // empty: --listen's host and port + 1 (any free port when that is 0); "off": none
  std::string policy = "fluidfaas";
  std::vector<std::string> functions = {"resnet50", "bert-base", "llama2-13b"};
  std::vector<std::string> generate;  // zoo models served token by token
  double time_scale = 1.0;
  std::string worker;
  std::string repository;
  std::string token_file;
  double host_memory_gib = 0;
  int max_open = 4096;
  double slo_margin = 0.1;
  double late_margin_cap = 0.3;
  double cold_start_wait_s = 30;
  bool control_thread = false;  // the controller on a thread of its own, not the edge's loop (an ablation)
  // The edge's limits (api/http_server.h), seconds and bytes.
  size_t max_connections = 16384;
  double idle_timeout_s = 30, header_timeout_s = 10, body_timeout_s = 30;
  size_t max_header_bytes = 16 << 10, max_body_mib = 64, max_inflight_mib = 256;
  // Joining a cluster (docs/cluster.md): reports into NATS under --node, reached at --advertise.
  std::string nats_url;
  std::string node_name;
  std::string advertise;
  std::string nats_creds;
  std::string nats_token_file;
  int nats_replicas = 1;
};

// Descriptors kept for the runtime beyond the edge's connections: per slice a worker's control socket, pidfd and
// ring memfds, plus the process's own files.
constexpr uint64_t kReservedFiles = 256;
constexpr uint64_t kFilesPerSlice = 16;

std::string DefaultWorker() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "fluidfaas-worker" : (self.parent_path() / "fluidfaas-worker").string();
}

int RunServe(const ServeOptions& o) {
  auto listen = ParseListen(o.listen, "--listen");
  if (!listen.ok()) {
    std::cerr << "fluidfaas serve: " << listen.status().message() << '\n';
    return kExitBadInput;
  }
  // gRPC: --grpc-listen, or --listen's port + 1 (any free port when that is 0); none with "off".
  auto grpc_listen = o.grpc_listen.empty() ? Result<std::pair<std::string, int>>(std::make_pair(
                                                 listen->first, listen->second == 0 ? 0 : (listen->second + 1) % 65536))
                                           : ParseListen(o.grpc_listen, "--grpc-listen");
  if (o.grpc_listen != "off" && !grpc_listen.ok()) {
    std::cerr << "fluidfaas serve: " << grpc_listen.status().message() << '\n';
    return kExitBadInput;
  }
  if (!o.nats_url.empty()) {
    if (Status s = cluster::CheckNodeName(o.node_name); !s.ok()) {
      std::cerr << "fluidfaas serve: --node: " << s.message() << " (give --node NAME with --nats)\n";
      return kExitBadInput;
    }
  } else if (!o.node_name.empty() || !o.advertise.empty() || !o.nats_creds.empty()) {
    std::cerr << "fluidfaas serve: --node, --advertise and --nats-creds join a cluster: give --nats URL\n";
    return kExitBadInput;
  }
  std::string token;
  if (!o.token_file.empty()) {
    auto text = ReadBoundedFile(o.token_file, 4096, "token file");
    if (!text.ok()) {
      std::cerr << "fluidfaas serve: --token-file: " << text.status().message() << '\n';
      return kExitBadInput;
    }
    token = TrimToken(*text);
  }
  if (!Loopback(listen->first) && token.empty()) {
    std::cerr << "fluidfaas serve: listening on " << listen->first
              << " (not loopback) needs --token-file: deploy, delete, load and unload then need that bearer token\n";
    return kExitBadInput;
  }
  auto config = gpu::LoadNodeConfig(o.config_path);
  if (!config.ok()) {
    std::cerr << "fluidfaas serve: " << config.status().message() << '\n';
    return kExitBadInput;
  }
  auto node = gpu::ResolveNode(*config);
  if (!node.ok()) {
    std::cerr << "fluidfaas serve: " << node.status().message() << '\n';
    return kExitFailure;
  }
  daemon::ControllerOptions co;
  co.node = *node;
  co.policy = o.policy;
  co.worker_binary = o.worker.empty() ? DefaultWorker() : o.worker;
  co.max_open_requests = static_cast<size_t>(o.max_open);
  co.slo_margin = o.slo_margin;
  co.late_margin_cap = o.late_margin_cap;
  if (o.host_memory_gib > 0) {
    co.host_memory_bytes = static_cast<int64_t>(o.host_memory_gib * (1 << 30));
  } else if (config->host_memory_gib) {
    co.host_memory_bytes = static_cast<int64_t>(*config->host_memory_gib * (1 << 30));
  }
  std::vector<std::string> dirs;
  if (!o.repository.empty()) {
    auto repo = daemon::FunctionRepository::Open(o.repository, co.worker_binary);
    if (!repo.ok()) {
      std::cerr << "fluidfaas serve: --repository: " << repo.status().message() << '\n';
      return kExitBadInput;
    }
    dirs = repo->List();
    spdlog::info("repository {}: {} function directories", repo->root(), dirs.size());
    co.repository = std::move(*repo);
  }
  // --functions names zoo models and the repository's directories (a directory's name wins).
  std::vector<daemon::FunctionConfig> functions;
  for (const std::string& f : o.functions) {
    daemon::FunctionConfig fc;
    fc.time_scale = o.time_scale;
    (std::binary_search(dirs.begin(), dirs.end(), f) ? fc.directory : fc.model) = f;
    functions.push_back(fc);
  }
  for (const std::string& m : o.generate) {
    functions.push_back({.name = m, .model = m, .time_scale = o.time_scale, .generate = true});
  }

  // SIGTERM and SIGINT are taken by one thread (blocked everywhere else, before any thread starts).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Open files: raised to the hard limit; the edge's connections get what the runtime's reserve leaves.
  const uint64_t files = api::RaiseOpenFileLimit();
  const uint64_t reserve = kReservedFiles + kFilesPerSlice * node->slices.size();
  api::HttpLimits limits;
  limits.max_connections =
      static_cast<size_t>(std::min<uint64_t>(o.max_connections, files > reserve * 2 ? files - reserve : files / 2));
  limits.idle_timeout = SecondsF(o.idle_timeout_s);
  limits.header_timeout = SecondsF(o.header_timeout_s);
  limits.body_timeout = SecondsF(o.body_timeout_s);
  limits.max_header_bytes = o.max_header_bytes;
  limits.max_body_bytes = o.max_body_mib << 20;
  limits.max_inflight_bytes = o.max_inflight_mib << 20;
  spdlog::info("http: up to {} connections ({} open files, {} kept for the runtime)", limits.max_connections, files,
               reserve);
  co.cold_start_wait = SecondsF(o.cold_start_wait_s);

  // One event loop for the edge and the controller: a request is read, decided and answered on one thread. It
  // outlives both (declared first, stopped last).
  api::EventLoop loop;
  loop.Start();
  if (!o.control_thread) co.loop = &loop;
  auto controller = daemon::Controller::Start(co, functions);
  if (!controller.ok()) {
    std::cerr << "fluidfaas serve: " << controller.status().message() << '\n';
    return controller.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  }
  daemon::HttpApi api(**controller, daemon::HttpApiOptions{.token = token, .limits = limits, .loop = &loop});
  daemon::GrpcApi grpc(**controller, daemon::GrpcApiOptions{.max_message_bytes = limits.max_body_bytes});
  if (o.grpc_listen != "off") {
    auto grpc_port = grpc.Start(grpc_listen->first, grpc_listen->second);
    if (!grpc_port.ok()) {
      std::cerr << "fluidfaas serve: " << grpc_port.status().message() << '\n';
      return kExitFailure;
    }
    std::cerr << "gRPC (inference.GRPCInferenceService) on " << grpc_listen->first << ':' << *grpc_port << '\n';
  }
  auto port = api.Start(listen->first, listen->second);
  if (!port.ok()) {
    std::cerr << "fluidfaas serve: " << port.status().message() << '\n';
    return kExitFailure;
  }
  // The cluster: the node's reports into the nodes bucket while it serves; its key deleted when it stops.
  std::unique_ptr<cluster::NatsConnection> nats;
  std::unique_ptr<cluster::KvBucket> nodes;
  std::unique_ptr<cluster::Reporter> reporter;
  std::unique_ptr<cluster::KvBucket> cluster_functions;
  std::unique_ptr<cluster::FunctionSync> function_sync;
  if (!o.nats_url.empty()) {
    cluster::NatsOptions no;
    no.url = o.nats_url;
    no.name = "fluidfaas-node-" + o.node_name;
    no.creds_file = o.nats_creds;
    no.replicas = o.nats_replicas;
    if (!o.nats_token_file.empty()) {
      auto text = ReadBoundedFile(o.nats_token_file, 4096, "NATS token file");
      if (!text.ok()) {
        std::cerr << "fluidfaas serve: --nats-token-file: " << text.status().message() << '\n';
        return kExitBadInput;
      }
      no.token = TrimToken(*text);
    }
    auto connected = cluster::NatsConnection::Connect(no);
    auto bucket = connected.ok() ? (*connected)->Bucket(cluster::kNodesBucket)
                                 : Result<std::unique_ptr<cluster::KvBucket>>(connected.status());
    if (!bucket.ok()) {
      std::cerr << "fluidfaas serve: --nats: " << bucket.status().message() << '\n';
      return kExitFailure;
    }
    nats = std::move(*connected);
    nodes = std::move(*bucket);
    const std::string advertise = o.advertise.empty() ? listen->first + ":" + std::to_string(*port) : o.advertise;
    daemon::Controller* c = controller->get();
    auto started = cluster::Reporter::Start(*nodes, cluster::ReporterOptions{o.node_name, advertise},
                                            [c] { return c->ClusterReport(); });
    if (!started.ok()) {
      std::cerr << "fluidfaas serve: " << started.status().message() << '\n';
      return kExitBadInput;
    }
    reporter = std::move(*started);
    // The cluster's functions (deployed at the gateway) are deployed here too.
    auto fb = nats->Bucket(cluster::kFunctionsBucket);
    if (!fb.ok()) {
      std::cerr << "fluidfaas serve: --nats: " << fb.status().message() << '\n';
      return kExitFailure;
    }
    cluster_functions = std::move(*fb);
    const double node_time_scale = o.time_scale;
    function_sync = cluster::FunctionSync::Start(
        *cluster_functions,
        cluster::SyncTarget{[c, node_time_scale](const std::string& name, const std::string& spec) -> Status {
                              const json body = json::parse(spec, nullptr, false);
                              if (body.is_discarded()) return Status::InvalidArgument("its spec is not JSON");
                              FF_ASSIGN_OR_RETURN(daemon::FunctionConfig f, daemon::ParseFunctionConfig(body));
                              f.name = name;
                              if (!body.contains("time_scale")) f.time_scale = node_time_scale;
                              return c->Deploy(f);
                            },
                            [c](const std::string& name) { return c->Remove(name); },
                            [c](const std::string& name) { return c->Function(name) != nullptr; }});
    std::cerr << "cluster: node " << o.node_name << " reports to " << o.nats_url << " as " << advertise << '\n';
  }
  std::string names;
  for (const auto& f : (*controller)->Functions()) names += (names.empty() ? "" : ", ") + f.name;
  std::cerr << "fluidfaas serve: node " << node->name << " (" << node->source << ", " << node->slices.size()
            << " slices), policy " << o.policy << ", functions " << names << "\nlistening on http://" << listen->first
            << ':' << *port << "  (try: curl http://" << listen->first << ':' << *port << "/v2/models/"
            << (o.functions.empty() ? "MODEL" : o.functions.front()) << ")\n";
  int sig = -1;
  while (sig < 0) sig = sigwaitinfo(&signals, nullptr);  // EINTR: wait again
  spdlog::warn("serve: signal {}: draining (new requests get 503), then exiting", sig);
  reporter.reset();  // leaves the cluster first: the gateway sends nothing more here
  function_sync.reset();
  const bool drained = (*controller)->Drain(Seconds(30));
  if (!drained)
    spdlog::error("serve: {} requests still open after 30 s: answered 503 shutdown", (*controller)->open_requests());
  (*controller)->Shutdown();  // answers what is still open while the edge can still deliver it
  grpc.Stop();
  api.Stop();
  loop.Stop();
  return kExitOk;
}

// ---- client

struct ClientOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string directory;
  std::string name;
  std::string token_file;
  int max_batch = 0;
  double fill = 0.5;
  double timeout_ms = 0;
  double slo_ms = 0;
  int repeat = 1;
  bool json_output = false;
  bool generate = false;
};

Result<std::string> Token(const std::string& file) {
  if (file.empty()) return std::string();
  FF_ASSIGN_OR_RETURN(std::string text, ReadBoundedFile(file, 4096, "token file"));
  return TrimToken(text);
}

int Show(const httplib::Result& r, const std::string& what) {
  if (!r) {
    std::cerr << "fluidfaas: " << what << ": " << httplib::to_string(r.error()) << '\n';
    return kExitFailure;
  }
  std::cout << r->body << (r->body.empty() || r->body.back() != '\n' ? "\n" : "");
  return r->status / 100 == 2 ? kExitOk : (r->status / 100 == 4 ? kExitBadInput : kExitFailure);
}

int RunInvoke(const ClientOptions& o) {
  httplib::Client c(o.url);
  c.set_read_timeout(120, 0);
  auto meta = c.Get("/v2/models/" + o.model);
  if (!meta || meta->status != 200) return Show(meta, "model metadata");
  const json m = json::parse(meta->body, nullptr, false);
  if (m.is_discarded() || !m.contains("inputs")) {
    std::cerr << "fluidfaas invoke: the server's model metadata is not what this client expects\n";
    return kExitFailure;
  }
  const json& input = m["inputs"][0];
  json shape = input["shape"];
  shape[0] = 1;
  int64_t elems = 1;
  for (size_t i = 1; i < shape.size(); ++i) elems *= shape[i].get<int64_t>();
  json body = {{"inputs",
                {{{"name", input["name"]},
                  {"datatype", input["datatype"]},
                  {"shape", shape},
                  {"data", std::vector<double>(static_cast<size_t>(elems), o.fill)}}}}};
  if (o.timeout_ms > 0) body["parameters"] = {{"timeout_ms", o.timeout_ms}};
  int code = kExitOk;
  for (int i = 0; i < o.repeat; ++i) {
    auto r = c.Post("/v2/models/" + o.model + "/infer", body.dump(), "application/json");
    if (!r) return Show(r, "infer");
    json out = json::parse(r->body, nullptr, false);
    if (r->status == 200 && !out.is_discarded()) {  // the data can be long: say how long instead
      const size_t n = out["outputs"][0]["data"].size();
      out["outputs"][0]["data"] = std::to_string(n) + " values";
      std::cout << out.dump() << '\n';
    } else {
      std::cout << r->status << ' ' << r->body << '\n';
      code = r->status / 100 == 4 ? kExitBadInput : kExitFailure;
    }
  }
  return code;
}

int RunDeploy(const ClientOptions& o) {
  if (o.model.empty() == o.directory.empty()) {
    std::cerr << "fluidfaas deploy: give --model (a zoo model) or --directory (of the daemon's repository)\n";
    return kExitBadInput;
  }
  auto token = Token(o.token_file);
  if (!token.ok()) {
    std::cerr << "fluidfaas deploy: " << token.status().message() << '\n';
    return kExitBadInput;
  }
  httplib::Client c(o.url);
  httplib::Headers h;
  if (!token->empty()) h.emplace("Authorization", "Bearer " + *token);
  json body = o.directory.empty() ? json{{"model", o.model}} : json{{"directory", o.directory}};
  if (!o.name.empty()) body["name"] = o.name;
  if (o.slo_ms > 0) body["slo_ms"] = o.slo_ms;
  if (o.max_batch > 0) body["max_batch"] = o.max_batch;
  if (o.generate) body["generate"] = true;
  return Show(c.Post("/v1/functions", h, body.dump(), "application/json"), "deploy");
}

int RunGet(const ClientOptions& o, const std::string& path) {
  httplib::Client c(o.url);
  return Show(c.Get(path), path);
}

// A gateway's GET /v1/cluster as tables: its nodes, then every instance of every function on them.
int ShowCluster(const httplib::Result& r) {
  const json cl = json::parse(r->body, nullptr, false);
  if (cl.is_discarded() || !cl.is_object()) return Show(r, "/v1/cluster");
  Table nodes({"node", "address", "health", ">open", ">host free GiB", "free slices"});
  Table instances({"node", "function", ">req/s", ">id", "state", "slices", ">queued"});
  for (const json& n : cl.value("nodes", json::array())) {
    const std::string name = n.value("name", "?");
    std::string free;
    for (const json& s : n.value("free_slices", json::array())) free += (free.empty() ? "" : ", ") + s.value("id", "?");
    const bool healthy = n.value("healthy", false);
    nodes.AddRow({name, n.value("advertise", "?"),
                  healthy ? "healthy" : (n.value("unreachable", false) ? "unreachable" : "silent"),
                  std::to_string(n.value("open", int64_t{0})),
                  Fixed(static_cast<double>(n.value("host_free_mib", int64_t{0})) / 1024, 1),
                  free.empty() ? "(none)" : free});
    for (const json& f : n.value("functions", json::array())) {
      const std::string rate = Fixed(f.value("rate_per_s", 0.0), 1);
      const json list = f.value("instances", json::array());
      if (list.empty()) {
        const int warm = f.value("warm", 0);
        instances.AddRow(
            {name, f.value("name", "?"), rate, "", warm > 0 ? "warm x" + std::to_string(warm) : "cold", "", ""});
      }
      for (const json& i : list) {
        std::string slices;
        for (const json& s : i.value("slices", json::array()))
          slices += (slices.empty() ? "" : " -> ") + s.get<std::string>();
        instances.AddRow({name, f.value("name", "?"), rate, std::to_string(i.value("id", int64_t{0})),
                          i.value("state", "?"), slices, std::to_string(i.value("queued", int64_t{0}))});
      }
    }
  }
  std::cout << "cluster, routing " << cl.value("routing", "?") << ", a node is silent after "
            << Fixed(cl.value("silence_ms", 0.0), 0) << " ms without a report\n";
  nodes.Print(std::cout);
  instances.Print(std::cout);
  return kExitOk;
}

// GET /v1/node as tables (slices and their residents, instances with their stages), or its JSON. At a gateway
// (no /v1/node there), its /v1/cluster.
int RunState(const ClientOptions& o) {
  httplib::Client c(o.url);
  auto r = c.Get("/v1/node");
  if (r && r->status == 404) {
    auto cluster = c.Get("/v1/cluster");
    if (cluster && cluster->status == 200) return o.json_output ? Show(cluster, "/v1/cluster") : ShowCluster(cluster);
  }
  if (!r || r->status != 200 || o.json_output) return Show(r, "/v1/node");
  const json n = json::parse(r->body, nullptr, false);
  if (n.is_discarded() || !n.is_object()) return Show(r, "/v1/node");
  std::map<int64_t, std::string> label;  // instance id -> "3 bert-base (time_sharing)"
  Table instances({">id", "function", "state", "stages (slice: blocks)", ">queued", ">in flight"});
  for (const json& i : n.value("instances", json::array())) {
    const int64_t id = i.value("id", int64_t{0});
    label[id] = std::to_string(id) + " " + i.value("function", "?") + " (" + i.value("state", "?") + ")";
    std::string stages;
    for (const json& st : i.value("stages", json::array())) {
      const json blocks = st.value("blocks", json::array());
      stages += (stages.empty() ? "" : " -> ") + st.value("slice", "?") +
                (blocks.size() == 2 ? ": " + blocks[0].dump() + "-" + blocks[1].dump() : "");
    }
    instances.AddRow({std::to_string(id), i.value("function", "?"), i.value("state", "?"),
                      stages.empty() ? "(none: in host memory or on disk)" : stages,
                      std::to_string(i.value("queued", int64_t{0})),
                      std::to_string(i.value("batches_in_flight", int64_t{0}))});
  }
  Table slices({"slice", "residents"});
  for (const json& s : n.value("slices", json::array())) {
    std::string residents;
    for (const json& id : s.value("residents", json::array())) {
      residents += (residents.empty() ? "" : ", ") + label[id.get<int64_t>()];
    }
    slices.AddRow({s.value("id", "?"), residents.empty() ? "free" : residents});
  }
  const json totals = n.value("totals", json::object());
  const json host = n.value("host_memory", json::object());
  std::cout << "node " << n.value("name", "?") << ", policy " << n.value("policy", "?") << "; "
            << totals.value("launches", 0) << " launches, " << totals.value("pipelines", 0) << " pipelines, "
            << totals.value("migrations", 0) << " migrations, " << totals.value("evictions", 0)
            << " evictions; host memory " << Fixed(static_cast<double>(host.value("warm_bytes", int64_t{0})) / 1e9, 2)
            << " GB in " << host.value("warm_copies", 0) << " warm copies\n";
  slices.Print(std::cout);
  instances.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddServeCommands(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* serve = app.add_subcommand(
      "serve",
      "The node daemon: serves functions over HTTP (Open Inference Protocol at /v2, /v1/node, /metrics) on the "
      "node's slices, emulated from the config when there is no GPU. SIGTERM drains and exits 0");
  serve->add_option("--config", o->config_path, "Node config (default: the embedded emulated A100-80GB)");
  serve->add_option("--listen", o->listen, "HOST:PORT (port 0: any free port)")->capture_default_str();
  serve->add_option("--grpc-listen", o->grpc_listen,
                    "HOST:PORT of the gRPC Open Inference Protocol (default: --listen's port + 1; 'off': none)");
  serve
      ->add_option("--policy", o->policy, "Scheduling policy spec: fluidfaas, esg, exclusive, exclusive:keep_alive=60s")
      ->capture_default_str();
  serve
      ->add_option("--functions", o->functions,
                   "Zoo models or repository directories to deploy at start (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  serve
      ->add_option("--generate", o->generate,
                   "Zoo models that generate (tinyllama-1.1b, llama2-7b, ...) to serve token by token at start: "
                   "POST /v2/models/M/generate[_stream], /v1/completions, /v1/chat/completions (comma-separated)")
      ->delimiter(',');
  serve->add_option("--time-scale", o->time_scale, "Emulated executor's time factor (0.1: ten times faster)")
      ->check(CLI::Range(1e-6, 1000.0))
      ->capture_default_str();
  serve->add_option("--worker", o->worker, "fluidfaas-worker binary (default: beside this one)");
  serve->add_option("--repository", o->repository,
                    "Directory of TorchScript function directories (each: manifest.yaml + one .pt per block)");
  serve->add_option("--token-file", o->token_file, "File holding the bearer token for deploy, delete, load, unload");
  serve->add_option("--nats", o->nats_url,
                    "Join a cluster: publish this node's reports into NATS (nats://HOST:PORT) for a gateway");
  serve->add_option("--node", o->node_name, "This node's name in the cluster (letters, digits, '-', '_')");
  serve->add_option("--advertise", o->advertise,
                    "HOST:PORT the gateway reaches this node at (default: --listen's address and bound port)");
  serve->add_option("--nats-creds", o->nats_creds, "NATS credentials file (nkey/JWT)")->check(CLI::ExistingFile);
  serve->add_option("--nats-token-file", o->nats_token_file, "File holding the NATS server's token")
      ->check(CLI::ExistingFile);
  serve
      ->add_option("--nats-replicas", o->nats_replicas,
                   "Copies of the buckets it creates (at most the NATS cluster's servers: 3 survives a restart)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  serve->add_option("--host-memory-gib", o->host_memory_gib, "Host memory for warm copies (default: node config)")
      ->check(CLI::Range(0.0, 65536.0));
  serve->add_option("--max-open", o->max_open, "Requests open at once before new ones get 429")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  serve
      ->add_option("--slo-margin", o->slo_margin,
                   "Share of each SLO the scheduler leaves for HTTP and the client (it plans to finish this early)")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  serve
      ->add_option("--late-margin-cap", o->late_margin_cap,
                   "Up to this share of each SLO more, learned from completions that ran late on a saturated node "
                   "(0: never)")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  serve
      ->add_option("--cold-start-wait", o->cold_start_wait_s,
                   "Seconds a request without timeout_ms waits for its function's cold start (0: turned away at once "
                   "like the rest)")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  serve->add_flag("--control-thread", o->control_thread,
                  "Run the controller on a thread of its own, not on the HTTP edge's event loop (the layout before; "
                  "a request then crosses two threads each way)");
  serve
      ->add_option("--max-connections", o->max_connections,
                   "HTTP connections open at once (at most the open-file "
                   "limit less the runtime's reserve); at the limit the longest-idle one is closed")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  serve->add_option("--idle-timeout", o->idle_timeout_s, "Seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  serve
      ->add_option("--header-timeout", o->header_timeout_s,
                   "Seconds from a request's first byte to the end of its headers (else 408)")
      ->check(CLI::Range(0.01, 600.0))
      ->capture_default_str();
  serve
      ->add_option("--body-timeout", o->body_timeout_s,
                   "Seconds from the end of the headers to the end of the body "
                   "(else 408)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  serve->add_option("--max-header-bytes", o->max_header_bytes, "Request line and headers (else 431)")
      ->check(CLI::Range(1024, 1 << 20))
      ->capture_default_str();
  serve->add_option("--max-body-mib", o->max_body_mib, "A request's body, chunked too (else 413)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve
      ->add_option("--max-inflight-mib", o->max_inflight_mib,
                   "Request bodies held at once across connections (else 503)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  serve->callback([o, &exit_code] { exit_code = RunServe(*o); });

  auto c = std::make_shared<ClientOptions>();
  const auto url = [c](CLI::App* cmd) {
    cmd->add_option("--url", c->url, "The daemon's address")->capture_default_str();
  };
  CLI::App* invoke = app.add_subcommand("invoke", "Send one inference request (Open Inference Protocol) to a daemon");
  url(invoke);
  invoke->add_option("--model", c->model, "Function name")->required();
  invoke->add_option("--fill", c->fill, "Value of every input element")->capture_default_str();
  invoke->add_option("--timeout-ms", c->timeout_ms, "Deadline for this request (default: the function's SLO)")
      ->check(CLI::Range(0.001, 1e7));
  invoke->add_option("--repeat", c->repeat, "Send it this many times, one after another")
      ->check(CLI::Range(1, 1'000'000));
  invoke->callback([c, &exit_code] { exit_code = RunInvoke(*c); });
  CLI::App* deploy =
      app.add_subcommand("deploy", "Deploy a zoo model or a function directory of the daemon's repository");
  url(deploy);
  auto* model_opt = deploy->add_option("--model", c->model, "Zoo model");
  auto* dir_opt = deploy->add_option("--directory", c->directory, "Function directory of the daemon's --repository");
  model_opt->excludes(dir_opt);
  deploy->add_option("--name", c->name, "Function name (default: the model's or directory's)");
  deploy->add_option("--max-batch", c->max_batch, "Largest batch (default: the model's or manifest's)")
      ->check(CLI::Range(1, kMaxBatch));
  deploy
      ->add_option("--slo-ms", c->slo_ms,
                   "SLO (default: the manifest's, or 5 x a zoo model's batch-1 latency on a full GPU)")
      ->check(CLI::Range(0.001, 1e7));
  deploy->add_flag("--generate", c->generate,
                   "Serve the zoo model token by token (a model that generates: fluidfaas generate, /v1/completions)");
  deploy->add_option("--token-file", c->token_file, "File holding the bearer token");
  deploy->callback([c, &exit_code] { exit_code = RunDeploy(*c); });
  CLI::App* functions = app.add_subcommand("functions", "List a daemon's functions");
  url(functions);
  functions->callback([c, &exit_code] { exit_code = RunGet(*c, "/v1/functions"); });
  CLI::App* state = app.add_subcommand(
      "state", "A daemon's node state (slices, instances, pipelines, host memory), or a gateway's cluster");
  url(state);
  state->add_flag("--json", c->json_output, "Print /v1/node's (or /v1/cluster's) JSON");
  state->callback([c, &exit_code] { exit_code = RunState(*c); });
}

}  // namespace fluidfaas::cli
