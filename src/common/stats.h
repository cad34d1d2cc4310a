// Small statistics over samples, for benchmarks and load reports.
//
// Thread safety: pure functions.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace fluidfaas {

// The p-quantile (0 <= p <= 1) of `values` by the nearest rank (index round(p x (n - 1)) of the sorted values);
// 0 for no values. Takes the vector by value: it sorts its own copy.
inline double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  return values[static_cast<size_t>(std::lround(rank))];
}

}  // namespace fluidfaas
