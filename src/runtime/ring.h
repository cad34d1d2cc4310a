// Ring: a one-producer, one-consumer ring of fixed-size slots in a SharedSegment: one pipeline hop.
//
// The node feeds a pipeline's first stage through a ring, each stage writes the next stage's ring, and the node
// reads the last one. A hop hands over a slot, not bytes: the producer writes its output straight into the slot
// (BeginWrite, fill, EndWrite) and the consumer runs on the slot where it lies (BeginRead, use, EndRead).
//
// Layout (offsets only; nothing in the segment is a pointer, so each process maps it anywhere):
//   RingHeader (one page): magic, version, geometry; the head (published) and tail (consumed) counters on
//     cache lines of their own; futex words; the closed flags.
//   slot_count slots of slot_stride bytes: SlotHeader (fixed, versioned), max_batch request ids, then the
//     payload, 64-byte aligned.
//
// Waiting: an endpoint spins for a short, adaptive time (a hop between two busy processes takes well under a
// microsecond by polling), then sleeps on a futex in the segment; the other side wakes it only when it sleeps.
// Back-pressure: BeginWrite waits while every slot is full.
//
// Robustness: each endpoint reads the geometry once, at attach, and keeps its own copy; the only shared values it
// reads afterwards are the other side's counter (checked: tail <= head <= tail + slot_count) and, for the reader,
// the slot header (checked against the geometry before use). A peer that dies or writes garbage can make an
// endpoint fail with an error, never write out of bounds or hang past its timeout. Close() (either side, or the
// node holding both ends of a dead worker's rings) wakes every waiter and fails its waits with Unavailable.
//
// Thread safety: one thread writes and one thread reads a ring (any processes); Close may come from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "common/time.h"
#include "runtime/shared_segment.h"

namespace fluidfaas::runtime {

inline constexpr uint32_t kRingMagic = 0x46464852;  // "FFHR"
inline constexpr uint32_t kRingVersion = 1;
inline constexpr int kMaxRank = 8;
inline constexpr int kMaxStages = 8;

// Per stage of the pipeline, the times (CLOCK_MONOTONIC, ns) the batch started and finished there.
struct StageTiming {
  int64_t started_ns = 0;
  int64_t finished_ns = 0;
};

// The fixed header of every slot. Version-checked by the reader; `count` ids follow it.
struct SlotHeader {
  uint32_t version = kRingVersion;
  uint32_t count = 0;            // requests in the batch (ids follow the header)
  uint64_t sequence = 0;         // the ring's message number (checked by the reader)
  uint64_t batch = 0;            // the node's batch id
  uint64_t instance = 0;         // the instance the batch runs on
  uint64_t payload_bytes = 0;    // bytes of payload written
  uint32_t dtype = 0;            // model::DType of the payload
  uint32_t rank = 0;             // dimensions of `shape` in use
  int64_t shape[kMaxRank] = {};  // the payload tensor's shape, batch first
  int64_t published_ns = 0;      // when EndWrite published it (CLOCK_MONOTONIC)
  uint32_t stages_done = 0;      // stages that have run it (timings[0..stages_done))
  uint32_t flags = 0;
  StageTiming timings[kMaxStages] = {};
};

struct RingSpec {
  uint32_t slot_count = 4;     // 2 .. 1024
  uint32_t max_batch = 1;      // request ids per slot, 1 .. kMaxBatch
  uint64_t payload_bytes = 0;  // per slot (hop bytes per sample x max batch), 1 .. 1 TiB / slot_count
};

// A slot while one side holds it. `ids` has max_batch entries (the first header->count in use).
struct Slot {
  SlotHeader* header = nullptr;
  std::span<uint64_t> ids;
  std::span<std::byte> payload;  // the slot's whole payload capacity
};

class Ring {
 public:
  // A new ring in a fresh segment (`tag` names it in /proc). InvalidArgument for a bad spec.
  static Result<Ring> Create(std::string_view tag, const RingSpec& spec);
  // Attaches to a ring made by Create (in this or another process). InvalidArgument for a segment that does not
  // hold a ring of this version.
  static Result<Ring> Attach(SharedSegment segment);
  // Maps `fd` (a segment from a peer) and attaches.
  static Result<Ring> Open(UniqueFd fd);

  Ring() = default;
  Ring(Ring&&) noexcept = default;
  Ring& operator=(Ring&&) noexcept = default;

  // Producer side. BeginWrite waits up to `timeout` for a free slot: DeadlineExceeded when none frees, Unavailable
  // once the ring is closed, Internal when the reader's counter is corrupt. EndWrite publishes the slot (setting
  // its sequence and published_ns). REQUIRES: a BeginWrite succeeded and was not yet ended.
  Result<Slot> BeginWrite(Duration timeout);
  void EndWrite();
  // Gives up the slot of a BeginWrite without publishing it (the next BeginWrite gets the same slot).
  void AbandonWrite() { writing_ = false; }
  // Consumer side. BeginRead waits up to `timeout` for a message: DeadlineExceeded when none comes, Unavailable
  // once the ring is closed and drained, Internal when the writer's counter or slot header is corrupt. EndRead
  // gives the slot back to the producer.
  Result<Slot> BeginRead(Duration timeout);
  void EndRead();

  // Marks the ring closed and wakes both sides. Idempotent; any thread.
  void Close();
  bool closed() const;

  // Messages published and not yet consumed.
  uint64_t depth() const;
  const RingSpec& spec() const { return spec_; }
  int fd() const { return segment_.fd(); }
  const SharedSegment& segment() const { return segment_; }

 private:
  struct Header;
  Ring(SharedSegment segment, const RingSpec& spec, uint64_t slot_stride, uint64_t ids_offset, uint64_t payload_offset);
  Header* header() const;
  Slot SlotAt(uint64_t sequence) const;
  enum class Readiness { kReady, kWait, kBroken };
  // Spins, then sleeps on `word`, until `ready()` or the ring closes or `timeout` passes.
  template <typename Ready>
  Status Wait(std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleeping, Duration timeout, uint32_t& spin_ns,
              Ready ready);

  SharedSegment segment_;
  RingSpec spec_;
  uint64_t slot_stride_ = 0;
  uint64_t ids_offset_ = 0;
  uint64_t payload_offset_ = 0;
  uint64_t write_sequence_ = 0;  // producer's own count of published messages
  uint64_t read_sequence_ = 0;   // consumer's own count of consumed messages
  bool writing_ = false;
  bool reading_ = false;
  uint32_t write_spin_ns_ = 20'000;  // adaptive spin budgets (ns)
  uint32_t read_spin_ns_ = 20'000;
};

// Bytes a ring of `spec` takes (header, slots, alignment); what Create maps.
uint64_t RingBytes(const RingSpec& spec);

}  // namespace fluidfaas::runtime
