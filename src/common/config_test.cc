#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace fluidfaas::config {
namespace {

TEST(ConfigTest, ParseErrorNamesSourceAndLine) {
  Result<YAML::Node> r = ParseYaml("a: 1\nb: [1, 2\n", "test.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("test.yaml:"), std::string::npos) << r.status().message();
}

TEST(ConfigTest, MissingFileIsNotFound) {
  Result<YAML::Node> r = LoadYamlFile("/nonexistent/fluidfaas.yaml");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/fluidfaas.yaml"), std::string::npos);
}

TEST(ConfigTest, LoadsFile) {
  const std::string path = testing::TempDir() + "/config_test.yaml";
  std::ofstream(path) << "name: node-a\ngpus: 3\n";
  Result<YAML::Node> r = LoadYamlFile(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*Required<std::string>(*r, "name", "root"), "node-a");
  std::remove(path.c_str());
}

TEST(ConfigTest, TypedReadersNameTheField) {
  YAML::Node n = *ParseYaml("count: eight\nname: x\n", "t");
  Result<int> count = Required<int>(n, "count", "node");
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.status().message().find("node.count"), std::string::npos) << count.status().message();
  Result<int> missing = Required<int>(n, "gpus", "node");
  EXPECT_EQ(missing.status().message(), "node: missing required key 'gpus'");
  Result<std::optional<int>> absent = Optional<int>(n, "gpus", "node");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
}

TEST(ConfigTest, UnknownKeysAreErrors) {
  YAML::Node n = *ParseYaml("name: x\nlayot: 1g.10gb\n", "t");
  Status s = CheckMap(n, "node", {"name", "layout"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "node: unknown key 'layot' (known: name, layout)");
  EXPECT_TRUE(CheckMap(n, "node", {"name", "layot"}).ok());
  EXPECT_FALSE(CheckMap(*ParseYaml("[1, 2]", "t"), "node", {}).ok());
}

// Regression (hardening issue: `count: 1` then `count: 5`, or two `node:` sections, silently kept the first).
TEST(ConfigTest, DuplicateKeysAreErrorsAtAnyDepth) {
  const Result<YAML::Node> top = ParseYaml("node:\n  name: a\nnode:\n  name: b\n", "c.yaml");
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().message(), "c.yaml:3:1: duplicate key 'node'");
  const Result<YAML::Node> deep =
      ParseYaml("node:\n  gpus:\n    - type: a100-80gb\n      count: 1\n      count: 5\n", "c.yaml");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("duplicate key 'count'"), std::string::npos) << deep.status().message();
  EXPECT_TRUE(ParseYaml("a: 1\nb: {a: 2}\n", "c.yaml").ok());  // the same key in different maps is fine
}

// Found by fuzzing (node_config_fuzz, manifest_fuzz): a key that is itself a map threw a yaml-cpp exception
// through CheckMap and killed the process.
TEST(ConfigTest, AKeyThatIsAMapIsAnErrorNotAnException) {
  const YAML::Node n = *ParseYaml("{type: a, count: 2}: h100\nname: x\n", "t");
  const Status s = CheckMap(n, "node", {"name"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("a key must be a plain name"), std::string::npos) << s.message();
  EXPECT_FALSE(Optional<int>(*ParseYaml("[1, 2]", "t"), "count", "node").ok());  // not a map: an error
}

// Regression (hardening issue: a 50 MB config took 48 s and 2.8 GB before it was rejected).
TEST(ConfigTest, OversizedTextIsRefusedBeforeParsing) {
  const Result<YAML::Node> big = ParseYaml(std::string(2 << 20, '#'), "big.yaml");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("over the limit"), std::string::npos);
  EXPECT_FALSE(ParseYaml(std::string(100, '['), "deep.yaml").ok());  // unbalanced and deep: an error, no crash
}

}  // namespace
}  // namespace fluidfaas::config
