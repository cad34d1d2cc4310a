// MixCapacity: the most requests per second a cluster can serve of a fixed mix of functions, as a linear program.
//
// Each model m takes a share p_m of the requests and t_mk seconds per request on a slice of kind k (batch 1, the
// whole function on the slice; infinite where it does not fit). With x_mk the requests per second of m sent to
// kind k:
//
//   maximise  lambda  subject to  sum_k x_mk >= lambda p_m   for every model m
//                                 sum_m t_mk x_mk <= n_k      for every kind k (n_k slices of it)
//                                 x >= 0
//
// the fluid bound of the cluster: no policy serves more of that mix, and a perfect one could serve that much
// (pipelines, batching and cold starts left aside). Solved by the simplex method on the dense tableau with
// Bland's rule (a handful of models and kinds: tens of variables); every right-hand side is non-negative, so the
// slack basis is feasible from the start.
//
// Thread safety: pure function.
#pragma once

#include <vector>

namespace fluidfaas::sim {

// `share[m]` >= 0; `seconds[m][k]` > 0, or infinity where m does not fit kind k; `slices[k]` >= 0. Returns
// lambda (0 when some model with a positive share fits no kind with slices).
double MixCapacity(const std::vector<double>& share, const std::vector<std::vector<double>>& seconds,
                   const std::vector<double>& slices);

}  // namespace fluidfaas::sim
