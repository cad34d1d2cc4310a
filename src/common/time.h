// Time in FluidFaaS: integer microseconds, as strong types.
//
// Duration is std::chrono::microseconds; TimePoint is a point on a FluidFaaS clock (see clock.h), measured in
// microseconds since that clock's epoch (process start for the real clock, zero for a manual clock). Using
// std::chrono keeps durations and points from mixing with plain integers and with each other by accident.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace fluidfaas {

using Duration = std::chrono::duration<int64_t, std::micro>;

// The time base of every FluidFaaS clock. It is a tag: read the time through a Clock, never from here.
struct ClockBase {
  using rep = int64_t;
  using period = std::micro;
  using duration = Duration;
  using time_point = std::chrono::time_point<ClockBase, Duration>;
  static constexpr bool is_steady = true;  // NOLINT(readability-identifier-naming): the std::chrono name
};

using TimePoint = ClockBase::time_point;

constexpr Duration Micros(int64_t us) {
  return Duration(us);
}
constexpr Duration Millis(int64_t ms) {
  return std::chrono::milliseconds(ms);
}
constexpr Duration Seconds(int64_t s) {
  return std::chrono::seconds(s);
}
// Rounds to the nearest microsecond.
constexpr Duration MillisF(double ms) {
  return Duration(static_cast<int64_t>(ms * 1000.0 + (ms >= 0 ? 0.5 : -0.5)));
}
constexpr Duration SecondsF(double s) {
  return MillisF(s * 1000.0);
}

constexpr TimePoint AtMicros(int64_t us) {
  return TimePoint(Duration(us));
}
constexpr int64_t ToMicros(Duration d) {
  return d.count();
}
constexpr int64_t ToMicros(TimePoint t) {
  return t.time_since_epoch().count();
}
constexpr double ToMillis(Duration d) {
  return static_cast<double>(d.count()) / 1e3;
}
constexpr double ToSeconds(Duration d) {
  return static_cast<double>(d.count()) / 1e6;
}
constexpr double ToSeconds(TimePoint t) {
  return ToSeconds(t.time_since_epoch());
}

// "1.5ms", "250us", "2.000s": for logs and tables.
std::string FormatDuration(Duration d);

}  // namespace fluidfaas
