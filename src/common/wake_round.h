// Wake-ups of other threads, held until the end of an event loop's round on this thread.
//
// A loop that hands requests to another thread one at a time wakes that thread once per request, and on a busy
// machine every wake-up is a context switch on both sides while the other thread takes one request per turn.
// Inside a WakeRound, DeferWake remembers each wake-up (once per context) and runs it when the round ends: the
// other thread wakes once and finds the whole round's requests queued, and can batch them. Outside a round,
// DeferWake wakes at once.
//
//   void Queue::Push(Item item) {
//     { MutexLock lock(mu_); items_.push_back(std::move(item)); }
//     DeferWake(this, [](void* q) { static_cast<Queue*>(q)->cv_.notify_one(); });
//   }
//   for (;;) { WakeRound round; if (io.run_one() == 0) break; while (io.poll_one() > 0) {} }
//
// The wake function must be safe to run late (after the data it signals was published under the waiter's mutex,
// as a condition variable's notify is), and its context must outlive the round.
//
// Thread safety: a round and its wake-ups belong to the thread that made it.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace fluidfaas {

using WakeFn = void (*)(void* context);

class WakeRound {
 public:
  WakeRound();   // rounds nest; only the outermost runs the wake-ups
  ~WakeRound();  // runs the wake-ups held, in the order first asked
  WakeRound(const WakeRound&) = delete;
  WakeRound& operator=(const WakeRound&) = delete;

  // Wake-ups held by this thread's round (0 outside one).
  static size_t held();

 private:
  std::vector<std::pair<void*, WakeFn>> held_;
  WakeRound* outer_;
  friend void DeferWake(void* context, WakeFn wake);
};

// `wake(context)` now, or at the end of this thread's round (once per context).
void DeferWake(void* context, WakeFn wake);

}  // namespace fluidfaas
