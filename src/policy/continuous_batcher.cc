#include "policy/continuous_batcher.h"

#include <algorithm>
#include <cassert>

namespace fluidfaas::policy {

ContinuousBatcher::ContinuousBatcher(BatcherOptions options) : options_(options) {
  assert(options_.kv_blocks >= 1 && options_.block_tokens >= 1 && options_.max_batch >= 1);
}

bool ContinuousBatcher::Enqueue(const GenSequence& s) {
  if (s.prompt <= 0 || s.output <= 0) return false;
  if (BlocksFor(int64_t{s.prompt} + s.output) > options_.kv_blocks) return false;
  waiting_.push_back(Live{.s = s});
  return true;
}

GenStep ContinuousBatcher::Next() {
  GenStep step;
  // 1. Admit from the queue, first come first served, while the batch and the pool have room.
  while (!waiting_.empty() && running_.size() < static_cast<size_t>(options_.max_batch)) {
    Live& next = waiting_.front();
    const int64_t need = BlocksFor(int64_t{next.Tokens()} + 1);
    if (need > free_blocks()) break;
    next.blocks = need;
    used_blocks_ += need;
    step.sequences.push_back(next.s.id);
    step.tokens.push_back(next.Tokens());
    running_.push_back(next);
    waiting_.pop_front();
  }
  if (!step.sequences.empty()) {
    step.kind = GenStep::Kind::kPrefill;
    return step;
  }
  if (running_.empty()) return step;
  // 2. Decode: each running sequence writes one more token's keys and values; the youngest make way.
  auto extra = [this] {
    int64_t n = 0;
    for (const Live& l : running_) n += BlocksFor(l.Tokens()) - l.blocks;
    return n;
  };
  while (extra() > free_blocks() && running_.size() > 1) Preempt(running_.size() - 1, step);
  for (Live& l : running_) {
    const int64_t need = BlocksFor(l.Tokens());
    used_blocks_ += need - l.blocks;
    l.blocks = need;
    step.sequences.push_back(l.s.id);
    step.tokens.push_back(l.Tokens());
  }
  step.kind = GenStep::Kind::kDecode;
  return step;
}

void ContinuousBatcher::Preempt(size_t running_index, GenStep& step) {
  Live l = running_[running_index];
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(running_index));
  used_blocks_ -= l.blocks;
  l.blocks = 0;
  step.preempted.push_back(l.s.id);
  ++preemptions_;
  waiting_.push_front(l);  // first in line again: its cache is recomputed by a prefill when it is readmitted
}

std::vector<uint64_t> ContinuousBatcher::Complete(const GenStep& step) {
  std::vector<uint64_t> finished;
  for (uint64_t id : step.sequences) {
    auto it = std::find_if(running_.begin(), running_.end(), [id](const Live& l) { return l.s.id == id; });
    if (it == running_.end()) continue;  // cancelled meanwhile
    if (++it->generated < it->s.output) continue;
    used_blocks_ -= it->blocks;
    finished.push_back(id);
    running_.erase(it);
  }
  return finished;
}

bool ContinuousBatcher::AdmitsAllWaiting() const {
  if (running_.size() + waiting_.size() > static_cast<size_t>(options_.max_batch)) return false;
  int64_t need = 0;
  for (const Live& l : waiting_) need += BlocksFor(int64_t{l.Tokens()} + 1);
  return need <= free_blocks();
}

bool ContinuousBatcher::Cancel(uint64_t id) {
  auto match = [id](const Live& l) { return l.s.id == id; };
  if (auto it = std::find_if(waiting_.begin(), waiting_.end(), match); it != waiting_.end()) {
    waiting_.erase(it);
    return true;
  }
  if (auto it = std::find_if(running_.begin(), running_.end(), match); it != running_.end()) {
    used_blocks_ -= it->blocks;
    running_.erase(it);
    return true;
  }
  return false;
}

}  // namespace fluidfaas::policy
