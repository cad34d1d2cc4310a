#include "sim/azure_trace.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "common/limits.h"
#include "common/splitmix.h"

namespace fluidfaas::sim {
namespace {

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    const size_t comma = line.find(',', pos);
    out.push_back(line.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

bool ParseCount(std::string_view s, int64_t* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size() && *out >= 0;
}

// FNV-1a, 64 bits: fixed, so a row's model never depends on the seed.
uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

Result<Trace> ParseAzureTrace(std::string_view text, const std::string& source, const TraceOptions& options) {
  if (options.mix.empty()) return Status::InvalidArgument("trace: no models to map functions onto");
  for (const auto& [model, weight] : options.mix) {
    if (!(weight > 0) || !std::isfinite(weight)) {
      return Status::InvalidArgument("trace: the weight of " + model + " must be positive");
    }
  }
  if (options.max_functions < 1) return Status::InvalidArgument("trace: max_functions must be at least 1");
  FF_RETURN_IF_ERROR(CheckRange("trace: rate scale", options.rate_scale, 0, 1e6, /*open_low=*/true));
  if (options.max_invocations < 1 || options.max_invocations > kMaxRequestsPerRun) {
    return Status::InvalidArgument("trace: max_invocations must be in 1.." + std::to_string(kMaxRequestsPerRun));
  }
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte-order mark
  Trace trace;

  // Header: the four named columns, then minute columns by their number.
  size_t pos = text.find('\n');
  std::string_view header_line = text.substr(0, pos);
  if (!header_line.empty() && header_line.back() == '\r') header_line.remove_suffix(1);
  const std::vector<std::string_view> header = Split(header_line);
  std::map<std::string_view, size_t> named;
  std::vector<std::pair<int, size_t>> minutes;  // (minute, column)
  for (size_t c = 0; c < header.size(); ++c) {
    int64_t minute = 0;
    const auto [end, ec] = std::from_chars(header[c].data(), header[c].data() + header[c].size(), minute);
    const bool numeric = !header[c].empty() && end == header[c].data() + header[c].size() &&
                         (ec == std::errc() || ec == std::errc::result_out_of_range);
    if (!numeric) {
      if (!named.emplace(header[c], c).second) {
        return Status::InvalidArgument(source + ":1: column '" + Printable(header[c], 40) + "' appears twice");
      }
      continue;
    }
    if (ec != std::errc() || minute < 1 || minute > kMaxTraceMinute) {
      return Status::InvalidArgument(source + ":1: minute column '" + Printable(header[c], 40) + "' is not in 1.." +
                                     std::to_string(kMaxTraceMinute));
    }
    minutes.emplace_back(static_cast<int>(minute), c);
  }
  for (const char* col : {"HashOwner", "HashApp", "HashFunction", "Trigger"}) {
    if (!named.contains(col)) return Status::InvalidArgument(source + ":1: no column named '" + col + "'");
  }
  if (minutes.empty()) return Status::InvalidArgument(source + ":1: no minute columns (numbered headers)");
  std::sort(minutes.begin(), minutes.end());
  for (size_t i = 1; i < minutes.size(); ++i) {
    if (minutes[i].first == minutes[i - 1].first) {
      return Status::InvalidArgument(source + ":1: minute " + std::to_string(minutes[i].first) + " appears twice");
    }
  }
  const int file_first = minutes.front().first;
  const int file_last = minutes.back().first;
  trace.first_minute = options.first_minute != 0 ? options.first_minute : file_first;
  trace.last_minute = options.last_minute != 0 ? options.last_minute : file_last;
  if (trace.first_minute < file_first || trace.last_minute > file_last || trace.first_minute > trace.last_minute) {
    return Status::InvalidArgument(source + ": minutes " + std::to_string(trace.first_minute) + ".." +
                                   std::to_string(trace.last_minute) + " are not within the file's " +
                                   std::to_string(file_first) + ".." + std::to_string(file_last));
  }
  std::erase_if(minutes, [&](const auto& m) { return m.first < trace.first_minute || m.first > trace.last_minute; });
  trace.duration = Seconds(60) * (trace.last_minute - trace.first_minute + 1);

  // Pass 1: check every row and count its invocations in the selected minutes.
  struct Row {
    std::string_view line;
    size_t line_no = 0;
    int64_t total = 0;
    int first_active = 0;  // its first and last minutes with an invocation
    int last_active = 0;
  };
  std::vector<Row> rows;
  const size_t owner_col = named["HashOwner"];
  const size_t app_col = named["HashApp"];
  const size_t fn_col = named["HashFunction"];
  size_t line_no = 1;
  while (pos != std::string_view::npos && pos + 1 < text.size()) {
    const size_t start = pos + 1;
    pos = text.find('\n', start);
    std::string_view line = text.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::vector<std::string_view> fields = Split(line);
    std::string problem;
    if (fields.size() != header.size()) {
      problem = std::to_string(fields.size()) + " fields, the header has " + std::to_string(header.size());
    }
    int64_t total = 0;
    int first_active = 0;
    int last_active = 0;
    for (size_t i = 0; problem.empty() && i < minutes.size(); ++i) {
      int64_t count = 0;
      if (!ParseCount(fields[minutes[i].second], &count)) {
        problem = "minute " + std::to_string(minutes[i].first) + ": '" + Printable(fields[minutes[i].second], 30) +
                  "' is not a non-negative count";
        break;
      }
      total = SaturatingAdd(total, count);
      if (count > 0) {
        if (first_active == 0) first_active = minutes[i].first;
        last_active = minutes[i].first;
      }
    }
    if (!problem.empty()) {
      std::string where = source;
      where += ":" + std::to_string(line_no) + ": ";
      where += problem;
      if (!options.lenient) return Status::InvalidArgument(where);
      if (trace.skipped_rows++ == 0) trace.first_skip = std::move(where);
      continue;
    }
    ++trace.rows;
    if (total > 0) rows.push_back(Row{line, line_no, total, first_active, last_active});
  }
  // The busiest rows, kept in file order.
  if (rows.size() > options.max_functions) {
    std::vector<size_t> order(rows.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows[a].total > rows[b].total; });
    std::vector<bool> keep(rows.size(), false);
    for (size_t i = 0; i < options.max_functions; ++i) keep[order[i]] = true;
    std::vector<Row> kept;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (keep[i]) {
        kept.push_back(rows[i]);
      } else {
        ++trace.dropped_rows;
        trace.dropped_invocations = SaturatingAdd(trace.dropped_invocations, rows[i].total);
      }
    }
    rows = std::move(kept);
  }
  // Bounded before anything is allocated: the whole run may hold max_invocations requests.
  double expected_total = 0;
  for (const Row& r : rows) expected_total += static_cast<double>(r.total) * options.rate_scale;
  if (expected_total > static_cast<double>(options.max_invocations)) {
    return Status::InvalidArgument(source + ": the trace holds more than " + std::to_string(options.max_invocations) +
                                   " invocations in the minutes selected, the limit of one run (select fewer minutes, "
                                   "fewer functions or scale the rate down)");
  }
  double weight_sum = 0;
  for (const auto& [model, weight] : options.mix) weight_sum += weight;

