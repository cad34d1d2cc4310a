// Numbers and names from outside FluidFaaS (flags, config files, traces, manifests, and the HTTP API): one rule.
//
// Every such number is finite and within a documented range, checked where it enters, and an error names the
// field and its range ("--duration: 1e+09 is not in (0, 604800]"). Arithmetic on them that can overflow
// (memory = batch x sequence x width ...) saturates or is checked. Sizes are bounded before anything is
// allocated: files are refused over their size limit before they are read, and simulated work is bounded by
// kMaxRequestsPerRun before arrivals are generated. Names (of nodes, functions) are short and plain, so they are
// safe in file names, URLs, logs and terminals.
//
// Thread safety: pure functions and constants.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "common/result.h"

namespace fluidfaas {

// ---- the stated limits
inline constexpr int64_t kMaxRequestsPerRun = 20'000'000;        // simulated requests in one run (~2 GB of records)
inline constexpr double kMaxSimDurationS = 7 * 86400.0;          // seconds of synthetic arrivals in one run
inline constexpr int kMaxTraceMinute = 20160;                    // trace minute columns: 1..14 days
inline constexpr int64_t kMaxTraceBytes = int64_t{1} << 30;      // a trace file (a whole Azure day is ~150 MB)
inline constexpr int64_t kMaxConfigBytes = int64_t{1} << 20;     // a YAML config or manifest
inline constexpr size_t kMaxNameLength = 63;                     // a node or function name (a DNS label's)
inline constexpr int kMaxBatch = 4096;                           // a batch size
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 31;  // one input tensor

// InvalidArgument unless `value` is finite and lo <= value <= hi (lo < value with `open_low`).
Status CheckRange(std::string_view field, double value, double lo, double hi, bool open_low = false);
Status CheckRange(std::string_view field, int64_t value, int64_t lo, int64_t hi);

// a * b, or InvalidArgument naming `what` when it overflows int64 or is negative.
Result<int64_t> CheckedMul(std::string_view what, int64_t a, int64_t b);
// a * b, saturated to the int64 range (memory estimates: "more than there is" stays more than there is).
constexpr int64_t SaturatingMul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    return (a < 0) != (b < 0) ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return r;
}
constexpr int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    return a < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return r;
}

// InvalidArgument unless `name` is 1..kMaxNameLength characters of [A-Za-z0-9._-], starting with a letter or
// digit. The message shows the name escaped and cut short, never raw.
Status CheckName(std::string_view field, std::string_view name);

// `text` with control characters and non-ASCII bytes escaped (\x1b) and cut to `max` characters: for echoing
// what came from outside in an error.
std::string Printable(std::string_view text, size_t max = 80);

// Reads a whole file of at most `max_bytes`: NotFound, IoError, or InvalidArgument naming the size and limit
// before anything is read.
Result<std::string> ReadBoundedFile(const std::string& path, int64_t max_bytes, std::string_view what);

}  // namespace fluidfaas
