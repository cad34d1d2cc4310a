// MPS shares of a whole GPU: how INFless divides GPUs (MIG off, several processes on one GPU through NVIDIA's
// Multi-Process Service, each limited to a percentage of the SMs with CUDA_MPS_ACTIVE_THREAD_PERCENTAGE).
//
// A share is described with the same types as a MIG slice so that the latency model and the cost tables can
// price it: a MigProfile with the share's SMs, the whole GPU's memory and all eight memory slices (MPS isolates
// neither memory nor bandwidth).
// The latency model prices a share alone: its SMs, the whole GPU's DRAM bandwidth. Co-located processes contend
// for bandwidth and L2; the simulator adds that interference as a slowdown (sim/simulator.h), sized from
// published MPS measurements rather than derived here.
//
// Thread safety: immutable after construction; the references handed out live as long as the object.
#pragma once

#include <deque>
#include <string>

#include "gpu/gpu_type.h"

namespace fluidfaas::gpu {

class MpsShares {
 public:
  // Shares of step%, 2 x step%, ..., 100% of `gpu`. REQUIRES: step divides 100.
  explicit MpsShares(const GpuType& gpu, int step_percent = 10);
  MpsShares(const MpsShares&) = delete;
  MpsShares& operator=(const MpsShares&) = delete;

  const GpuType& gpu() const { return gpu_; }
  size_t size() const { return profiles_.size(); }
  int percent(size_t i) const { return static_cast<int>(i + 1) * step_; }
  double fraction(size_t i) const { return percent(i) / 100.0; }
  // The share as a slice: "mps-30%", round(30% x SMs) SMs, whole memory, whole bandwidth.
  const MigProfile& profile(size_t i) const { return profiles_[i]; }
  // The index of the smallest share of at least `fraction` of the GPU, or size() when none.
  size_t AtLeast(double fraction) const;

 private:
  const GpuType& gpu_;
  int step_;
  std::deque<std::string> names_;
  std::deque<MigProfile> profiles_;
};

}  // namespace fluidfaas::gpu
