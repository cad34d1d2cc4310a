// TorchScript functions from a repository, served end to end: the daemon inspects the example function through
// the worker, deploys it over HTTP, and its workers run the real blocks with LibTorch (on the CPU here). Outputs
// match the function run in this process, batched or not.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/subprocess.h"
#include "daemon/daemon_test_util.h"
#include "model/tokenizer.h"
#include "model/torch_generative.h"
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

// One generation through the controller: its tokens and its end.
struct Generated {
  std::vector<int64_t> tokens;
  GenerateEnd end;
};
std::future<Generated> Generate(Controller& c, const std::string& function, const std::string& prompt, int count) {
  auto state = std::make_shared<std::pair<Generated, std::promise<Generated>>>();
  std::future<Generated> done = state->second.get_future();
  const std::vector<int> ids(prompt.begin(), prompt.end());  // byte-level: a token is a byte
  c.Generate(function, ids, count,
             {.token = [state](int token, int) { state->first.tokens.push_back(token); },
              .end =
                  [state](GenerateEnd end) {
                    state->first.end = std::move(end);
                    state->second.set_value(std::move(state->first));
                  }});
  return done;
}

// A generative TorchScript function deployed from the repository runs in the workers: its tokens are the model's
// own, token for token against the whole model run in this process without a cache, for several sequences
// decoded in one batch at different contexts; over HTTP too.
TEST_F(TorchScriptDaemonTest, AGenerativeDirectoryGeneratesTheModelsOwnTokensInTheWorkers) {
  const fs::path dir = repo_ / "tiny-gpt";
  auto made = RunProcess({FLUIDFAAS_WORKER, "example", "--generative", dir.string()}, Seconds(60), 1 << 16);
  ASSERT_TRUE(made.ok() && made->exit_code == 0) << (made.ok() ? made->err : made.status().ToString());
  auto deployed = Client().Post("/v1/functions", json{{"directory", "tiny-gpt"}}.dump(), "application/json");
  ASSERT_TRUE(deployed);
  ASSERT_EQ(deployed->status, 201) << deployed->body;
  const json meta = json::parse(Client().Get("/v2/models/tiny-gpt")->body);
  EXPECT_EQ(meta["platform"], "pytorch_torchscript_generative") << meta.dump();
  EXPECT_EQ(meta["parameters"]["directory"], "tiny-gpt") << meta.dump();
  EXPECT_EQ(meta["parameters"]["max_positions"], 256) << meta.dump();

  const std::vector<std::string> prompts = {"Hello", "FluidFaaS splits models", "a"};
  constexpr int kCount = 24;
  std::vector<std::future<Generated>> running;
  running.reserve(prompts.size());
  for (const std::string& p : prompts) running.push_back(Generate(daemon_.controller(), "tiny-gpt", p, kCount));
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(running[i].wait_for(std::chrono::seconds(60)), std::future_status::ready) << prompts[i];
    const Generated g = running[i].get();
    ASSERT_EQ(g.end.outcome, Outcome::kCompleted) << g.end.code << ": " << g.end.detail;
    const std::vector<int64_t> prompt(prompts[i].begin(), prompts[i].end());
    auto want = model::GenerateWithoutCache(dir.string(), prompt, kCount);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    EXPECT_EQ(g.tokens, *want) << "prompt '" << prompts[i] << "'";
    EXPECT_EQ(g.end.generated, kCount);
  }

  auto r = Client().Post("/v2/models/tiny-gpt/generate", json{{"text_input", "Hi"}, {"max_tokens", 8}}.dump(),
                         "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["usage"]["completion_tokens"], 8) << r->body;
  // Longer than the model's 256 positions: refused before anything runs.
  auto too_long = Generate(daemon_.controller(), "tiny-gpt", std::string(250, 'x'), 10).get();
  EXPECT_EQ(too_long.end.code, "too_long");
}

