// The gateway over real nodes on loopback: a nats-server with JetStream in a temporary store, two emulated nodes
// (controllers behind their HTTP APIs) that report into it, and the gateway. Each test stops what it started.
#include "cluster/gateway.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "api/test_client.h"
#include "cluster/function_sync.h"
#include "daemon/daemon_test_util.h"
#include "grpc_predict_v2.grpc.pb.h"

extern char** environ;

namespace fluidfaas::cluster {
namespace {

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  close(fd);
  return ntohs(a.sin_port);
}

std::string Which(const std::string& program) {
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"}) {
    const std::string p = std::string(dir) + "/" + program;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// nats-server -js on a free loopback port with its own store; killed and its store removed when destroyed.
class NatsServer {
 public:
  bool Start() {
    const std::string bin = Which("nats-server");
    if (bin.empty()) return false;
    dir_ = std::filesystem::temp_directory_path() /
           ("ff-nats-" + std::to_string(getpid()) + "-" + std::to_string(FreePort()));
    std::filesystem::create_directories(dir_);
    port_ = FreePort();
    const std::string port = std::to_string(port_), store = dir_.string();
    std::vector<std::string> args = {bin, "-js", "-sd", store, "-a", "127.0.0.1", "-p", port};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return false;
    for (int i = 0; i < 100; ++i) {  // until it accepts connections (at most 5 s)
      NatsOptions o;
      o.url = url();
      if (NatsConnection::Connect(o).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  ~NatsServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::filesystem::path dir_;
};

// An emulated node (bert-base at a time scale of 0.02) reporting into the cluster as `name`.
struct TestNode {
  TestNode(const std::string& name, const std::string& nats_url) {
    daemon.Start(daemon::testing::EmulatedNodeOptions(), {daemon::FunctionConfig{"bert", "bert-base", 0, 0.02}});
    NatsOptions o;
    o.url = nats_url;
    connection = std::move(NatsConnection::Connect(o)).value();
    bucket = std::move(connection->Bucket(kNodesBucket)).value();
    daemon::Controller* c = &daemon.controller();
    reporter = std::move(Reporter::Start(*bucket,
                                         ReporterOptions{name, "127.0.0.1:" + std::to_string(daemon.port()),
                                                         Millis(100), Millis(20)},
                                         [c] { return c->ClusterReport(); }))
                   .value();
    functions = std::move(connection->Bucket(kFunctionsBucket)).value();
    sync =
        FunctionSync::Start(*functions,
                            SyncTarget{[c](const std::string& fn, const std::string& spec) -> Status {
                                         FF_ASSIGN_OR_RETURN(daemon::FunctionConfig f,
                                                             daemon::ParseFunctionConfig(nlohmann::json::parse(spec)));
                                         f.name = fn;
                                         f.time_scale = 0.02;
                                         return c->Deploy(f);
                                       },
                                       [c](const std::string& fn) { return c->Remove(fn); },
                                       [c](const std::string& fn) { return c->Function(fn) != nullptr; }},
                            Seconds(30));
  }
  daemon::testing::TestDaemon daemon;
  std::unique_ptr<NatsConnection> connection;
  std::unique_ptr<KvBucket> bucket;
  std::unique_ptr<Reporter> reporter;
  std::unique_ptr<KvBucket> functions;
  std::unique_ptr<FunctionSync> sync;
};

const std::string kBody = R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,128],"data":[)" + [] {
  std::string s;
  for (int i = 0; i < 128; ++i) s += (i ? ",0.5" : "0.5");
  return s;
}() + "]}]}";

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!nats.Start()) GTEST_SKIP() << "nats-server (Debian package nats-server) is not installed";
    a = std::make_unique<TestNode>("a", nats.url());
    b = std::make_unique<TestNode>("b", nats.url());
    StartGateway();
  }
  void StartGateway() {
    GatewayOptions o;
    o.nats.url = nats.url();
    o.silence = Millis(600);
    o.async.ack_wait = std::chrono::milliseconds(1500);  // a stopped gateway's calls come back soon
    o.async.retry_delay = std::chrono::milliseconds(100);
    o.grpc_host = "127.0.0.1";
    auto g = Gateway::Start(o, "127.0.0.1", 0);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    gateway = std::move(*g);
    ASSERT_TRUE(WaitFor([&] { return gateway->table().healthy_nodes(gateway->Now()) == 2; }))
        << gateway->table().Json(gateway->Now()).dump();
  }
  // POSTs `n` asynchronous calls; their ids.
  std::vector<std::string> SubmitAsync(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      auto r = Client().Post("/v1/async/bert", kBody, "application/json");
      EXPECT_TRUE(r && r->status == 202) << (r ? r->body : "no answer");
      if (r && r->status == 202) ids.push_back(nlohmann::json::parse(r->body)["id"]);
    }
    return ids;
  }
  // Each call's state once every one has ended ("completed" or "failed"), or what they hold after the wait.
  std::map<std::string, nlohmann::json> AwaitAsync(const std::vector<std::string>& ids) {
    std::map<std::string, nlohmann::json> ended;
    WaitFor(
        [&] {
          for (const std::string& id : ids) {
            if (ended.count(id) > 0) continue;
            auto r = Client().Get("/v1/async/" + id);
            if (!r || r->status != 200) continue;
            nlohmann::json s = nlohmann::json::parse(r->body);
            if (s["state"] == "completed" || s["state"] == "failed") ended[id] = s;
          }
          return ended.size() == ids.size();
        },
        60000);
    return ended;
  }
  void TearDown() override {
    gateway.reset();
    a.reset();
    b.reset();
  }
  template <typename F>
  static bool WaitFor(F ready, int ms = 15000) {  // generous: a loaded 2-core machine (CI runs sanitizers beside)
    for (int waited = 0; waited < ms; waited += 20) {
      if (ready()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ready();
  }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", gateway->port());
    c.set_read_timeout(30, 0);
    return c;
  }
  int Infer() {
    auto r = Client().Post("/v2/models/bert/infer", kBody, "application/json");
    return r ? r->status : -1;
  }
  nlohmann::json Cluster() {
    auto r = Client().Get("/v1/cluster");
    return r ? nlohmann::json::parse(r->body) : nlohmann::json();
  }
  std::string Metrics() {
    auto r = Client().Get("/metrics");
    return r ? r->body : "";
  }
  // The value of a sample line of /metrics ("name{labels} "), 0 when absent.
  int Sample(const std::string& line) {
    const std::string m = Metrics();
    const size_t at = m.find("\n" + line);  // a sample's line, not its # HELP
    return at == std::string::npos ? 0 : std::stoi(m.substr(at + 1 + line.size()));
  }

  NatsServer nats;
  std::unique_ptr<TestNode> a, b;
  std::unique_ptr<Gateway> gateway;
};

