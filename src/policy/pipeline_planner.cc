#include "policy/pipeline_planner.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fluidfaas::policy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr size_t kNone = std::numeric_limits<size_t>::max();
constexpr double kRelTol = 1e-9;

// a < b by more than the tolerance.
bool Below(double a, double b) {
  return a < b - kRelTol * std::max(std::abs(a), std::abs(b));
}

// Coefficient of variation of stage times, accumulated in stage order (the planner and EvaluatePlan share it,
// so equal plans get bit-identical figures).
class CvAccumulator {
 public:
  void Add(double x) {
    sum_ += x;
    sum_sq_ += x * x;
    ++n_;
  }
  double Cv() const {
    if (n_ < 2) return 0.0;
    const double k = static_cast<double>(n_);
    const double mean = sum_ / k;
    const double var = std::max(0.0, sum_sq_ / k - mean * mean);
    return mean > 0 ? std::sqrt(var) / mean : 0.0;
  }

 private:
  double sum_ = 0;
  double sum_sq_ = 0;
  size_t n_ = 0;
};

// Interchangeable free slices: same kind and free memory.
struct SliceClass {
  int kind = 0;
  int64_t free_mib = 0;
  std::vector<size_t> slices;                               // indices into the free slices
  std::vector<std::pair<int, std::vector<size_t>>> by_gpu;  // the same slices grouped by GPU, GPUs ascending
  std::vector<size_t> max_last;                             // per first block: the last block that fits, or kNone
};

class Search {
 public:
  Search(const StageCostTable& costs, const TransferModel& transfer, std::span<const FreeSlice> free,
         const std::vector<SliceClass>& classes, int max_stages, double slo_ms)
      : costs_(costs),
        transfer_(transfer),
        free_(free),
        classes_(classes),
        k_(max_stages),
        slo_(slo_ms),
        n_(costs.blocks()) {
    used_.assign(classes_.size(), 0);
    stages_.resize(static_cast<size_t>(k_));
    candidates_.resize(static_cast<size_t>(k_));
    BuildBound();
  }

  bool Run() {
    Visit(0, 0, 0.0, 0.0);
    return found_;
  }
  Plan TakeBest() { return std::move(best_); }

 private:
  struct StageChoice {
    size_t cls;
    size_t first;
    size_t last;
    double compute_ms;
  };
  struct Candidate {
    double bound;
    size_t cls;
    size_t last;
    double max_so_far;
    double latency;
    double compute_ms;
  };

  double Bound() const { return found_ ? best_.bottleneck_ms : kInf; }
  bool Exceeds(double value) const { return found_ && Below(best_.bottleneck_ms, value); }

  // bound_[s][i]: the lowest bottleneck that blocks [i, n) could reach with at most s stages, counting compute
  // only and letting every class be used any number of times: a lower bound for the real search. Stage time
  // grows with the stage's last block and bound_[s-1] shrinks with it, so the best cut is where they cross.
  // Rows 0..k-1 are all the search reads (the stages left after the one being chosen).
  void BuildBound() {
    bound_.assign(static_cast<size_t>(k_), std::vector<double>(n_ + 1, kInf));
    for (auto& row : bound_) row[n_] = 0;
    for (size_t s = 1; s < static_cast<size_t>(k_); ++s) {
      const std::vector<double>& rest = bound_[s - 1];
      for (size_t i = 0; i < n_; ++i) {
        double best = kInf;
        for (const SliceClass& c : classes_) {
          const size_t hi = c.max_last[i];
          if (hi == kNone) continue;
          const auto value = [&](size_t j) { return std::max(costs_.ComputeMs(c.kind, i, j), rest[j + 1]); };
          size_t lo = i;
          size_t up = hi;
          while (lo < up) {  // first j where compute >= rest
            const size_t mid = (lo + up) / 2;
            if (costs_.ComputeMs(c.kind, i, mid) >= rest[mid + 1]) {
              up = mid;
            } else {
              lo = mid + 1;
            }
          }
          best = std::min(best, value(lo));
          if (lo > i) best = std::min(best, value(lo - 1));
        }
        bound_[s][i] = best;
      }
    }
  }

