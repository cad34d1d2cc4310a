#include "cluster/report.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace fluidfaas::cluster {
namespace {

using nlohmann::json;

constexpr size_t kMaxSlices = 4096;
constexpr size_t kMaxFunctions = 65536;
constexpr size_t kMaxInstances = 4096;  // of one function on one node
constexpr size_t kMaxStages = 64;
constexpr size_t kMaxText = 256;

Result<std::string> Text(const json& j, const char* field, bool required = true) {
  const auto it = j.find(field);
  if (it == j.end()) {
    if (!required) return std::string();
    return Status::InvalidArgument(std::string("report: \"") + field + "\" is missing");
  }
  if (!it->is_string()) return Status::InvalidArgument(std::string("report: \"") + field + "\" must be a string");
  std::string s = it->get<std::string>();
  if (s.size() > kMaxText) return Status::InvalidArgument(std::string("report: \"") + field + "\" is too long");
  return s;
}

Result<double> Number(const json& j, const char* field, double lo, double hi) {
  const auto it = j.find(field);
  if (it == j.end()) return Status::InvalidArgument(std::string("report: \"") + field + "\" is missing");
  if (!it->is_number()) return Status::InvalidArgument(std::string("report: \"") + field + "\" must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return Status::InvalidArgument(std::string("report: \"") + field + "\" is out of range");
  }
  return v;
}

// A field newer nodes send: `fallback` when it is absent, else checked as Number does.
Result<double> OptionalNumber(const json& j, const char* field, double lo, double hi, double fallback) {
  if (!j.contains(field)) return fallback;
  return Number(j, field, lo, hi);
}

Result<ReportedInstance> ParseInstance(const json& i) {
  if (!i.is_object()) return Status::InvalidArgument("report: an instance must be an object");
  ReportedInstance ri;
  FF_ASSIGN_OR_RETURN(double id, Number(i, "id", 0, 9e15));
  ri.id = static_cast<uint64_t>(id);
  FF_ASSIGN_OR_RETURN(ri.state, Text(i, "state"));
  FF_ASSIGN_OR_RETURN(double queued, Number(i, "queued", 0, 1e9));
  ri.queued = static_cast<int64_t>(queued);
  const auto slices = i.find("slices");
  if (slices == i.end() || !slices->is_array() || slices->empty() || slices->size() > kMaxStages) {
    return Status::InvalidArgument("report: an instance's \"slices\" must be an array of 1 to 64 slice ids");
  }
  for (const json& s : *slices) {
    if (!s.is_string() || s.get_ref<const std::string&>().size() > kMaxText) {
      return Status::InvalidArgument("report: an instance's slice must be a short string");
    }
    ri.slices.push_back(s.get<std::string>());
  }
  return ri;
}

}  // namespace

Status CheckNodeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return Status::InvalidArgument("a node name has 1 to 64 characters");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return Status::InvalidArgument("a node name has only letters, digits, '-' and '_'");
  }
  return Status::Ok();
}

nlohmann::json InstancesJson(const std::vector<ReportedInstance>& instances) {
  json out = json::array();
  for (const ReportedInstance& i : instances) {
    out.push_back({{"id", i.id}, {"state", i.state}, {"slices", i.slices}, {"queued", i.queued}});
  }
  return out;
}