TEST_F(GatewayTest, ACallIsAnsweredByANodeAndTheClusterShowsBothNodesHealthy) {
  auto r = Client().Post("/v2/models/bert/infer", kBody, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"model_name\":\"bert\""), std::string::npos);
  const nlohmann::json c = Cluster();
  ASSERT_EQ(c["nodes"].size(), 2u);
  for (const auto& n : c["nodes"]) EXPECT_TRUE(n["healthy"].get<bool>()) << n.dump();
  auto unknown = Client().Post("/v2/models/nope/infer", kBody, "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_NE(unknown->body.find("unknown_function"), std::string::npos);
  auto ready = Client().Get("/v2/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  // The node that served it reports its instance (state, slices, queue), its recent arrivals and its host memory.
  nlohmann::json served;
  ASSERT_TRUE(WaitFor([&] {
    const nlohmann::json cluster = Cluster();  // kept: a range over a temporary's member would outlive it
    for (const auto& n : cluster["nodes"]) {
      for (const auto& f : n["functions"]) {
        if (f["name"] == "bert" && !f["instances"].empty() && f["rate_per_s"].get<double>() > 0) served = n;
      }
    }
    return !served.is_null();
  })) << Cluster().dump();
  EXPECT_GT(served["host_free_mib"].get<int64_t>(), 0);
  const nlohmann::json& instance = served["functions"][0]["instances"][0];
  EXPECT_NE(instance["state"].get<std::string>(), "");
  EXPECT_FALSE(instance["slices"].empty());
}

TEST_F(GatewayTest, ANodeThatFallsSilentIsUnhealthyAfterTheSilenceAndCallsGoToTheOther) {
  a->reporter->Freeze();  // a hangs: its key stays, its reports stop
  ASSERT_TRUE(WaitFor([&] { return !gateway->table().Healthy("a", gateway->Now()); }));
  EXPECT_TRUE(gateway->table().Healthy("b", gateway->Now()));
  const int to_a = Sample("fluidfaas_gateway_forwards_total{node=\"a\"} ");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Infer(), 200);
  EXPECT_EQ(Sample("fluidfaas_gateway_forwards_total{node=\"a\"} "), to_a) << Metrics();  // none to the silent node
  EXPECT_GE(Sample("fluidfaas_gateway_forwards_total{node=\"b\"} "), 5) << Metrics();
}

