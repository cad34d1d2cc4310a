#include "policy/cluster_router.h"

#include <algorithm>
#include <limits>
#include <numeric>

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
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

const NodeFunction* NodeView::Find(uint32_t function) const {
  const auto it = std::lower_bound(functions.begin(), functions.end(), function,
                                   [](const NodeFunction& f, uint32_t id) { return f.function < id; });
  return it != functions.end() && it->function == function ? &*it : nullptr;
}

ClusterRouter::ClusterRouter(Routing routing, std::vector<SliceKind> kinds, std::vector<RoutedFunction> functions)
    : routing_(routing), kinds_(std::move(kinds)), functions_(std::move(functions)) {
  for (const RoutedFunction& f : functions_) {
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
  }
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

std::optional<size_t> ClusterRouter::Route(uint32_t function, double room_ms, uint64_t request,
                                           std::span<const NodeView> nodes) const {
  if (nodes.empty()) return std::nullopt;
  switch (routing_) {
    case Routing::kWarmFirst: return WarmFirst(function, room_ms, nodes);
    case Routing::kHashHome: return HashHome(function, room_ms, request, nodes);
    case Routing::kLeastLoaded: return LeastLoaded(function, nodes);
  }
  return std::nullopt;
}

std::optional<size_t> ClusterRouter::WarmFirst(uint32_t function, double room_ms,
                                               std::span<const NodeView> nodes) const {
  // Each candidate class keeps its best node by a key (lower is better), ties broken by the (function, node) hash.
  struct Best {
    std::optional<size_t> node;
    double key = 0;
    uint64_t tie = 0;
    void Offer(size_t n, double k, uint64_t t) {
      if (!node || k < key || (k == key && t < tie)) node = n, key = k, tie = t;
    }
  };
  Best hot, warm, alone, pipeline, late, idle;
  const bool any_healthy = std::any_of(nodes.begin(), nodes.end(), [](const NodeView& n) { return n.healthy; });
  for (size_t n = 0; n < nodes.size(); ++n) {
    const NodeView& node = nodes[n];
    if (any_healthy && !node.healthy) continue;
    const uint64_t tie = MixHash(function, n);
    const NodeFunction* f = node.Find(function);
    if (f != nullptr && f->hot > 0) {
      if (f->finish_ms <= room_ms) {
        hot.Offer(n, f->finish_ms, tie);
        continue;
      }
      late.Offer(n, f->finish_ms, tie);
    }
    const Fit fit = FitOn(function, node);
    if (fit.alone && f != nullptr && f->warm > 0) warm.Offer(n, static_cast<double>(fit.slack_mib), tie);
    if (fit.alone) alone.Offer(n, static_cast<double>(fit.slack_mib), tie);
    if (fit.pipeline) pipeline.Offer(n, -static_cast<double>(fit.slack_mib), tie);
    idle.Offer(n, static_cast<double>(node.outstanding), tie);
  }
  for (const Best* b : {&hot, &warm, &alone, &pipeline, &late, &idle}) {
    if (b->node) return b->node;
  }
  return std::nullopt;
}

std::optional<size_t> ClusterRouter::HashHome(uint32_t function, double room_ms, uint64_t request,
                                              std::span<const NodeView> nodes) const {
  const size_t n = nodes.size();
  const uint64_t h = MixHash(function, 0);
  const size_t home = static_cast<size_t>(h % n);
  // The step: co-prime to n, chosen by the hash among those below n (OpenWhisk's pairwiseCoprimeNumbersUntil).
  std::vector<size_t> coprimes;
  for (size_t s = 1; s <= std::max<size_t>(1, n); ++s) {
    if (std::gcd(s, n) == 1) coprimes.push_back(s);
  }
  const size_t step = coprimes[static_cast<size_t>((h >> 32) % coprimes.size())];
  for (size_t i = 0; i < n; ++i) {
    const size_t at = (home + i * step) % n;
    const NodeView& node = nodes[at];
    if (!node.healthy) continue;
    if (HasRoom(function, room_ms, node) || FitOn(function, node).alone) return at;
  }
  std::vector<size_t> healthy;
  for (size_t i = 0; i < n; ++i) {
    if (nodes[i].healthy) healthy.push_back(i);
  }
  if (healthy.empty()) return home;
  return healthy[static_cast<size_t>(MixHash(request, function) % healthy.size())];
}

std::optional<size_t> ClusterRouter::LeastLoaded(uint32_t function, std::span<const NodeView> nodes) const {
  std::optional<size_t> best;
  bool best_healthy = false;
  uint64_t best_tie = 0;
  for (size_t n = 0; n < nodes.size(); ++n) {
    const uint64_t tie = MixHash(function, n);
    const bool healthy = nodes[n].healthy;
    if (best) {
      if (best_healthy && !healthy) continue;
      const bool better = (healthy && !best_healthy) || nodes[n].outstanding < nodes[*best].outstanding ||
                          (nodes[n].outstanding == nodes[*best].outstanding && tie < best_tie);
      if (!better) continue;
    }
    best = n, best_healthy = healthy, best_tie = tie;
  }
  return best;
}

}  // namespace fluidfaas::policy