  void Visit(size_t first, int depth, double max_so_far, double latency) {
    if (first == n_) {
      Leaf(depth, max_so_far);
      return;
    }
    if (depth == k_) return;
    const std::vector<double>& rest = bound_[static_cast<size_t>(k_ - depth - 1)];
    std::vector<Candidate>& list = candidates_[static_cast<size_t>(depth)];
    list.clear();
    for (size_t ci = 0; ci < classes_.size(); ++ci) {
      const SliceClass& c = classes_[ci];
      if (used_[ci] == c.slices.size()) continue;
      const size_t hi = c.max_last[first];
      if (hi == kNone) continue;
      for (size_t j = first; j <= hi; ++j) {
        const double compute = costs_.ComputeMs(c.kind, first, j);
        if (Exceeds(compute)) break;  // compute only grows with j
        const double after = j + 1 == n_ ? 0.0 : rest[j + 1];
        if (after == kInf) continue;
        const double hop = j + 1 == n_ ? 0.0 : transfer_.HopMs(costs_.OutBytes(j));
        const double stage_max = std::max({max_so_far, compute, hop});
        const double bound = std::max(stage_max, after);
        if (Exceeds(bound)) continue;
        const double lat = latency + compute + hop;
        const double lat_floor = lat + (j + 1 == n_ ? 0.0 : costs_.MinSuffixMs(j + 1));
        if (lat_floor > slo_) continue;
        list.push_back(Candidate{bound, ci, j, stage_max, lat, compute});
      }
    }
    // Most promising first, so that a good incumbent prunes the rest early.
    std::sort(list.begin(), list.end(), [](const Candidate& a, const Candidate& b) {
      return a.bound != b.bound ? a.bound < b.bound : a.last > b.last;
    });
    for (size_t idx = 0; idx < list.size(); ++idx) {
      const Candidate cand = candidates_[static_cast<size_t>(depth)][idx];  // copy: deeper levels reuse buffers
      if (Exceeds(cand.bound)) break;                                       // sorted by bound
      stages_[static_cast<size_t>(depth)] = StageChoice{cand.cls, first, cand.last, cand.compute_ms};
      ++used_[cand.cls];
      Visit(cand.last + 1, depth + 1, cand.max_so_far, cand.latency);
      --used_[cand.cls];
    }
  }

  // Chooses concrete slices for the stages' classes on as few GPUs as possible (GPUs in ascending order on
  // ties), writing them into `assigned_`.
  void AssignSlices(int depth) {
    best_gpus_ = kNone;
    gpus_used_.clear();
    taken_.assign(free_.size(), false);
    current_.assign(static_cast<size_t>(depth), 0);
    // No assignment uses fewer GPUs than a class's stages need when each GPU holds few of its slices.
    gpu_floor_ = 1;
    for (size_t ci = 0; ci < classes_.size(); ++ci) {
      size_t uses = 0;
      for (int s = 0; s < depth; ++s) uses += stages_[static_cast<size_t>(s)].cls == ci;
      size_t per_gpu = 1;
      for (const auto& entry : classes_[ci].by_gpu) per_gpu = std::max(per_gpu, entry.second.size());
      gpu_floor_ = std::max(gpu_floor_, (uses + per_gpu - 1) / per_gpu);
    }
    AssignFrom(0, depth);
  }

