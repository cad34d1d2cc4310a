#include "sim/workload.h"

#include <algorithm>
#include <cmath>
#include <functional>
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
  if (!spec.weights.empty()) {
    if (spec.weights.size() != spec.functions) {
      return Status::InvalidArgument("workload.weights: one per function (" + std::to_string(spec.functions) + ")");
    }
    double sum = 0;
    for (double w : spec.weights) {
      if (!(w >= 0) || !std::isfinite(w)) return Status::InvalidArgument("workload.weights: must be finite, >= 0");
      sum += w;
    }
    if (!(sum > 0)) return Status::InvalidArgument("workload.weights: at least one must be positive");
  }
  if (!(spec.active_share > 0 && spec.active_share <= 1)) {
    return Status::InvalidArgument("workload.active_share: must be in (0, 1]");
  }
  if (!(spec.mean_on_s > 0) || !std::isfinite(spec.mean_on_s)) {
    return Status::InvalidArgument("workload.mean_on_s: must be positive");
  }
  return Status::Ok();
}

WorkloadGenerator::WorkloadGenerator(const WorkloadSpec& spec)
    : spec_(spec),
      rng_(spec.seed),
      // Gamma with shape k = 1/CV^2 and scale 1/k has mean 1 and CV as asked (k = 1: exponential).
      gap_(1.0 / (spec.cv * spec.cv), spec.cv * spec.cv),
      popularity_(spec.weights.empty()
                      ? Zipf(spec.functions, spec.zipf_s)
                      : std::discrete_distribution<uint32_t>(spec.weights.begin(), spec.weights.end())) {
  if (spec_.active_share >= 1) return;
  const std::vector<double> shares = popularity_.probabilities();
  std::bernoulli_distribution starts_active(spec_.active_share);
  std::exponential_distribution<double> on(1 / spec_.mean_on_s);
  std::exponential_distribution<double> off(spec_.active_share / (spec_.mean_on_s * (1 - spec_.active_share)));
  on_off_.resize(shares.size());
  for (uint32_t f = 0; f < shares.size(); ++f) {
    OnOff& o = on_off_[f];
    o.rate = spec_.rate_rps * shares[f] / spec_.active_share;  // requests per operational second while active
    o.active = starts_active(rng_);
    o.phase_end = o.active ? on(rng_) : off(rng_);  // memoryless: a period in progress has the same law
    if (o.rate <= 0) continue;
    o.next = 0;
    heap_.emplace_back(NextOnOff(o), f);
  }
  std::make_heap(heap_.begin(), heap_.end(), std::greater<>());
}

double WorkloadGenerator::NextOnOff(OnOff& f) {
  std::exponential_distribution<double> on(1 / spec_.mean_on_s);
  std::exponential_distribution<double> off(spec_.active_share / (spec_.mean_on_s * (1 - spec_.active_share)));
  double t = f.next;
  for (;;) {
    if (!f.active) {
      t = f.phase_end;
      f.active = true;
      f.phase_end = t + on(rng_);
      continue;
    }
    const double gap = gap_(rng_) / f.rate;
    if (t + gap < f.phase_end) {
      f.next = t + gap;
      return f.next;
    }
    // The period ends first: the renewal restarts in the next active period (gaps are not carried over idle time).
    t = f.phase_end;
    f.active = false;
    f.phase_end = t + off(rng_);
  }
}

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
  if (!on_off_.empty() || spec_.active_share < 1) {
    if (heap_.empty()) return std::nullopt;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    const auto [u, f] = heap_.back();
    heap_.pop_back();
    const double t = InverseIntensity(u * spec_.rate_rps);  // operational seconds at the mean rate -> seconds
    if (t >= ToSeconds(spec_.duration)) {
      heap_.clear();  // every later arrival is later still
      return std::nullopt;
    }
    heap_.emplace_back(NextOnOff(on_off_[f]), f);
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    return Arrival{TimePoint{} + SecondsF(t), f};
  }
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
