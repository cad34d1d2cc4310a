// Synthetic workloads: request arrivals for the simulator, generated lazily and deterministically from a seed.
//
// Inter-arrival times follow a renewal process with the given rate and coefficient of variation: exponential
// (Poisson, CV = 1) or Gamma (shape 1/CV^2, any CV > 0). Diurnal modulation makes the rate
// rate x (1 + a sin(2 pi t / period)); it is applied by time rescaling (the process runs at unit rate in
// "operational time" Lambda(t) = integral of the rate, and each arrival is mapped back through Lambda^-1), which
// keeps the process's CV and is exact. Each arrival picks a function by Zipf popularity: function k (0-based) with
// weight 1 / (k + 1)^s, or by explicit weights.
//
// On/off arrivals (active_share < 1), the shape of serverless traces where most functions are idle most of the
// time: each function alternates active and idle periods, exponential with means mean_on_s and
// mean_on_s x (1 - a) / a (so it is active a share a of the time, independently of the others, starting active
// with probability a), and while active its requests come as a renewal process with the CV above at its mean rate
// divided by a. Each function's mean rate is its popularity share of rate_rps, as in the shared process.
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
  std::vector<double> weights;  // explicit popularity (one per function, >= 0, some > 0); empty: Zipf(zipf_s)
  double active_share = 1;      // in (0, 1]; < 1: on/off arrivals per function
  double mean_on_s = 60;        // mean length of an active period, on/off arrivals. REQUIRES: > 0
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
  // One function's on/off process, in operational seconds (seconds at the mean rate; seconds without diurnal
  // modulation).
  struct OnOff {
    double next = 0;       // its next arrival
    double phase_end = 0;  // when its current active or idle period ends
    bool active = false;
    double rate = 0;  // requests per operational second while active
  };
  double NextOnOff(OnOff& f);  // advances f to its next arrival, crossing idle periods

  WorkloadSpec spec_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gap_;  // unit-mean gaps in operational time
  std::discrete_distribution<uint32_t> popularity_;
  double lambda_ = 0;  // operational time of the last arrival
  // On/off: each function's process, and a min-heap of (next arrival, function).
  std::vector<OnOff> on_off_;
  std::vector<std::pair<double, uint32_t>> heap_;
};

// All arrivals of a spec, in time order.
std::vector<Arrival> GenerateWorkload(const WorkloadSpec& spec);

}  // namespace fluidfaas::sim