  void AssignFrom(int s, int depth) {
    if (gpus_used_.size() >= best_gpus_ || best_gpus_ <= gpu_floor_) return;
    if (s == depth) {
      best_gpus_ = gpus_used_.size();
      assigned_ = current_;
      return;
    }
    const SliceClass& c = classes_[stages_[static_cast<size_t>(s)].cls];
    // GPUs already in use first: they cost nothing more.
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& [gpu, slices] : c.by_gpu) {
        const bool in_use = std::find(gpus_used_.begin(), gpus_used_.end(), gpu) != gpus_used_.end();
        if (in_use != (pass == 0)) continue;
        for (size_t slice : slices) {
          if (taken_[slice]) continue;
          taken_[slice] = true;
          current_[static_cast<size_t>(s)] = slice;
          if (!in_use) gpus_used_.push_back(gpu);
          AssignFrom(s + 1, depth);
          if (!in_use) gpus_used_.pop_back();
          taken_[slice] = false;
          break;  // slices of one class on one GPU are interchangeable
        }
      }
    }
  }

  void Leaf(int depth, double bottleneck) {
    // Settle on the cheap figures first (bottleneck, CV, stages); GPUs and stranded memory only on a tie.
    if (found_) {
      if (Below(best_.bottleneck_ms, bottleneck)) return;
      if (!Below(bottleneck, best_.bottleneck_ms)) {
        CvAccumulator cv;
        for (int s = 0; s < depth; ++s) cv.Add(stages_[static_cast<size_t>(s)].compute_ms);
        if (cv.Cv() > best_.cv + 1e-9) return;
        if (cv.Cv() >= best_.cv - 1e-9 && static_cast<size_t>(depth) > best_.stages.size()) return;
      }
    }
    AssignSlices(depth);
    std::vector<PlanStage> stages(static_cast<size_t>(depth));
    for (size_t s = 0; s < stages.size(); ++s) {
      stages[s].slice = assigned_[s];
      stages[s].first_block = stages_[s].first;
      stages[s].last_block = stages_[s].last;
    }
    Plan plan = EvaluatePlan(costs_, transfer_, free_, std::move(stages));
    if (!found_ || PlanBetter(plan, best_)) {
      best_ = std::move(plan);
      found_ = true;
    }
  }

  const StageCostTable& costs_;
  const TransferModel& transfer_;
  std::span<const FreeSlice> free_;
  const std::vector<SliceClass>& classes_;
  const int k_;
  const double slo_;
  const size_t n_;

  std::vector<std::vector<double>> bound_;
  std::vector<size_t> used_;
  std::vector<StageChoice> stages_;
  std::vector<std::vector<Candidate>> candidates_;
  bool found_ = false;
  Plan best_;

  size_t best_gpus_ = kNone;
  size_t gpu_floor_ = 1;
  std::vector<int> gpus_used_;
  std::vector<bool> taken_;
  std::vector<size_t> current_;
  std::vector<size_t> assigned_;
};

}  // namespace

bool PlanBetter(const Plan& a, const Plan& b) {
  const bool a_single = a.stages.size() == 1;
  const bool b_single = b.stages.size() == 1;
  if (a_single != b_single) return a_single;
  if (Below(a.bottleneck_ms, b.bottleneck_ms)) return true;
  if (Below(b.bottleneck_ms, a.bottleneck_ms)) return false;
  // CV is a ratio near 0 for balanced plans: compare it with an absolute tolerance as well.
  if (a.cv < b.cv - 1e-9) return true;
  if (b.cv < a.cv - 1e-9) return false;
  if (a.stages.size() != b.stages.size()) return a.stages.size() < b.stages.size();
  if (a.gpus != b.gpus) return a.gpus < b.gpus;
  return a.stranded_mib < b.stranded_mib;
}

Plan EvaluatePlan(const StageCostTable& costs, const TransferModel& transfer, std::span<const FreeSlice> free,
                  std::vector<PlanStage> stages) {
  Plan p;
  CvAccumulator cv;
  std::vector<int> gpus;
  for (size_t s = 0; s < stages.size(); ++s) {
    PlanStage& st = stages[s];
    const FreeSlice& slice = free[st.slice];
    const int kind = costs.KindIndex(slice.kind);
    st.slice_id = slice.id;
    st.gpu = slice.gpu;
    st.compute_ms = costs.ComputeMs(kind, st.first_block, st.last_block);
    st.transfer_ms = s + 1 < stages.size() ? transfer.HopMs(costs.OutBytes(st.last_block)) : 0.0;
    st.memory_mib = costs.MemoryMib(kind, st.first_block, st.last_block);
    p.bottleneck_ms = std::max({p.bottleneck_ms, st.compute_ms, st.transfer_ms});
    p.latency_ms += st.compute_ms;
    p.latency_ms += st.transfer_ms;
    p.stranded_mib += slice.free_mib - st.memory_mib;
    cv.Add(st.compute_ms);
    if (std::find(gpus.begin(), gpus.end(), slice.gpu) == gpus.end()) gpus.push_back(slice.gpu);
  }
  p.cv = cv.Cv();
  p.gpus = static_cast<int>(gpus.size());
  p.stages = std::move(stages);
  return p;
}