TEST_F(GatewayTest, ANodeThatRefusesConnectionsIsPassedOverAndEveryCallIsAnswered) {
  // b's endpoint goes away while its reports are still fresh: the gateway finds out by trying.
  b->reporter->Freeze();
  b->daemon.Stop();
  int ok = 0;
  for (int i = 0; i < 8; ++i) ok += Infer() == 200;
  EXPECT_EQ(ok, 8);
  // Whether the router tried b depends on which node its first cold start went to; every try of b was sent on to a
  // (one retry each), and once tried, b is not routed to until its next report.
  const int to_b = Sample("fluidfaas_gateway_forwards_total{node=\"b\"} ");
  EXPECT_EQ(Sample("fluidfaas_gateway_retries_total "), to_b) << Metrics();
  EXPECT_LE(to_b, 1) << Metrics();
  if (to_b > 0) {
    EXPECT_FALSE(gateway->table().Healthy("b", gateway->Now()));
  }
}

TEST_F(GatewayTest, ANodeThatLeavesCleanlyIsDroppedAtOnce) {
  a.reset();  // its reporter deletes its key
  ASSERT_TRUE(WaitFor([&] { return Cluster()["nodes"].size() == 1; }, 2000)) << Cluster().dump();
  EXPECT_EQ(Cluster()["nodes"][0]["name"], "b");
  EXPECT_EQ(Infer(), 200);
}

