#include "cluster/node_table.h"

#include <algorithm>

#include "gpu/mps.h"
#include "model/zoo.h"

namespace fluidfaas::cluster {
namespace {

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

}  // namespace

NodeTable::NodeTable(policy::Routing routing, Duration silence) : routing_(routing), silence_(silence) {
  for (const gpu::MigProfile& p : A100().profiles) kinds_.push_back(policy::SliceKind{&A100(), &p});
  router_ = std::make_unique<policy::ClusterRouter>(routing_, kinds_, std::vector<policy::RoutedFunction>{});
}

void NodeTable::Apply(const NodeReport& report, TimePoint now) {
  MutexLock lock(mu_);
  Node& n = nodes_[report.node];
  // A lower sequence number is an older report of the same run, delivered late; a restarted node starts again at
  // 1 and is taken at once (its address or slices may have changed).
  if (n.report.seq > report.seq && report.seq > 1 && n.report.advertise == report.advertise) return;
  n.report = report;
  n.heard = now;
  n.unreachable = false;
  n.silence_seen = false;
  if (n.id == kNoId) {
    n.id = by_id_.size();
    by_id_.push_back(&n);
  }
  LearnLocked(report);
  index_.Set(n.id, ViewLocked(n, now));
}

policy::NodeView NodeTable::ViewLocked(const Node& n, TimePoint now) const {
  policy::NodeView v;
  v.healthy = HealthyLocked(n, now);
  v.outstanding = std::max(n.outstanding, n.report.open);
  for (const ReportedFunction& f : n.report.functions) {
    const auto fid = function_ids_.find(f.name);
    if (fid != function_ids_.end())
      v.functions.push_back(policy::NodeFunction{fid->second, f.hot, f.finish_ms, f.warm});
  }
  std::sort(v.functions.begin(), v.functions.end(),
            [](const policy::NodeFunction& a, const policy::NodeFunction& b) { return a.function < b.function; });
  for (const ReportedSlice& s : n.report.slices) {
    v.free.push_back(policy::NodeFreeSlice{KindLocked(s.gpu_model, s.profile), s.free_mib});
  }
  return v;
}

void NodeTable::LearnLocked(const NodeReport& report) {
  for (const ReportedFunction& f : report.functions) {
    if (function_ids_.count(f.name) > 0) continue;
    const auto id = static_cast<uint32_t>(slo_ms_.size());
    // A zoo model's costs, built once per model (a cluster runs many functions of few models).
    const policy::StageCostTable* costs = nullptr;
    if (!f.model.empty()) {
      auto& cached = costs_by_model_[f.model];
      if (!cached) {
        if (Result<model::FunctionSpec> spec = model::BuildZooModel(f.model); spec.ok()) {
          const gpu::MpsShares shares(A100());
          auto s = policy::ServeZooModel(id, std::make_shared<const model::FunctionSpec>(std::move(*spec)), latency_,
                                         shares, 5.0);
          if (s.ok()) cached = s->costs;
        }
      }
      costs = cached.get();
    }
    function_ids_[f.name] = id;
    router_->AddFunction(policy::RoutedFunction{costs, f.slo_ms});
    slo_ms_.push_back(f.slo_ms);
  }
}

void NodeTable::Remove(const std::string& node) {
  MutexLock lock(mu_);
  const auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  index_.Clear(it->second.id);
  by_id_[it->second.id] = nullptr;
  nodes_.erase(it);
}

void NodeTable::MarkUnreachable(const std::string& node) {
  MutexLock lock(mu_);
  if (auto it = nodes_.find(node); it != nodes_.end()) {
    it->second.unreachable = true;
    index_.SetHealthy(it->second.id, false);
  }
}

void NodeTable::MarkBusy(const std::string& node, const std::string& function) {
  MutexLock lock(mu_);
  const auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  for (ReportedFunction& f : it->second.report.functions) {
    if (f.name == function) f.finish_ms = std::max(f.finish_ms, 1e9);
  }
  index_.Set(it->second.id, ViewLocked(it->second, it->second.heard));  // health: refreshed by Route
}

void NodeTable::Sent(const std::string& node, const std::string& function) {
  MutexLock lock(mu_);
  const auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  ++it->second.outstanding;
  index_.SetOutstanding(it->second.id, std::max(it->second.outstanding, it->second.report.open));
  if (const auto id = function_ids_.find(function); id != function_ids_.end()) {
    index_.ChargeSent(it->second.id, id->second, router_->ChargeMs(id->second));
  }
}

void NodeTable::Answered(const std::string& node) {
  MutexLock lock(mu_);
  if (auto it = nodes_.find(node); it != nodes_.end() && it->second.outstanding > 0) {
    --it->second.outstanding;
    index_.SetOutstanding(it->second.id, std::max(it->second.outstanding, it->second.report.open));
  }
}

bool NodeTable::HealthyLocked(const Node& n, TimePoint now) const {
  return !n.unreachable && !n.report.draining && now - n.heard <= silence_;
}

std::map<std::string, bool> NodeTable::Functions(TimePoint now) const {
  MutexLock lock(mu_);
  std::map<std::string, bool> out;
  for (const auto& [name, n] : nodes_) {
    const bool healthy = HealthyLocked(n, now);
    for (const ReportedFunction& f : n.report.functions) out[f.name] = out[f.name] || healthy;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> NodeTable::NewlySilent(TimePoint now) {
  MutexLock lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  // Every node silent at once is the gateway's own loss of NATS far more likely than every node hung: the calls
  // on the direct path are left to run.
  const bool any_heard =
      std::any_of(nodes_.begin(), nodes_.end(), [&](const auto& kv) { return now - kv.second.heard <= silence_; });
  if (!any_heard) return out;
  for (auto& [name, n] : nodes_) {
    if (n.silence_seen || now - n.heard <= silence_) continue;
    n.silence_seen = true;
    out.emplace_back(name, n.report.advertise);
  }
  return out;
}

bool NodeTable::Healthy(const std::string& node, TimePoint now) const {
  MutexLock lock(mu_);
  const auto it = nodes_.find(node);
  return it != nodes_.end() && HealthyLocked(it->second, now);
}

std::string NodeTable::Address(const std::string& node) const {
  MutexLock lock(mu_);
  const auto it = nodes_.find(node);
  return it == nodes_.end() ? std::string() : it->second.report.advertise;
}

size_t NodeTable::healthy_nodes(TimePoint now) const {
  MutexLock lock(mu_);
  size_t healthy = 0;
  for (const auto& [name, n] : nodes_) healthy += HealthyLocked(n, now) ? 1 : 0;
  return healthy;
}

int NodeTable::KindLocked(const std::string& gpu_model, const std::string& profile) const {
  if (gpu_model != A100().name) return -1;
  for (size_t k = 0; k < kinds_.size(); ++k) {
    if (kinds_[k].profile->name == profile) return static_cast<int>(k);
  }
  return -1;
}

double NodeTable::SloMs(const std::string& function) const {
  MutexLock lock(mu_);
  const auto it = function_ids_.find(function);
  return it == function_ids_.end() ? 0 : slo_ms_[it->second];
}

std::optional<RouteChoice> NodeTable::Route(const std::string& function, double room_ms, uint64_t request,
                                            TimePoint now, const std::vector<std::string>& avoid) {
  MutexLock lock(mu_);
  const auto id = function_ids_.find(function);
  if (id == function_ids_.end() || nodes_.empty()) return std::nullopt;
  // Reports age between calls: each node's health at `now` (a pass over a flat array, no view rebuilt).
  for (size_t i = 0; i < by_id_.size(); ++i) {
    if (by_id_[i] != nullptr) index_.SetHealthy(i, HealthyLocked(*by_id_[i], now));
  }
  std::vector<uint32_t> excluded;
  for (const std::string& name : avoid) {
    if (auto it = nodes_.find(name); it != nodes_.end()) excluded.push_back(static_cast<uint32_t>(it->second.id));
  }
  const std::optional<size_t> at = router_->Route(id->second, room_ms, request, index_, excluded);
  if (!at || *at >= by_id_.size() || by_id_[*at] == nullptr) return std::nullopt;
  const Node& n = *by_id_[*at];
  return RouteChoice{n.report.node, n.report.advertise};
}

nlohmann::json NodeTable::Json(TimePoint now) const {
  MutexLock lock(mu_);
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& [name, n] : nodes_) {
    nlohmann::json slices = nlohmann::json::array();
    for (const ReportedSlice& s : n.report.slices) {
      slices.push_back({{"id", s.id}, {"profile", s.profile}, {"free_mib", s.free_mib}});
    }
    nlohmann::json functions = nlohmann::json::array();
    for (const ReportedFunction& f : n.report.functions) {
      functions.push_back({{"name", f.name},
                           {"hot", f.hot},
                           {"warm", f.warm},
                           {"finish_ms", f.finish_ms},
                           {"rate_per_s", f.rate_per_s},
                           {"instances", InstancesJson(f.instances)}});
    }
    nodes.push_back({{"name", name},
                     {"advertise", n.report.advertise},
                     {"healthy", HealthyLocked(n, now)},
                     {"unreachable", n.unreachable},
                     {"draining", n.report.draining},
                     {"report_age_ms", ToMillis(now - n.heard)},
                     {"seq", n.report.seq},
                     {"open", n.report.open},
                     {"outstanding", n.outstanding},
                     {"host_free_mib", n.report.host_free_mib},
                     {"free_slices", slices},
                     {"functions", functions}});
  }
  return {{"routing", policy::ToString(routing_)}, {"silence_ms", ToMillis(silence_)}, {"nodes", nodes}};
}

}  // namespace fluidfaas::cluster