struct PipelinePlanner::Classes {
  std::vector<SliceClass> classes;
};

Result<PipelinePlanner::Classes> PipelinePlanner::Classify(const StageCostTable& costs,
                                                           std::span<const FreeSlice> free) const {
  if (options_.max_stages < 1 || options_.max_stages > 8) {
    return Status::InvalidArgument("max_stages must be in 1..8, not " + std::to_string(options_.max_stages));
  }
  if (free.empty()) return Status::FailedPrecondition("no free slices");
  const size_t n = costs.blocks();

  // Group interchangeable slices, and find for each class and first block the last block that fits.
  Classes out;
  std::vector<SliceClass>& classes = out.classes;
  for (size_t i = 0; i < free.size(); ++i) {
    const int kind = costs.KindIndex(free[i].kind);
    if (kind < 0) {
      return Status::InvalidArgument("free slice " + free[i].id + " is of a kind the cost table was not built for");
    }
    auto it = std::find_if(classes.begin(), classes.end(),
                           [&](const SliceClass& c) { return c.kind == kind && c.free_mib == free[i].free_mib; });
    if (it == classes.end()) {
      it = classes.insert(classes.end(), SliceClass{});
      it->kind = kind;
      it->free_mib = free[i].free_mib;
    }
    it->slices.push_back(i);
    auto g = std::find_if(it->by_gpu.begin(), it->by_gpu.end(), [&](const auto& e) { return e.first == free[i].gpu; });
    if (g == it->by_gpu.end()) g = it->by_gpu.insert(it->by_gpu.end(), {free[i].gpu, {}});
    g->second.push_back(i);
  }
  for (SliceClass& c : classes) {
    std::sort(c.by_gpu.begin(), c.by_gpu.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    // A range that fits has sub-ranges that fit, so the last block that fits never moves back as the first
    // block moves on: two pointers.
    c.max_last.assign(n, kNone);
    size_t last = 0;
    for (size_t first = 0; first < n; ++first) {
      if (last < first) last = first;
      if (costs.MemoryMib(c.kind, first, last) > c.free_mib) continue;  // this block alone does not fit
      while (last + 1 < n && costs.MemoryMib(c.kind, first, last + 1) <= c.free_mib) ++last;
      c.max_last[first] = last;
    }
  }
  return out;
}

std::optional<Plan> PipelinePlanner::FindIn(const StageCostTable& costs, double slo_ms, std::span<const FreeSlice> free,
                                            const Classes& c) const {
  // A slice that serves the function alone is never split; only when none does is a pipeline built.
  Search single(costs, options_.transfer, free, c.classes, 1, slo_ms);
  if (single.Run()) return single.TakeBest();
  if (options_.max_stages > 1) {
    Search search(costs, options_.transfer, free, c.classes, options_.max_stages, slo_ms);
    if (search.Run()) return search.TakeBest();
  }
  return std::nullopt;
}

std::optional<Plan> PipelinePlanner::Find(const StageCostTable& costs, double slo_ms,
                                          std::span<const FreeSlice> free) const {
  Result<Classes> c = Classify(costs, free);
  if (!c.ok()) return std::nullopt;
  return FindIn(costs, slo_ms, free, *c);
}

Result<Plan> PipelinePlanner::Best(const StageCostTable& costs, double slo_ms, std::span<const FreeSlice> free) const {
  FF_ASSIGN_OR_RETURN(Classes c, Classify(costs, free));
  if (std::optional<Plan> plan = FindIn(costs, slo_ms, free, c)) return std::move(*plan);

  // Why none: memory alone, or the SLO?
  Search unbounded(costs, options_.transfer, free, c.classes, options_.max_stages, kInf);
  if (!unbounded.Run()) {
    return Status::ResourceExhausted("does not fit the free memory in up to " + std::to_string(options_.max_stages) +
                                     " stages on the " + std::to_string(free.size()) + " free slice(s)");
  }
  const Plan fastest = unbounded.TakeBest();
  return Status::DeadlineExceeded("SLO unreachable: the best plan that fits takes " +
                                  std::to_string(fastest.latency_ms) + " ms end to end, the SLO is " +
                                  std::to_string(slo_ms) + " ms");
}

}  // namespace fluidfaas::policy
