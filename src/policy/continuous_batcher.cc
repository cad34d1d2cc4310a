#include "policy/continuous_batcher.h"

#include <algorithm>
#include <cassert>

namespace fluidfaas::policy {

ContinuousBatcher::ContinuousBatcher(BatcherOptions options) : options_(options) {
  assert(options_.kv_blocks >= 1 && options_.block_tokens >= 1 && options_.max_batch >= 1 &&
         options_.prefill_chunk >= 0);
}

bool ContinuousBatcher::Enqueue(const GenSequence& s) {
  if (s.prompt <= 0 || s.output <= 0) return false;
  if (BlocksFor(int64_t{s.prompt} + s.output) > options_.kv_blocks) return false;
  waiting_.push_back(Live{.s = s});
  return true;
}

GenStep ContinuousBatcher::Next() {
  GenStep step;
  const bool chunked = options_.prefill_chunk > 0;
  // 1. Admit from the queue, first come first served, while the batch and the pool have room. Without chunks the
  // step prefills the admitted whole; with chunks they start their prefills beside the decodes below.
  const size_t admitted_from = running_.size();
  while (!waiting_.empty() && running_.size() < static_cast<size_t>(options_.max_batch)) {
    Live& next = waiting_.front();
    const int64_t need = AdmissionBlocks(next);
    if (need > free_blocks()) break;
    next.blocks = need;
    next.prefilled = chunked ? 0 : -1;
    used_blocks_ += need;
    running_.push_back(next);
    waiting_.pop_front();
  }
  if (!chunked && running_.size() > admitted_from) {
    for (size_t i = admitted_from; i < running_.size(); ++i) {
      step.sequences.push_back(running_[i].s.id);
      step.tokens.push_back(running_[i].Tokens());
    }
    step.kind = GenStep::Kind::kPrefill;
    return step;
  }
  if (running_.empty()) return step;
  // 2. Every prefilled sequence writes one more token's keys and values; the youngest make way when the pool is
  // short. A prefilling one already holds the blocks of its whole prefill and first token.
  auto extra = [this] {
    int64_t n = 0;
    for (const Live& l : running_) {
      if (l.prefilled < 0) n += BlocksFor(l.Tokens()) - l.blocks;
    }
    return n;
  };
  while (extra() > free_blocks() && running_.size() > 1) Preempt(running_.size() - 1, step);
  int budget = options_.prefill_chunk;
  for (Live& l : running_) {
    if (l.prefilled >= 0) continue;
    const int64_t need = BlocksFor(l.Tokens());
    used_blocks_ += need - l.blocks;
    l.blocks = need;
    step.sequences.push_back(l.s.id);
    step.tokens.push_back(l.Tokens());
    --budget;
  }
  // 3. Chunked: the rest of the token budget goes to prefills, oldest first (one token at least, so prefills never
  // stop).
  for (const Live& l : running_) {
    if (!chunked || l.prefilled < 0) continue;
    const int chunk = std::min(l.Tokens() - l.prefilled, std::max(budget, step.chunks.empty() ? 1 : 0));
    if (chunk <= 0) break;
    step.chunks.push_back(
        {.sequence = l.s.id, .tokens = chunk, .context = l.prefilled, .last = l.prefilled + chunk == l.Tokens()});
    budget -= chunk;
  }
  step.kind = step.chunks.empty() ? GenStep::Kind::kDecode : GenStep::Kind::kMixed;
  return step;
}

void ContinuousBatcher::Preempt(size_t running_index, GenStep& step) {
  Live l = running_[running_index];
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(running_index));
  used_blocks_ -= l.blocks;
  l.blocks = 0;
  l.prefilled = -1;
  step.preempted.push_back(l.s.id);
  ++preemptions_;
  waiting_.push_front(l);  // first in line again: its cache is recomputed by a prefill when it is readmitted
}

std::vector<uint64_t> ContinuousBatcher::Complete(const GenStep& step) {
  std::vector<uint64_t> finished;
  const auto made_token = [&](uint64_t id) {
    auto it = std::find_if(running_.begin(), running_.end(), [id](const Live& l) { return l.s.id == id; });
    if (it == running_.end()) return;  // cancelled meanwhile
    if (++it->generated < it->s.output) return;
    used_blocks_ -= it->blocks;
    finished.push_back(id);
    running_.erase(it);
  };
  for (const GenStep::Chunk& c : step.chunks) {
    auto it = std::find_if(running_.begin(), running_.end(), [&](const Live& l) { return l.s.id == c.sequence; });
    if (it == running_.end()) continue;
    it->prefilled += c.tokens;
    if (!c.last) continue;
    it->prefilled = -1;  // prefilled: its next token is made now, and it decodes from the next step
    made_token(c.sequence);
  }
  for (uint64_t id : step.sequences) made_token(id);
  return finished;
}

bool ContinuousBatcher::AdmitsAllWaiting() const {
  if (running_.size() + waiting_.size() > static_cast<size_t>(options_.max_batch)) return false;
  int64_t need = 0;
  for (const Live& l : waiting_) need += AdmissionBlocks(l);
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
