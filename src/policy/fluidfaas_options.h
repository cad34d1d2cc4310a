// FluidFaaSOptions: every knob of FluidFaaSScheduler and its parts, with its meaning and default.
// docs/policies.md says which are the design's and which this project's, and why.
#pragma once

#include "policy/load_tracker.h"
#include "policy/pipeline_planner.h"
#include "policy/scheduler.h"

namespace fluidfaas::policy {

struct FluidFaaSOptions {
  double promote_busy = 0.5;              // time_sharing -> exclusive_hot at this busy fraction or more
  double demote_busy = 0.3;               // exclusive_hot -> time_sharing under this busy fraction (the design's)
  double urgent_slack_fraction = 0.25;    // urgent when slack < this x SLO
  Duration min_dwell = Seconds(20);       // an instance keeps its state (exclusive_hot, or a time-sharing
                                          // resident that may be evicted for another) at least this long after
                                          // it was loaded, placed or promoted (docs/policies.md: why 20 s)
  double reclaim_headroom = 1.5;          // a function gives up a slice only if its other instances can carry
                                          // this multiple of its request rate
  Duration ts_idle_evict = Seconds(60);   // idle time-sharing instance -> warm after this
  Duration displace_idle = Seconds(10);   // an instance idle this long may be evicted to host memory for a
                                          // hotter function that nothing else can place (0: never)
  Duration contest_window = Seconds(10);  // a pipeline leaves out slices that a function they would serve alone
                                          // found no place on within this (0: never)
  bool pipeline_yield = true;             // a busy pipeline gives its slices to a function turned away that would
                                          // finish more requests on one of them (Placer::TurnedAway; off: never)
  Duration keep_alive = Seconds(600);     // warm -> cold after this (the design's 10 min)
  int64_t host_memory_mib = 0;            // warm copies' weights beyond this are dropped to cold, least recently
                                          // used first, on each tick (0: no limit; policy/factory.h NodeLimits)
  double migrate_slowdown = 0.05;         // migrate when the plain instance is at most this much slower
  double share_busy_cap = 0.5;            // join a time-sharing slice only while its staying residents are
                                          // busy less than this fraction of the time, together
  bool serve_late = false;                // route requests that will miss their deadline instead of rejecting
  Duration scale_up_retry = Millis(100);  // a failed scale-up is retried after this (or a placement change)
  int max_batch = 8;                      // requests queued back to back at a stage run together, up to this many
                                          // (with ServedFunction::batched costs; 1 without them)
  double speed_alpha = 0.2;               // weight of a new measured/estimated batch-time ratio in its running mean
  double noise_margin = 0.5;              // batches are booked at the mean measured speed plus this many standard
                                          // deviations of it (0: at the mean)
  // The mechanisms, each switchable for its ablation (policy spec "fluidfaas:pipelines=off" and so on):
  bool pipelines = true;     // plan an instance over several slices (design point 1); off: one slice each
  bool time_sharing = true;  // place an instance on a slice beside idle residents (design point 2); off: only free
                             // or reclaimed slices
  bool migration = true;     // move a pipeline to one slice when one that serves it frees up
  bool cold_starts = true;   // another cold start may begin while one is loading, when the requests turned away
                             // meanwhile come faster than the loading instances will serve (off: one at a time)
  bool urgency = false;      // on: urgent requests prefer exclusive instances, the rest time-sharing ones (the
                             // design's routing; off by default, it costs hit rate: docs/policies.md); off: the
                             // earliest finish that meets the deadline, for every request
  LoadCostModel load;
  PlannerOptions planner;
  LoadTrackerOptions tracker;
};

}  // namespace fluidfaas::policy