TEST_F(GatewayTest, NoHealthyNodeIsA503WithItsCodeAndNotReady) {
  a->reporter->Freeze();
  b->reporter->Freeze();
  ASSERT_TRUE(WaitFor([&] { return gateway->table().healthy_nodes(gateway->Now()) == 0; }));
  auto ready = Client().Get("/v2/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  // The nodes still answer: the gateway tries an unhealthy node rather than none (the router's last resort).
  EXPECT_EQ(Infer(), 200);
  a->daemon.Stop();
  b->daemon.Stop();
  auto r = Client().Post("/v2/models/bert/infer", kBody, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502) << r->body;
  EXPECT_NE(r->body.find("node_lost"), std::string::npos) << r->body;
}

TEST_F(GatewayTest, AFunctionDeployedAtTheGatewayIsServedByEveryNodeAndRemovedFromThemAll) {
  auto bad = Client().Post("/v1/functions", R"({"model": "resnet50", "name": "a b"})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  auto put = Client().Post("/v1/functions", R"({"model": "resnet50", "name": "rn"})", "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 202) << put->body;
  ASSERT_TRUE(WaitFor([&] { return a->daemon.controller().Function("rn") && b->daemon.controller().Function("rn"); }));
  const std::string image = R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,224,224],"parameters":)"
                            R"({"binary_data_size":602112}}]})";
  httplib::Headers headers = {{"Inference-Header-Content-Length", std::to_string(image.size())}};
  const std::string body = image + std::string(602112, '\0');
  ASSERT_TRUE(WaitFor([&] {
    auto r = Client().Post("/v2/models/rn/infer", headers, body, "application/octet-stream");
    return r && r->status == 200;
  }));
  auto list = Client().Get("/v1/functions");
  ASSERT_TRUE(list);
  EXPECT_NE(list->body.find("\"rn\""), std::string::npos) << list->body;

  auto del = Client().Delete("/v1/functions/rn");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 202) << del->body;
  ASSERT_TRUE(
      WaitFor([&] { return !a->daemon.controller().Function("rn") && !b->daemon.controller().Function("rn"); }));
  auto again = Client().Delete("/v1/functions/rn");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404);
  // The nodes' own function stays.
  EXPECT_EQ(Infer(), 200);

  // The model repository extension over the cluster: load and unload are the same deployments.
  const auto index = [&](const std::string& filter) {
    auto r = Client().Post("/v2/repository/index", filter, "application/json");
    return r && r->status == 200 ? nlohmann::json::parse(r->body) : nlohmann::json();
  };
  const auto state_of = [](const nlohmann::json& entries, const std::string& name) -> std::string {
    for (const auto& e : entries) {
      if (e["name"] == name) return e["state"];
    }
    return "";
  };
  EXPECT_EQ(state_of(index(""), "bert"), "READY");
  auto load = Client().Post("/v2/repository/models/vit-b16/load", "", "application/json");
  ASSERT_TRUE(load);
  EXPECT_EQ(load->status, 200) << load->body;
  ASSERT_TRUE(WaitFor([&] { return state_of(index(R"({"ready": true})"), "vit-b16") == "READY"; }));
  EXPECT_TRUE(a->daemon.controller().Function("vit-b16"));
  EXPECT_EQ(state_of(index(R"({"ready": false})"), "bert"), "");  // filtered out: it is ready
  auto bad_filter = Client().Post("/v2/repository/index", R"({"ready": "yes"})", "application/json");
  ASSERT_TRUE(bad_filter);
  EXPECT_EQ(bad_filter->status, 400);
  auto unload = Client().Post("/v2/repository/models/vit-b16/unload", "", "application/json");
  ASSERT_TRUE(unload);
  EXPECT_EQ(unload->status, 200) << unload->body;
  ASSERT_TRUE(WaitFor([&] { return !a->daemon.controller().Function("vit-b16"); }));
  auto unloaded = Client().Post("/v2/repository/models/vit-b16/unload", "", "application/json");
  ASSERT_TRUE(unloaded);
  EXPECT_EQ(unloaded->status, 404);
}

