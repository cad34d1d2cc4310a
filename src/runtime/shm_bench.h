// The shared-memory hop benchmark behind `fluidfaas bench shm`: what a pipeline hop costs between two processes,
// against the physical limit (single-thread memcpy) and a naive two-copy transport (a Unix stream socket), in
// the same run.
//
// Per payload size:
//   hop_p50_us / hop_p99_us  one-way handover of a slot between two processes (ping-pong over two rings; each
//                            sample is from the writer's EndWrite to the reader's BeginRead returning; the payload
//                            was written beforehand, since a hop hands over a slot, not bytes)
//   stream_gbs               one process writes every byte of each slot (memcpy from its own buffer), the other
//                            reads every byte (a checksum), double-buffered through a 2-slot ring; the median
//                            of five trials (this machine is shared; one trial can lose a core)
//   memcpy_gbs               single-thread memcpy of the same size in one process (median of five trials)
//   baseline_p50_us          one-way latency over a Unix stream socket (write, then read all of it: two copies),
//                            half of an echo's round trip
//
// Thread safety: runs its own processes; call from one thread.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"

namespace fluidfaas::runtime {

struct ShmBenchOptions {
  std::vector<uint64_t> sizes;  // payload bytes; empty: 64 B, 1 KiB, 16 KiB, 256 KiB, 1 MiB, 4 MiB, 16 MiB, 64 MiB
  int hop_samples = 2000;       // ping-pong hops measured per size (after a warm-up)
  double stream_seconds = 0.3;  // streaming time per size (at least 8 slots whatever the size)
};

struct ShmBenchRow {
  uint64_t bytes = 0;
  double hop_p50_us = 0;
  double hop_p99_us = 0;
  double stream_gbs = 0;
  double memcpy_gbs = 0;
  double baseline_p50_us = 0;
};

Result<std::vector<ShmBenchRow>> RunShmBench(const ShmBenchOptions& options);

}  // namespace fluidfaas::runtime
