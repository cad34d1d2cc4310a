#include "model/manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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

// A generative directory's manifest parses without LibTorch: defaults, objectives, and the checks on each field.
TEST(ManifestTest, AGenerativeManifestParsesWithItsDefaultsAndChecks) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "gen_manifest";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& text) { std::ofstream(dir / "manifest.yaml") << text; };
  const std::string blocks =
      "blocks:\n  - {name: e, file: e.pt, kind: embed}\n  - {name: l, file: l.pt, kind: layer}\n"
      "  - {name: h, file: h.pt, kind: head}\n";
  write("name: g\nkind: generative\nvocab: 256\nd_model: 32\nheads: 4\nmax_positions: 128\ntpot_ms: 40\n" + blocks);
  EXPECT_TRUE(IsGenerativeDirectory(dir.string()));
  Result<GenerativeManifest> m = ReadGenerativeManifest(dir.string());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->ffn, 128);  // 4 x d_model
  EXPECT_EQ(m->tpot_ms, 40);
  EXPECT_EQ(m->slo_ms, 0);
  EXPECT_EQ(m->blocks.size(), 3u);
  EXPECT_EQ(m->tokenizer, "");  // byte-level
  write("name: g\nkind: generative\nvocab: 300\ntokenizer: t/vocab.txt\nd_model: 32\nheads: 4\nmax_positions: 128\n" +
        blocks);
  m = ReadGenerativeManifest(dir.string());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->tokenizer, "t/vocab.txt");
  EXPECT_EQ(m->vocab, 300);
  const std::pair<std::string, const char*> bad[] = {
      {"name: g\nkind: generative\nvocab: 300\nd_model: 32\nheads: 4\nmax_positions: 128\n" + blocks,
       "need a tokenizer file"},
      {"name: g\nkind: generative\nvocab: 256\ntokenizer: /etc/passwd\nd_model: 32\nheads: 4\nmax_positions: 128\n" +
           blocks,
       "inside the function"},
      {"name: g\nkind: generative\nvocab: 256\nd_model: 30\nheads: 4\nmax_positions: 128\n" + blocks, "divide"},
      {"name: g\nkind: generative\nvocab: 256\nd_model: 32\nheads: 4\nmax_positions: 128\ntpot_ms: .nan\n" + blocks,
       "manifest.tpot_ms"},
      {"name: g\nkind: generative\nvocab: 256\nd_model: 32\nheads: 4\nmax_positions: 128\nffn: 0\n" + blocks,
       "manifest.ffn"},
      {"name: g\nkind: generative\nvocab: 256\nd_model: 32\nheads: 4\nmax_positions: 128\nblocks:\n"
       "  - {name: e, file: ../e.pt, kind: embed}\n  - {name: l, file: l.pt, kind: layer}\n"
       "  - {name: h, file: h.pt, kind: head}\n",
       "inside the function"},
  };
  for (const auto& [text, want] : bad) {
    write(text);
    Result<GenerativeManifest> r = ReadGenerativeManifest(dir.string());
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
  }
  write(kGood);
  EXPECT_FALSE(IsGenerativeDirectory(dir.string()));
  std::filesystem::remove_all(dir);
  EXPECT_FALSE(IsGenerativeDirectory(dir.string()));
}

}  // namespace
}  // namespace fluidfaas::model
