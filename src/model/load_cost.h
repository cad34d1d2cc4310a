// How long an instance takes to load: from disk (cold: a worker process, the weights read and copied to the
// slice) or from a warm copy in host memory (a host-to-device copy). One model for every policy, the simulator
// and the emulated executor, which takes this long to "load".
//
// Thread safety: a value type.
#pragma once

#include <cstdint>

#include "common/time.h"

namespace fluidfaas::model {

// How long loading takes (every policy is charged the same).
struct LoadCostModel {
  double process_start_ms = 1500;  // a worker process with CUDA and the framework initialised
  double disk_gbs = 2.0;           // reading weights from local NVMe
  double pcie_gbs = 25.0;          // host-to-device copy (PCIe 4.0 x16)

  // Cold: start, read, copy; warm: copy only. `bytes` are the largest stage's weights (stages load in parallel).
  Duration LoadTime(int64_t bytes, bool from_warm) const {
    const double b = static_cast<double>(bytes);
    double ms = b / (pcie_gbs * 1e6);
    if (!from_warm) ms += process_start_ms + b / (disk_gbs * 1e6);
    return MillisF(ms);
  }
};

}  // namespace fluidfaas::model
