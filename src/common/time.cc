#include "common/time.h"

#include <cstdio>

namespace fluidfaas {

std::string FormatDuration(Duration d) {
  const int64_t us = d.count();
  const int64_t mag = us < 0 ? -us : us;
  char buf[48];
  if (mag < 1000) {
    std::snprintf(buf, sizeof buf, "%lldus", static_cast<long long>(us));
  } else if (mag < int64_t{1000} * 1000) {
    std::snprintf(buf, sizeof buf, "%.3gms", static_cast<double>(us) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(us) / 1e6);
  }
  return buf;
}

}  // namespace fluidfaas
