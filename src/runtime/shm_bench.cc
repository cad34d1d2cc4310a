#include "runtime/shm_bench.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/stats.h"
#include "runtime/ring.h"

namespace fluidfaas::runtime {
namespace {

constexpr Duration kWait = Seconds(30);
constexpr int kStreamTrials = 5;
constexpr uint64_t kDefaultSizes[] = {64,         1 << 10,    16 << 10,    256 << 10,
                                      1ull << 20, 4ull << 20, 16ull << 20, 64ull << 20};

// Reads every byte (8 at a time) so the compiler cannot skip it.
// Reads every byte, 16 at a time in four independent lanes (vector loads on any x86-64 or arm64), so the
// compiler can neither skip the reads nor serialise them.
uint64_t Checksum(const std::byte* p, size_t n) {
  using V = uint64_t __attribute__((vector_size(16)));
  V lane[4] = {};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    V w[4];
    std::memcpy(w, p + i, 64);
    for (int k = 0; k < 4; ++k) lane[k] ^= w[k];
  }
  const V v = lane[0] ^ lane[1] ^ lane[2] ^ lane[3];
  uint64_t sum = v[0] ^ v[1];
  for (; i < n; ++i) sum ^= static_cast<uint64_t>(p[i]);
  return sum;
}

int RunEchoChild(Ring& forth, Ring& back, int hops) {
  for (int i = 0; i < hops; ++i) {
    auto in = forth.BeginRead(kWait);
    if (!in.ok()) return 1;
    forth.EndRead();
    auto out = back.BeginWrite(kWait);
    if (!out.ok()) return 1;
    back.EndWrite();
  }
  // Stream trials: until a message with flags = 1 (a trial's end), read every byte of every slot.
  for (int t = 0; t < kStreamTrials; ++t) {
    uint64_t sum = 0;
    for (;;) {
      auto in = forth.BeginRead(kWait);
      if (!in.ok()) return 1;
      const bool end = in->header->flags == 1;
      if (!end) sum ^= Checksum(in->payload.data(), in->header->payload_bytes);
      forth.EndRead();
      if (end) break;
    }
    auto out = back.BeginWrite(kWait);
    if (!out.ok()) return 1;
    out->header->batch = sum;
    back.EndWrite();
  }
  return 0;
}

// Echo over a Unix stream socket: read `bytes`, write them back, `rounds` times.
int RunSocketEchoChild(int fd, uint64_t bytes, int rounds, std::vector<std::byte>& buf) {
  for (int r = 0; r < rounds; ++r) {
    for (uint64_t got = 0; got < bytes;) {
      const ssize_t n = read(fd, buf.data() + got, bytes - got);
      if (n <= 0) return 1;
      got += static_cast<uint64_t>(n);
    }
    for (uint64_t sent = 0; sent < bytes;) {
      const ssize_t n = write(fd, buf.data() + sent, bytes - sent);
      if (n <= 0) return 1;
      sent += static_cast<uint64_t>(n);
    }
  }
  return 0;
}

Status Reap(pid_t child) {
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Internal("bench shm: the peer process failed");
  }
  return Status::Ok();
}

// Median of five 20 ms trials; clock reads between groups of copies, not between every copy.
double MemcpyGbs(uint64_t bytes, std::vector<std::byte>& src, std::vector<std::byte>& dst) {
  const uint64_t group = std::max<uint64_t>(1, (1u << 20) / bytes);
  std::memcpy(dst.data(), src.data(), bytes);  // warm
  std::vector<double> trials;
  for (int t = 0; t < 5; ++t) {
    uint64_t moved = 0;
    const int64_t start = MonotonicNanos();
    do {
      for (uint64_t k = 0; k < group; ++k) {
        std::memcpy(dst.data(), src.data(), bytes);
        src[k % bytes] = dst[(k + 1) % bytes];  // a dependency, so no copy is dropped
      }
      moved += group * bytes;
    } while (MonotonicNanos() - start < 20'000'000);
    trials.push_back(static_cast<double>(moved) / static_cast<double>(MonotonicNanos() - start));
  }
  return Percentile(trials, 0.5);
}

Result<double> SocketBaselineP50(uint64_t bytes, int rounds) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Status::IoError("socketpair");
  UniqueFd mine(sv[0]);
  UniqueFd theirs(sv[1]);
  std::vector<std::byte> buf(bytes, std::byte{1});
  const pid_t child = fork();
  if (child < 0) return Status::IoError("fork");
  if (child == 0) {
    mine.Reset();
    _exit(RunSocketEchoChild(theirs.get(), bytes, rounds + 1, buf));
  }
  theirs.Reset();
  std::vector<double> samples;
  for (int r = 0; r <= rounds; ++r) {
    const int64_t start = MonotonicNanos();
    for (uint64_t sent = 0; sent < bytes;) {
      const ssize_t n = write(mine.get(), buf.data() + sent, bytes - sent);
      if (n <= 0) return Status::IoError("socket baseline: write");
      sent += static_cast<uint64_t>(n);
    }
    for (uint64_t got = 0; got < bytes;) {
      const ssize_t n = read(mine.get(), buf.data() + got, bytes - got);
      if (n <= 0) return Status::IoError("socket baseline: read");
      got += static_cast<uint64_t>(n);
    }
    if (r > 0) samples.push_back(static_cast<double>(MonotonicNanos() - start) / 2000.0);
  }
  FF_RETURN_IF_ERROR(Reap(child));
  return Percentile(samples, 0.5);
}

