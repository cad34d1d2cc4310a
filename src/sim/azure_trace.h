// Azure Functions 2019 trace reader: invocations_per_function_md.anon.dXX.csv into simulator arrivals.
//
// The file has one row per function: HashOwner, HashApp, HashFunction, Trigger, then one column of invocation
// counts per minute, named by the minute (1 to 1440 in the original files; samples cut to a range such as 480
// to 959 are common, so minute columns are found by their header, never by position).
//
// Each row is one function. Its zoo model is chosen by a fixed rule that depends on nothing but the row: the
// 64-bit FNV-1a hash of "HashOwner/HashApp/HashFunction", as a fraction h / 2^64, picks the model whose share of
// the mix's cumulative weights covers it (the same file and mix always give the same models; the seed only
// spreads each minute's count within the minute). Rows with no invocations in the selected minutes are left out,
// and of the rest the `max_functions` busiest are kept (ties: the earlier row); the others are counted as dropped.
// A minute's count is spread uniformly at random within the minute, from a random stream of that function-minute
// alone (the seed, the row's ids and the minute: a counter-based generator), so trimming empty minutes, selecting
// a range around the busy ones or reordering rows changes no arrival. A minute range can be selected, and the
// rate scaled (a fractional expected count is rounded up with the probability of its fraction). Time 0 is the
// start of the first minute with an invocation (among the kept rows); the trace's span runs from there to the end
// of the last such minute.
//
// A malformed row (wrong field count, a count that is not a non-negative integer) is an error naming the file
// and line, or, with `lenient`, skipped and counted. The header is strict: minute columns are 1..20160 and
// unique, named columns unique. A UTF-8 byte-order mark and CRLF line ends are accepted. The file is at most
// kMaxTraceBytes, the selected minutes hold at most `max_invocations` invocations (kMaxRequestsPerRun unless
// lowered; after scaling; checked before they are generated), and at least one (common/limits.h).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/limits.h"
#include "common/result.h"
#include "sim/workload.h"

namespace fluidfaas::sim {

struct TraceOptions {
  std::vector<std::pair<std::string, double>> mix;  // zoo models and weights rows map onto. REQUIRES: not empty
  size_t max_functions = 512;                       // the busiest rows kept. REQUIRES: >= 1
  int first_minute = 0;                             // first minute column to use; 0: the file's first
  int last_minute = 0;                              // last minute column to use (inclusive); 0: the file's last
  double rate_scale = 1.0;                          // multiplies every count. REQUIRES: > 0
  uint64_t seed = 1;                                // spreads counts within their minute; the mapping does not use it
  bool lenient = false;                             // skip malformed rows instead of failing
  int64_t max_invocations = kMaxRequestsPerRun;     // after scaling. REQUIRES: 1..kMaxRequestsPerRun
  bool materialize = true;  // fill Trace::arrivals; false: only AzureArrivals streams them (memory: the cells)
};

struct TraceFunction {
  std::string id;           // HashOwner/HashApp/HashFunction
  std::string model;        // by the rule above
  int64_t invocations = 0;  // in the selected minutes, before rate scaling
};

// One function-minute with invocations: how many arrivals it makes (after scaling) and the random stream that
// places them in the minute.
struct TraceCell {
  int minute = 0;  // minutes after the first active one
  uint32_t function = 0;
  int64_t arrivals = 0;
  uint64_t stream = 0;  // SplitMix64 state
};

struct Trace {
  std::vector<Arrival> arrivals;         // Arrival::function indexes `functions`; sorted by time (materialize)
  std::vector<TraceCell> cells;          // by minute, then function
  int64_t invocations = 0;               // arrivals in all, after scaling
  std::vector<TraceFunction> functions;  // the rows kept, in file order
  size_t rows = 0;                       // well-formed function rows read
  size_t dropped_rows = 0;               // rows with invocations beyond max_functions
  int64_t dropped_invocations = 0;       // theirs
  size_t skipped_rows = 0;               // malformed rows skipped (lenient)
  std::string first_skip;                // why the first skipped row was skipped
  int first_minute = 0;                  // the minutes selected
  int last_minute = 0;
  Duration duration{0};         // of the minutes selected
  int first_active_minute = 0;  // the first and last of them with an invocation (kept rows)
  int last_active_minute = 0;
  // From the start of the first active minute to the end of the last: what the arrivals span.
  Duration span() const { return Seconds(60) * (last_active_minute - first_active_minute + 1); }
};

Result<Trace> ParseAzureTrace(std::string_view text, const std::string& source, const TraceOptions& options);

// The trace's arrivals in time order, generated a minute at a time from its cells (the same ones, in the same order,
// as Trace::arrivals): a stream for the simulator whose memory is one minute's arrivals. Keeps a reference to
// `trace`.
class AzureArrivals {
 public:
  explicit AzureArrivals(const Trace& trace) : trace_(trace) {}
  std::optional<Arrival> Next();

 private:
  const Trace& trace_;
  size_t cell_ = 0;              // the next minute's first cell
  std::vector<Arrival> minute_;  // the current minute's arrivals, sorted
  size_t at_ = 0;                // the next of them
};
Result<Trace> ReadAzureTrace(const std::string& path, const TraceOptions& options);

}  // namespace fluidfaas::sim
