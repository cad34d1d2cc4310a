// Controller: the node daemon's core. One control thread (its own, or an event loop it is given) owns the Scheduler
// (the same policy objects as the simulator), the answer-rule checker, the table of open requests and the per-instance
// queues; it carries the scheduler's decisions out on the NodeRuntime (runtime/node_runtime.h) and turns the runtime's
// events back into the scheduler's events. HTTP threads and the runtime's threads only post work to it.
//
// A request: Infer() checks it against the function (unknown: rejected at once; queue full or draining: turned
// away with a code), gives it a deadline (the function's SLO, or the caller's timeout) and posts it. The control
// thread asks the scheduler, which Routes it (to an instance's queue; batches of up to the instance's max batch go
// to the runtime while the pipeline has room), or Rejects it. The callback runs exactly once per request, on the
// control thread, with the outcome, the reason code of a rejection or failure, and the output.
//
// Thread safety: every public method may be called from any thread, except the destructor.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cluster/report.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/task_loop.h"
#include "daemon/repository.h"
#include "gpu/topology.h"
#include "policy/answer_checker.h"
#include "policy/scheduler.h"
#include "runtime/node_runtime.h"

namespace fluidfaas::daemon {

// A function to deploy: a zoo model on the node's emulated executor, or a TorchScript function directory of the
// node's repository (daemon/repository.h) run by the workers through LibTorch.
struct FunctionConfig {
  std::string name;         // a plain name (common/limits.h); the model's (or directory's) name when empty
  std::string model;        // zoo model; empty when `directory` is set
  double slo_ms = 0;        // 0: the manifest's, or 5 x a zoo model's batch-1 latency on a full GPU
  double time_scale = 1.0;  // the emulated executor's clock speed factor, (0, 1000]
  std::string directory;    // a function directory of the repository, by its plain name
  int max_batch = 0;        // 0: the model's or manifest's; else 1..kMaxBatch (cost tables stop at 32)
  // A zoo model that generates (model::IsGenerativeZooModel), served token by token (Controller::Generate) rather
  // than as one forward pass: the node's GenerationNode (carrier/generation_node.h) places and batches it. Its
  // objectives: time to first token `slo_ms` and per output token `tpot_ms` (0: 5 x the model's batch-1 figures on
  // a whole GPU, as sim-gen's).
  bool generate = false;
  double tpot_ms = 0;
};

struct FunctionInfo {
  std::string name;
  std::string model;      // zoo model, or "" for a repository function
  std::string directory;  // the repository directory's name, or ""
  double slo_ms = 0;
  int max_batch = 1;
  double time_scale = 1;              // of its emulated times
  std::string datatype;               // "FP32" | "FP16"
  std::vector<int64_t> input_shape;   // per sample
  std::vector<int64_t> output_shape;  // per sample
  bool generative = false;            // served by Generate; slo_ms is then the time to first token's
  double tpot_ms = 0;                 // generative: the time per output token's objective
  int max_positions = 0;              // generative: prompt and output tokens together at most
  int design_context = 0;             // generative: the context and longest prompt its placement is checked for
  int max_prompt = 0;
  std::shared_ptr<const model::Tokenizer> tokenizer;  // generative: its text's tokens (byte-level for zoo models)
};
// A deployed function's description, shared: the edge reads it per request without copying it.
using FunctionRef = std::shared_ptr<const FunctionInfo>;

struct ControllerOptions {
  gpu::NodeTopology node;                        // its slices are the scheduler's cluster
  std::string policy = "fluidfaas";              // a policy spec (policy/factory.h); not one that uses whole GPUs
  std::string worker_binary;                     // fluidfaas-worker
  std::optional<FunctionRepository> repository;  // TorchScript functions it may deploy; none: zoo models only
  std::optional<int64_t> host_memory_bytes;
  size_t max_open_requests = 4096;          // admitted and not yet answered; beyond it requests are turned away
  size_t max_open_bytes = size_t{1} << 30;  // their inputs' bytes at once: memory stays bounded under overload
  double slo_margin = 0.1;                  // the scheduler is given deadlines this share of the SLO early, in [0, 0.5]
  double late_margin_cap = 0.3;             // and up to this much more, learned from late completions (LatenessMargin,
                                            // daemon/lateness.h), in [0, 0.5]; 0: never
  runtime::RuntimeOptions runtime;          // restart and heartbeat settings (slices and binary are filled in)
  // A request that names no deadline of its own (no timeout_ms), to a function with no loaded instance, waits this
  // long for the cold start instead of being turned away for a deadline only a warm instance could meet; it is
  // still judged by the SLO (a late answer). 0: such requests are turned away like the rest. [0, 600] s.
  Duration cold_start_wait = Seconds(30);