// A worker killed while its stage generates: every open sequence ends once, failed worker_lost; the function
// serves again once the worker is back.
TEST_F(TorchScriptDaemonTest, AGenerativeInstanceWhoseWorkerDiesFailsItsSequencesOnceAndServesAgain) {
  const fs::path dir = repo_ / "tiny-gpt";
  auto made = RunProcess({FLUIDFAAS_WORKER, "example", "--generative", dir.string()}, Seconds(60), 1 << 16);
  ASSERT_TRUE(made.ok() && made->exit_code == 0);
  ASSERT_TRUE(daemon_.controller().Deploy({.directory = "tiny-gpt"}).ok());
  // Warm: the instance is up.
  ASSERT_EQ(Generate(daemon_.controller(), "tiny-gpt", "warm", 2).get().end.outcome, Outcome::kCompleted);
  std::vector<std::future<Generated>> running;
  running.reserve(4);
  for (int i = 0; i < 4; ++i)
    running.push_back(Generate(daemon_.controller(), "tiny-gpt", "kill " + std::to_string(i), 200));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const runtime::RuntimeStats stats = daemon_.controller().node_runtime().Stats();
  for (size_t slice = 0; slice < stats.worker_pids.size(); ++slice) {
    if (stats.worker_pids[slice] != 0) {
      ASSERT_TRUE(daemon_.controller().node_runtime().KillWorker(slice).ok());
    }
  }
  int failed = 0;
  for (auto& f : running) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    const Generated g = f.get();
    if (g.end.outcome == Outcome::kFailed) {
      EXPECT_EQ(g.end.code, "worker_lost") << g.end.detail;
      ++failed;
    } else {
      EXPECT_EQ(g.end.outcome, Outcome::kCompleted) << g.end.code;  // it may have finished before the kill
    }
  }
  EXPECT_GT(failed, 0) << "200 tokens each take longer than 50 ms";
  // Served again: a new instance once a worker is back (restarted after its backoff).
  Generated again;
  for (int attempt = 0; attempt < 50; ++attempt) {
    again = Generate(daemon_.controller(), "tiny-gpt", "again", 4).get();
    if (again.end.outcome == Outcome::kCompleted) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(again.end.outcome, Outcome::kCompleted) << again.end.code << ": " << again.end.detail;
  auto want = model::GenerateWithoutCache(dir.string(), {'a', 'g', 'a', 'i', 'n'}, 4);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(again.tokens, *want);
}

// Writes `dir`/vocab.txt, 256 tokens: ids 0..127 the ASCII characters, 128 " the", 129 "the", then "w130_".. (as
// many as make 256, or `count`), and names it in the manifest.
void WriteVocabulary(const fs::path& dir, int count = 256) {
  std::ofstream out(dir / "vocab.txt", std::ios::trunc);
  for (int id = 0; id < count; ++id) {
    const std::string token = id < 128    ? std::string(1, static_cast<char>(id))
                              : id == 128 ? " the"
                              : id == 129 ? "the"
                                          : "w" + std::to_string(id) + "_";
    out << json(token).dump() << "\n";
  }
  std::ifstream in(dir / "manifest.yaml");
  std::string manifest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = manifest.find("vocab: 256\n");
  ASSERT_NE(at, std::string::npos);
  manifest.insert(at + 11, "tokenizer: vocab.txt\n");
  std::ofstream(dir / "manifest.yaml", std::ios::trunc) << manifest;
}

