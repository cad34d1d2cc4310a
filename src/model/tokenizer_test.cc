#include "model/tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fluidfaas::model {
namespace {

std::string Line(const std::string& token) {
  return nlohmann::json(token).dump() + "\n";
}

// Every ASCII character as a token of its own (ids 0..127, so any ASCII text encodes), then `longer` (128...).
std::string Vocabulary(const std::vector<std::string>& longer) {
  std::string text;
  for (int c = 0; c < 128; ++c) text += Line(std::string(1, static_cast<char>(c)));
  for (const std::string& t : longer) text += Line(t);
  return text;
}

TEST(TokenizerTest, BytesAreTheirOwnTokens) {
  const Tokenizer t = Tokenizer::Bytes();
  EXPECT_TRUE(t.byte_level());
  EXPECT_EQ(t.vocab(), 256);
  auto ids = t.Encode("h\xc3\xa9");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int>{'h', 0xc3, 0xa9}));
  EXPECT_EQ(t.Piece(0xc3), "\xc3");
  EXPECT_EQ(t.Piece(256), "");
  EXPECT_EQ(t.Piece(-1), "");
}

TEST(TokenizerTest, AVocabularyEncodesTheLongestTokenFirstAndDecodesBack) {
  auto t =
      Tokenizer::FromVocabulary(Vocabulary({"the", " the", "th", "cat", " cat", "\n\n", "caf\xc3\xa9"}), "vocab", 135);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_FALSE(t->byte_level());
  EXPECT_EQ(t->vocab(), 135);
  auto ids = t->Encode("the cat\n\nthx caf\xc3\xa9");
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  // "the", " cat", "\n\n", "th", "x", " ", "café"
  EXPECT_EQ(*ids, (std::vector<int>{128, 132, 133, 130, 'x', ' ', 134}));
  std::string text;
  for (int id : *ids) text += t->Piece(id);
  EXPECT_EQ(text, "the cat\n\nthx caf\xc3\xa9");
  EXPECT_EQ(t->Piece(135), "");
}

TEST(TokenizerTest, TextNoTokenStartsIsRefusedWithItsOffset) {
  auto t = Tokenizer::FromVocabulary(Line("a") + Line("b"), "vocab", 2);
  ASSERT_TRUE(t.ok());
  auto ids = t->Encode("abzab");
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("offset 2"), std::string::npos) << ids.status().message();
  EXPECT_TRUE(t->Encode("").ok());
}

TEST(TokenizerTest, ABadVocabularyIsRefusedNamingItsLine) {
  const auto refused = [](const std::string& text, int vocab, const std::string& expect) {
    auto t = Tokenizer::FromVocabulary(text, "v.txt", vocab);
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_NE(t.status().message().find(expect), std::string::npos) << t.status().message();
  };
  refused(Line("a") + "not json\n", 2, "v.txt:2");
  refused(Line("a") + "42\n", 2, "v.txt:2");
  refused(Line("a") + Line(""), 2, "v.txt:2");
  refused(Line("a") + Line(std::string(300, 'x')), 2, "300 bytes");
  refused(Line("a") + Line("b") + Line("a"), 3, "listed twice");
  refused(Line("a") + Line("b"), 3, "2 tokens, but the model's vocab is 3");
  // Windows line ends are read as line ends.
  EXPECT_TRUE(Tokenizer::FromVocabulary("\"a\"\r\n\"b\"\r\n", "v.txt", 2).ok());
}

}  // namespace
}  // namespace fluidfaas::model
