// The worker process's server: `fluidfaas-worker serve --control-fd N`.
//
// The node starts one worker per slice in use (CUDA_VISIBLE_DEVICES set to the slice's MIG UUID) with one end of
// a control socket (control.h). The worker hosts stages of one or more instances (time sharing): each loaded
// stage has a thread that takes batches from its input ring, runs them with its executor and writes the output
// ring, appending its start and end times to the slot header. One stage runs on the slice at a time (a mutex:
// the slice is one device). An evicted stage keeps its host copy (warm) until the node asks for the cold state,
// so a later load of the same stage on this worker is a host-to-device copy.
//
// The worker exits when told to stop (gracefully: its stage threads finish their batch) or at once when the
// node's end of the socket closes (the node exited or was killed).
//
// Thread safety: ServeWorker owns the process's threads; call it once, from main.
#pragma once

#include <map>
#include <string>

#include "runtime/executor.h"

namespace fluidfaas::runtime {

struct WorkerOptions {
  int control_fd = -1;
  std::map<std::string, ExecutorFactory> executors;  // by StageSpec::executor name
  std::string device = "emulated";                   // what the process computes on: "cpu", "cuda", "emulated"
};

// Serves until "stop" or the node hangs up. Returns the process's exit code (0 on a clean stop).
int ServeWorker(const WorkerOptions& options);

}  // namespace fluidfaas::runtime
