// End-to-end tests of the fluidfaas binary: exit codes, text and --json output, as an operator sees them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct CommandRun {
  int exit_code;
  std::string out;  // stdout and stderr together
};

CommandRun Fluidfaas(const std::string& args) {
  const std::string cmd = std::string(FLUIDFAAS_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

nlohmann::json Json(const CommandRun& r) {
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

TEST(CliTest, LayoutsJsonHasOneElementPerLayout) {
  CommandRun r = Fluidfaas("mig layouts --gpu a100-80gb --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j = Json(r);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j.size(), 19u);
  bool found = false;
  for (const auto& layout : j) {
    found = found || layout == nlohmann::json::parse(R"({"slices":[{"profile":"4g.40gb","start":0},
        {"profile":"2g.20gb","start":4},{"profile":"1g.10gb","start":6}]})");
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(Json(Fluidfaas("mig layouts --gpu a100-80gb --json --driver-before-r510")).size(), 18u);
  EXPECT_GT(Json(Fluidfaas("mig layouts --profiles all --json")).size(), 19u);
}

TEST(CliTest, ValidateExitCodes) {
  CommandRun ok = Fluidfaas("mig validate --gpu a100-80gb 1g.10gb+2g.20gb+4g.40gb");
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.out, "4g.40gb@0+2g.20gb@4+1g.10gb@6\n");
  CommandRun bad = Fluidfaas("mig validate --gpu a100-80gb 4g.40gb@0+2g.20gb@2");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("2g.20gb@2 overlaps 4g.40gb@0"), std::string::npos) << bad.out;
  CommandRun bad_json = Fluidfaas("mig validate --json 2g.20gb@1");
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_EQ(Json(bad_json)["valid"], false);
  EXPECT_NE(Json(bad_json)["reason"].get<std::string>().find("cannot start at memory slice 1"), std::string::npos);
}

TEST(CliTest, ProfilesJson) {
  CommandRun r = Fluidfaas("mig profiles --gpu h100-80gb --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j = Json(r);
  ASSERT_EQ(j.size(), 7u);
  EXPECT_EQ(j[0]["id"], 19);
  EXPECT_EQ(j[6]["name"], "7g.80gb");
  EXPECT_EQ(j[6]["sms"], 132);
}

TEST(CliTest, NodeShowEmbeddedDefault) {
  CommandRun r = Fluidfaas("node show --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j = Json(r);
  ASSERT_EQ(j["slices"].size(), 3u);
  EXPECT_EQ(j["gpus"][0]["layout"], "4g.40gb@0+2g.20gb@4+1g.10gb@6");
  CommandRun text = Fluidfaas("node show");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("0:2g.20gb@4"), std::string::npos) << text.out;
}

TEST(CliTest, NodeShowConfigFile) {
  const std::string path = testing::TempDir() + "/cli_node.yaml";
  std::ofstream(path) << "node:\n  discovery: emulated\n  gpus:\n    - {type: a100-80gb, layout: 3g.40gb+3g.40gb, count: 2}\n";
  CommandRun r = Fluidfaas("node show --json --config " + path);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(Json(r)["slices"].size(), 4u);
  std::ofstream(path) << "node:\n  gpus:\n    - {type: a100-80gb, layout: 4g.40gb+4g.40gb}\n";
  CommandRun bad = Fluidfaas("node show --config " + path);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("node.gpus[0].layout: 2 x 4g.40gb: at most 1"), std::string::npos) << bad.out;
}

TEST(CliTest, UsageErrorsExitTwoAndHelpExitsZero) {
  EXPECT_EQ(Fluidfaas("mig layouts --gpu v100").exit_code, 2);
  EXPECT_EQ(Fluidfaas("mig layouts --profiles some").exit_code, 2);
  EXPECT_EQ(Fluidfaas("no-such-command").exit_code, 2);
  EXPECT_EQ(Fluidfaas("--log-level loud node show").exit_code, 2);
  CommandRun help = Fluidfaas("mig validate --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("LAYOUT"), std::string::npos);
  EXPECT_EQ(Fluidfaas("node show --help").exit_code, 0);
}

}  // namespace
