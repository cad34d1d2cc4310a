// Synthetic workloads: request arrivals for the simulator, generated lazily and deterministically from a seed.
//
// Inter-arrival times follow a renewal process with the given rate and coefficient of variation: exponential
// (Poisson, CV = 1) or Gamma (shape 1/CV^2, any CV > 0). Diurnal modulation makes the rate
// rate x (1 + a sin(2 pi t / period)); it is applied by time rescaling (the process runs at unit rate in
// "operational time" Lambda(t) = integral of the rate, and each arrival is mapped back through Lambda^-1), which
// keeps the process's CV and is exact. Each arrival picks a function by Zipf popularity: function k (0-based) with
// weight 1 / (k + 1)^s.
//
// Thread safety: a generator is used by one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "common/result.h"
#include "common/time.h"

namespace fluidfaas::sim {

struct Arrival {
  TimePoint at;
  uint32_t function = 0;  // index into the workload's functions
};

struct WorkloadSpec {
  double rate_rps = 10;          // mean total arrival rate, requests per second. REQUIRES: > 0
  double cv = 1.0;               // CV of inter-arrival times; 1 is Poisson. REQUIRES: > 0
  double diurnal_amplitude = 0;  // a in [0, 1): 0 is a constant rate
  Duration diurnal_period = Seconds(86400);
  uint32_t functions = 1;           // REQUIRES: >= 1
  double zipf_s = 1.0;              // popularity exponent; 0 is uniform. REQUIRES: >= 0
  Duration duration = Seconds(60);  // arrivals in [0, duration)
  uint64_t seed = 1;
};

// InvalidArgument naming the field when a REQUIRES does not hold.
Status ValidateWorkload(const WorkloadSpec& spec);

class WorkloadGenerator {
 public:
  // REQUIRES: ValidateWorkload(spec).ok()
  explicit WorkloadGenerator(const WorkloadSpec& spec);

  // The next arrival in time order, or nullopt once past the duration.
  std::optional<Arrival> Next();

  // Lambda(t): expected arrivals in [0, t], and its inverse.
  double Intensity(double seconds) const;
  double InverseIntensity(double lambda) const;

 private:
  WorkloadSpec spec_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gap_;  // unit-mean gaps in operational time
  std::discrete_distribution<uint32_t> popularity_;
  double lambda_ = 0;  // operational time of the last arrival
};

// All arrivals of a spec, in time order.
std::vector<Arrival> GenerateWorkload(const WorkloadSpec& spec);

}  // namespace fluidfaas::sim
