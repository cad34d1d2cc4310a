#include "sim/workload.h"

#include <cmath>
#include <numbers>
#include <string>

namespace fluidfaas::sim {
namespace {

std::discrete_distribution<uint32_t> Zipf(uint32_t n, double s) {
  std::vector<double> weights(n);
  for (uint32_t k = 0; k < n; ++k) weights[k] = 1.0 / std::pow(static_cast<double>(k) + 1.0, s);
  return std::discrete_distribution<uint32_t>(weights.begin(), weights.end());
}

}  // namespace

Status ValidateWorkload(const WorkloadSpec& spec) {
  if (!(spec.rate_rps > 0)) return Status::InvalidArgument("workload.rate_rps: must be positive");
  if (!(spec.cv > 0)) return Status::InvalidArgument("workload.cv: must be positive");
  if (!(spec.diurnal_amplitude >= 0 && spec.diurnal_amplitude < 1)) {
    return Status::InvalidArgument("workload.diurnal_amplitude: must be in [0, 1)");
  }
  if (spec.diurnal_period <= Duration{0}) return Status::InvalidArgument("workload.diurnal_period: must be positive");
  if (spec.functions < 1) return Status::InvalidArgument("workload.functions: must be at least 1");
  if (!(spec.zipf_s >= 0)) return Status::InvalidArgument("workload.zipf_s: must not be negative");
  if (spec.duration <= Duration{0}) return Status::InvalidArgument("workload.duration: must be positive");
  return Status::Ok();
}

WorkloadGenerator::WorkloadGenerator(const WorkloadSpec& spec)
    : spec_(spec),
      rng_(spec.seed),
      // Gamma with shape k = 1/CV^2 and scale 1/k has mean 1 and CV as asked (k = 1: exponential).
      gap_(1.0 / (spec.cv * spec.cv), spec.cv * spec.cv),
      popularity_(Zipf(spec.functions, spec.zipf_s)) {}

double WorkloadGenerator::Intensity(double t) const {
  const double a = spec_.diurnal_amplitude;
  if (a == 0) return spec_.rate_rps * t;
  const double p = ToSeconds(spec_.diurnal_period);
  const double w = 2 * std::numbers::pi / p;
  return spec_.rate_rps * (t + a * (1 - std::cos(w * t)) / w);
}

double WorkloadGenerator::InverseIntensity(double lambda) const {
  if (spec_.diurnal_amplitude == 0) return lambda / spec_.rate_rps;
  // Lambda is increasing (the rate stays positive for a < 1): Newton's method from the constant-rate guess,
  // bracketed so that it cannot leave [lo, hi].
  double lo = lambda / (spec_.rate_rps * (1 + spec_.diurnal_amplitude));
  double hi = lambda / (spec_.rate_rps * (1 - spec_.diurnal_amplitude));
  double t = lambda / spec_.rate_rps;
  const double w = 2 * std::numbers::pi / ToSeconds(spec_.diurnal_period);
  for (int i = 0; i < 60; ++i) {
    const double f = Intensity(t) - lambda;
    if (std::abs(f) < 1e-9 * std::max(1.0, lambda)) break;
    if (f > 0)
      hi = t;
    else
      lo = t;
    const double rate = spec_.rate_rps * (1 + spec_.diurnal_amplitude * std::sin(w * t));
    double next = t - f / rate;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    t = next;
  }
  return t;
}

std::optional<Arrival> WorkloadGenerator::Next() {
  lambda_ += gap_(rng_);
  const double t = InverseIntensity(lambda_);
  if (t >= ToSeconds(spec_.duration)) return std::nullopt;
  return Arrival{TimePoint{} + SecondsF(t), popularity_(rng_)};
}

std::vector<Arrival> GenerateWorkload(const WorkloadSpec& spec) {
  WorkloadGenerator gen(spec);
  std::vector<Arrival> out;
  out.reserve(static_cast<size_t>(spec.rate_rps * ToSeconds(spec.duration) * 1.1) + 16);
  while (std::optional<Arrival> a = gen.Next()) out.push_back(*a);
  return out;
}

}  // namespace fluidfaas::sim
