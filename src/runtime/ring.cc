#include "runtime/ring.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <new>
#include <string>

#include "common/limits.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fluidfaas::runtime {

// The shared part of a ring. Counters sit on cache lines of their own so the two sides do not false-share.
struct Ring::Header {
  uint32_t magic;
  uint32_t version;
  uint32_t slot_count;
  uint32_t max_batch;
  uint64_t payload_bytes;
  uint64_t slot_stride;
  uint64_t ids_offset;
  uint64_t payload_offset;
  alignas(64) std::atomic<uint64_t> head;  // messages published (written by the producer)
  std::atomic<uint32_t> data_word;         // futex: bumped on every publish and on close
  std::atomic<uint32_t> reader_sleeping;
  alignas(64) std::atomic<uint64_t> tail;  // messages consumed (written by the consumer)
  std::atomic<uint32_t> space_word;        // futex: bumped on every release and on close
  std::atomic<uint32_t> writer_sleeping;
  alignas(64) std::atomic<uint32_t> closed;
};

namespace {

constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kAlign = 64;
constexpr uint32_t kMinSpinNs = 1'000;
constexpr uint32_t kMaxSpinNs = 500'000;

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "rings need lock-free atomics in shared memory");
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex words are 32-bit");

uint64_t AlignUp(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

// Shared (not private) futex calls: the words live in memory mapped by several processes.
void FutexWait(std::atomic<uint32_t>& word, uint32_t expected, Duration timeout) {
  timespec ts{};
  const int64_t us = std::max<int64_t>(ToMicros(timeout), 0);
  ts.tv_sec = us / 1'000'000;
  ts.tv_nsec = (us % 1'000'000) * 1000;
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

Status CheckSpec(const RingSpec& spec) {
  FF_RETURN_IF_ERROR(CheckRange("ring slot_count", int64_t{spec.slot_count}, 2, 1024));
  FF_RETURN_IF_ERROR(CheckRange("ring max_batch", int64_t{spec.max_batch}, 1, kMaxBatch));
  const int64_t cap = (int64_t{1} << 40) / spec.slot_count;
  FF_RETURN_IF_ERROR(CheckRange("ring payload_bytes", static_cast<int64_t>(spec.payload_bytes), 1, cap));
  return Status::Ok();
}

struct Geometry {
  uint64_t ids_offset;
  uint64_t payload_offset;
  uint64_t slot_stride;
};

Geometry GeometryOf(const RingSpec& spec) {
  Geometry g{};
  g.ids_offset = AlignUp(sizeof(SlotHeader), 8);
  g.payload_offset = AlignUp(g.ids_offset + uint64_t{spec.max_batch} * sizeof(uint64_t), kAlign);
  g.slot_stride = AlignUp(g.payload_offset + spec.payload_bytes, kAlign);
  return g;
}

}  // namespace

uint64_t RingBytes(const RingSpec& spec) {
  return kHeaderBytes + GeometryOf(spec).slot_stride * spec.slot_count;
}

Result<Ring> Ring::Create(std::string_view tag, const RingSpec& spec) {
  FF_RETURN_IF_ERROR(CheckSpec(spec));
  const Geometry g = GeometryOf(spec);
  FF_ASSIGN_OR_RETURN(SharedSegment segment, SharedSegment::Create(tag, RingBytes(spec)));
  auto* h = new (segment.data()) Header{};
  h->magic = kRingMagic;
  h->version = kRingVersion;
  h->slot_count = spec.slot_count;
  h->max_batch = spec.max_batch;
  h->payload_bytes = spec.payload_bytes;
  h->slot_stride = g.slot_stride;
  h->ids_offset = g.ids_offset;
  h->payload_offset = g.payload_offset;
  return Ring(std::move(segment), spec, g.slot_stride, g.ids_offset, g.payload_offset);
}

Result<Ring> Ring::Attach(SharedSegment segment) {
  if (segment.size() < kHeaderBytes) return Status::InvalidArgument("ring: segment smaller than its header");
  const auto* h = reinterpret_cast<const Header*>(segment.data());
  if (h->magic != kRingMagic) return Status::InvalidArgument("ring: not a FluidFaaS ring (bad magic)");
  if (h->version != kRingVersion) {
    return Status::InvalidArgument("ring: version " + std::to_string(h->version) + ", this build speaks " +
                                   std::to_string(kRingVersion));
  }
  const RingSpec spec{.slot_count = h->slot_count, .max_batch = h->max_batch, .payload_bytes = h->payload_bytes};
  FF_RETURN_IF_ERROR(CheckSpec(spec));
  const Geometry g = GeometryOf(spec);
  if (g.slot_stride != h->slot_stride || g.ids_offset != h->ids_offset || g.payload_offset != h->payload_offset ||
      RingBytes(spec) > segment.size()) {
    return Status::InvalidArgument("ring: geometry does not match the segment");
  }
  return Ring(std::move(segment), spec, g.slot_stride, g.ids_offset, g.payload_offset);
}

Result<Ring> Ring::Open(UniqueFd fd) {
  FF_ASSIGN_OR_RETURN(SharedSegment segment, SharedSegment::Map(std::move(fd)));
  return Attach(std::move(segment));
}

Ring::Ring(SharedSegment segment, const RingSpec& spec, uint64_t slot_stride, uint64_t ids_offset,
           uint64_t payload_offset)
    : segment_(std::move(segment)),
      spec_(spec),
      slot_stride_(slot_stride),
      ids_offset_(ids_offset),
      payload_offset_(payload_offset) {
  // An endpoint attached late (a restarted consumer) starts where the shared counters are.
  read_sequence_ = header()->tail.load(std::memory_order_acquire);
  write_sequence_ = header()->head.load(std::memory_order_acquire);
}

Ring::Header* Ring::header() const {
  return reinterpret_cast<Header*>(segment_.data());
}

Slot Ring::SlotAt(uint64_t sequence) const {
  std::byte* base = segment_.data() + kHeaderBytes + (sequence % spec_.slot_count) * slot_stride_;
  return Slot{.header = reinterpret_cast<SlotHeader*>(base),
              .ids = {reinterpret_cast<uint64_t*>(base + ids_offset_), spec_.max_batch},
              .payload = {base + payload_offset_, spec_.payload_bytes}};
}

// `ready()` returns kReady, kWait, or kBroken (having set `broken` to the error).
template <typename Ready>
Status Ring::Wait(std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleeping, Duration timeout, uint32_t& spin_ns,
                  Ready ready) {
  Header* h = header();
  const int64_t start = MonotonicNanos();
  const int64_t deadline = start + ToMicros(timeout) * 1000;
  // Spin first: a hop between two busy processes lands in well under a microsecond.
  for (uint32_t i = 0;; ++i) {
    const Readiness r = ready();
    if (r == Readiness::kReady) return Status::Ok();
    if (r == Readiness::kBroken) return Status::Internal("ring: corrupt counter");
    if (h->closed.load(std::memory_order_acquire) != 0) return Status::Unavailable("ring closed");
    if ((i & 63) == 63) {
      const int64_t now = MonotonicNanos();
      if (now - start >= spin_ns || now >= deadline) break;
    }
    CpuRelax();
  }
  for (;;) {
    // Dekker with the other side (all seq_cst): we announce sleeping, then look; it publishes, then looks at
    // `sleeping`. One of us sees the other.
    const uint32_t seen = word.load(std::memory_order_seq_cst);
    sleeping.store(1, std::memory_order_seq_cst);
    const Readiness r = ready();
    if (r != Readiness::kWait || h->closed.load(std::memory_order_seq_cst) != 0) {
      sleeping.store(0, std::memory_order_relaxed);
      if (r == Readiness::kReady) return Status::Ok();
      if (r == Readiness::kBroken) return Status::Internal("ring: corrupt counter");
      return Status::Unavailable("ring closed");
    }
    const int64_t now = MonotonicNanos();
    if (now >= deadline) {
      sleeping.store(0, std::memory_order_relaxed);
      return Status::DeadlineExceeded("ring: timed out waiting");
    }
    FutexWait(word, seen, Micros((deadline - now + 999) / 1000));
    sleeping.store(0, std::memory_order_relaxed);
    // Woken soon after giving up the spin: a longer spin would have caught it. Slept long: spin less.
    const int64_t slept = MonotonicNanos() - now;
    spin_ns = slept < 2 * int64_t{spin_ns} ? std::min(kMaxSpinNs, spin_ns * 2) : std::max(kMinSpinNs, spin_ns / 2);
  }
}

Result<Slot> Ring::BeginWrite(Duration timeout) {
  Header* h = header();
  if (h->closed.load(std::memory_order_acquire) != 0) return Status::Unavailable("ring closed: writing a ring slot");
  const uint64_t seq = write_sequence_;
  auto ready = [&] {
    const uint64_t tail = h->tail.load(std::memory_order_acquire);
    if (tail > seq || seq - tail > spec_.slot_count) return Readiness::kBroken;
    return seq - tail < spec_.slot_count ? Readiness::kReady : Readiness::kWait;
  };
  if (Status s = Wait(h->space_word, h->writer_sleeping, timeout, write_spin_ns_, ready); !s.ok()) {
    return s.WithContext("writing a ring slot");
  }
  writing_ = true;
  Slot slot = SlotAt(seq);
  *slot.header = SlotHeader{};
  slot.header->sequence = seq;
  return slot;
}

void Ring::EndWrite() {
  if (!writing_) return;
  writing_ = false;
  Header* h = header();
  SlotAt(write_sequence_).header->published_ns = MonotonicNanos();
  ++write_sequence_;
  h->head.store(write_sequence_, std::memory_order_seq_cst);
  h->data_word.fetch_add(1, std::memory_order_seq_cst);
  if (h->reader_sleeping.load(std::memory_order_seq_cst) != 0) FutexWakeAll(h->data_word);
}

Result<Slot> Ring::BeginRead(Duration timeout) {
  Header* h = header();
  const uint64_t seq = read_sequence_;
  auto ready = [&] {
    const uint64_t head = h->head.load(std::memory_order_acquire);
    if (head < seq || head - seq > spec_.slot_count) return Readiness::kBroken;
    if (head > seq) return Readiness::kReady;
    return Readiness::kWait;
  };
  // Messages published before a close are still delivered; Wait reports the close only when none is left.
  if (Status s = Wait(h->data_word, h->reader_sleeping, timeout, read_spin_ns_, ready); !s.ok()) {
    return s.WithContext("reading a ring slot");
  }
  Slot slot = SlotAt(seq);
  const SlotHeader& sh = *slot.header;
  if (sh.version != kRingVersion || sh.sequence != seq || sh.count > spec_.max_batch ||
      sh.payload_bytes > spec_.payload_bytes || sh.rank > static_cast<uint32_t>(kMaxRank) ||
      sh.stages_done > static_cast<uint32_t>(kMaxStages)) {
    return Status::Internal("ring: slot " + std::to_string(seq) + " has a corrupt header");
  }
  reading_ = true;
  return slot;
}

void Ring::EndRead() {
  if (!reading_) return;
  reading_ = false;
  Header* h = header();
  ++read_sequence_;
  h->tail.store(read_sequence_, std::memory_order_seq_cst);
  h->space_word.fetch_add(1, std::memory_order_seq_cst);
  if (h->writer_sleeping.load(std::memory_order_seq_cst) != 0) FutexWakeAll(h->space_word);
}

void Ring::Close() {
  Header* h = header();
  if (h == nullptr) return;
  h->closed.store(1, std::memory_order_seq_cst);
  h->data_word.fetch_add(1, std::memory_order_seq_cst);
  h->space_word.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(h->data_word);
  FutexWakeAll(h->space_word);
}

bool Ring::closed() const {
  return header() != nullptr && header()->closed.load(std::memory_order_acquire) != 0;
}

uint64_t Ring::depth() const {
  const Header* h = header();
  if (h == nullptr) return 0;
  const uint64_t head = h->head.load(std::memory_order_acquire);
  const uint64_t tail = h->tail.load(std::memory_order_acquire);
  return head >= tail ? head - tail : 0;
}

}  // namespace fluidfaas::runtime
