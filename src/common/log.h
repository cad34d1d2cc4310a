// Logging: spdlog, configured once per process by the entry point (cli/).
//
// Library code logs through spdlog's free functions (spdlog::info(...)); policies do not log (they return
// decisions, and the caller logs what it does with them). Logs go to stderr so that stdout stays clean for
// command output such as --json.
//
// Thread safety: ConfigureLogging must run before other threads log; spdlog's logging calls are thread-safe.
#pragma once

#include <string_view>

#include "common/status.h"

namespace fluidfaas {

// level: trace, debug, info, warn, error, critical or off. InvalidArgument for anything else.
Status ConfigureLogging(std::string_view level);

}  // namespace fluidfaas