std::string ToJsonText(const NodeReport& r) {
  json slices = json::array();
  for (const ReportedSlice& s : r.slices) {
    slices.push_back({{"id", s.id}, {"profile", s.profile}, {"gpu_model", s.gpu_model}, {"free_mib", s.free_mib}});
  }
  json functions = json::array();
  for (const ReportedFunction& f : r.functions) {
    functions.push_back({{"name", f.name},
                         {"model", f.model},
                         {"slo_ms", f.slo_ms},
                         {"hot", f.hot},
                         {"finish_ms", f.finish_ms},
                         {"warm", f.warm},
                         {"rate_per_s", f.rate_per_s},
                         {"instances", InstancesJson(f.instances)}});
  }
  const json j = {{"node", r.node},
                  {"advertise", r.advertise},
                  {"seq", r.seq},
                  {"interval_ms", r.interval_ms},
                  {"open", r.open},
                  {"draining", r.draining},
                  {"host_free_mib", r.host_free_mib},
                  {"slices", slices},
                  {"functions", functions}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<NodeReport> ParseNodeReport(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("report: not a JSON object");
  NodeReport r;
  FF_ASSIGN_OR_RETURN(r.node, Text(j, "node"));
  if (Status s = CheckNodeName(r.node); !s.ok()) return Status::InvalidArgument("report: \"node\": " + s.message());
  FF_ASSIGN_OR_RETURN(r.advertise, Text(j, "advertise"));
  FF_ASSIGN_OR_RETURN(double seq, Number(j, "seq", 0, 9e15));
  r.seq = static_cast<uint64_t>(seq);
  FF_ASSIGN_OR_RETURN(double interval, Number(j, "interval_ms", 1, 3.6e6));
  r.interval_ms = static_cast<int64_t>(interval);
  FF_ASSIGN_OR_RETURN(double open, Number(j, "open", 0, 1e9));
  r.open = static_cast<int64_t>(open);
  if (const auto d = j.find("draining"); d != j.end()) {
    if (!d->is_boolean()) return Status::InvalidArgument("report: \"draining\" must be a boolean");
    r.draining = d->get<bool>();
  }
  FF_ASSIGN_OR_RETURN(double host_free, OptionalNumber(j, "host_free_mib", 0, 1e12, 0));
  r.host_free_mib = static_cast<int64_t>(host_free);
  const auto slices = j.find("slices");
  const auto functions = j.find("functions");
  if (slices == j.end() || !slices->is_array() || slices->size() > kMaxSlices) {
    return Status::InvalidArgument("report: \"slices\" must be an array of at most 4096");
  }
  if (functions == j.end() || !functions->is_array() || functions->size() > kMaxFunctions) {
    return Status::InvalidArgument("report: \"functions\" must be an array of at most 65536");
  }
  for (const json& s : *slices) {
    if (!s.is_object()) return Status::InvalidArgument("report: a slice must be an object");
    ReportedSlice rs;
    FF_ASSIGN_OR_RETURN(rs.id, Text(s, "id"));
    FF_ASSIGN_OR_RETURN(rs.profile, Text(s, "profile"));
    FF_ASSIGN_OR_RETURN(rs.gpu_model, Text(s, "gpu_model"));
    FF_ASSIGN_OR_RETURN(double free, Number(s, "free_mib", 0, 1e9));
    rs.free_mib = static_cast<int64_t>(free);
    r.slices.push_back(std::move(rs));
  }
  for (const json& f : *functions) {
    if (!f.is_object()) return Status::InvalidArgument("report: a function must be an object");
    ReportedFunction rf;
    FF_ASSIGN_OR_RETURN(rf.name, Text(f, "name"));
    if (rf.name.empty()) return Status::InvalidArgument("report: a function's \"name\" is empty");
    FF_ASSIGN_OR_RETURN(rf.model, Text(f, "model", /*required=*/false));
    FF_ASSIGN_OR_RETURN(rf.slo_ms, Number(f, "slo_ms", 0, 1e7));
    FF_ASSIGN_OR_RETURN(double hot, Number(f, "hot", 0, 1e6));
    rf.hot = static_cast<int>(hot);
    FF_ASSIGN_OR_RETURN(rf.finish_ms, Number(f, "finish_ms", 0, 1e9));
    FF_ASSIGN_OR_RETURN(double warm, Number(f, "warm", 0, 1e6));
    rf.warm = static_cast<int>(warm);
    FF_ASSIGN_OR_RETURN(rf.rate_per_s, OptionalNumber(f, "rate_per_s", 0, 1e9, 0));
    if (const auto instances = f.find("instances"); instances != f.end()) {
      if (!instances->is_array() || instances->size() > kMaxInstances) {
        return Status::InvalidArgument("report: a function's \"instances\" must be an array of at most 4096");
      }
      for (const json& i : *instances) {
        FF_ASSIGN_OR_RETURN(ReportedInstance ri, ParseInstance(i));
        rf.instances.push_back(std::move(ri));
      }
    }
    r.functions.push_back(std::move(rf));
  }
  return r;
}

}  // namespace fluidfaas::cluster
