// SplitMix64 (Steele, Lea and Flood, OOPSLA'14): a counter-based random stream, one 64-bit mix per draw, and the
// mix alone as a hash. Deterministic across platforms: traces, routing and the emulated executor's text depend on it.
//
// Thread safety: a stream has one owner; Mix is a pure function.
#pragma once

#include <cstdint>

namespace fluidfaas {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  static constexpr uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;
  uint64_t Next() { return Mix(state_ += kGamma); }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // in [0, 1)
  // The stream's position, to resume it later (FromState) without replaying its draws.
  uint64_t state() const { return state_; }
  static SplitMix64 FromState(uint64_t state) { return SplitMix64(state); }

 private:
  uint64_t state_;
};

}  // namespace fluidfaas
