// Small string helpers shared by error messages and output.
#pragma once

#include <string>
#include <string_view>

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

}  // namespace fluidfaas
