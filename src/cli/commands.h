// The fluidfaas command line: each Add*Commands registers one subcommand tree on the root app.
//
// A command's callback stores its exit code in `exit_code`: 0 success, 1 the work failed, 2 bad input (the
// reason on stderr, or in the JSON with --json), 3 and up command-specific (documented in its --help).
// Commands print data on stdout and diagnostics (logs) on stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/limits.h"
#include "common/result.h"
#include "policy/scheduler.h"
#include "sim/azure_trace.h"

namespace fluidfaas::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

// --seq (-1 when not given: the model's own; given, at least 1, the model checks its own maximum) and --batch
// (1..kMaxBatch).
inline Status CheckSeqAndBatch(int seq, int batch) {
  if (seq != -1) FF_RETURN_IF_ERROR(CheckRange("--seq", int64_t{seq}, 1, 1 << 20));
  return CheckRange("--batch", int64_t{batch}, 1, kMaxBatch);
}

// HOST:PORT of the flag `flag` (port 0..65535).
Result<std::pair<std::string, int>> ParseListen(const std::string& text, const std::string& flag);
// A token file's content without surrounding whitespace (a trailing newline is the usual way to write one).
std::string TrimToken(const std::string& text);
bool Loopback(const std::string& host);

// A trace's minutes flag, "A..B" with 1 <= A <= B <= kMaxTraceMinute, into its options (sim and mig advise).
Status ParseMinutes(const std::string& text, sim::TraceOptions& t);

// A node's slices as its GET /v1/node lists them (A100-80GB profiles only): the simulated rows of `load` and
// `gen-load` run on them.
Result<std::vector<policy::ClusterSlice>> NodeSlicesOf(const nlohmann::json& node);

void AddMigCommands(CLI::App& app, int& exit_code);
void AddNodeCommands(CLI::App& app, int& exit_code);
void AddZooCommands(CLI::App& app, int& exit_code);
void AddPlanCommand(CLI::App& app, int& exit_code);
void AddSimCommand(CLI::App& app, int& exit_code);
void AddGenCommand(CLI::App& app, int& exit_code);
void AddBenchCommands(CLI::App& app, int& exit_code);
void AddServeCommands(CLI::App& app, int& exit_code);
void AddLoadCommand(CLI::App& app, int& exit_code);
void AddGatewayCommand(CLI::App& app, int& exit_code);
void AddGenerateCommand(CLI::App& app, int& exit_code);
void AddGenLoadCommand(CLI::App& app, int& exit_code);

}  // namespace fluidfaas::cli
