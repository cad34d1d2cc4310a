// The function repository without LibTorch: names resolve only inside it, and a worker's check output becomes the
// planner's view of the function (a shell script stands in for fluidfaas-worker).
#include "daemon/repository.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace fluidfaas::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json TinyCheck() {
  return json::parse(R"({"valid": true, "name": "tiny-mlp", "slo_ms": 50.0, "max_batch": 8, "dtype": "fp32",
    "input_shape": [16],
    "blocks": [{"name": "fc1", "file": "fc1.pt", "params": 544, "output_shape": [32]},
               {"name": "reshape", "file": "reshape.pt", "params": 0, "output_shape": [4, 8]},
               {"name": "fc2", "file": "fc2.pt", "params": 264, "output_shape": [8]}]})");
}

TEST(SpecFromCheckTest, GivesBlocksWithParametersActivationsAndTheStatedWorkAssumption) {
  std::vector<std::vector<int64_t>> inputs;
  auto f = SpecFromCheck(TinyCheck(), &inputs);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->name, "tiny-mlp");
  EXPECT_EQ(f->max_batch, 8);
  EXPECT_DOUBLE_EQ(f->slo_ms, 50);
  EXPECT_EQ(f->input_shape, (std::vector<int64_t>{16}));
  EXPECT_EQ(f->output_shape, (std::vector<int64_t>{8}));
  ASSERT_EQ(f->blocks.size(), 3U);
  EXPECT_EQ(f->blocks[0].params, 544);
  EXPECT_EQ(f->blocks[0].out_elems, 32);
  EXPECT_EQ(f->blocks[0].peak_act_elems, 16 + 32);
  EXPECT_EQ(f->blocks[1].out_elems, 32);
  EXPECT_EQ(f->blocks[2].peak_act_elems, 32 + 8);
  EXPECT_DOUBLE_EQ(f->blocks[0].macs, 544);  // one multiply-add per parameter and sample
  ASSERT_EQ(f->blocks[0].ops.size(), 1U);
  EXPECT_EQ(f->blocks[0].ops[0].op_class, model::Op::Class::kMatmul);
  EXPECT_EQ(f->blocks[1].ops[0].op_class, model::Op::Class::kMemory);  // no weights: it only moves data
  EXPECT_EQ(f->TotalParams(), 808);
  EXPECT_EQ(inputs, (std::vector<std::vector<int64_t>>{{16}, {32}, {4, 8}}));
}