TEST_F(GatewayTest, AGenerativeFunctionDeployedAtTheGatewayGeneratesThroughIt) {
  auto deploy = Client().Post("/v1/functions", R"({"model": "tinyllama-1.1b", "name": "chat", "generate": true})",
                              "application/json");
  ASSERT_TRUE(deploy);
  ASSERT_EQ(deploy->status, 202) << deploy->body;
  ASSERT_TRUE(WaitFor([&] {
    return a->daemon.controller().Function("chat") && b->daemon.controller().Function("chat") &&
           gateway->table().SloMs("chat") > 0;  // both nodes report it
  }));
  EXPECT_TRUE(a->daemon.controller().Function("chat")->generative);
  // OpenAI's route names it in the body; Triton's in the path. Either way a node generates it.
  auto completion =
      Client().Post("/v1/completions", R"({"model": "chat", "prompt": "hello", "max_tokens": 12})", "application/json");
  ASSERT_TRUE(completion);
  ASSERT_EQ(completion->status, 200) << completion->body;
  const nlohmann::json c = nlohmann::json::parse(completion->body);
  EXPECT_EQ(c["choices"][0]["text"].get<std::string>().size(), 12u);
  EXPECT_EQ(c["usage"]["completion_tokens"], 12);
  auto generated =
      Client().Post("/v2/models/chat/generate", R"({"text_input": "hello", "max_tokens": 12})", "application/json");
  ASSERT_TRUE(generated);
  ASSERT_EQ(generated->status, 200) << generated->body;
  EXPECT_EQ(nlohmann::json::parse(generated->body)["text_output"], c["choices"][0]["text"]) << "one text per prompt";
  // A stream is passed on as the node writes it: chunked, not one body at its end.
  for (const auto& [path, body, want] : std::vector<std::tuple<std::string, std::string, size_t>>{
           {"/v2/models/chat/generate_stream", R"({"text_input": "hello", "max_tokens": 4})", 5},
           {"/v1/completions", R"({"model": "chat", "prompt": "hello", "max_tokens": 4, "stream": true})", 6}}) {
    api::testing::RawClient raw(gateway->port());
    ASSERT_TRUE(raw.Send(api::testing::RawClient::Post(path, body)));
    const auto s = raw.ReadChunked(30);
    EXPECT_EQ(s.status, 200) << path;
    EXPECT_TRUE(s.complete) << path;
    EXPECT_NE(s.head.find("text/event-stream"), std::string::npos) << s.head;
    std::string all;
    for (const std::string& piece : s.chunks) all += piece;
    size_t events = 0;
    for (size_t at = 0; (at = all.find("data: ", at)) != std::string::npos; ++at) ++events;
    EXPECT_EQ(events, want) << path << ": " << all;  // the tokens, the finish (and OpenAI's [DONE])
  }
  // A client that leaves a stream stops the node's sequence too: the gateway closes its connection to the node.
  {
    api::testing::RawClient raw(gateway->port());
    ASSERT_TRUE(raw.Send(api::testing::RawClient::Post("/v2/models/chat/generate_stream",
                                                       R"({"text_input": "go", "max_tokens": 1900})")));
    const auto first = raw.ReadChunked(0.2);
    EXPECT_FALSE(first.chunks.empty());
    EXPECT_FALSE(first.complete);
  }
  // The nodes' sequences ended `cancelled`, over both nodes.
  const auto cancelled = [&] {
    uint64_t n = 0;
    const std::string line = "fluidfaas_requests_total{function=\"chat\",outcome=\"failed\",code=\"cancelled\"} ";
    for (TestNode* node : {a.get(), b.get()}) {
      const std::string m = node->daemon.controller().MetricsText();
      if (const size_t at = m.find(line); at != std::string::npos) n += std::stoull(m.substr(at + line.size()));
    }
    return n;
  };
  EXPECT_TRUE(WaitFor([&] { return cancelled() == 1; }, 5000)) << "the node's sequence ran on after its client left";
  // So does a client that leaves a generation answered whole: the gateway watches it and closes its connection to
  // the node at once.
  {
    api::testing::RawClient raw(gateway->port());
    ASSERT_TRUE(raw.Send(
        api::testing::RawClient::Post("/v2/models/chat/generate", R"({"text_input": "go", "max_tokens": 1900})")));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // generating by now (1,900 tokens take seconds)
  }
  EXPECT_TRUE(WaitFor([&] { return cancelled() == 2; }, 5000)) << "a whole generation ran on after its client left";
  auto metrics = Client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("fluidfaas_gateway_answers_total{code=\"client_gone\"} 2"), std::string::npos)
      << metrics->body;
  auto unknown = Client().Post("/v1/chat/completions", R"({"messages": []})", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
}

TEST_F(GatewayTest, AsynchronousCallsAreQueuedRunOnceAndTheirAnswersKept) {
  const std::vector<std::string> ids = SubmitAsync(40);
  ASSERT_EQ(ids.size(), 40u);
  const auto ended = AwaitAsync(ids);
  ASSERT_EQ(ended.size(), ids.size());
  for (const auto& [id, s] : ended) {
    // More than one run only after a refusal before running (a cold start the deadline could not wait for, on a
    // slow machine): the call goes back to the queue.
    EXPECT_EQ(s["state"], "completed") << s.value("code", "");
    EXPECT_GE(s["attempts"].get<int>(), 1);
    EXPECT_EQ(s["response"]["model_name"], "bert");
    EXPECT_EQ(s["response"]["outputs"][0]["data"].size(), 768u);
  }
  EXPECT_EQ(Sample("fluidfaas_gateway_async_total{event=\"completed\",code=\"\"} "), 40);
  // What the queue refuses, and what it does not know.
  auto unknown = Client().Post("/v1/async/nope", kBody, "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  auto binary =
      Client().Post("/v1/async/bert", {{"Inference-Header-Content-Length", "10"}}, kBody, "application/octet-stream");
  ASSERT_TRUE(binary);
  EXPECT_EQ(binary->status, 415) << binary->body;
  auto large = Client().Post("/v1/async/bert", std::string(1 << 20, ' '), "application/json");
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 413) << large->body;
  for (const char* id : {"0123", "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcdef"}) {
    auto r = Client().Get(std::string("/v1/async/") + id);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << id;
    EXPECT_NE(r->body.find("unknown_call"), std::string::npos) << r->body;
  }
  // A bad body is the node's 400, kept as the call's end: not retried.
  auto bad = Client().Post("/v1/async/bert", R"({"inputs": []})", "application/json");
  ASSERT_TRUE(bad && bad->status == 202);
  const auto bad_end = AwaitAsync({nlohmann::json::parse(bad->body)["id"]});
  ASSERT_EQ(bad_end.size(), 1u);
  EXPECT_EQ(bad_end.begin()->second["state"], "failed");
  EXPECT_EQ(bad_end.begin()->second["attempts"], 1);
}