  // Seams for tests (leveldb's Env, Seastar's manual clock). `mechanism`: makes the runtime the controller drives,
  // given the sink its events go to (their times in the clock's nanoseconds); empty: NodeRuntime (worker
  // processes, CLOCK_MONOTONIC). `clock`: the controller's time;
  // null: a RealClock of its own. REQUIRES: outlives the controller. `manual_loop`: no control thread; the test
  // runs what was posted with Controller::RunPending, at the clock's time, deterministically.
  std::function<Result<std::unique_ptr<runtime::NodeMechanism>>(runtime::EventSink)> mechanism;
  Clock* clock = nullptr;
  bool manual_loop = false;
  // The loop to run the controller's turns on instead of a control thread of its own: the HTTP edge's
  // (api/event_loop.h), so a request read there is decided and answered on the same thread. REQUIRES: it runs
  // until Shutdown returns. Null: a control thread.
  TaskLoop* loop = nullptr;
};

enum class Outcome { kCompleted, kRejected, kFailed };
std::string_view ToString(Outcome outcome);

struct InferResult {
  Outcome outcome = Outcome::kCompleted;
  std::string code;    // policy::Reason as text, "draining", or "" when completed
  std::string detail;  // for people
  uint64_t instance = 0;
  uint32_t dtype = 0;
  std::vector<int64_t> shape;  // batch of one first
  std::vector<std::byte> output;
  double queue_ms = 0;    // arrival to the start of its first stage
  double compute_ms = 0;  // its stages' run time
  double total_ms = 0;    // arrival to the answer
};
using InferCallback = std::function<void(InferResult)>;

// A generation's end: completed (every token asked for, or the caller's Stop), or rejected or failed with a code.
struct GenerateEnd {
  Outcome outcome = Outcome::kCompleted;
  std::string code;  // "" when completed; else unknown_function, not_generative, too_long, fits_no_slice,
                     // overloaded, draining, cancelled, shutdown
  std::string detail;
  int prompt_tokens = 0;
  int generated = 0;
  double ttft_ms = 0;   // arrival to the first token (0 when none came)
  double total_ms = 0;  // arrival to the end
};
// Called on the control thread: `token` for each generated token in order (its id and index, 0 first), then `end`
// exactly once. Neither may block.
struct GenerateCallbacks {
  std::function<void(int token, int index)> token;
  std::function<void(GenerateEnd)> end;
};
class Controller {
 public:
  // Starts the runtime and the control thread and deploys `functions`. InvalidArgument for a bad option.
  static Result<std::unique_ptr<Controller>> Start(ControllerOptions options,
                                                   const std::vector<FunctionConfig>& functions);
  ~Controller();

  // `input`: one sample in row-major order, `shape` with a leading batch dimension of 1. Calls `done` once.
  void Infer(const std::string& function, std::vector<std::byte> input, std::optional<double> timeout_ms,
             InferCallback done);

  // Generates up to `max_tokens` tokens after `prompt` (token ids of the function's tokenizer; the emulated
  // executor's is byte-level, ids 0..255) with a generative function. Returns a handle for Stop. The callbacks run
  // as GenerateCallbacks says; a request refused at once ends before this returns.
  uint64_t Generate(const std::string& function, const std::vector<int>& prompt, int max_tokens,
                    GenerateCallbacks callbacks);
  // The caller needs no more tokens (a stop string seen: `completed`; or the client went away: `cancelled`): the
  // sequence leaves its batch and frees its cache at the next step boundary, and ends with that outcome. Unknown or
  // ended handles are ignored.
  void Stop(uint64_t handle, bool completed);

  // Builds the function's cost tables (and inspects a repository directory through the worker, about a second)
  // on the caller's thread, then installs it on the control thread. AlreadyExists, NotFound (no such zoo model or
  // directory), InvalidArgument, FailedPrecondition (a directory but no repository), Unavailable (a worker
  // without LibTorch).
  Status Deploy(const FunctionConfig& config);
  // The repository's function directories, sorted; empty without a repository.
  std::vector<std::string> RepositoryFunctions() const;
  Status Remove(const std::string& name);
  FunctionRef Function(const std::string& name) const;  // null: not deployed
  std::vector<FunctionInfo> Functions() const;

  nlohmann::json NodeJson() const;  // slices, instances and their states, pipelines, host memory
  // The node's report to a cluster gateway (cluster/report.h), without its name, address and sequence number.
  cluster::NodeReport ClusterReport() const;
  // Prometheus text format. `edge_refusals`: requests the HTTP edge refused before they reached a function, by
  // code, counted in fluidfaas_requests_total with an empty function.
  std::string MetricsText(const std::map<std::string, uint64_t>& edge_refusals = {}) const;
  // Counts a request to `function` turned away before it reached the controller (bad input, an unknown version):
  // every answer is in fluidfaas_requests_total. An unknown or unplain name is counted as "unknown".
  void CountRefused(const std::string& function, std::string_view code);
  // Stop admitting (new requests end with code "draining"); wait up to `timeout` for the open ones.
  bool Drain(Duration timeout);
  // Stops the control loop and answers every open request (failed, code "shutdown"); later requests are turned
  // away with that code. The destructor calls it. Idempotent.
  void Shutdown();
  bool draining() const;
  size_t open_requests() const;
  // With ControllerOptions::manual_loop: runs every task posted so far (requests, the runtime's events), the
  // batches whose wait is over and the scheduler's tick when due, on the caller's thread. Returns the tasks run.
  size_t RunPending();
  // Fault injection and tests: the worker-process runtime underneath. REQUIRES: no injected mechanism.
  runtime::NodeRuntime& node_runtime() { return *node_runtime_; }

 private:
  struct Impl;
  Controller() = default;
  void CutLoop();
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<runtime::NodeMechanism> runtime_;
  runtime::NodeRuntime* node_runtime_ = nullptr;  // runtime_, when it is the worker-process one
};

}  // namespace fluidfaas::daemon
