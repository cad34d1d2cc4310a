#include "common/wake_round.h"

#include <algorithm>

namespace fluidfaas {
namespace {
thread_local WakeRound* tl_round = nullptr;
}  // namespace

WakeRound::WakeRound() : outer_(tl_round) {
  if (outer_ == nullptr) tl_round = this;
}

WakeRound::~WakeRound() {
  if (outer_ != nullptr) return;
  tl_round = nullptr;  // a wake-up that defers another runs it at once
  for (auto& [context, wake] : held_) wake(context);
}

size_t WakeRound::held() {
  return tl_round != nullptr ? tl_round->held_.size() : 0;
}

void DeferWake(void* context, WakeFn wake) {
  WakeRound* round = tl_round;
  if (round == nullptr) return wake(context);
  const bool known = std::any_of(round->held_.begin(), round->held_.end(),
                                 [&](const auto& h) { return h.first == context && h.second == wake; });
  if (!known) round->held_.emplace_back(context, wake);
}

}  // namespace fluidfaas