TEST_F(GatewayTest, AcceptedAsynchronousCallsSurviveTheGatewayStoppingEachEndedOnceWithAReason) {
  // Calls, then the gateway's worker stops taking them and 75 more are accepted: those wait in the queue. The
  // gateway stops while it may still run some of the first; a new one takes over.
  std::vector<std::string> ids = SubmitAsync(75);
  gateway->async().Stop();
  const std::vector<std::string> queued = SubmitAsync(75);
  ids.insert(ids.end(), queued.begin(), queued.end());
  ASSERT_EQ(ids.size(), 150u);
  gateway.reset();
  StartGateway();
  const auto ended = AwaitAsync(ids);
  ASSERT_EQ(ended.size(), ids.size()) << "calls left unended";
  std::map<std::string, int> by_end;
  for (const auto& [id, s] : ended) {
    const std::string end =
        s["state"].get<std::string>() + (s.contains("code") ? ":" + s["code"].get<std::string>() : "");
    ++by_end[end];
    // A call is either completed with its answer, or failed because the gateway running it stopped (it may have run,
    // so it is not run again); a call put back in the queue ran again, never one that had completed.
    if (s["state"] == "completed") {
      EXPECT_EQ(s["response"]["outputs"][0]["data"].size(), 768u);
    } else {
      EXPECT_EQ(s["code"], "gateway_lost") << s.dump();
    }
  }
  for (const auto& [end, n] : by_end) std::cerr << end << ": " << n << "\n";
  // The new gateway ran at least the calls left in the queue.
  EXPECT_GE(gateway->async().Counts().completed, 75u);
}

TEST_F(GatewayTest, ACallClaimedByAGatewayThatDiedIsFailedGatewayLostNotRunAgain) {
  // A gateway that claims a call and dies (SIGKILL: nothing put back) is played by hand: the queue's message is
  // taken and the call marked running, then the message is left unacknowledged.
  gateway->async().Stop();  // this gateway's worker takes nothing, so the message is ours to take
  const std::vector<std::string> ids = SubmitAsync(1);
  ASSERT_EQ(ids.size(), 1u);
  NatsOptions no;
  no.url = nats.url();
  auto conn = std::move(NatsConnection::Connect(no)).value();
  auto calls = std::move(conn->Bucket(kAsyncBucket)).value();
  auto queue = std::move(conn->Queue(WorkQueueOptions{.stream = kAsyncStream,
                                                      .subject = "fluidfaas.async",
                                                      .consumer = "fluidfaas-gateways",
                                                      .ack_wait = std::chrono::milliseconds(1500)}))
                   .value();
  auto taken = std::move(queue->Fetch(1, std::chrono::milliseconds(5000))).value();
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0]->data().substr(0, 32), ids[0]);
  auto entry = std::move(calls->Get(ids[0])).value();
  ASSERT_TRUE(entry);
  nlohmann::json state = nlohmann::json::parse(entry->value);
  EXPECT_EQ(state["state"], "queued");
  state["state"] = "running";
  ASSERT_TRUE(calls->Update(ids[0], state.dump(), entry->revision).ok());
  EXPECT_FALSE(calls->Update(ids[0], state.dump(), entry->revision).ok());  // compare-and-set: once only
  taken.clear();                                                            // dies: no ack
  StartGateway();  // a live gateway's worker gets the message again after the ack wait
  const auto ended = AwaitAsync(ids);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended.begin()->second["state"], "failed") << ended.begin()->second.dump();
  EXPECT_EQ(ended.begin()->second["code"], "gateway_lost");
}

