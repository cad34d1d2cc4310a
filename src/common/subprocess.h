// RunProcess: runs a helper program and collects what it prints, with a deadline and a bound on its output.
//
// The daemon uses it to inspect a TorchScript function directory through `fluidfaas-worker check DIR --json`
// (the daemon itself does not link LibTorch). No shell and no PATH search: argv[0] is the program's path and
// every argument is passed as it is, so nothing from outside is ever interpreted. The child gets /dev/null as its
// input, no descriptor of the caller's but its output pipes, and its own process group; on timeout the group is
// killed.
//
// None of the chosen dependencies runs a subprocess (Boost.Process would bring Boost for one function), hence
// this small one.
//
// Thread safety: reentrant; it waits for its own child only (waitpid on its pid), never reaps others.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "common/time.h"

namespace fluidfaas {

struct ProcessOutput {
  int exit_code = 0;  // the program's exit status; 128 + N when signal N ended it
  std::string out;    // standard output
  std::string err;    // the last 4 KiB of standard error
};

// IoError when the program cannot be started (the message names it and the cause), DeadlineExceeded when it ran
// past `timeout` (it is killed), ResourceExhausted when it printed more than `max_output` bytes (killed too).
// REQUIRES: !argv.empty().
Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv, Duration timeout, size_t max_output);

}  // namespace fluidfaas
