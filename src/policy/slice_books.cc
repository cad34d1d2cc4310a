#include "policy/slice_books.h"

#include <algorithm>
#include <string>

namespace fluidfaas::policy {
namespace {

int64_t Take(std::vector<std::pair<InstanceId, int64_t>>& list, InstanceId id) {
  auto it = std::find_if(list.begin(), list.end(), [id](const auto& e) { return e.first == id; });
  if (it == list.end()) return -1;
  const int64_t mib = it->second;
  list.erase(it);
  return mib;
}

}  // namespace

SliceBooks::SliceBooks(std::vector<ClusterSlice> slices) {
  for (ClusterSlice& s : slices) slices_.push_back(Slice{std::move(s)});
}

bool SliceBooks::Free(size_t s) const {
  const Slice& sl = slices_[s];
  return sl.info.available && sl.residents.empty() && sl.releasing.empty();
}

int64_t SliceBooks::FreeMib(size_t s, int64_t reserve_mib) const {
  const Slice& sl = slices_[s];
  return capacity_mib(s) - std::max(sl.reserve_mib, reserve_mib) - sl.used_mib - sl.releasing_mib;
}

void SliceBooks::Book(size_t s, InstanceId id, int64_t own_mib, int64_t reserve_mib) {
  ++version_;
  Slice& sl = slices_[s];
  sl.residents.push_back(id);
  sl.own.emplace_back(id, own_mib);
  sl.used_mib += own_mib;
  sl.reserve_mib = std::max(sl.reserve_mib, reserve_mib);
}

void SliceBooks::Unbook(size_t s, InstanceId id) {
  ++version_;
  Slice& sl = slices_[s];
  sl.residents.erase(std::remove(sl.residents.begin(), sl.residents.end(), id), sl.residents.end());
  const int64_t mib = Take(sl.own, id);
  if (mib < 0) return;
  sl.used_mib -= mib;
  sl.releasing.emplace_back(id, mib);
  sl.releasing_mib += mib;
  DropBatches(s, id);
}

bool SliceBooks::TakeOver(size_t s, InstanceId id) {
  ++version_;
  Slice& sl = slices_[s];
  const int64_t mib = Take(sl.releasing, id);
  if (mib < 0) return false;
  sl.releasing_mib -= mib;
  return true;
}

int64_t SliceBooks::ReleasingMib(size_t s, InstanceId id) const {
  for (const auto& [r, mib] : slices_[s].releasing) {
    if (r == id) return mib;
  }
  return 0;
}

void SliceBooks::Acknowledge(size_t s, InstanceId id) {
  ++version_;
  if (s >= slices_.size()) return;
  Slice& sl = slices_[s];
  const int64_t mib = Take(sl.releasing, id);
  if (mib >= 0) sl.releasing_mib -= mib;
  if (sl.residents.empty() && sl.releasing.empty()) sl.reserve_mib = 0;
}

std::vector<InstanceId> SliceBooks::Lose(size_t s) {
  ++version_;
  Slice& sl = slices_[s];
  std::vector<InstanceId> gone = std::move(sl.residents);
  sl.residents.clear();
  sl.own.clear();
  sl.releasing.clear();
  sl.used_mib = sl.releasing_mib = sl.reserve_mib = 0;
  sl.queue.clear();
  sl.shift = Duration{0};
  return gone;
}

TimePoint SliceBooks::BusyUntil(size_t s) const {
  const Slice& sl = slices_[s];
  return sl.queue.empty() ? sl.idle_at : std::max(sl.idle_at, sl.queue.back().end + sl.shift);
}

std::optional<BookedBatch> SliceBooks::LastBatch(size_t s) const {
  const Slice& sl = slices_[s];
  if (sl.queue.empty()) return std::nullopt;
  BookedBatch b = sl.queue.back();
  b.start += sl.shift;
  b.end += sl.shift;
  b.deadline += sl.shift;
  return b;
}

size_t SliceBooks::Booked(size_t s, InstanceId id, size_t stage) const {
  const Slice& sl = slices_[s];
  return static_cast<size_t>(std::count_if(sl.queue.begin(), sl.queue.end(),
                                           [&](const BookedBatch& b) { return b.instance == id && b.stage == stage; }));
}

void SliceBooks::BookBatch(size_t s, InstanceId id, size_t stage, TimePoint start, TimePoint end, TimePoint deadline,
                           bool join) {
  Slice& sl = slices_[s];
  if (join && !sl.queue.empty()) {
    BookedBatch& b = sl.queue.back();
    ++b.count;
    b.end = end - sl.shift;
    b.deadline = std::min(b.deadline, deadline - sl.shift);
    return;
  }
  sl.queue.push_back(BookedBatch{id, stage, start - sl.shift, end - sl.shift, 1, deadline - sl.shift});
}

void SliceBooks::Consume(size_t s, InstanceId id, size_t stage, int n, std::optional<TimePoint> finished) {
  Slice& sl = slices_[s];
  for (auto it = sl.queue.begin(); n > 0 && it != sl.queue.end();) {
    if (it->instance != id || it->stage != stage) {
      ++it;
      continue;
    }
    const int used = std::min(n, it->count);
    n -= used;
    it->count -= used;
    if (it->count > 0) break;  // the mechanism ran a smaller batch than booked: the rest runs later
    // With a measurement, a finished batch at the front moves everything booked after it by its error.
    const bool front = it == sl.queue.begin();
    const Duration error = finished ? *finished - (it->end + sl.shift) : Duration{0};
    it = sl.queue.erase(it);
    if (front) sl.shift += error;
  }
  if (sl.queue.empty()) sl.shift = Duration{0};
  if (finished) sl.idle_at = std::max(sl.idle_at, *finished);
}

void SliceBooks::BatchDone(size_t s, InstanceId id, size_t stage, int n, TimePoint finished) {
  Consume(s, id, stage, n, finished);
}

void SliceBooks::Cancel(size_t s, InstanceId id, size_t stage, int n) {
  Consume(s, id, stage, n, std::nullopt);
}

void SliceBooks::DropBatches(size_t s, InstanceId id) {
  Slice& sl = slices_[s];
  std::erase_if(sl.queue, [id](const BookedBatch& b) { return b.instance == id; });
  if (sl.queue.empty()) sl.shift = Duration{0};
}

Status SliceBooks::Check() const {
  for (const Slice& sl : slices_) {
    int64_t own = 0;
    for (const auto& [id, mib] : sl.own) own += mib;
    int64_t rel = 0;
    for (const auto& [id, mib] : sl.releasing) rel += mib;
    std::vector<InstanceId> sorted = sl.residents;
    std::sort(sorted.begin(), sorted.end());
    const bool unique = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
    if (own != sl.used_mib || rel != sl.releasing_mib || !unique || sl.own.size() != sl.residents.size()) {
      return Status::Internal("slice " + sl.info.id + ": books disagree (" + std::to_string(own) + " vs " +
                              std::to_string(sl.used_mib) + " MiB in use, " + std::to_string(rel) + " vs " +
                              std::to_string(sl.releasing_mib) + " releasing)");
    }
    if (sl.used_mib + sl.releasing_mib + sl.reserve_mib > sl.info.kind.profile->memory_mib) {
      return Status::Internal("slice " + sl.info.id + " overbooked: " +
                              std::to_string(sl.used_mib + sl.releasing_mib + sl.reserve_mib) + " MiB");
    }
  }
  return Status::Ok();
}

}  // namespace fluidfaas::policy
