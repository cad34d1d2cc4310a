// TorchScript functions from a repository, served end to end: the daemon inspects the example function through
// the worker, deploys it over HTTP, and its workers run the real blocks with LibTorch (on the CPU here). Outputs
// match the function run in this process, batched or not.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/subprocess.h"
#include "daemon/daemon_test_util.h"
#include "model/torchscript.h"

namespace fluidfaas::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class TorchScriptDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = fs::path(::testing::TempDir()) /
            ("tsd_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(repo_);
    fs::create_directories(repo_);
    // The worker writes the example, as a function author would.
    auto made = RunProcess({FLUIDFAAS_WORKER, "example", (repo_ / "tiny-mlp").string()}, Seconds(60), 1 << 16);
    ASSERT_TRUE(made.ok() && made->exit_code == 0) << (made.ok() ? made->err : made.status().ToString());
    auto f = model::TorchScriptFunction::Load((repo_ / "tiny-mlp").string());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    reference_ = std::move(*f);

    ControllerOptions o = testing::EmulatedNodeOptions();
    auto repo = FunctionRepository::Open(repo_.string(), FLUIDFAAS_WORKER);
    ASSERT_TRUE(repo.ok());
    o.repository = std::move(*repo);
    daemon_.Start(o, {});
  }
  void TearDown() override {
    daemon_.Stop();
    fs::remove_all(repo_);
  }
  httplib::Client Client() const { return daemon_.Client(); }
  static std::vector<float> Input(float seed) {
    std::vector<float> x(16);
    for (size_t i = 0; i < x.size(); ++i) x[i] = seed * 0.1f - 0.05f * static_cast<float>(i);
    return x;
  }
  std::vector<float> Expected(const std::vector<float>& x) const {
    auto out = reference_->Run(0, 2, model::HostTensor{{1, 16}, x});
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->data : std::vector<float>{};
  }
  // POSTs one infer request (a long deadline: the first pays for the worker's start) and returns its output.
  std::vector<float> Infer(const std::string& model, const std::vector<float>& x, int* status = nullptr) const {
    json body = {{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 16}}, {"data", x}}}},
                 {"parameters", {{"timeout_ms", 30000}}}};
    auto r = Client().Post("/v2/models/" + model + "/infer", body.dump(), "application/json");
    if (!r) return {};
    if (status != nullptr) *status = r->status;
    if (r->status != 200) return {};
    const json out = json::parse(r->body);
    EXPECT_EQ(out["outputs"][0]["shape"], json({1, 8}));
    return out["outputs"][0]["data"].get<std::vector<float>>();
  }

  fs::path repo_;
  std::unique_ptr<model::TorchScriptFunction> reference_;
  testing::TestDaemon daemon_;
};

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;
}

TEST_F(TorchScriptDaemonTest, ADirectoryDeployedOverHttpServesTheFunctionsOwnOutputs) {
  httplib::Client c = Client();
  auto index = c.Post("/v2/repository/index", "{}", "application/json");
  ASSERT_TRUE(index);
  bool listed = false;
  for (const json& m : json::parse(index->body)) {
    if (m["name"] == "tiny-mlp") listed = m["state"] == "UNAVAILABLE";
  }
  EXPECT_TRUE(listed) << index->body;

  auto deployed = c.Post("/v1/functions", R"({"directory": "tiny-mlp", "name": "mlp"})", "application/json");
  ASSERT_TRUE(deployed);
  ASSERT_EQ(deployed->status, 201) << deployed->body;
  const json meta = json::parse(deployed->body);
  EXPECT_EQ(meta["platform"], "pytorch_torchscript");
  EXPECT_EQ(meta["inputs"][0]["shape"], json({-1, 16}));
  EXPECT_EQ(meta["outputs"][0]["shape"], json({-1, 8}));
  EXPECT_EQ(meta["parameters"]["slo_ms"], 50.0);  // the manifest's
  EXPECT_EQ(meta["parameters"]["max_batch"], 8);

  ExpectNear(Infer("mlp", Input(1)), Expected(Input(1)));
  // Many at once: batches of up to 8 through the real blocks, each answer its own request's.
  std::vector<std::thread> clients;
  std::vector<std::vector<float>> got(40);
  for (size_t i = 0; i < got.size(); ++i) {
    clients.emplace_back([&, i] { got[i] = Infer("mlp", Input(static_cast<float>(i))); });
  }
  for (std::thread& t : clients) t.join();
  for (size_t i = 0; i < got.size(); ++i) ExpectNear(got[i], Expected(Input(static_cast<float>(i))));

  // The repository extension unloads and loads it by its directory's name.
  EXPECT_EQ(c.Post("/v2/repository/models/tiny-mlp/load", "{}", "application/json")->status, 200);
  ExpectNear(Infer("tiny-mlp", Input(3)), Expected(Input(3)));
  EXPECT_EQ(c.Post("/v2/repository/models/tiny-mlp/unload", "{}", "application/json")->status, 200);
  int status = 0;
  Infer("tiny-mlp", Input(3), &status);
  EXPECT_EQ(status, 404);
}

TEST_F(TorchScriptDaemonTest, DirectoriesOutsideTheRepositoryAreRefused) {
  fs::create_directory_symlink(repo_ / "tiny-mlp" / ".." / "..", repo_ / "up");
  httplib::Client c = Client();
  for (const auto& [body, status] :
       std::vector<std::pair<std::string, int>>{{R"({"directory": "../tiny-mlp"})", 400},
                                                {R"({"directory": "/etc"})", 400},
                                                {R"({"directory": "up"})", 400},
                                                {R"({"directory": "nothing"})", 404},
                                                {R"({"directory": "tiny-mlp", "model": "resnet50"})", 400},
                                                {R"({"directory": "tiny-mlp", "max_batch": 0})", 400},
                                                {R"({"directory": "tiny-mlp", "max_batch": 2.5})", 400}}) {
    auto r = c.Post("/v1/functions", body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << body << ": " << r->body;
    EXPECT_TRUE(json::parse(r->body).contains("error")) << r->body;
  }
  EXPECT_TRUE(daemon_.controller().Functions().empty());
  // And the node still serves.
  auto ok = c.Post("/v1/functions", R"({"directory": "tiny-mlp", "max_batch": 2})", "application/json");
  ASSERT_EQ(ok->status, 201) << ok->body;
  EXPECT_EQ(json::parse(ok->body)["parameters"]["max_batch"], 2);
  ExpectNear(Infer("tiny-mlp", Input(2)), Expected(Input(2)));
}

}  // namespace
}  // namespace fluidfaas::daemon
