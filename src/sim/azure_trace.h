// Azure Functions 2019 trace reader: invocations_per_function_md.anon.dXX.csv into simulator arrivals.
//
// The file has one row per function: HashOwner, HashApp, HashFunction, Trigger, then one column of invocation
// counts per minute, named by the minute (1 to 1440 in the original files; samples cut to a range such as 480
// to 959 are common, so minute columns are found by their header, never by position).
//
// Each function is mapped onto one of the given zoo models by a seeded hash of its HashFunction (the same seed
// and file always give the same mapping), and all invocations mapped onto a model form that model's load. A
// minute's count is spread uniformly at random within the minute. A minute range can be selected, and the rate
// scaled (a fractional expected count is rounded up with the probability of its fraction). Time 0 is the start
// of the first selected minute.
//
// A malformed row (wrong field count, a count that is not a non-negative integer) is an error naming the file
// and line, or, with `lenient`, skipped and counted. The header is strict: minute columns are 1..20160 and
// unique, named columns unique. A UTF-8 byte-order mark and CRLF line ends are accepted. The file is at most
// kMaxTraceBytes, the selected minutes hold at most kMaxRequestsPerRun invocations (after scaling; checked
// before they are generated), and at least one (common/limits.h).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "sim/workload.h"

namespace fluidfaas::sim {

struct TraceOptions {
  std::vector<std::string> models;  // zoo models to map functions onto. REQUIRES: not empty
  int first_minute = 0;             // first minute column to use; 0: the file's first
  int last_minute = 0;              // last minute column to use (inclusive); 0: the file's last
  double rate_scale = 1.0;          // multiplies every count. REQUIRES: > 0
  uint64_t seed = 1;
  bool lenient = false;  // skip malformed rows instead of failing
};

struct Trace {
  std::vector<Arrival> arrivals;  // Arrival::function indexes TraceOptions::models; sorted by time
  std::vector<std::string> models;
  std::vector<int64_t> per_model;  // arrivals per model
  size_t functions = 0;            // rows read
  size_t skipped_rows = 0;         // malformed rows skipped (lenient)
  std::string first_skip;          // why the first skipped row was skipped
  int first_minute = 0;
  int last_minute = 0;
  Duration duration{0};
};

Result<Trace> ParseAzureTrace(std::string_view text, const std::string& source, const TraceOptions& options);
Result<Trace> ReadAzureTrace(const std::string& path, const TraceOptions& options);

}  // namespace fluidfaas::sim
