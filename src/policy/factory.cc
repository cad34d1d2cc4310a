#include "policy/factory.h"

#include <map>

#include "common/limits.h"
#include "common/strings.h"
#include "policy/esg_scheduler.h"
#include "policy/exclusive_scheduler.h"
#include "policy/fluidfaas_scheduler.h"
#include "policy/infless_scheduler.h"

namespace fluidfaas::policy {
namespace {

template <typename T>
Result<std::unique_ptr<Scheduler>> Upcast(Result<std::unique_ptr<T>> made) {
  if (!made.ok()) return made.status();
  return std::unique_ptr<Scheduler>(std::move(made).value());
}

// "60s", "500ms", "10m", "1h", or plain seconds; in (0, 1 day].
Result<Duration> ParseSpan(const std::string& where, const std::string& text) {
  double scale = 1.0;
  std::string number = text;
  for (const auto& [unit, s] :
       {std::pair{"ms", 1e-3}, std::pair{"s", 1.0}, std::pair{"m", 60.0}, std::pair{"h", 3600.0}}) {
    const std::string u = unit;
    if (text.size() > u.size() && text.ends_with(u)) {
      number = text.substr(0, text.size() - u.size());
      scale = s;
      break;
    }
  }
  const std::optional<double> v = ParseFiniteDouble(number);
  if (!v) return Status::InvalidArgument(where + ": '" + Printable(text, 20) + "' is not a duration (60s, 500ms, 10m)");
  FF_RETURN_IF_ERROR(CheckRange(where + " (seconds)", *v * scale, 0, 86400, /*open_low=*/true));
  return SecondsF(*v * scale);
}

}  // namespace

const std::vector<std::string>& PolicyNames() {
  static const std::vector<std::string> kNames = {"fluidfaas", "esg", "infless", "exclusive"};
  return kNames;
}

std::string_view PolicyName(std::string_view spec) {
  return spec.substr(0, spec.find(':'));
}

bool UsesWholeGpus(std::string_view policy) {
  return PolicyName(policy) == "infless";
}

Result<std::unique_ptr<Scheduler>> MakeScheduler(std::string_view spec, std::vector<ClusterSlice> cluster,
                                                 std::vector<ServedFunction> functions, NodeLimits limits) {
  const std::string name(PolicyName(spec));
  // Options: name:key=value:key=value, each known to the policy.
  std::map<std::string, std::string> options;
  if (name.size() < spec.size()) {
    for (const std::string& item : Split(spec.substr(name.size() + 1), ':')) {
      const size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || !options.emplace(item.substr(0, eq), item.substr(eq + 1)).second) {
        return Status::InvalidArgument("policy '" + Printable(spec, 60) + "': '" + Printable(item, 30) +
                                       "' is not key=value (each key once)");
      }
    }
  }
  const auto take_span = [&](const char* key, Duration& into) -> Status {
    auto it = options.find(key);
    if (it == options.end()) return Status::Ok();
    FF_ASSIGN_OR_RETURN(into, ParseSpan(name + ":" + key, it->second));
    options.erase(it);
    return Status::Ok();
  };
  const auto take_switch = [&](const char* key, bool& into) -> Status {
    auto it = options.find(key);
    if (it == options.end()) return Status::Ok();
    if (it->second != "on" && it->second != "off") {
      return Status::InvalidArgument("policy " + name + ": " + key + " must be on or off, not '" +
                                     Printable(it->second, 30) + "'");
    }
    into = it->second == "on";
    options.erase(it);
    return Status::Ok();
  };
  const auto leftover = [&]() -> Status {
    if (options.empty()) return Status::Ok();
    return Status::InvalidArgument("policy " + name + " has no option '" + Printable(options.begin()->first, 30) +
                                   "' (options: " + (name == "infless" ? "margin, refusals" : "keep_alive") +
                                   (name == "fluidfaas"
                                        ? ", idle_evict, dwell, displace_idle, contest, pipelines, "
                                          "time_sharing, migration, urgency, yield, displacement, cold_starts"
                                        : "") +
                                   ")");
  };
  if (name == "fluidfaas") {
    FluidFaaSOptions o;
    o.host_memory_mib = limits.host_memory_mib;
    FF_RETURN_IF_ERROR(take_span("keep_alive", o.keep_alive));
    FF_RETURN_IF_ERROR(take_span("idle_evict", o.ts_idle_evict));
    FF_RETURN_IF_ERROR(take_span("dwell", o.min_dwell));
    FF_RETURN_IF_ERROR(take_switch("pipelines", o.pipelines));
    FF_RETURN_IF_ERROR(take_switch("time_sharing", o.time_sharing));
    FF_RETURN_IF_ERROR(take_switch("migration", o.migration));
    FF_RETURN_IF_ERROR(take_switch("urgency", o.urgency));
    FF_RETURN_IF_ERROR(take_switch("yield", o.pipeline_yield));
    FF_RETURN_IF_ERROR(take_switch("cold_starts", o.cold_starts));
    FF_RETURN_IF_ERROR(take_span("displace_idle", o.displace_idle));
    FF_RETURN_IF_ERROR(take_span("contest", o.contest_window));
    bool displacement = true;
    FF_RETURN_IF_ERROR(take_switch("displacement", displacement));
    if (!displacement) o.displace_idle = Duration{0};
    if (!o.pipelines) o.planner.max_stages = 1;
    FF_RETURN_IF_ERROR(leftover());
    return Upcast(FluidFaaSScheduler::Create(std::move(cluster), std::move(functions), o));
  }
  if (name == "esg") {
    EsgOptions o;
    FF_RETURN_IF_ERROR(take_span("keep_alive", o.keep_alive));
    FF_RETURN_IF_ERROR(leftover());
    return Upcast(EsgScheduler::Create(std::move(cluster), std::move(functions), o));
  }
  if (name == "infless") {
    InflessOptions o;
    if (auto it = options.find("margin"); it != options.end()) {
      const std::optional<double> v = ParseFiniteDouble(it->second);
      if (!v || !(*v >= 0 && *v <= 2)) {
        return Status::InvalidArgument("policy infless: margin must be a number in [0, 2], not '" +
                                       Printable(it->second, 30) + "'");
      }
      o.interference_margin = *v;
      options.erase(it);
    }
    FF_RETURN_IF_ERROR(take_switch("refusals", o.refusals_overflow));
    FF_RETURN_IF_ERROR(leftover());
    return Upcast(InflessScheduler::Create(std::move(cluster), std::move(functions), o));
  }
  if (name == "exclusive") {
    ExclusiveOptions o;
    FF_RETURN_IF_ERROR(take_span("keep_alive", o.keep_alive));
    FF_RETURN_IF_ERROR(leftover());
    return Upcast(ExclusiveScheduler::Create(std::move(cluster), std::move(functions), o));
  }
  return Status::InvalidArgument("unknown policy '" + Printable(name, 30) +
                                 "' (policies: " + Join(PolicyNames(), ", ") + ")");
}

}  // namespace fluidfaas::policy
