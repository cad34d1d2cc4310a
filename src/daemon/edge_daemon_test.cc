// The node daemon behind its edge, as newcomers and hostile clients meet it: the cold-start rule, the protocol's
// corners, clients that hold connections or send too much, and shutdown with requests open. Raw sockets
// (api/test_client.h) send exactly the bytes each case needs.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "api/test_client.h"
#include "daemon/daemon_test_util.h"

namespace fluidfaas::daemon {
namespace {

using api::testing::RawClient;
using nlohmann::json;

json InferBody(const json& parameters = json::object()) {
  json data = json::array();
  for (int i = 0; i < 128; ++i) data.push_back(i * 0.5);
  json body = {{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 128}}, {"data", data}}}}};
  if (!parameters.empty()) body["parameters"] = parameters;
  return body;
}

std::string Infer(const std::string& model, const json& body = InferBody()) {
  return RawClient::Post("/v2/models/" + model + "/infer", body.dump());
}

class EdgeDaemonTest : public ::testing::Test {
 protected:
  void Start(ControllerOptions o, std::vector<FunctionConfig> functions, HttpApiOptions api = {}) {
    daemon_.Start(std::move(o), functions, std::move(api));
    port_ = daemon_.port();
  }
  void StartBert(HttpApiOptions api = {}, double time_scale = 0.05) {
    Start(testing::EmulatedNodeOptions(), {FunctionConfig{"bert", "bert-base", 0, time_scale}}, std::move(api));
  }
  int Status(const std::string& request) {
    RawClient c(port_);
    return c.Request(request, 30).status;
  }
  std::string Metrics() {
    RawClient c(port_);
    return c.Request(RawClient::Get("/metrics")).body;
  }
  void TearDown() override { daemon_.Stop(); }

  testing::TestDaemon daemon_;
  int port_ = 0;
};

TEST_F(EdgeDaemonTest, ANewcomersFirstRequestWaitsForTheColdStartAndAnExplicitDeadlineDoesNot) {
  Start(testing::EmulatedNodeOptions(),
        {FunctionConfig{"bert", "bert-base", 0, 0.05}, FunctionConfig{"rn", "bert-base", 0, 0.05}});
  // A deadline of its own that only a warm instance could meet: turned away at once, as before.
  RawClient explicit_deadline(port_);
  const auto refused = explicit_deadline.Request(Infer("rn", InferBody({{"timeout_ms", 1}})));
  EXPECT_EQ(refused.status, 429);
  EXPECT_NE(refused.body.find("deadline_unreachable"), std::string::npos) << refused.body;
  EXPECT_LT(refused.seconds, 0.5);
  // No deadline of its own: it waits for the worker and the load, and is answered.
  RawClient newcomer(port_);
  const auto served = newcomer.Request(Infer("bert"), 60);
  EXPECT_EQ(served.status, 200) << served.body;
  // Then the function is warm and answers at its own pace.
  const auto warm = newcomer.Request(Infer("bert"), 60);
  EXPECT_EQ(warm.status, 200) << warm.body;
  EXPECT_LT(warm.seconds, served.seconds);
}

TEST_F(EdgeDaemonTest, WithoutTheColdStartWaitANewcomerIsTurnedAway) {
  ControllerOptions o = testing::EmulatedNodeOptions();
  o.cold_start_wait = Duration{0};
  Start(o, {FunctionConfig{"bert", "bert-base", 0, 0.05}});
  EXPECT_EQ(Status(Infer("bert")), 429);
}