  // The trace's active span: its first and last minutes with an invocation among the kept rows. Time 0 is the
  // start of the first, so that selecting or trimming empty minutes around it changes nothing.
  trace.first_active_minute = trace.last_minute;
  trace.last_active_minute = trace.first_minute;
  for (const Row& r : rows) {
    trace.first_active_minute = std::min(trace.first_active_minute, r.first_active);
    trace.last_active_minute = std::max(trace.last_active_minute, r.last_active);
  }
  if (rows.empty()) trace.first_active_minute = trace.last_active_minute = trace.first_minute;

  // Pass 2: each kept row is a function; each of its function-minutes a cell, with a random stream of its own (the
  // seed, the row's ids and the minute), so that no other row or minute changes its arrivals.
  for (const Row& r : rows) {
    const std::vector<std::string_view> fields = Split(r.line);
    TraceFunction f;
    f.id = std::string(fields[owner_col]) + "/" + std::string(fields[app_col]) + "/" + std::string(fields[fn_col]);
    const double u = static_cast<double>(Fnv1a(f.id) >> 11) * 0x1.0p-53;  // in [0, 1)
    double covered = 0;
    f.model = options.mix.back().first;
    for (const auto& [model, weight] : options.mix) {
      covered += weight / weight_sum;
      if (u < covered) {
        f.model = model;
        break;
      }
    }
    f.invocations = r.total;
    const uint64_t row_key = Fnv1a(f.id);
    const auto index = static_cast<uint32_t>(trace.functions.size());
    trace.functions.push_back(std::move(f));
    for (const auto& [minute, column] : minutes) {
      int64_t count = 0;
      ParseCount(fields[column], &count);  // checked in pass 1
      if (count == 0) continue;
      SplitMix64 stream(options.seed ^ SplitMix64::Mix(row_key ^ SplitMix64::Mix(static_cast<uint64_t>(minute))));
      const double expected = static_cast<double>(count) * options.rate_scale;
      auto n = static_cast<int64_t>(expected);
      if (stream.Unit() < expected - static_cast<double>(n)) ++n;
      if (n == 0) continue;
      trace.cells.push_back(TraceCell{minute - trace.first_active_minute, index, n, stream.state()});
      trace.invocations += n;
    }
  }
  if (trace.invocations == 0) {
    return Status::InvalidArgument(source + ": no invocations in minutes " + std::to_string(trace.first_minute) + ".." +
                                   std::to_string(trace.last_minute) + (trace.rows == 0 ? " (no function rows)" : ""));
  }
  std::sort(trace.cells.begin(), trace.cells.end(), [](const TraceCell& a, const TraceCell& b) {
    return a.minute != b.minute ? a.minute < b.minute : a.function < b.function;
  });
  if (options.materialize) {
    trace.arrivals.reserve(static_cast<size_t>(trace.invocations));
    AzureArrivals stream(trace);
    while (std::optional<Arrival> a = stream.Next()) trace.arrivals.push_back(*a);
  }
  return trace;
}

std::optional<Arrival> AzureArrivals::Next() {
  if (at_ == minute_.size()) {
    minute_.clear();
    at_ = 0;
    const std::vector<TraceCell>& cells = trace_.cells;
    if (cell_ == cells.size()) return std::nullopt;
    // The minutes are disjoint spans of time: sorting each one's arrivals sorts them all.
    const int minute = cells[cell_].minute;
    for (; cell_ < cells.size() && cells[cell_].minute == minute; ++cell_) {
      const TraceCell& c = cells[cell_];
      SplitMix64 stream = SplitMix64::FromState(c.stream);
      for (int64_t k = 0; k < c.arrivals; ++k) {
        minute_.push_back(Arrival{TimePoint{} + SecondsF(60.0 * minute + 60.0 * stream.Unit()), c.function});
      }
    }
    std::sort(minute_.begin(), minute_.end(),
              [](const Arrival& a, const Arrival& b) { return a.at != b.at ? a.at < b.at : a.function < b.function; });
  }
  return minute_[at_++];
}

Result<Trace> ReadAzureTrace(const std::string& path, const TraceOptions& options) {
  FF_ASSIGN_OR_RETURN(std::string text, ReadBoundedFile(path, kMaxTraceBytes, "trace"));
  return ParseAzureTrace(text, path, options);
}

}  // namespace fluidfaas::sim
