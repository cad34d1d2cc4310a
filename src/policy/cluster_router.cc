#include "policy/cluster_router.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

#include "common/splitmix.h"

namespace fluidfaas::policy {

std::string_view ToString(Routing r) {
  switch (r) {
    case Routing::kWarmFirst: return "warm-first";
    case Routing::kHashHome: return "hash-home";
    case Routing::kLeastLoaded: return "least-loaded";
  }
  return "?";
}

std::vector<std::string> RoutingNames() {
  return {"warm-first", "hash-home", "least-loaded"};
}

Result<Routing> ParseRouting(std::string_view text) {
  for (Routing r : {Routing::kWarmFirst, Routing::kHashHome, Routing::kLeastLoaded}) {
    if (text == ToString(r)) return r;
  }
  return Status::InvalidArgument("unknown routing '" + std::string(text) +
                                 "': expected warm-first, hash-home or least-loaded");
}

uint64_t MixHash(uint64_t a, uint64_t b) {
  return SplitMix64::Mix(a * SplitMix64::kGamma + b + 0x632BE59BD9B4E019ull);
}

namespace {
// The first of `functions` (sorted by function) not before `function`.
template <typename Functions>
auto LowerBound(Functions& functions, uint32_t function) {
  return std::lower_bound(functions.begin(), functions.end(), function,
                          [](const NodeFunction& f, uint32_t id) { return f.function < id; });
}
}  // namespace

const NodeFunction* NodeView::Find(uint32_t function) const {
  const auto it = LowerBound(functions, function);
  return it != functions.end() && it->function == function ? &*it : nullptr;
}

void NodeView::ChargeSent(uint32_t function, double charge_ms) {
  const auto it = LowerBound(functions, function);
  if (it != functions.end() && it->function == function && it->hot > 0) it->finish_ms += charge_ms / it->hot;
}

ClusterRouter::ClusterRouter(Routing routing, std::vector<SliceKind> kinds,
                             const std::vector<RoutedFunction>& functions)
    : routing_(routing), kinds_(std::move(kinds)) {
  for (const RoutedFunction& f : functions) AddFunction(f);
}

uint32_t ClusterRouter::AddFunction(RoutedFunction f) {
  int64_t least = kNever;
  for (size_t k = 0; k < kinds_.size(); ++k) {
    int64_t need = kNever;
    const int index = f.costs != nullptr ? f.costs->KindIndex(kinds_[k]) : -1;
    if (index >= 0) {
      const size_t last = f.costs->blocks() - 1;
      const int64_t mib = f.costs->MemoryMib(index, 0, last);
      least = std::min(least, mib);
      if (f.costs->ComputeMs(index, 0, last) <= f.slo_ms) need = mib;
    }
    alone_mib_.push_back(need);
  }
  least_mib_.push_back(least);
  functions_.push_back(f);
  return static_cast<uint32_t>(functions_.size() - 1);
}

double ClusterRouter::ChargeMs(uint32_t function) const {
  return function < functions_.size() ? kSentShare * functions_[function].slo_ms : 0;
}

ClusterRouter::Fit ClusterRouter::FitOn(uint32_t function, const NodeView& node) const {
  Fit fit;
  if (function >= functions_.size() || functions_[function].costs == nullptr) return fit;
  const int64_t* need = &alone_mib_[static_cast<size_t>(function) * kinds_.size()];
  int64_t total = 0;
  int64_t best_slack = kNever;
  for (const NodeFreeSlice& s : node.free) {
    total += s.free_mib;
    if (s.kind < 0 || static_cast<size_t>(s.kind) >= kinds_.size()) continue;
    const int64_t n = need[s.kind];
    if (n <= s.free_mib) best_slack = std::min(best_slack, s.free_mib - n);
  }
  if (best_slack != kNever) {
    fit.alone = true;
    fit.slack_mib = best_slack;
  } else if (node.free.size() >= 2 && total >= least_mib_[function]) {
    fit.pipeline = true;
    fit.slack_mib = total - least_mib_[function];
  }
  return fit;
}

bool ClusterRouter::HasRoom(uint32_t function, double room_ms, const NodeView& node) const {
  const NodeFunction* f = node.Find(function);
  return f != nullptr && f->hot > 0 && f->finish_ms <= room_ms;
}

// The two forms of the nodes a decision reads. Holders(f, each) calls each(n) for the nodes that may hold f, in
// ascending order: every node for a span (a node without the function is skipped by its Find), the index's list.
struct SpanNodes {
  std::span<const NodeView> nodes;
  std::span<const uint32_t> excluded;
  size_t size() const { return nodes.size(); }
  bool present(size_t n) const { return std::find(excluded.begin(), excluded.end(), n) == excluded.end(); }
  bool serves(size_t, uint32_t) const { return true; }
  const NodeView& view(size_t n) const { return nodes[n]; }
  bool any_healthy() const {
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (nodes[n].healthy && present(n)) return true;
    }
    return false;
  }
  template <typename F>
  void Holders(uint32_t, F&& each) const {
    for (size_t n = 0; n < nodes.size(); ++n) each(n);
  }
};