// A generative directory with a vocabulary of its own: prompts are encoded by it (the longest token first) and
// the model's tokens are answered as their texts; text it cannot encode is a 400; a vocabulary that does not match
// the model's is refused at deploy.
TEST_F(TorchScriptDaemonTest, AGenerativeDirectoryWithAVocabularyIsEncodedAndAnsweredByIt) {
  const fs::path dir = repo_ / "vocab-gpt";
  auto made = RunProcess({FLUIDFAAS_WORKER, "example", "--generative", dir.string()}, Seconds(60), 1 << 16);
  ASSERT_TRUE(made.ok() && made->exit_code == 0);
  WriteVocabulary(dir);
  auto deployed = Client().Post("/v1/functions", json{{"directory", "vocab-gpt"}}.dump(), "application/json");
  ASSERT_TRUE(deployed);
  ASSERT_EQ(deployed->status, 201) << deployed->body;
  const json meta = json::parse(Client().Get("/v2/models/vocab-gpt")->body);
  EXPECT_EQ(meta["parameters"]["tokenizer"], "vocabulary") << meta.dump();
  EXPECT_EQ(meta["parameters"]["vocab"], 256) << meta.dump();

  // "the" " " "c" "a" "t" " " "a" "n" "d" " the" " " "d" "o" "g"
  const std::vector<int64_t> prompt = {129, ' ', 'c', 'a', 't', ' ', 'a', 'n', 'd', 128, ' ', 'd', 'o', 'g'};
  constexpr int kCount = 12;
  auto r = Client().Post("/v1/completions",
                         json{{"model", "vocab-gpt"}, {"prompt", "the cat and the dog"}, {"max_tokens", kCount}}.dump(),
                         "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json answer = json::parse(r->body);
  EXPECT_EQ(answer["usage"]["prompt_tokens"], prompt.size()) << r->body;
  EXPECT_EQ(answer["usage"]["completion_tokens"], kCount) << r->body;
  auto want = model::GenerateWithoutCache(dir.string(), prompt, kCount);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  auto vocab = model::Tokenizer::ReadVocabulary((dir / "vocab.txt").string(), 256);
  ASSERT_TRUE(vocab.ok());
  std::string text;
  for (int64_t id : *want) text += vocab->Piece(static_cast<int>(id));
  EXPECT_EQ(answer["choices"][0]["text"], text) << r->body;

  // "é" is no token's start: refused, counted, before anything runs.
  auto refused = Client().Post("/v2/models/vocab-gpt/generate",
                               json{{"text_input", "caf\u00e9"}, {"max_tokens", 4}}.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_EQ(json::parse(refused->body)["code"], "bad_input") << refused->body;
  EXPECT_NE(refused->body.find("offset 3"), std::string::npos) << refused->body;

  const fs::path short_dir = repo_ / "short-vocab-gpt";
  made = RunProcess({FLUIDFAAS_WORKER, "example", "--generative", short_dir.string()}, Seconds(60), 1 << 16);
  ASSERT_TRUE(made.ok() && made->exit_code == 0);
  WriteVocabulary(short_dir, 255);
  const Status s = daemon_.controller().Deploy({.directory = "short-vocab-gpt"});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("255 tokens, but the model's vocab is 256"), std::string::npos) << s.message();
}

// A generative directory that does not load, or whose vocabulary is not byte-level, is refused at deploy with the
// reason, and nothing is deployed.
TEST_F(TorchScriptDaemonTest, AGenerativeDirectoryThatCannotServeIsRefusedWithItsReason) {
  const fs::path broken = repo_ / "broken-gpt";
  auto made = RunProcess({FLUIDFAAS_WORKER, "example", "--generative", broken.string()}, Seconds(60), 1 << 16);
  ASSERT_TRUE(made.ok() && made->exit_code == 0);
  std::ofstream(broken / "layer1.pt", std::ios::trunc) << "not a TorchScript file";
  auto r = Client().Post("/v1/functions", json{{"directory", "broken-gpt"}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("layer1.pt"), std::string::npos) << r->body;

  const fs::path wide = repo_ / "wide-gpt";
  made = RunProcess({FLUIDFAAS_WORKER, "example", "--generative", wide.string()}, Seconds(60), 1 << 16);
  ASSERT_TRUE(made.ok() && made->exit_code == 0);
  std::ifstream in(wide / "manifest.yaml");
  std::string manifest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = manifest.find("vocab: 256");
  ASSERT_NE(at, std::string::npos);
  manifest.replace(at, 10, "vocab: 300");
  std::ofstream(wide / "manifest.yaml", std::ios::trunc) << manifest;
  const Status s = daemon_.controller().Deploy({.directory = "wide-gpt"});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("byte-level"), std::string::npos) << s.message();
  EXPECT_EQ(Client().Get("/v2/models/broken-gpt")->status, 404);
  EXPECT_EQ(Client().Get("/v2/models/wide-gpt")->status, 404);
}

}  // namespace
}  // namespace fluidfaas::daemon
