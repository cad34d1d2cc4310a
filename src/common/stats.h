// Small statistics over samples, for benchmarks and load reports.
//
// Thread safety: pure functions; a DurationHistogram is used by one thread.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/time.h"

namespace fluidfaas {

// The p-quantile (0 <= p <= 1) of `values` by the nearest rank (index round(p x (n - 1)) of the sorted values);
// 0 for no values. Takes the vector by value: it sorts its own copy.
inline double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  return values[static_cast<size_t>(std::lround(rank))];
}

// Durations counted in log-linear buckets, for quantiles over any number of samples in constant memory: exact below
// 1,024 ns, then 1,024 buckets per power of two, so a quantile is within 0.05% of a sample's value (a bucket's
// midpoint stands for its samples). At most ~55k buckets (440 KB), allocated as far as the largest sample needs.
class DurationHistogram {
 public:
  void Add(Duration d) {
    const size_t b = Bucket(static_cast<uint64_t>(std::max<int64_t>(0, d.count())));
    if (b >= counts_.size()) counts_.resize(b + 1, 0);
    ++counts_[b];
    ++total_;
  }
  void Merge(const DurationHistogram& other) {
    if (other.counts_.size() > counts_.size()) counts_.resize(other.counts_.size(), 0);
    for (size_t b = 0; b < other.counts_.size(); ++b) counts_[b] += other.counts_[b];
    total_ += other.total_;
  }
  int64_t count() const { return total_; }
  // The sample of rank min(n - 1, floor(q n)) in sorted order, as its bucket's midpoint (the rank the simulator's
  // tables have always used: q = 0.5 is the n/2-th). Zero without samples.
  Duration Quantile(double q) const {
    if (total_ == 0) return Duration{0};
    const auto rank = std::min(total_ - 1, static_cast<int64_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(total_)));
    int64_t seen = 0;
    for (size_t b = 0; b < counts_.size(); ++b) {
      seen += counts_[b];
      if (seen > rank) return Duration(static_cast<int64_t>(Midpoint(b)));
    }
    return Duration{0};  // not reached
  }

 private:
  static constexpr int kSubBits = 10;  // 1,024 buckets per power of two
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static size_t Bucket(uint64_t v) {
    if (v < kSub) return v;
    const int e = std::bit_width(v) - 1;  // >= kSubBits
    const uint64_t sub = (v >> (e - kSubBits)) & (kSub - 1);
    return static_cast<size_t>(kSub + static_cast<uint64_t>(e - kSubBits) * kSub + sub);
  }
  static uint64_t Midpoint(size_t b) {
    if (b < kSub) return b;
    const uint64_t e = (b - kSub) / kSub + kSubBits;
    const uint64_t sub = (b - kSub) % kSub;
    const uint64_t width = uint64_t{1} << (e - kSubBits);
    return ((kSub + sub) << (e - kSubBits)) + width / 2;
  }

  std::vector<int64_t> counts_;
  int64_t total_ = 0;
};

}  // namespace fluidfaas
