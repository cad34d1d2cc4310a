#include "model/tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/limits.h"

namespace fluidfaas::model {

const std::shared_ptr<const Tokenizer>& Tokenizer::SharedBytes() {
  static const std::shared_ptr<const Tokenizer> kBytes = std::make_shared<const Tokenizer>(Bytes());
  return kBytes;
}

Result<Tokenizer> Tokenizer::FromVocabulary(std::string_view text, const std::string& source, int vocab) {
  Tokenizer t;
  size_t line = 0;
  while (!text.empty()) {
    ++line;
    const size_t end = text.find('\n');
    std::string_view row = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    const std::string where = source + ":" + std::to_string(line);
    const nlohmann::json token = nlohmann::json::parse(row, nullptr, /*allow_exceptions=*/false);
    if (!token.is_string()) {
      return Status::InvalidArgument(where + ": expected one token as a JSON string, e.g. \" the\"");
    }
    std::string piece = token.get<std::string>();
    if (piece.empty() || piece.size() > static_cast<size_t>(kMaxTokenBytes)) {
      return Status::InvalidArgument(where + ": a token of " + std::to_string(piece.size()) + " bytes (1.." +
                                     std::to_string(kMaxTokenBytes) + ")");
    }
    if (!t.ids_.emplace(piece, static_cast<int>(t.pieces_.size())).second) {
      return Status::InvalidArgument(where + ": the token " + token.dump() + " is listed twice");
    }
    t.longest_ = std::max(t.longest_, piece.size());
    t.pieces_.push_back(std::move(piece));
  }
  if (static_cast<int64_t>(t.pieces_.size()) != vocab) {
    return Status::InvalidArgument(source + ": " + std::to_string(t.pieces_.size()) +
                                   " tokens, but the model's vocab is " + std::to_string(vocab));
  }
  return t;
}

Result<Tokenizer> Tokenizer::ReadVocabulary(const std::string& path, int vocab) {
  FF_ASSIGN_OR_RETURN(const std::string text, ReadBoundedFile(path, int64_t{64} << 20, "tokenizer"));
  return FromVocabulary(text, path, vocab);
}

Result<std::vector<int>> Tokenizer::Encode(std::string_view text) const {
  std::vector<int> ids;
  ids.reserve(text.size());
  if (byte_level()) {
    for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
    return ids;
  }
  size_t at = 0;
  while (at < text.size()) {
    size_t len = std::min(longest_, text.size() - at);
    for (; len > 0; --len) {
      if (const auto it = ids_.find(text.substr(at, len)); it != ids_.end()) {
        ids.push_back(it->second);
        break;
      }
    }
    if (len == 0) {
      return Status::InvalidArgument("the text has a byte (at offset " + std::to_string(at) +
                                     ") that no token of the function's vocabulary starts with");
    }
    at += len;
  }
  return ids;
}

std::string_view Tokenizer::Piece(int id) const {
  if (byte_level()) {
    static const std::string kBytes = [] {
      std::string b(256, '\0');
      for (int i = 0; i < 256; ++i) b[static_cast<size_t>(i)] = static_cast<char>(i);
      return b;
    }();
    return id >= 0 && id < 256 ? std::string_view(kBytes).substr(static_cast<size_t>(id), 1) : std::string_view();
  }
  return id >= 0 && static_cast<size_t>(id) < pieces_.size() ? std::string_view(pieces_[static_cast<size_t>(id)])
                                                             : std::string_view();
}

}  // namespace fluidfaas::model