TEST_F(EdgeDaemonTest, SpeaksTheProtocolsCorners) {
  HttpApiOptions api;
  api.token = "s3cret";
  StartBert(api);
  // Versioned paths: the one version is "1".
  EXPECT_EQ(Status(RawClient::Get("/v2/models/bert/versions/1")), 200);
  EXPECT_EQ(Status(RawClient::Get("/v2/models/bert/versions/1/ready")), 200);
  EXPECT_EQ(Status(RawClient::Post("/v2/models/bert/versions/1/infer", InferBody().dump())), 200);
  EXPECT_EQ(Status(RawClient::Get("/v2/models/bert/versions/2")), 404);
  EXPECT_EQ(Status(RawClient::Post("/v2/models/bert/versions/2/infer", InferBody().dump())), 404);
  // Nested data, as the spec allows.
  json nested = InferBody();
  json rows = json::array();
  for (int r = 0; r < 2; ++r) {
    json row = json::array();
    for (int i = 0; i < 64; ++i) row.push_back(i);
    rows.push_back(row);
  }
  nested["inputs"][0]["data"] = rows;
  EXPECT_EQ(Status(Infer("bert", nested)), 200);
  // A name that is not UTF-8: a 404 with a JSON body and a code on every route that takes a name.
  for (const std::string& request :
       {RawClient::Get("/v2/models/%FF"), RawClient::Get("/v2/models/%FF/ready"), Infer("%FF"),
        RawClient::Post("/v2/repository/models/%FF/unload", "", "Authorization: Bearer s3cret\r\n"),
        std::string("DELETE /v1/functions/%FF HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret\r\n\r\n")}) {
    RawClient c(port_);
    const auto r = c.Request(request);
    EXPECT_EQ(r.status, 404) << request;
    EXPECT_NE(r.body.find("\"code\""), std::string::npos) << r.body;
    EXPECT_TRUE(json::accept(r.body)) << r.body;
  }
  // A POST without a body, and the index's ready filter.
  RawClient index(port_);
  const auto all = index.Request("POST /v2/repository/index HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_EQ(all.status, 200) << all.body;
  const auto ready = index.Request(RawClient::Post("/v2/repository/index", R"({"ready": true})"));
  ASSERT_EQ(ready.status, 200);
  EXPECT_EQ(json::parse(ready.body).size(), 1u);
  EXPECT_GT(json::parse(all.body).size(), 1u);
  // 405 with Allow.
  RawClient wrong(port_);
  const auto r405 = wrong.Request(RawClient::Post("/v2/health/live", ""));
  EXPECT_EQ(r405.status, 405);
  EXPECT_NE(r405.head.find("Allow: GET"), std::string::npos);
  // The scheme in any case; a wrong token of the right length is still refused.
  const std::string deploy = R"({"model": "resnet50", "name": "rn"})";
  EXPECT_EQ(Status(RawClient::Post("/v1/functions", deploy, "Authorization: bearer s3cre7\r\n")), 401);
  EXPECT_EQ(Status(RawClient::Post("/v1/functions", deploy, "Authorization: bearer s3cret\r\n")), 201);
  // Requests turned away before the scheduler are counted.
  json bad = InferBody();
  bad["inputs"][0]["datatype"] = "FP16";
  EXPECT_EQ(Status(Infer("bert", bad)), 400);
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find(R"(fluidfaas_requests_total{function="bert",outcome="rejected",code="bad_input"} 1)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(fluidfaas_requests_total{function="bert",outcome="rejected",code="unknown_version"})"),
            std::string::npos);
}

