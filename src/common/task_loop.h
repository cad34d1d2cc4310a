// TaskLoop: a thread that runs tasks, as a seam. The node's controller runs its turns on one: its own thread by
// default, or the HTTP edge's event loop (api/event_loop.h), so that a request parsed on the edge is decided, and
// its answer written, on the thread that read it, with no hand-off between threads on the way.
//
// Thread safety: every method from any thread.
#pragma once

#include <functional>

#include "common/time.h"

namespace fluidfaas {

class TaskLoop {
 public:
  virtual ~TaskLoop() = default;
  // Queues `task` to run on the loop's thread, after what is queued already. False when the loop has stopped: the
  // task is dropped, not run. A task posted while the loop stops may also be dropped unrun.
  virtual bool Post(std::function<void()> task) = 0;
  // Runs `task` on the loop's thread once `delay` has passed (on the steady clock), or later; dropped if the loop
  // stops first.
  virtual void PostAfter(Duration delay, std::function<void()> task) = 0;
  // True on the loop's own thread.
  virtual bool InLoop() const = 0;
};

}  // namespace fluidfaas
