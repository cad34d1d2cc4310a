#include "sim/capacity.h"

#include <cmath>
#include <limits>

namespace fluidfaas::sim {

double MixCapacity(const std::vector<double>& share, const std::vector<std::vector<double>>& seconds,
                   const std::vector<double>& slices) {
  const size_t models = share.size();
  const size_t kinds = slices.size();
  // Variables: lambda, then x_mk for the (m, k) pairs where m fits k; then one slack per constraint.
  std::vector<std::pair<size_t, size_t>> pairs;
  for (size_t m = 0; m < models; ++m) {
    bool fits = false;
    for (size_t k = 0; k < kinds; ++k) {
      if (std::isfinite(seconds[m][k]) && slices[k] > 0) {
        pairs.emplace_back(m, k);
        fits = true;
      }
    }
    if (share[m] > 0 && !fits) return 0;
  }
  const size_t vars = 1 + pairs.size();
  const size_t rows = models + kinds;
  const size_t cols = vars + rows + 1;  // + right-hand side
  std::vector<std::vector<double>> t(rows + 1, std::vector<double>(cols, 0));
  for (size_t m = 0; m < models; ++m) {  // lambda p_m - sum_k x_mk <= 0
    t[m][0] = share[m];
    for (size_t j = 0; j < pairs.size(); ++j) {
      if (pairs[j].first == m) t[m][1 + j] = -1;
    }
  }
  for (size_t k = 0; k < kinds; ++k) {  // sum_m t_mk x_mk <= n_k
    for (size_t j = 0; j < pairs.size(); ++j) {
      if (pairs[j].second == k) t[models + k][1 + j] = seconds[pairs[j].first][k];
    }
    t[models + k][cols - 1] = slices[k];
  }
  for (size_t r = 0; r < rows; ++r) t[r][vars + r] = 1;
  t[rows][0] = -1;  // the objective row: maximise lambda
  std::vector<size_t> basis(rows);
  for (size_t r = 0; r < rows; ++r) basis[r] = vars + r;

  constexpr double kEps = 1e-12;
  for (int iteration = 0; iteration < 10000; ++iteration) {
    // Bland's rule: the lowest-index column with a negative reduced cost enters (no cycling).
    size_t enter = cols;
    for (size_t c = 0; c + 1 < cols; ++c) {
      if (t[rows][c] < -kEps) {
        enter = c;
        break;
      }
    }
    if (enter == cols) break;  // optimal
    size_t leave = rows;
    double best = std::numeric_limits<double>::infinity();
    for (size_t r = 0; r < rows; ++r) {
      if (t[r][enter] <= kEps) continue;
      const double ratio = t[r][cols - 1] / t[r][enter];
      if (ratio < best - kEps || (std::abs(ratio - best) <= kEps && basis[r] < basis[leave])) {
        best = ratio;
        leave = r;
      }
    }
    if (leave == rows) return std::numeric_limits<double>::infinity();  // unbounded: no slices constrain it
    const double pivot = t[leave][enter];
    for (double& v : t[leave]) v /= pivot;
    for (size_t r = 0; r <= rows; ++r) {
      if (r == leave || t[r][enter] == 0) continue;
      const double f = t[r][enter];
      for (size_t c = 0; c < cols; ++c) t[r][c] -= f * t[leave][c];
    }
    basis[leave] = enter;
  }
  return t[rows][cols - 1];
}

}  // namespace fluidfaas::sim