struct IndexNodes {
  const ClusterIndex& index;
  std::span<const uint32_t> excluded;
  size_t size() const { return index.size(); }
  bool present(size_t n) const {
    return index.present(n) && std::find(excluded.begin(), excluded.end(), n) == excluded.end();
  }
  bool serves(size_t n, uint32_t function) const {
    return !index.only_listed() || index.view(n).Find(function) != nullptr;
  }
  const NodeView& view(size_t n) const { return index.view(n); }
  bool any_healthy() const { return index.any_healthy(); }
  template <typename F>
  void Holders(uint32_t function, F&& each) const {
    for (uint32_t n : index.holders(function)) each(n);
  }
};

std::optional<size_t> ClusterRouter::Route(uint32_t function, double room_ms, uint64_t request,
                                           std::span<const NodeView> nodes, std::span<const uint32_t> excluded) const {
  return Decide(function, room_ms, request, SpanNodes{nodes, excluded});
}

std::optional<size_t> ClusterRouter::Route(uint32_t function, double room_ms, uint64_t request,
                                           const ClusterIndex& nodes, std::span<const uint32_t> excluded) const {
  return Decide(function, room_ms, request, IndexNodes{nodes, excluded});
}

template <typename Nodes>
std::optional<size_t> ClusterRouter::Decide(uint32_t function, double room_ms, uint64_t request,
                                            const Nodes& nodes) const {
  if (nodes.size() == 0) return std::nullopt;
  switch (routing_) {
    case Routing::kWarmFirst: {
      // Healthy nodes only while there is one; if none of them can take the function (an index's nodes that do
      // not serve it, or were tried), the unhealthy ones are the last resort.
      const bool any_healthy = nodes.any_healthy();
      if (auto n = WarmFirst(function, room_ms, nodes, any_healthy); n || !any_healthy) return n;
      return WarmFirst(function, room_ms, nodes, false);
    }
    case Routing::kHashHome: return HashHome(function, room_ms, request, nodes);
    case Routing::kLeastLoaded: return LeastLoaded(function, nodes);
  }
  return std::nullopt;
}

template <typename Nodes>
std::optional<size_t> ClusterRouter::WarmFirst(uint32_t function, double room_ms, const Nodes& nodes,
                                               bool healthy_only) const {
  // Each candidate class keeps its best node by a key (lower is better, then a second key), ties broken by the
  // (function, node) hash.
  struct Best {
    std::optional<size_t> node;
    std::pair<double, double> key;
    uint64_t tie = 0;
    void Offer(size_t n, double k, uint64_t t, double then = 0) {
      const std::pair<double, double> offered{k, then};
      if (!node || offered < key || (offered == key && t < tie)) node = n, key = offered, tie = t;
    }
  };
  Best hot, warm, late;
  const auto eligible = [&](size_t n) {
    return nodes.present(n) && nodes.serves(n, function) && (!healthy_only || nodes.view(n).healthy);
  };
  // The nodes that hold the function: one with room wins outright, else a warm copy with a slice to reload on.
  nodes.Holders(function, [&](size_t n) {
    if (!eligible(n)) return;
    const NodeFunction* f = nodes.view(n).Find(function);
    if (f == nullptr) return;
    const uint64_t tie = MixHash(function, n);
    if (f->hot > 0) {
      if (f->finish_ms <= room_ms) return hot.Offer(n, -f->hot, tie, f->finish_ms);
      late.Offer(n, f->finish_ms, tie);
    }
    if (f->warm > 0) {
      const Fit fit = FitOn(function, nodes.view(n));
      if (fit.alone) warm.Offer(n, static_cast<double>(fit.slack_mib), tie);
    }
  });
  if (hot.node) return hot.node;
  if (warm.node) return warm.node;
  // A cold start: every node's free slices.
  Best alone, pipeline, idle;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!eligible(n)) continue;
    const NodeView& node = nodes.view(n);
    const uint64_t tie = MixHash(function, n);
    const Fit fit = FitOn(function, node);
    if (fit.alone) alone.Offer(n, static_cast<double>(fit.slack_mib), tie);
    if (fit.pipeline) pipeline.Offer(n, -static_cast<double>(fit.slack_mib), tie);
    idle.Offer(n, static_cast<double>(node.outstanding), tie);
  }
  for (const Best* b : {&alone, &pipeline, &late, &idle}) {
    if (b->node) return b->node;
  }
  return std::nullopt;
}