TEST_F(GatewayTest, GrpcCallsGoThroughTheSameRoutingAsHttpOnes) {
  ASSERT_GT(gateway->grpc_port(), 0);
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(gateway->grpc_port()), grpc::InsecureChannelCredentials()));
  const auto call = [&](auto method, const auto& req, auto* res) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return ((*stub).*method)(&ctx, req, res);
  };
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(call(&inference::GRPCInferenceService::Stub::ServerReady, inference::ServerReadyRequest(), &ready).ok());
  EXPECT_TRUE(ready.ready());

  inference::ModelInferRequest req;
  req.set_model_name("bert");
  req.set_id("g7");
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(128);
  std::string raw(128 * sizeof(float), '\0');
  const float half = 0.5f;
  for (int i = 0; i < 128; ++i) std::memcpy(raw.data() + i * sizeof(float), &half, sizeof half);
  req.add_raw_input_contents(raw);
  inference::ModelInferResponse res;
  grpc::Status s = call(&inference::GRPCInferenceService::Stub::ModelInfer, req, &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(res.model_name(), "bert");
  EXPECT_EQ(res.id(), "g7");
  ASSERT_EQ(res.outputs_size(), 1);
  EXPECT_EQ(res.outputs(0).datatype(), "FP32");
  ASSERT_EQ(res.raw_output_contents_size(), 1);
  EXPECT_EQ(res.raw_output_contents(0).size(), 768 * sizeof(float));

  // fp32_contents in: the same answer's size.
  inference::ModelInferRequest typed = req;
  typed.clear_raw_input_contents();
  for (int i = 0; i < 128; ++i) typed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(0.5f);
  inference::ModelInferResponse typed_res;
  s = call(&inference::GRPCInferenceService::Stub::ModelInfer, typed, &typed_res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(typed_res.raw_output_contents(0), res.raw_output_contents(0));

  inference::ModelMetadataRequest mreq;
  mreq.set_name("bert");
  inference::ModelMetadataResponse meta;
  s = call(&inference::GRPCInferenceService::Stub::ModelMetadata, mreq, &meta);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(meta.name(), "bert");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).datatype(), "FP32");

  inference::ModelReadyRequest rreq;
  rreq.set_name("bert");
  inference::ModelReadyResponse model_ready;
  ASSERT_TRUE(call(&inference::GRPCInferenceService::Stub::ModelReady, rreq, &model_ready).ok());
  EXPECT_TRUE(model_ready.ready());

  // Refusals keep their meaning and their code.
  req.set_model_name("nope");
  s = call(&inference::GRPCInferenceService::Stub::ModelInfer, req, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_NE(s.error_message().find("unknown_function"), std::string::npos) << s.error_message();
  req.set_model_name("bert");
  req.mutable_inputs(0)->set_shape(1, 127);
  s = call(&inference::GRPCInferenceService::Stub::ModelInfer, req, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

TEST_F(GatewayTest, CallsOnANodeThatFallsSilentEndAfterTheSilenceWithAReason) {
  // Node z takes connections and never answers (as a SIGSTOPped process's kernel does); it reports once, then
  // falls silent. It alone serves "only-z".
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  NodeReport z;
  z.node = "z";
  z.advertise = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  z.seq = 1;
  z.functions = {ReportedFunction{"only-z", "bert-base", 200, 1, 1.0, 0}};
  ASSERT_TRUE(a->bucket->Put("z", ToJsonText(z)).ok());
  ASSERT_TRUE(WaitFor([&] { return gateway->table().Healthy("z", gateway->Now()); }));
  const auto start = std::chrono::steady_clock::now();
  auto r = Client().Post("/v2/models/only-z/infer", kBody, "application/json");
  const double waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502) << r->body;
  EXPECT_NE(r->body.find("node_lost"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("fell silent"), std::string::npos) << r->body;
  EXPECT_LT(waited_s, 5.0) << "ended by the silence (0.6 s), not the forwarder's 120 s timeout";
  // The other nodes were never given up on.
  EXPECT_EQ(Infer(), 200);
  close(listener);
  ASSERT_TRUE(a->bucket->Delete("z").ok());
}

}  // namespace
}  // namespace fluidfaas::cluster
