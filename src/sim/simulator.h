// Simulator: a discrete-event model of a MIG cluster, driving a Scheduler through the same interface as the
// node daemon, on the manual clock.
//
// The decisions are carried out by the same carrier as the node daemon's (carrier/carrier.h): it forms batches at a
// pipeline's entry (up to the launch's max_batch, cut by deadline, a short one waiting up to the batch timeout),
// keeps one batch per stage in flight plus one waiting, defers a launch until the memory it takes over is released,
// and hands requests back when a load, a stage or a slice fails. This file is the simulated node under it, its
// Mechanism:
//  - Loads take the time the Launch decision states (the scheduler's load model: process start, disk, PCIe).
//  - Each slice runs one stage of one batch at a time, first come first served across all instances resident
//    on it: that is how co-resident time-sharing models interleave.
//  - A batch runs its instance's stages in order; a stage takes the cost table's time for its block range and batch
//    size on the slice's kind; between stages it spends the transfer model's hop time (device to host, shared
//    memory, host to device) and may then queue at the next slice, so a pipeline has batches in several stages.
//  - MPS: a stage placed on an MPS share of a whole GPU runs on its own lane (MPS runs processes concurrently).
//    MPS isolates SMs, not bandwidth or L2: a batch takes the share's time alone x (1 + mps_interference x the
//    busy fraction of the rest of the GPU's SMs when it starts). mps_interference = 0.3: published comparisons
//    of MPS and MIG find co-located jobs about 30% slower under memory contention, and 7-20% for LLM inference
//    sharing an A100 (docs/simulator.md). A GPU's busy time counts each lane's busy time times its share.
//
// The world a node lives in (SimOptions): loads fail with probability `faults.load`, a stage's batch fails with
// probability `faults.stage`, the worker of a slice in use dies at `faults.worker` per second (every instance on
// the slice is lost); `exec_noise_cv` multiplies every batch's time by a lognormal factor of mean 1 with that
// coefficient of variation, so what runs differs from what the scheduler estimates; `take` lets another tenant
// take a random slice every so often and give it back later. Evicted and retired instances release their memory
// `release_delay` after the decision, and the scheduler hears of it then (OnReleased); a launch that takes over
// such memory starts loading once it is released.
//
// The scheduler hears what really ran: one StageFinished per batch per stage, with its requests, start and end,
// once the batch leaves its last stage (as the daemon's runtime reports it). Every run checks the answer rule
// (AnswerChecker) on the whole event and decision stream, and the scheduler's own invariants every tick; the first
// violation goes to SimResult::errors.
//
// Per request it records arrival, deadline, queue, load wait, compute, transfer, finish, outcome and, for a
// rejection or failure, its reason code, and folds each record into running totals (SimResult::totals: counts per
// function, latency sums and a latency histogram) when the request ends; per slice its busy time and the time it
// had residents. Records are kept only when asked (SimOptions::keep_records): otherwise a node's memory follows its
// open requests, not the trace's length, and the arrivals may come as a stream. Deterministic: the same inputs and
// seed give the same results, bit for bit.
//
// Thread safety: one simulation per object, on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "carrier/carrier.h"
#include "common/stats.h"
#include "policy/cluster_router.h"
#include "policy/pipeline_planner.h"
#include "policy/scheduler.h"
#include "sim/workload.h"

