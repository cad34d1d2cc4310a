#include "runtime/ring.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

namespace fluidfaas::runtime {
namespace {

RingSpec SmallSpec() {
  return RingSpec{.slot_count = 4, .max_batch = 8, .payload_bytes = 1024};
}

// Writes `n` messages, each with its index as batch id, one id and a payload of that byte.
void Produce(Ring& ring, int n) {
  for (int i = 0; i < n; ++i) {
    auto slot = ring.BeginWrite(Seconds(10));
    ASSERT_TRUE(slot.ok()) << slot.status().ToString();
    slot->header->batch = static_cast<uint64_t>(i);
    slot->header->count = 1;
    slot->ids[0] = 1000 + static_cast<uint64_t>(i);
    slot->header->payload_bytes = 100;
    std::memset(slot->payload.data(), i & 0xff, 100);
    ring.EndWrite();
  }
}

TEST(RingTest, DeliversEveryMessageInOrderAcrossThreads) {
  auto ring = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  auto reader = Ring::Open(UniqueFd(dup(ring->fd())));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  constexpr int kCount = 20000;
  std::thread producer([&] { Produce(*ring, kCount); });
  for (int i = 0; i < kCount; ++i) {
    auto slot = reader->BeginRead(Seconds(10));
    ASSERT_TRUE(slot.ok()) << slot.status().ToString();
    EXPECT_EQ(slot->header->batch, static_cast<uint64_t>(i));
    EXPECT_EQ(slot->ids[0], 1000 + static_cast<uint64_t>(i));
    ASSERT_EQ(slot->header->payload_bytes, 100u);
    EXPECT_EQ(slot->payload[99], static_cast<std::byte>(i & 0xff));
    reader->EndRead();
  }
  producer.join();
  EXPECT_EQ(reader->depth(), 0u);
}

TEST(RingTest, DeliversAcrossProcesses) {
  auto ring = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring.ok());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto reader = Ring::Open(UniqueFd(dup(ring->fd())));
    int bad = reader.ok() ? 0 : 1;
    for (int i = 0; i < 5000 && bad == 0; ++i) {
      auto slot = reader->BeginRead(Seconds(10));
      if (!slot.ok() || slot->header->batch != static_cast<uint64_t>(i)) bad = 1;
      reader->EndRead();
    }
    _exit(bad);
  }
  Produce(*ring, 5000);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(RingTest, FullRingPushesBackThenTimesOut) {
  auto ring = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring.ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(ring->BeginWrite(Millis(1)).ok());
    ring->EndWrite();
  }
  EXPECT_EQ(ring->depth(), 4u);
  auto blocked = ring->BeginWrite(Millis(20));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(RingTest, EmptyRingTimesOut) {
  auto ring = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring.ok());
  auto slot = ring->BeginRead(Millis(5));
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(RingTest, CloseWakesASleepingReaderAfterDeliveringWhatWasPublished) {
  auto ring = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring.ok());
  auto reader = Ring::Open(UniqueFd(dup(ring->fd())));
  ASSERT_TRUE(reader.ok());
  Produce(*ring, 1);
  ring->Close();
  ASSERT_TRUE(reader->BeginRead(Millis(10)).ok());
  reader->EndRead();
  std::thread closer;
  auto next = reader->BeginRead(Seconds(10));
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), StatusCode::kUnavailable);

  // A reader already asleep is woken by a close from another thread, long before its timeout.
  auto ring2 = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring2.ok());
  closer = std::thread([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ring2->Close();
  });
  const int64_t start = MonotonicNanos();
  auto woken = ring2->BeginRead(Seconds(30));
  closer.join();
  EXPECT_EQ(woken.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(MonotonicNanos() - start, int64_t{10'000'000'000});
  EXPECT_EQ(ring2->BeginWrite(Millis(1)).status().code(), StatusCode::kUnavailable);
}

TEST(RingTest, ACorruptPeerCounterIsAnErrorNotAWildWrite) {
  auto ring = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring.ok());
  // The reader's counter sits at offset 128 of the header (its own cache line); a dying reader scribbles on it.
  auto* tail = reinterpret_cast<uint64_t*>(ring->segment().data() + 128);
  *tail = 99;
  auto slot = ring->BeginWrite(Millis(1));
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), StatusCode::kInternal);
}

TEST(RingTest, ACorruptSlotHeaderIsRefused) {
  auto ring = Ring::Create("test", SmallSpec());
  ASSERT_TRUE(ring.ok());
  auto reader = Ring::Open(UniqueFd(dup(ring->fd())));
  ASSERT_TRUE(reader.ok());
  auto slot = ring->BeginWrite(Millis(1));
  ASSERT_TRUE(slot.ok());
  slot->header->count = 9;  // more ids than a slot holds
  ring->EndWrite();
  auto read = reader->BeginRead(Millis(10));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kInternal);
}

TEST(RingTest, AttachRefusesWhatIsNotARing) {
  auto segment = SharedSegment::Create("test", 8192);
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(Ring::Attach(std::move(*segment)).status().code(), StatusCode::kInvalidArgument);
  // A plain pipe is not a sealed memfd.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[1]);
  EXPECT_EQ(SharedSegment::Map(UniqueFd(fds[0])).status().code(), StatusCode::kInvalidArgument);
}

TEST(RingTest, SpecIsRangeChecked) {
  EXPECT_FALSE(Ring::Create("t", RingSpec{.slot_count = 1, .max_batch = 1, .payload_bytes = 1}).ok());
  EXPECT_FALSE(Ring::Create("t", RingSpec{.slot_count = 4, .max_batch = 0, .payload_bytes = 1}).ok());
  EXPECT_FALSE(Ring::Create("t", RingSpec{.slot_count = 4, .max_batch = 1, .payload_bytes = 0}).ok());
  EXPECT_FALSE(Ring::Create("t", RingSpec{.slot_count = 4, .max_batch = 5000, .payload_bytes = 1}).ok());
}

TEST(SharedSegmentTest, IsSealedAgainstShrinking) {
  auto segment = SharedSegment::Create("test", 10000);
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(segment->size() % 4096, 0u);
  EXPECT_NE(ftruncate(segment->fd(), 0), 0);
}

}  // namespace
}  // namespace fluidfaas::runtime
