#include "sim/azure_trace.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

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

uint64_t HashWithSeed(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull);
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h ^ (h >> 31);
}

}  // namespace

Result<Trace> ParseAzureTrace(std::string_view text, const std::string& source, const TraceOptions& options) {
  if (options.models.empty()) return Status::InvalidArgument("trace: no models to map functions onto");
  if (!(options.rate_scale > 0)) return Status::InvalidArgument("trace: rate scale must be positive");
  Trace trace;
  trace.models = options.models;
  trace.per_model.assign(options.models.size(), 0);

  // Header: the four named columns, then minute columns by their number.
  size_t pos = text.find('\n');
  std::string_view header_line = text.substr(0, pos);
  if (!header_line.empty() && header_line.back() == '\r') header_line.remove_suffix(1);
  const std::vector<std::string_view> header = Split(header_line);
  std::map<std::string_view, size_t> named;
  std::vector<std::pair<int, size_t>> minutes;  // (minute, column)
  for (size_t c = 0; c < header.size(); ++c) {
    int minute = 0;
    const auto [end, ec] = std::from_chars(header[c].data(), header[c].data() + header[c].size(), minute);
    if (ec == std::errc() && end == header[c].data() + header[c].size() && !header[c].empty()) {
      minutes.emplace_back(minute, c);
    } else {
      named[header[c]] = c;
    }
  }
  for (const char* col : {"HashOwner", "HashApp", "HashFunction", "Trigger"}) {
    if (!named.contains(col)) return Status::InvalidArgument(source + ":1: no column named '" + col + "'");
  }
  if (minutes.empty()) return Status::InvalidArgument(source + ":1: no minute columns (numbered headers)");
  std::sort(minutes.begin(), minutes.end());
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

  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> within(0.0, 60.0);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
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
    std::vector<int64_t> counts;
    for (size_t i = 0; problem.empty() && i < minutes.size(); ++i) {
      int64_t count = 0;
      if (!ParseCount(fields[minutes[i].second], &count)) {
        problem = "minute " + std::to_string(minutes[i].first) + ": '" + std::string(fields[minutes[i].second]) +
                  "' is not a non-negative count";
      }
      counts.push_back(count);
    }
    if (!problem.empty()) {
      if (!options.lenient) return Status::InvalidArgument(source + ":" + std::to_string(line_no) + ": " + problem);
      if (trace.skipped_rows++ == 0) trace.first_skip = source + ":" + std::to_string(line_no) + ": " + problem;
      continue;
    }
    ++trace.functions;
    const auto model = static_cast<uint32_t>(HashWithSeed(fields[fn_col], options.seed) % options.models.size());
    for (size_t i = 0; i < minutes.size(); ++i) {
      const double expected = static_cast<double>(counts[i]) * options.rate_scale;
      auto n = static_cast<int64_t>(expected);
      if (coin(rng) < expected - static_cast<double>(n)) ++n;
      const double minute_start = 60.0 * (minutes[i].first - trace.first_minute);
      for (int64_t k = 0; k < n; ++k) {
        trace.arrivals.push_back(Arrival{TimePoint{} + SecondsF(minute_start + within(rng)), model});
      }
      trace.per_model[model] += n;
    }
  }
  std::sort(trace.arrivals.begin(), trace.arrivals.end(), [](const Arrival& a, const Arrival& b) {
    return a.at != b.at ? a.at < b.at : a.function < b.function;
  });
  return trace;
}

Result<Trace> ReadAzureTrace(const std::string& path, const TraceOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open trace '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read trace '" + path + "'");
  return ParseAzureTrace(text.str(), path, options);
}

}  // namespace fluidfaas::sim