namespace fluidfaas::sim {

struct SimFunction {
  const model::FunctionSpec* spec = nullptr;      // shared by the functions of one model
  const policy::StageCostTable* costs = nullptr;  // MIG slice kinds, batch 1
  double slo_ms = 0;
  const policy::BatchCosts* batched = nullptr;  // MIG slice kinds by batch: needed for batches > 1
  const policy::BatchCosts* mps = nullptr;      // MPS share kinds (policy::MpsKinds): needed for MPS stages
  std::string name;                             // the function's own; empty: its model's (spec->name)
  std::string_view Name() const { return name.empty() ? std::string_view(spec->name) : std::string_view(name); }
};

struct Faults {
  double load = 0;    // probability that a load fails (at its end)
  double stage = 0;   // probability that a stage's batch fails (at its end)
  double worker = 0;  // per second, for each slice in use: its worker process dies
};

// Another tenant takes a slice (any slice of the cluster, uniformly) at exponential intervals of mean `every`
// and gives it back `hold` later. Off while `every` is zero.
struct SliceTaking {
  Duration every{0};
  Duration hold{0};
};

struct RequestRecord;

struct SimOptions {
  uint64_t seed = 1;  // faults, noise and slice taking
  Faults faults;
  double exec_noise_cv = 0;  // lognormal noise on every batch's time (0: none)
  SliceTaking take;
  Duration release_delay = Millis(1);     // from an Evict or Retire to the release of its memory
  Duration tick = Seconds(1);             // how often the scheduler's OnTick runs
  Duration drain = Seconds(120);          // simulated time after the last arrival for work in flight to finish
  policy::TransferModel transfer;         // hop costs between stages
  double mps_interference = 0.3;          // slowdown of an MPS batch with the rest of its GPU busy (see above)
  Duration timeline_bucket = Seconds(1);  // resolution of SimResult::slice_timeline
  double slo_margin = 0;                  // the scheduler plans for deadlines this share of the SLO early (the
                                          // daemon's --slo-margin); hits are judged at the SLO. [0, 0.5]
  bool keep_records = true;               // SimResult::requests, one record per arrival
  // Each request's record once it has ended for good (a cluster's: where it finally ended), in the order they end;
  // the ones still open when the run stops come last, pending. For writing records out as the run goes.
  std::function<void(const RequestRecord&)> on_record;
  Duration cold_start_wait{0};  // the newcomer's rule (policy/cold_start.h): requests name no deadline of
                                // their own and wait this long for a cold start (the daemon's
                                // --cold-start-wait, for clients that send no timeout_ms); 0: off
};

enum class Outcome : uint8_t { kPending, kHit, kMiss, kRejected, kFailed };
std::string_view ToString(Outcome outcome);  // "pending", "hit", "miss", "rejected", "failed"

struct RequestRecord {
  uint32_t function = 0;
  TimePoint arrival;
  TimePoint deadline;
  TimePoint finished;
  Duration queue{0};  // waiting for a busy slice
  Duration load{0};   // waiting for its instance to load
  Duration compute{0};
  Duration transfer{0};
  policy::InstanceId instance = 0;
  int routes = 0;          // times routed: more than once after a failure handed it back
  bool cold_wait = false;  // arrived with no loaded instance of its function (SimOptions::cold_start_wait)
  Outcome outcome = Outcome::kPending;
  policy::Reason code = policy::Reason::kNoCapacity;  // for kRejected and kFailed
};

// What a run's requests came to, folded in as each one ends (one still open at the end counts as failed).
struct FunctionTotals {
  int64_t requests = 0, hits = 0, rejected = 0, failed = 0;
  double completed_ms = 0;  // the sum of its completed requests' latencies
};
struct RequestTotals {
  int64_t requests = 0;  // = hits + late + rejected + failed
  int64_t hits = 0, late = 0, rejected = 0, failed = 0;
  std::vector<FunctionTotals> functions;  // by function index
  DurationHistogram completed;            // latencies of the completed requests
  // Sums over the completed requests; all_ms also counts the others, each at its deadline.
  double completed_ms = 0, queue_ms = 0, load_ms = 0, compute_ms = 0, transfer_ms = 0, all_ms = 0;
  void Add(const RequestRecord& r);
};

// Rejections and failures of one function with one code: their count and the first one's detail.
struct EndCount {
  int64_t count = 0;
  std::string example;
};

struct SimResult {
  std::vector<RequestRecord> requests;  // by arrival, with SimOptions::keep_records (else empty)
  RequestTotals totals;
  std::vector<Duration> slice_busy;    // per slice
  std::vector<Duration> slice_active;  // per slice: time with at least one resident instance
  // Per slice, its busy time in each timeline_bucket of simulated time (bucket i covers [i, i + 1) buckets):
  // the busy timeline, at the resolution the report needs.
  std::vector<std::vector<Duration>> slice_timeline;
  Duration timeline_bucket{0};
  Duration horizon{0};       // simulated time, the drain after the last arrival included
  Duration arrival_span{0};  // from time 0 to the last arrival: what rates are measured over
  int64_t launches = 0;
  int64_t pipelines = 0;  // launches with more than one stage
  int64_t migrations = 0;
  int64_t evictions = 0;
  int64_t events = 0;
  int64_t load_failures = 0, stage_failures = 0, workers_lost = 0, slices_taken = 0;  // faults injected
  // Answer-rule violations, broken invariants, decisions the mechanism could not carry out: a scheduler bug.
  std::vector<std::string> errors;
  // Rejections and failures by (function, outcome kRejected or kFailed, code).
  std::map<std::tuple<uint32_t, Outcome, policy::Reason>, EndCount> ends;
};

// Arrivals in time order, one per call; nullopt once there are no more.
using ArrivalStream = std::function<std::optional<Arrival>()>;

// Runs `arrivals` (in time order; Arrival::function indexes `functions`) through `scheduler`, one pending at a time.
SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const ArrivalStream& arrivals, policy::Scheduler& scheduler, const SimOptions& options = {});
// The same over a vector of arrivals.
SimResult Simulate(const std::vector<policy::ClusterSlice>& slices, const std::vector<SimFunction>& functions,
                   const std::vector<Arrival>& arrivals, policy::Scheduler& scheduler, const SimOptions& options = {});

// A cluster: one simulated node per entry of `nodes` (its slices), each with its own scheduler (`schedulers[n]`,
// over nodes[n]) and carrier, on one clock, behind a gateway that routes every arrival with
// policy::ClusterRouter (`routing`). The router sees each node as its report would say it at that moment
// (carrier::Carrier::MakeReport: hot instances and their expected finish, warm copies, free slices), refreshed every
// 100 ms as nodes publish them, with the requests it has sent each node and not yet seen end. As the gateway does,
// a request a node turns away before running goes to the next node while its SLO allows (at most 3 nodes), and that
// node is passed over for the function until its next report. Each node draws its own
// faults (seed + 7919 n); other tenants take slices of the whole cluster at options.take's rate (each node's at its
// share). The result pools the nodes: requests as routed, slices node after node.
SimResult SimulateCluster(const std::vector<std::vector<policy::ClusterSlice>>& nodes,
                          const std::vector<SimFunction>& functions, const std::vector<Arrival>& arrivals,
                          std::span<policy::Scheduler* const> schedulers, policy::Routing routing,
                          const SimOptions& options = {});

}  // namespace fluidfaas::sim
