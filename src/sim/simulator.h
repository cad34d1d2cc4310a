// Simulator: a discrete-event model of a MIG cluster, driving a Scheduler through the same interface as the
// node daemon, on the manual clock.
//
// Mechanism modelled (the scheduler decides, the simulator carries out):
//  - Loads take the time the Launch decision states (the scheduler's load model: process start, disk, PCIe).
//  - Each slice runs one stage of one request at a time, first come first served across all instances resident
//    on it: that is how co-resident time-sharing models interleave.
//  - A request runs its instance's stages in order; a stage takes the cost table's time for its block range on
//    the slice's kind; between stages it spends the transfer model's hop time (device to host, shared memory,
//    host to device) and may then queue at the next slice, so a pipeline has requests in several stages at once.
//  - Requests routed to an instance that is still loading wait for the load.
//  - Batching: an instance launched with max_batch > 1 runs up to that many of its requests queued
//    back to back at a stage as one batch (the batch cost table's time); with a batch timeout, a stage whose
//    batch is not full waits until its oldest request has waited that long.
//  - MPS: a stage placed on an MPS share of a whole GPU runs on its own lane (MPS runs processes concurrently).
//    MPS isolates SMs, not bandwidth or L2: a batch takes the share's time alone x (1 + mps_interference x the
//    busy fraction of the rest of the GPU's SMs when it starts). mps_interference = 0.3: published comparisons
//    of MPS and MIG find co-located jobs about 30% slower under memory contention, and 7-20% for LLM inference
//    sharing an A100 (docs/simulator.md). A GPU's busy time counts each lane's busy time times its share.
//
// Per request it records arrival, deadline, queue, load wait, compute, transfer, finish and outcome; per slice
// its busy time and the time it had residents. Deterministic: the same inputs give the same results.
//
// Thread safety: one simulation per object, on one thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "policy/pipeline_planner.h"
#include "policy/scheduler.h"
#include "sim/workload.h"

namespace fluidfaas::sim {

struct SimFunction {
  const model::FunctionSpec* spec = nullptr;
  const policy::StageCostTable* costs = nullptr;  // MIG slice kinds, batch 1
  double slo_ms = 0;
  const policy::BatchCosts* batched = nullptr;    // MIG slice kinds by batch: needed for batches > 1
  const policy::BatchCosts* mps = nullptr;        // MPS share kinds (policy::MpsKinds): needed for MPS stages
};

struct SimOptions {
  Duration tick = Seconds(1);          // how often the scheduler's OnTick runs
  Duration drain = Seconds(120);       // simulated time after the last arrival for work in flight to finish
  policy::TransferModel transfer;      // hop costs between stages
  double mps_interference = 0.3;       // slowdown of an MPS batch with the rest of its GPU busy (see above)
  Duration timeline_bucket = Seconds(1);  // resolution of SimResult::slice_timeline
};

enum class Outcome : uint8_t { kPending, kHit, kMiss, kRejected };

struct RequestRecord {
  uint32_t function = 0;
  TimePoint arrival;
  TimePoint deadline;
  TimePoint finished;
  Duration queue{0};      // waiting for a busy slice
  Duration load{0};       // waiting for its instance to load
  Duration compute{0};
  Duration transfer{0};
  policy::InstanceId instance = 0;
  Outcome outcome = Outcome::kPending;
};

struct SimResult {
  std::vector<RequestRecord> requests;
  std::vector<Duration> slice_busy;     // per slice
  std::vector<Duration> slice_active;   // per slice: time with at least one resident instance
  // Per slice, its busy time in each timeline_bucket of simulated time (bucket i covers [i, i + 1) buckets):
  // the busy timeline, at the resolution the report needs.
  std::vector<std::vector<Duration>> slice_timeline;
  Duration timeline_bucket{0};
  Duration horizon{0};                  // simulated time, the drain after the last arrival included
  Duration arrival_span{0};             // from time 0 to the last arrival: what rates are measured over
  int64_t launches = 0;
  int64_t pipelines = 0;                // launches with more than one stage
  int64_t migrations = 0;
  int64_t evictions = 0;
  int64_t events = 0;
  std::vector<std::string> errors;      // decisions the mechanism could not carry out (a scheduler bug)
  // Rejections by (function, reason); the reason is the scheduler's text up to any " (" detail.
  std::map<std::pair<uint32_t, std::string>, int64_t> rejections;
};

// Runs `arrivals` (sorted by time; Arrival::function indexes `functions`) through `scheduler`.
SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options = {});

}  // namespace fluidfaas::sim