TEST(SpecFromCheckTest, RefusesWhatIsMissingOrOutOfRangeNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/valid", "the function does not load"},
      {"/name", "check.name"},
      {"/slo_ms", "check.slo_ms"},
      {"/max_batch", "check.max_batch"},
      {"/input_shape", "check.input_shape"},
      {"/blocks", "check.blocks"},
      {"/blocks/1/params", "check.blocks[1]"},
      {"/blocks/2/output_shape", "check.blocks[2].output_shape"},
  };
  for (const auto& [pointer, field] : cases) {
    json j = TinyCheck();
    const json::json_pointer member(pointer);
    ASSERT_EQ(j[member.parent_pointer()].erase(member.back()), 1U) << pointer;
    auto f = SpecFromCheck(j);
    ASSERT_FALSE(f.ok()) << pointer;
    EXPECT_NE(f.status().message().find(field), std::string::npos) << pointer << ": " << f.status().message();
  }
  for (const auto& [pointer, bad] : std::vector<std::pair<std::string, json>>{{"/slo_ms", -1},
                                                                              {"/slo_ms", 1e300},
                                                                              {"/max_batch", 0},
                                                                              {"/max_batch", 1 << 20},
                                                                              {"/dtype", "int8"},
                                                                              {"/name", "../x"},
                                                                              {"/input_shape", json::array({0})},
                                                                              {"/input_shape/0", 1LL << 40},
                                                                              {"/blocks/0/params", -5},
                                                                              {"/blocks/0/output_shape", "32"}}) {
    json j = TinyCheck();
    j[json::json_pointer(pointer)] = bad;
    EXPECT_FALSE(SpecFromCheck(j).ok()) << pointer << " = " << bad.dump();
  }
  json failed = {{"valid", false}, {"reason", "fc2.pt: no forward method"}};
  EXPECT_EQ(SpecFromCheck(failed).status().message(), "fc2.pt: no forward method");
}

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::path(::testing::TempDir()) /
            ("repo_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(base_);
    root_ = base_ / "repo";
    fs::create_directories(root_ / "tiny-mlp");
    std::ofstream(root_ / "tiny-mlp" / "manifest.yaml") << "name: tiny-mlp\n";
    fs::create_directories(root_ / "empty");    // no manifest: not a function
    fs::create_directories(base_ / "outside");  // a function directory beside the repository
    std::ofstream(base_ / "outside" / "manifest.yaml") << "name: outside\n";
    fs::create_directory_symlink(base_ / "outside", root_ / "escape");
    fs::create_directory_symlink(root_ / "tiny-mlp", root_ / "alias");  // a link that stays inside is fine
    // The stand-in worker prints the check of $2 (the directory): TinyCheck for tiny-mlp, a failure otherwise.
    worker_ = (base_ / "worker.sh").string();
    std::ofstream(worker_)
        << "#!/bin/sh\ncase \"$2\" in\n  */tiny-mlp) cat <<'EOF'\n"
        << TinyCheck().dump()
        << "\nEOF\n;;\n  *) echo '{\"valid\": false, \"reason\": \"fc2.pt: no forward method\"}';;\nesac\n";
    chmod(worker_.c_str(), 0755);
  }
  void TearDown() override { fs::remove_all(base_); }

  fs::path base_;
  fs::path root_;
  std::string worker_;
};

TEST_F(RepositoryTest, NamesResolveOnlyInsideTheRepository) {
  auto repo = FunctionRepository::Open(root_.string(), worker_);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  auto dir = repo->Resolve("tiny-mlp");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(*dir, fs::canonical(root_ / "tiny-mlp").string());
  EXPECT_EQ(*repo->Resolve("alias"), *dir);
  EXPECT_EQ(repo->Resolve("escape").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(repo->Resolve("escape").status().message().find("outside the repository"), std::string::npos);
  for (const char* bad : {"..", "../outside", "/etc", "tiny-mlp/../..", ".", "", "a/b"}) {
    EXPECT_EQ(repo->Resolve(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(repo->Resolve("empty").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->Resolve("nothing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(repo->List(), (std::vector<std::string>{"alias", "tiny-mlp"}));
  EXPECT_EQ(FunctionRepository::Open((base_ / "nothing").string(), worker_).status().code(), StatusCode::kNotFound);
}

TEST_F(RepositoryTest, InspectAsksTheWorkerAndPassesItsReasonOn) {
  auto repo = FunctionRepository::Open(root_.string(), worker_);
  ASSERT_TRUE(repo.ok());
  auto f = repo->Inspect("tiny-mlp");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->name, "tiny-mlp");
  EXPECT_EQ(f->spec.blocks.size(), 3U);
  EXPECT_EQ(f->block_inputs.size(), 3U);
  EXPECT_FALSE(f->profile.has_value());
  fs::create_directories(root_ / "broken");
  std::ofstream(root_ / "broken" / "manifest.yaml") << "name: broken\n";
  auto broken = repo->Inspect("broken");
  EXPECT_EQ(broken.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(broken.status().message().find("fc2.pt: no forward method"), std::string::npos);
  // A worker that does not speak JSON (built without LibTorch: no "check" command).
  auto plain = FunctionRepository::Open(root_.string(), "/bin/false");
  EXPECT_EQ(plain->Inspect("tiny-mlp").status().code(), StatusCode::kUnavailable);
  auto missing = FunctionRepository::Open(root_.string(), (base_ / "no-worker").string());
  EXPECT_EQ(missing->Inspect("tiny-mlp").status().code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace fluidfaas::daemon
