#include "gpu/mps.h"

#include <cmath>

namespace fluidfaas::gpu {

MpsShares::MpsShares(const GpuType& gpu, int step_percent) : gpu_(gpu), step_(step_percent) {
  for (int pct = step_percent; pct <= 100; pct += step_percent) {
    const double f = pct / 100.0;
    names_.push_back("mps-" + std::to_string(pct) + "%");
    const int sms = std::max(1, static_cast<int>(std::lround(f * gpu.sms)));
    // id -1: not a MIG profile; no placement rules apply to a share.
    profiles_.push_back(MigProfile{-1, names_.back(), kSmSlices, kMemorySlices, gpu.memory_mib, sms, 0, 0, false});
  }
}

size_t MpsShares::AtLeast(double fraction) const {
  for (size_t i = 0; i < profiles_.size(); ++i) {
    if (this->fraction(i) + 1e-9 >= fraction) return i;
  }
  return profiles_.size();
}

}  // namespace fluidfaas::gpu
