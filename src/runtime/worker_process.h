// WorkerProcess: the node's handle on one worker process (one per slice in use).
//
// Start forks and executes `fluidfaas-worker serve --control-fd 3` with CUDA_VISIBLE_DEVICES set to the slice's
// UUID and the worker end of a control socket as fd 3. A node that dies takes its workers (and with them every
// shared segment) along: the kernel closes the node's end of every control socket, and a worker whose socket hangs
// up exits at once. (Not PR_SET_PDEATHSIG: it fires when the forking *thread* exits, which would kill a worker
// launched from a thread that ends before the node.) The node watches the control socket (hang-up) and a pidfd
// (exit) to notice a worker's death at once, whatever killed it.
//
// Thread safety: Send may be called from any thread; the rest from the owner's thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/unique_fd.h"

namespace fluidfaas::runtime {

struct WorkerLaunch {
  std::string binary;      // path of fluidfaas-worker
  std::string slice_uuid;  // "MIG-..." (made up on an emulated node)
  std::string log_level = "warn";
};

// CLOCK_MONOTONIC when the node spawned this worker process (the environment's FLUIDFAAS_WORKER_SPAWNED_NS, which
// WorkerProcess::Start sets), or the first call's time where it is missing or not a past time. The emulated
// executor charges a cold start from it: the real start (exec, the dynamic loader, LibTorch) counts as part of the
// modelled one.
int64_t WorkerSpawnedNanos();

class WorkerProcess {
 public:
  // Spawns the process; does not wait for it. IoError when fork or the socket fails (an exec failure shows as an
  // immediate exit, noticed like any death).
  static Result<std::unique_ptr<WorkerProcess>> Start(const WorkerLaunch& launch);
  ~WorkerProcess();  // asks it to stop, waits up to a second, then SIGKILL; always reaps

  pid_t pid() const { return pid_; }
  int control_fd() const { return control_.get(); }
  int pidfd() const { return pidfd_.get(); }  // -1 where the kernel has no pidfd_open
  Status Send(const nlohmann::json& body, std::span<const int> fds = {});
  // SIGKILL (fault injection, or a worker that stopped answering).
  void Kill() const;
  // Reaps without blocking; true once the process is gone.
  bool Reap();

 private:
  WorkerProcess() = default;
  pid_t pid_ = -1;
  bool reaped_ = false;
  UniqueFd control_;
  UniqueFd pidfd_;
  std::mutex send_mu_;
};

}  // namespace fluidfaas::runtime
