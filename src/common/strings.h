// Small string helpers shared by error messages and output.
#pragma once

#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fluidfaas {

// Joins the items of `range`, each turned into text by `text(item)`, with `separator` between them.
template <typename Range, typename Text>
std::string Join(const Range& range, std::string_view separator, Text text) {
  std::string out;
  bool first = true;
  for (const auto& item : range) {
    if (!first) out += separator;
    out += text(item);
    first = false;
  }
  return out;
}

template <typename Range>
std::string Join(const Range& range, std::string_view separator) {
  return Join(range, separator, [](const auto& item) -> std::string_view { return item; });
}

// The pieces of `text` between `separator`s (an empty text gives one empty piece).
inline std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t from = 0;
  for (size_t at = text.find(separator); at != std::string_view::npos; at = text.find(separator, from)) {
    out.emplace_back(text.substr(from, at - from));
    from = at + 1;
  }
  out.emplace_back(text.substr(from));
  return out;
}

// The whole of `text` as a finite number, or none ("nan", "inf", "1e999", "", "1x" are none).
inline std::optional<double> ParseFiniteDouble(std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace fluidfaas