Result<ShmBenchRow> BenchOne(uint64_t bytes, const ShmBenchOptions& options) {
  ShmBenchRow row;
  row.bytes = bytes;
  const RingSpec spec{.slot_count = 2, .max_batch = 1, .payload_bytes = bytes};
  FF_ASSIGN_OR_RETURN(Ring forth, Ring::Create("bench-forth", spec));
  FF_ASSIGN_OR_RETURN(Ring back,
                      Ring::Create("bench-back", RingSpec{.slot_count = 4, .max_batch = 1, .payload_bytes = 64}));
  std::vector<std::byte> src(bytes, std::byte{7});
  // Fault every slot's pages in before timing (a real node does this once, when it creates a pipeline).
  for (uint32_t i = 0; i < spec.slot_count; ++i) {
    FF_ASSIGN_OR_RETURN(Slot s, forth.BeginWrite(kWait));
    std::memset(s.payload.data(), 0, bytes);
    forth.EndWrite();
    FF_ASSIGN_OR_RETURN(Slot r, forth.BeginRead(kWait));
    (void)r;
    forth.EndRead();
  }
  // Warm-up: a tenth of the samples and at least 500 hops (the first ones after fork pay for page-table faults).
  const int warmup = std::max(500, options.hop_samples / 10);
  const int hops = warmup + options.hop_samples;
  const pid_t child = fork();
  if (child < 0) return Status::IoError("fork");
  if (child == 0) _exit(RunEchoChild(forth, back, hops));

  // Hops: each round trip gives one timed hop (child to parent, from its EndWrite to our BeginRead); our
  // hop to the child is the same path the other way round.
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(options.hop_samples));
  for (int i = 0; i < hops; ++i) {
    FF_ASSIGN_OR_RETURN(Slot s, forth.BeginWrite(kWait));
    s.header->payload_bytes = bytes;  // written before: the hop hands the slot over
    forth.EndWrite();
    FF_ASSIGN_OR_RETURN(Slot r, back.BeginRead(kWait));
    const int64_t now = MonotonicNanos();
    if (i >= warmup) samples.push_back(static_cast<double>(now - r.header->published_ns) / 1000.0);
    back.EndRead();
  }
  row.hop_p50_us = Percentile(samples, 0.5);
  row.hop_p99_us = Percentile(samples, 0.99);

  // Stream: write every byte of each slot; the child reads every byte. Five trials (an end marker after each,
  // answered by the child), the median reported: this machine is shared, and one trial can lose a core.
  const auto budget_ns = static_cast<int64_t>(options.stream_seconds * 1e9 / kStreamTrials);
  std::vector<double> rates;
  for (int t = 0; t < kStreamTrials; ++t) {
    uint64_t sent = 0;
    const int64_t start = MonotonicNanos();
    for (uint64_t n = 0;; ++n) {
      if (n >= 4 && MonotonicNanos() - start >= budget_ns) break;
      src[n % bytes] = static_cast<std::byte>(n);
      FF_ASSIGN_OR_RETURN(Slot s, forth.BeginWrite(kWait));
      std::memcpy(s.payload.data(), src.data(), bytes);
      s.header->payload_bytes = bytes;
      forth.EndWrite();
      sent += bytes;
    }
    FF_ASSIGN_OR_RETURN(Slot end, forth.BeginWrite(kWait));
    end.header->flags = 1;
    forth.EndWrite();
    FF_ASSIGN_OR_RETURN(Slot done, back.BeginRead(kWait));
    (void)done;
    back.EndRead();
    rates.push_back(static_cast<double>(sent) / static_cast<double>(MonotonicNanos() - start));
  }
  FF_RETURN_IF_ERROR(Reap(child));
  row.stream_gbs = Percentile(rates, 0.5);

  std::vector<std::byte> dst(bytes);
  row.memcpy_gbs = MemcpyGbs(bytes, src, dst);
  const int rounds = bytes >= (16u << 20) ? 20 : bytes >= (1u << 20) ? 100 : 1000;
  FF_ASSIGN_OR_RETURN(row.baseline_p50_us, SocketBaselineP50(bytes, rounds));
  return row;
}

}  // namespace

Result<std::vector<ShmBenchRow>> RunShmBench(const ShmBenchOptions& options) {
  std::vector<uint64_t> sizes = options.sizes;
  if (sizes.empty()) sizes.assign(std::begin(kDefaultSizes), std::end(kDefaultSizes));
  std::vector<ShmBenchRow> rows;
  for (uint64_t bytes : sizes) {
    if (bytes == 0 || bytes > (1ull << 30)) {
      return Status::InvalidArgument("bench shm: payload " + std::to_string(bytes) + " is not in [1, 1 GiB]");
    }
    FF_ASSIGN_OR_RETURN(ShmBenchRow row, BenchOne(bytes, options));
    rows.push_back(row);
  }
  return rows;
}

}  // namespace fluidfaas::runtime
