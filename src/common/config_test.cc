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

}  // namespace
}  // namespace fluidfaas::config
