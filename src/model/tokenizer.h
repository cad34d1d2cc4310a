// Tokenizer: a generative function's text <-> token ids.
//
//   byte-level (the zoo's models, and a manifest without `tokenizer`): a token is a byte of UTF-8 text, ids 0..255.
//   a vocabulary (a manifest's `tokenizer: FILE`): one token per line, each a JSON string ("the", " of", "\n"), its
//     id the line's number from 0. Text is encoded greedily, the longest token that matches at each position (as
//     WordPiece does within a word; there are no merge ranks, so a BPE vocabulary's own encoding may differ), and
//     a text with a byte no token can start from is refused. Decoding concatenates the tokens' texts.
//
// Thread safety: immutable after it is built; const methods may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace fluidfaas::model {

class Tokenizer {
 public:
  static constexpr int kMaxTokenBytes = 256;  // a vocabulary's longest token

  // The byte-level tokenizer.
  static Tokenizer Bytes() { return Tokenizer(); }
  // One byte-level tokenizer shared by every function and request that uses it (it holds nothing to copy).
  static const std::shared_ptr<const Tokenizer>& SharedBytes();
  // A vocabulary from its file's text; `source` names it in errors. InvalidArgument naming the line for a line that
  // is not one JSON string, an empty or over-long token, or a token listed twice; also when `vocab` (the model's)
  // is not the number of tokens.
  static Result<Tokenizer> FromVocabulary(std::string_view text, const std::string& source, int vocab);
  // The same, read from `path` (at most 64 MiB).
  static Result<Tokenizer> ReadVocabulary(const std::string& path, int vocab);

  // The text's token ids. InvalidArgument naming the byte offset where no token matches.
  Result<std::vector<int>> Encode(std::string_view text) const;
  // The text of token `id` (empty outside the vocabulary).
  std::string_view Piece(int id) const;

  bool byte_level() const { return pieces_.empty(); }
  int vocab() const { return byte_level() ? 256 : static_cast<int>(pieces_.size()); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::vector<std::string> pieces_;                                  // by id; empty: byte-level
  std::unordered_map<std::string, int, Hash, std::equal_to<>> ids_;  // text -> id
  size_t longest_ = 0;                                               // bytes of the longest token
};

}  // namespace fluidfaas::model