TEST_F(EdgeDaemonTest, HostileClientsNeverStarveAWellFormedOne) {
  HttpApiOptions api;
  api.limits.header_timeout = Seconds(1);
  api.limits.max_body_bytes = 1 << 20;
  StartBert(api);
  ASSERT_EQ(Status(Infer("bert")), 200);  // warm
  // 300 connections that dribble a header, 300 that say nothing.
  std::vector<std::unique_ptr<RawClient>> slow, idle;
  for (int i = 0; i < 300; ++i) {
    slow.push_back(std::make_unique<RawClient>(port_));
    slow.back()->Send("POST /v2/models/bert/infer HTTP/1.1\r\n");
    idle.push_back(std::make_unique<RawClient>(port_));
  }
  std::atomic<bool> done{false};
  std::thread dribble([&] {
    while (!done) {
      for (auto& c : slow) c->Send("X");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  RawClient good(port_);
  double worst = 0;
  for (int i = 0; i < 20; ++i) {
    const auto r = good.Request(Infer("bert"), 10);
    EXPECT_EQ(r.status, 200) << r.body;
    worst = std::max(worst, r.seconds);
  }
  done = true;
  dribble.join();
  EXPECT_LT(worst, 1.0);
  // The dribblers were cut off at the header deadline.
  int timed_out = 0;
  for (auto& c : slow) timed_out += c->Read(3).status == 408;
  EXPECT_EQ(timed_out, 300);
  // Too much, in every shape: each a 4xx with a JSON body, and the node serves on.
  RawClient chunked(port_);
  chunked.Send("POST /v2/models/bert/infer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "10000\r\n" + std::string(0x10000, '1') + "\r\n";
  for (int i = 0; i < 64 && chunked.Send(chunk); ++i) {
  }
  EXPECT_EQ(chunked.Read(5).status, 413);
  // An array far beyond the function's sample: refused by its size before it is read; one just within the
  // route's limit: the parse stops at the first value past the sample.
  const auto array = [](size_t bytes) {
    std::string a = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,128],\"data\":[";
    while (a.size() < bytes) a += "1.25,";
    return a + "1]}]}";
  };
  RawClient big(port_);
  auto r = big.Request(RawClient::Post("/v2/models/bert/infer", array(900'000)));
  EXPECT_EQ(r.status, 413);
  RawClient within(port_);
  r = within.Request(RawClient::Post("/v2/models/bert/infer", array(50'000)));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("more than 128 values"), std::string::npos) << r.body;
  EXPECT_EQ(good.Request(Infer("bert")).status, 200);
}

TEST_F(EdgeDaemonTest, ShutdownAnswersEveryOpenRequest) {
  StartBert({}, /*time_scale=*/3);  // slow batches: requests are open when the controller stops
  RawClient first(port_);
  ASSERT_EQ(first.Request(Infer("bert"), 60).status, 200);
  constexpr int kClients = 12;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0}, shutdown{0}, other{0};
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      RawClient c(port_);
      const auto r = c.Request(Infer("bert", InferBody({{"timeout_ms", 60000}})), 30);
      if (r.status == 200) {
        ++ok;
      } else if (r.status == 503 && r.body.find("shutdown") != std::string::npos) {
        ++shutdown;
      } else {
        ++other;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  daemon_.controller().Shutdown();
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok + shutdown, kClients) << ok << " ok, " << shutdown << " shutdown, " << other << " other";
  EXPECT_EQ(other, 0);
  EXPECT_GT(shutdown, 0);
  EXPECT_EQ(daemon_.controller().open_requests(), 0u);
  EXPECT_EQ(Status(Infer("bert")), 503);  // after shutdown: turned away with a code
}

TEST_F(EdgeDaemonTest, TheEdgeStoppedRightAfterTheControllerStillDeliversItsShutdownAnswers) {
  // As `fluidfaas serve` stops: the controller answers what is open, then the edge closes every connection at once.
  StartBert({}, /*time_scale=*/3);
  RawClient first(port_);
  ASSERT_EQ(first.Request(Infer("bert"), 60).status, 200);
  constexpr int kClients = 12;
  std::vector<std::thread> clients;
  std::atomic<int> answered{0}, unanswered{0};
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      RawClient c(port_);
      const auto r = c.Request(Infer("bert", InferBody({{"timeout_ms", 60000}})), 30);
      (r.status == 200 || (r.status == 503 && r.body.find("shutdown") != std::string::npos) ? answered : unanswered)++;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  daemon_.controller().Shutdown();
  daemon_.Stop();  // at once, as serve does
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(answered, kClients) << unanswered << " got no answer";
}

}  // namespace
}  // namespace fluidfaas::daemon
