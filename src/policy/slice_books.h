// SliceBooks: what a scheduler knows of each slice of its cluster, shared by every policy.
//
//  - Occupancy: whether the slice is available (not taken by someone outside FluidFaaS), its resident
//    instances and their memory. An evicted or retired instance's memory stays booked, as releasing, until
//    the mechanism acknowledges the release (scheduler.h, rule 4); a launch may take it over by naming the
//    instance (TakeOver). A lost slice frees everything at once.
//  - Memory: one worker process per slice hosts its residents, so the process reserve counts once per slice,
//    beside each resident's own memory.
//  - Queue estimate: the batches booked on the slice and when each is expected to end. Estimates are corrected
//    by what really ran: when a batch is reported finished, every batch booked after it moves by the difference
//    between its measured and estimated end (one offset, O(1)); an empty queue means the slice is idle now.
//
// Thread safety: none; owned by one scheduler.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "policy/scheduler.h"

namespace fluidfaas::policy {

// A batch booked on a slice's queue, at the times the scheduler expects.
struct BookedBatch {
  InstanceId instance = 0;
  size_t stage = 0;
  TimePoint start;
  TimePoint end;
  int count = 0;       // requests in it
  TimePoint deadline;  // the earliest by which one of them must leave this stage
};

class SliceBooks {
 public:
  explicit SliceBooks(std::vector<ClusterSlice> slices);

  size_t size() const { return slices_.size(); }
  const ClusterSlice& info(size_t s) const { return slices_[s].info; }
  int64_t capacity_mib(size_t s) const { return slices_[s].info.kind.profile->memory_mib; }
  bool available(size_t s) const { return slices_[s].info.available; }
  void SetAvailable(size_t s, bool available) {
    slices_[s].info.available = available;
    ++version_;
  }
  // Bumped by every change to availability, residents or releasing memory: while it stands, every slice is as
  // free as it was (a plan over the free slices would come out the same).
  uint64_t version() const { return version_; }

  // ---- occupancy and memory
  const std::vector<InstanceId>& residents(size_t s) const { return slices_[s].residents; }
  // Available, no resident, nothing being released: the slice can be taken whole.
  bool Free(size_t s) const;
  bool releasing(size_t s) const { return !slices_[s].releasing.empty(); }
  // Residents' own memory (the reserve left out).
  int64_t used_mib(size_t s) const { return slices_[s].used_mib; }
  // Memory a newcomer with process reserve `reserve_mib` can still book, releasing memory counted as in use.
  int64_t FreeMib(size_t s, int64_t reserve_mib) const;
  // Books `own_mib` (beyond the reserve) for `id`, as a resident.
  void Book(size_t s, InstanceId id, int64_t own_mib, int64_t reserve_mib);
  // `id` leaves the slice; its memory is releasing until Acknowledge (or TakeOver, or Lose).
  void Unbook(size_t s, InstanceId id);
  // A launch takes over `id`'s releasing memory: false if it has none here.
  bool TakeOver(size_t s, InstanceId id);
  // Memory `id` is releasing on `s` (0 when none).
  int64_t ReleasingMib(size_t s, InstanceId id) const;
  void Acknowledge(size_t s, InstanceId id);
  // The worker is gone: residents, releasing memory and queue cleared; returns the residents it had.
  std::vector<InstanceId> Lose(size_t s);

  // ---- queue estimate
  // When the work booked on the slice is expected to end (never before the last measured idle time).
  TimePoint BusyUntil(size_t s) const;
  // The last batch booked, at corrected times; none when the queue is empty.
  std::optional<BookedBatch> LastBatch(size_t s) const;
  // Batches of (`id`, `stage`) booked on the slice and not yet consumed.
  size_t Booked(size_t s, InstanceId id, size_t stage) const;
  // Books a batch for a request that must leave this stage by `deadline`: `join` adds it to the last batch
  // (moving its end to `end`); otherwise a new one.
  void BookBatch(size_t s, InstanceId id, size_t stage, TimePoint start, TimePoint end, TimePoint deadline, bool join);
  // A batch of `n` requests of (`id`, `stage`) ended at `finished`: consumed from the booked batches, and the
  // rest of the queue moved by the measured error.
  void BatchDone(size_t s, InstanceId id, size_t stage, int n, TimePoint finished);
  // `n` requests of (`id`, `stage`) will not run there (they failed upstream): consumed without a measurement.
  void Cancel(size_t s, InstanceId id, size_t stage, int n);
  // Forgets every batch booked for `id` (its requests were handed back or it is gone).
  void DropBatches(size_t s, InstanceId id);

  // Consistency of the books (residents unique, memory sums, queue order); Ok or the first problem.
  Status Check() const;

 private:
  struct Slice {
    ClusterSlice info;
    std::vector<InstanceId> residents;
    std::vector<std::pair<InstanceId, int64_t>> own;        // per resident, beside the reserve
    std::vector<std::pair<InstanceId, int64_t>> releasing;  // own memory being released
    int64_t used_mib = 0;                                   // sum of `own`
    int64_t releasing_mib = 0;                              // sum of `releasing`
    int64_t reserve_mib = 0;        // the worker's reserve while anyone is resident or releasing
    std::deque<BookedBatch> queue;  // times relative to `shift`
    Duration shift{0};
    TimePoint idle_at;  // the end of the last batch measured, when the queue is empty
  };

  // Takes `n` requests of (`id`, `stage`) off the booked batches, FIFO; with `finished`, the measured end of the
  // batch that ran them.
  void Consume(size_t s, InstanceId id, size_t stage, int n, std::optional<TimePoint> finished);

  std::vector<Slice> slices_;
  uint64_t version_ = 0;
};

}  // namespace fluidfaas::policy
