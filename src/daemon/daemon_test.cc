// The node daemon end to end: the controller, the runtime's worker processes and the HTTP API on a free port of
// 127.0.0.1, called with a real HTTP client. The node is the embedded default (an emulated A100-80GB with
// 1g + 2g + 4g); functions run on the emulated executor with their modelled times scaled down.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "daemon/daemon_test_util.h"

namespace fluidfaas::daemon {
namespace {

using nlohmann::json;

class DaemonTest : public ::testing::Test {
 protected:
  void Start(HttpApiOptions api = {}, double time_scale = 0.05, size_t max_open = 4096) {
    ControllerOptions o = testing::EmulatedNodeOptions();
    o.max_open_requests = max_open;
    daemon_.Start(o, {FunctionConfig{"bert", "bert-base", 0, time_scale}}, api);
    if (::testing::Test::HasFatalFailure()) return;
    controller_ = &daemon_.controller();
    port_ = daemon_.port();
    // The first request pays for the cold start (a worker process and a load): it asks for a long deadline.
    json warm = InferBody();
    warm["parameters"] = {{"timeout_ms", 30000}};
    auto r = Client().Post("/v2/models/bert/infer", warm.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  void TearDown() override { daemon_.Stop(); }
  httplib::Client Client() const { return daemon_.Client(); }
  static json InferBody(float seed = 1) {
    json data = json::array();
    for (int i = 0; i < 128; ++i) data.push_back(seed + static_cast<float>(i));
    return {{"id", "r1"}, {"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 128}}, {"data", data}}}}};
  }

  testing::TestDaemon daemon_;
  Controller* controller_ = nullptr;
  int port_ = 0;
};

TEST_F(DaemonTest, ServesTheOpenInferenceProtocol) {
  Start();
  httplib::Client c = Client();
  auto live = c.Get("/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
  auto server = json::parse(c.Get("/v2")->body);
  EXPECT_EQ(server["name"], "fluidfaas");
  auto meta = c.Get("/v2/models/bert");
  ASSERT_EQ(meta->status, 200);
  const json m = json::parse(meta->body);
  EXPECT_EQ(m["inputs"][0]["shape"], json({-1, 128}));
  EXPECT_EQ(m["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(c.Get("/v2/models/bert/ready")->status, 200);
  EXPECT_EQ(c.Get("/v2/models/nope")->status, 404);

  auto res = c.Post("/v2/models/bert/infer", InferBody().dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json out = json::parse(res->body);
  EXPECT_EQ(out["id"], "r1");
  EXPECT_EQ(out["model_name"], "bert");
  EXPECT_EQ(out["outputs"][0]["shape"][0], 1);
  EXPECT_EQ(out["outputs"][0]["data"].size(), out["outputs"][0]["shape"][1].get<size_t>());
  EXPECT_GT(out["parameters"]["compute_ms"].get<double>(), 0);
  // A node that keeps its plans learns no extra margin (daemon/lateness.h).
  EXPECT_EQ(json::parse(c.Get("/v1/node")->body)["late_margin"], 0.0);
  EXPECT_NE(c.Get("/metrics")->body.find("\nfluidfaas_late_margin 0\n"), std::string::npos);
}

TEST(DaemonOptionsTest, MarginsOutOfRangeAreRefusedBeforeAnythingStarts) {
  for (const auto& [slo, late] : {std::pair{0.6, 0.3}, std::pair{0.1, 0.6}, std::pair{0.1, -0.1}}) {
    ControllerOptions o = testing::EmulatedNodeOptions();
    o.slo_margin = slo;
    o.late_margin_cap = late;
    auto c = Controller::Start(std::move(o), {});
    ASSERT_FALSE(c.ok()) << slo << " " << late;
    EXPECT_NE(c.status().message().find("margin"), std::string::npos) << c.status().message();
  }
}

TEST_F(DaemonTest, SpeaksTheBinaryTensorExtension) {
  Start();
  httplib::Client c = Client();
  const json header = {
      {"inputs",
       {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 128}}, {"parameters", {{"binary_data_size", 512}}}}}},
      {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}};
  std::vector<float> values(128, 0.25f);
  const std::string text = header.dump();
  std::string body = text;
  body.append(reinterpret_cast<const char*>(values.data()), 512);
  httplib::Headers h = {{"Inference-Header-Content-Length", std::to_string(text.size())}};
  auto r = c.Post("/v2/models/bert/infer", h, body, "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const size_t n = std::stoul(r->get_header_value("Inference-Header-Content-Length"));
  const json out = json::parse(r->body.substr(0, n));
  const size_t bytes = out["outputs"][0]["parameters"]["binary_data_size"].get<size_t>();
  EXPECT_EQ(bytes, 768u * 4u);
  EXPECT_EQ(r->body.size(), n + bytes);
  EXPECT_FALSE(out["outputs"][0].contains("data"));
  // The same call answered in JSON carries the same floats, each written so that it reads back exactly.
  const json as_json = {
      {"id", "q\"\xff"},
      {"inputs",
       {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 128}}, {"data", std::vector<float>(128, 0.25f)}}}}};
  auto j =
      c.Post("/v2/models/bert/infer", as_json.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  ASSERT_TRUE(j);
  ASSERT_EQ(j->status, 200) << j->body;
  const json answer = json::parse(j->body);
  EXPECT_EQ(answer["id"], "q\"\xef\xbf\xbd");  // escaped, the invalid byte replaced
  const auto data = answer["outputs"][0]["data"].get<std::vector<double>>();
  ASSERT_EQ(data.size(), 768u);
  for (size_t i = 0; i < data.size(); ++i) {
    float binary_value;
    std::memcpy(&binary_value, r->body.data() + n + i * 4, 4);
    ASSERT_EQ(static_cast<float>(data[i]), binary_value) << i;
  }
  // A size that does not match, a header length past the body, a NaN: 400 each.
  EXPECT_EQ(c.Post("/v2/models/bert/infer", h, body.substr(0, body.size() - 4), "application/octet-stream")->status,
            400);
  httplib::Headers past = {{"Inference-Header-Content-Length", std::to_string(body.size() + 1)}};
  EXPECT_EQ(c.Post("/v2/models/bert/infer", past, body, "application/octet-stream")->status, 400);
  values[7] = std::numeric_limits<float>::quiet_NaN();
  std::string nan_body = text;
  nan_body.append(reinterpret_cast<const char*>(values.data()), 512);
  EXPECT_EQ(c.Post("/v2/models/bert/infer", h, nan_body, "application/octet-stream")->status, 400);
}

TEST_F(DaemonTest, BadInputIsA4xxThatNamesTheProblemAndTheNodeServesOn) {
  HttpApiOptions api;
  api.limits.max_body_bytes = 64 * 1024;
  Start(api);
  httplib::Client c = Client();
  const auto post = [&](const std::string& body) { return c.Post("/v2/models/bert/infer", body, "application/json"); };
  EXPECT_EQ(post("{not json")->status, 400);
  EXPECT_EQ(post("[]")->status, 400);
  json wrong_type = InferBody();
  wrong_type["inputs"][0]["datatype"] = "INT64";
  auto r = post(wrong_type.dump());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("input 'input'"), std::string::npos) << r->body;
  json wrong_shape = InferBody();
  wrong_shape["inputs"][0]["shape"] = {2, 64};
  EXPECT_EQ(post(wrong_shape.dump())->status, 400);
  json nan = InferBody();
  nan["inputs"][0]["data"][3] = "NaN";
  EXPECT_EQ(post(nan.dump())->status, 400);
  json short_data = InferBody();
  short_data["inputs"][0]["data"].erase(0);
  EXPECT_EQ(post(short_data.dump())->status, 400);
  json bad_timeout = InferBody();
  bad_timeout["parameters"] = {{"timeout_ms", -5}};
  EXPECT_EQ(post(bad_timeout.dump())->status, 400);
  EXPECT_EQ(post(std::string(100 * 1024, ' '))->status, 413);
  EXPECT_EQ(c.Post("/v2/models/nope/infer", InferBody().dump(), "application/json")->status, 404);
  auto ok = post(InferBody().dump());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(DaemonTest, EveryConcurrentRequestIsAnsweredOnceAndCounted) {
  Start();
  constexpr int kThreads = 8;
  constexpr int kEach = 10;
  std::atomic<int> ok{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c = Client();
      for (int i = 0; i < kEach; ++i) {
        auto r = c.Post("/v2/models/bert/infer", InferBody(static_cast<float>(t * 100 + i)).dump(), "application/json");
        (r && r->status == 200 ? ok : other)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok + other, kThreads * kEach);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(controller_->open_requests(), 0u);
  const std::string metrics = Client().Get("/metrics")->body;
  EXPECT_NE(metrics.find("fluidfaas_requests_total{function=\"bert\",outcome=\"completed\",code=\"\"} " +
                         std::to_string(ok.load() + 1)),  // and the warm-up request
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("# TYPE fluidfaas_request_duration_seconds histogram"), std::string::npos);
  // Every completed request was in exactly one completed batch; concurrent callers share some of them.
  const auto counter = [&metrics](const std::string& series) -> int64_t {
    const size_t at = metrics.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::stoll(metrics.substr(at + series.size() + 2));
  };
  const int64_t batched = counter(R"(fluidfaas_batched_requests_total{function="bert"})");
  const int64_t batches = counter(R"(fluidfaas_batches_total{function="bert"})");
  EXPECT_EQ(batched, ok.load() + 1) << metrics;
  EXPECT_GE(batches, 1);
  EXPECT_LE(batches, batched);
  const json node = json::parse(Client().Get("/v1/node")->body);
  EXPECT_EQ(node["slices"].size(), 3u);
  EXPECT_GE(node["instances"].size(), 1u);
}

TEST_F(DaemonTest, AKilledWorkerUnderLoadLosesNoRequest) {
  Start(HttpApiOptions{}, 1.0);  // real modelled times: batches are in flight when the worker dies
  std::atomic<int> ok{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      httplib::Client c = Client();
      while (!stop) {
        auto r = c.Post("/v2/models/bert/infer", InferBody().dump(), "application/json");
        if (r && r->status == 200) {
          ++ok;
        } else if (r && (r->status == 503 || r->status == 429)) {
          ++unavailable;
        } else {
          ++other;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto pids = controller_->node_runtime().Stats().worker_pids;
  for (size_t s = 0; s < pids.size(); ++s) {
    if (pids[s] > 0) (void)controller_->node_runtime().KillWorker(s);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(controller_->open_requests(), 0u);
  // Served again after the restart.
  auto r = Client().Post("/v2/models/bert/infer", InferBody().dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(Client().Get("/v1/node")->body)["workers"]["restarts"].get<int>() >= 1, true);
}

TEST_F(DaemonTest, OverloadIsTurnedAwayAt429AndEveryRequestIsStillAnsweredOnce) {
  Start(HttpApiOptions{}, 1.0, /*max_open=*/2);
  std::atomic<int> ok{0};
  std::atomic<int> overloaded{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&] {
      httplib::Client c = Client();
      for (int i = 0; i < 10; ++i) {
        auto r = c.Post("/v2/models/bert/infer", InferBody().dump(), "application/json");
        if (r && r->status == 200) {
          ++ok;
        } else if (r && r->status == 429 && r->get_header_value("Retry-After") == "1") {
          ++overloaded;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok + overloaded + other, 120);
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(overloaded.load(), 0);
  EXPECT_EQ(controller_->open_requests(), 0u);
  const std::string metrics = Client().Get("/metrics")->body;
  EXPECT_NE(metrics.find("code=\"overloaded\"}"), std::string::npos);
}

TEST_F(DaemonTest, DrainingTurnsNewRequestsAwayAndReadinessDown) {
  Start();
  ASSERT_EQ(Client().Post("/v2/models/bert/infer", InferBody().dump(), "application/json")->status, 200);
  EXPECT_TRUE(controller_->Drain(Seconds(5)));
  auto r = Client().Post("/v2/models/bert/infer", InferBody().dump(), "application/json");
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("draining"), std::string::npos);
  EXPECT_EQ(Client().Get("/v2/health/ready")->status, 503);
}

TEST_F(DaemonTest, DeployAndDeleteNeedTheTokenWhenOneIsSet) {
  HttpApiOptions api;
  api.token = "s3cret";
  Start(api);
  httplib::Client c = Client();
  const std::string body = json{{"model", "resnet50"}, {"name", "rn"}}.dump();
  EXPECT_EQ(c.Post("/v1/functions", body, "application/json")->status, 401);
  httplib::Headers auth = {{"Authorization", "Bearer s3cret"}};
  auto created = c.Post("/v1/functions", auth, body, "application/json");
  ASSERT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(c.Post("/v1/functions", auth, body, "application/json")->status, 409);
  EXPECT_EQ(c.Post("/v1/functions", auth, json{{"model", "no-such"}}.dump(), "application/json")->status, 404);
  EXPECT_EQ(c.Get("/v2/models/rn")->status, 200);
  EXPECT_EQ(c.Delete("/v1/functions/rn")->status, 401);
  EXPECT_EQ(c.Delete("/v1/functions/rn", auth)->status, 200);
  EXPECT_EQ(c.Get("/v2/models/rn")->status, 404);
  EXPECT_EQ(c.Delete("/v1/functions/rn", auth)->status, 404);
  // Deployed again under the same name: a new function (the removed one keeps its own record while it drains).
  EXPECT_EQ(c.Post("/v1/functions", auth, body, "application/json")->status, 201);
  EXPECT_EQ(c.Get("/v2/models/rn")->status, 200);
}

TEST_F(DaemonTest, MoreKeepAliveClientsThanAnyFixedPoolAreAllServed) {
  // cpp-httplib serves a keep-alive connection on one thread until it closes: with a fixed pool of 64, the 65th
  // open connection waited with no answer; and a burst of new connections overflowed the packaged library's listen
  // backlog of 5 (failed reads a second later). 160 clients connect at once and keep their connections open until
  // every one is answered.
  Start();
  constexpr int kClients = 160;
  std::atomic<int> answered{0}, failed{0};
  std::mutex mu;
  std::condition_variable all_done;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(20, 0);
      c.set_keep_alive(true);
      for (int k = 0; k < 2; ++k) {
        auto r = c.Post("/v2/models/bert/infer", InferBody(static_cast<float>(i)).dump(), "application/json");
        (r && (r->status == 200 || r->status == 429 || r->status == 503) ? answered : failed)++;
      }
      std::unique_lock<std::mutex> lock(mu);  // the connection stays open until every client has its answers
      all_done.wait_for(lock, std::chrono::seconds(30), [&] { return answered + failed == 2 * kClients; });
      all_done.notify_all();
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(answered, 2 * kClients);
}

}  // namespace
}  // namespace fluidfaas::daemon