template <typename Nodes>
std::optional<size_t> ClusterRouter::HashHome(uint32_t function, double room_ms, uint64_t request,
                                              const Nodes& nodes) const {
  const size_t n = nodes.size();
  const uint64_t h = MixHash(function, 0);
  const size_t home = static_cast<size_t>(h % n);
  // The step: co-prime to n, chosen by the hash among those below n (OpenWhisk's pairwiseCoprimeNumbersUntil).
  size_t coprimes = 0;
  for (size_t s = 1; s <= n; ++s) coprimes += std::gcd(s, n) == 1;
  size_t pick = static_cast<size_t>((h >> 32) % std::max<size_t>(1, coprimes)), step = 1;
  for (size_t s = 1; s <= n; ++s) {
    if (std::gcd(s, n) != 1) continue;
    if (pick-- == 0) {
      step = s;
      break;
    }
  }
  const auto usable = [&](size_t i) { return nodes.present(i) && nodes.serves(i, function) && nodes.view(i).healthy; };
  for (size_t i = 0; i < n; ++i) {
    const size_t at = (home + i * step) % n;
    if (!usable(at)) continue;
    if (HasRoom(function, room_ms, nodes.view(at)) || FitOn(function, nodes.view(at)).alone) return at;
  }
  std::vector<size_t> healthy;
  for (size_t i = 0; i < n; ++i) {
    if (usable(i)) healthy.push_back(i);
  }
  if (healthy.empty()) {
    for (size_t i = 0; i < n; ++i) {
      const size_t at = (home + i) % n;
      if (nodes.present(at) && nodes.serves(at, function)) return at;
    }
    return std::nullopt;
  }
  return healthy[static_cast<size_t>(MixHash(request, function) % healthy.size())];
}

template <typename Nodes>
std::optional<size_t> ClusterRouter::LeastLoaded(uint32_t function, const Nodes& nodes) const {
  std::optional<size_t> best;
  bool best_healthy = false;
  uint64_t best_tie = 0;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!nodes.present(n) || !nodes.serves(n, function)) continue;
    const NodeView& v = nodes.view(n);
    const uint64_t tie = MixHash(function, n);
    if (best) {
      if (best_healthy && !v.healthy) continue;
      const int64_t bo = nodes.view(*best).outstanding;
      const bool better = (v.healthy && !best_healthy) || v.outstanding < bo || (v.outstanding == bo && tie < best_tie);
      if (!better) continue;
    }
    best = n, best_healthy = v.healthy, best_tie = tie;
  }
  return best;
}

// ---------------------------------------------------------------- the index

void ClusterIndex::Unindex(size_t node) {
  if (!present(node)) return;
  if (views_[node].healthy) --healthy_;
  for (const NodeFunction& f : views_[node].functions) {
    if (f.hot == 0 && f.warm == 0) continue;
    auto it = holders_.find(f.function);
    if (it == holders_.end()) continue;
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), static_cast<uint32_t>(node)), list.end());
    if (list.empty()) holders_.erase(it);
  }
}

void ClusterIndex::Set(size_t node, NodeView view) {
  if (node >= views_.size()) {
    views_.resize(node + 1);
    present_.resize(node + 1, 0);
  }
  Unindex(node);
  for (const NodeFunction& f : view.functions) {
    if (f.hot == 0 && f.warm == 0) continue;
    auto& list = holders_[f.function];
    list.insert(std::upper_bound(list.begin(), list.end(), static_cast<uint32_t>(node)), static_cast<uint32_t>(node));
  }
  if (view.healthy) ++healthy_;
  views_[node] = std::move(view);
  present_[node] = 1;
}

void ClusterIndex::Clear(size_t node) {
  Unindex(node);
  if (node < views_.size()) {
    views_[node] = NodeView{};
    present_[node] = 0;
  }
}

void ClusterIndex::SetHealthy(size_t node, bool healthy) {
  if (!present(node) || views_[node].healthy == healthy) return;
  views_[node].healthy = healthy;
  if (healthy) {
    ++healthy_;
  } else {
    --healthy_;
  }
}

void ClusterIndex::SetOutstanding(size_t node, int64_t outstanding) {
  if (present(node)) views_[node].outstanding = outstanding;
}

void ClusterIndex::ChargeSent(size_t node, uint32_t function, double charge_ms) {
  if (present(node)) views_[node].ChargeSent(function, charge_ms);
}

std::span<const uint32_t> ClusterIndex::holders(uint32_t function) const {
  const auto it = holders_.find(function);
  return it == holders_.end() ? std::span<const uint32_t>() : std::span<const uint32_t>(it->second);
}

}  // namespace fluidfaas::policy
