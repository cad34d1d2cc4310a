#include "model/manifest.h"

#include <gtest/gtest.h>

namespace fluidfaas::model {
namespace {

constexpr const char* kGood =
    "name: tiny-mlp\nslo_ms: 50\nmax_batch: 8\ninput_shape: [16]\nblocks:\n  - {name: fc1, file: fc1.pt}\n";

TEST(ManifestTest, AGoodManifestParses) {
  Result<FunctionManifest> m = ParseManifest(kGood, "manifest.yaml");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->name, "tiny-mlp");
  EXPECT_EQ(m->max_batch, 8);
  EXPECT_EQ(m->blocks.at(0).file, "fc1.pt");
}

// Every number and name from outside is range-checked, sizes before anything is allocated (hardening issue).
TEST(ManifestTest, NumbersNamesAndPathsFromOutsideAreChecked) {
  const std::pair<const char*, const char*> cases[] = {
      {"name: m\nslo_ms: .nan\ninput_shape: [16]\nblocks: [{name: a, file: a.pt}]\n", "manifest.slo_ms: nan is not in"},
      {"name: m\nslo_ms: .inf\ninput_shape: [16]\nblocks: [{name: a, file: a.pt}]\n", "manifest.slo_ms: inf is not in"},
      {"name: m\nslo_ms: 5\nmax_batch: 100000\ninput_shape: [16]\nblocks: [{name: a, file: a.pt}]\n",
       "manifest.max_batch: 100000 is not in 1..4096"},
      {"name: m\nslo_ms: 5\ninput_shape: [100000, 100000, 100000]\nblocks: [{name: a, file: a.pt}]\n",
       "elements per sample"},
      {"name: m\nslo_ms: 5\ninput_shape: [9223372036854775807, 4]\nblocks: [{name: a, file: a.pt}]\n",
       "manifest.input_shape"},
      {"name: \"bad\\x1b[2Jname\"\nslo_ms: 5\ninput_shape: [1]\nblocks: [{name: a, file: a.pt}]\n", "\\x1b"},
      {"name: m\nslo_ms: 5\ninput_shape: [1]\nblocks: [{name: a, file: ../../etc/passwd}]\n", "inside the function"},
      {"name: m\nslo_ms: 5\ninput_shape: [1]\nblocks: [{name: a, file: /etc/passwd}]\n", "inside the function"},
      {"name: m\nname: n\nslo_ms: 5\ninput_shape: [1]\nblocks: [{name: a, file: a.pt}]\n", "duplicate key 'name'"},
  };
  for (const auto& [text, want] : cases) {
    Result<FunctionManifest> m = ParseManifest(text, "manifest.yaml");
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_NE(m.status().message().find(want), std::string::npos) << m.status().message();
    EXPECT_EQ(m.status().message().find('\x1b'), std::string::npos) << "echoed an escape sequence raw";
  }
}

}  // namespace
}  // namespace fluidfaas::model
