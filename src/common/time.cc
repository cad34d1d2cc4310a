#include "common/time.h"

#include <fmt/format.h>

namespace fluidfaas {

std::string FormatDuration(Duration d) {
  // fmt, not snprintf: the same text (printf's %g and %f rules), at a third of the cost; an overloaded simulation
  // writes one for most refusals.
  const int64_t us = d.count();
  const int64_t mag = us < 0 ? -us : us;
  if (mag < 1000) return fmt::format("{}us", us);
  if (mag < int64_t{1000} * 1000) return fmt::format("{:.3g}ms", static_cast<double>(us) / 1e3);
  return fmt::format("{:.3f}s", static_cast<double>(us) / 1e6);
}

}  // namespace fluidfaas
