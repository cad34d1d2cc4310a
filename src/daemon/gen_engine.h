// WorkerGenEngine: the generation node's engine for generative TorchScript functions (model/manifest.h, kind:
// generative). It runs each instance's stages in the workers of their slices, as a pipeline of
// `torchscript-generative` executors (runtime/torch_generative_executor.cc), each holding its layers' KV cache in a
// paged pool sized from the node's books: the lanes' blocks, pages of the same 16 tokens. The node's batchers
// admit only what those pools hold, so a stage never runs short.
//
// A step goes through the pipeline's rings as GenStepMessages (runtime/generative_step.h), each a batch of one:
//   - a prefill step of N sequences: N prefill messages, each with the sequence's tokens (its prompt and what it
//     has generated: a preempted sequence is recomputed);
//   - a decode step: one decode message with each sequence's last token;
//   - sequences preempted for the step, finished or cancelled: a free message, before anything later.
// The rings keep the order, so a free reaches every stage before that sequence's next prefill. A message that
// finds the first ring full waits in the instance's outbox, sent in order as results come back. A step's tokens
// go to the node (Stepped) once all of its messages are back.
//
// Failures: a load that fails, a step a stage refuses, or a worker that dies ends the instance (GenerationNode::
// Lost: each of its sequences fails with the reason); the runtime instance is retired once nothing is in flight.
//
// Reports to the node are posted (`post`), never made inside the node's call.
//
// Thread safety: none; the controller's control thread drives it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "carrier/generation_node.h"
#include "model/manifest.h"
#include "runtime/node_runtime.h"

namespace fluidfaas::daemon {

// Runtime instance ids of generative instances: this bit set, the node's instance index below it (the scheduler's
// ids for single-pass instances stay far below).
inline constexpr uint64_t kGenInstanceBit = uint64_t{1} << 62;

class WorkerGenEngine final : public carrier::GenEngine {
 public:
  using Poster = std::function<void(std::function<void()>)>;
  using Now = std::function<double()>;  // the node's time, seconds
  struct Function {
    std::string name;
    std::string dir;  // the function directory
    model::GenerativeManifest manifest;
  };

  WorkerGenEngine(runtime::NodeMechanism& runtime, Poster post, Now now);
  WorkerGenEngine(const WorkerGenEngine&) = delete;
  WorkerGenEngine& operator=(const WorkerGenEngine&) = delete;

  // Set before use: the node whose instances this engine runs.
  void Attach(carrier::GenerationNode* node) { node_ = node; }
  // Function `f` (the node's index) is this directory's.
  void AddFunction(size_t f, Function fn) { functions_[f] = std::move(fn); }
  // A sequence arrives with its prompt's tokens (before the node hears of it).
  void SetPrompt(uint64_t seq, std::vector<int64_t> prompt) { history_[seq] = std::move(prompt); }

  // carrier::GenEngine
  void Load(size_t inst, const carrier::GenLaunch& launch) override;
  void Step(size_t inst, size_t lane, const policy::GenStep& step) override;
  void Free(size_t inst, const std::vector<uint64_t>& sequences) override;
  void Release(size_t inst) override;

  // The runtime's events; false for an instance that is not a generative one.
  static bool Owns(uint64_t runtime_instance) { return (runtime_instance & kGenInstanceBit) != 0; }
  void OnLoadDone(const runtime::LoadDone& e);
  void OnBatchCompleted(const runtime::BatchCompleted& e);
  void OnBatchFailed(const runtime::BatchFailed& e);
  // Instances the runtime lost with a worker (it has dropped them: no retire).
  void OnInstanceLost(uint64_t runtime_instance, const std::string& detail);

  // Bytes one step message may take for this function and batch: a prefill of every position (its tokens, then
  // its hidden states) or a decode of `max_batch` sequences.
  static uint64_t StepBytes(const model::GenerativeManifest& m, int max_batch);

 private:
  struct Pending {  // a step's messages in flight
    size_t lane = 0;
    size_t messages = 0;                 // not yet back
    std::vector<uint64_t> order;         // the step's sequences, in the node's order
    std::map<uint64_t, int64_t> tokens;  // each one's token, once back
  };
  struct Inst {
    size_t node_index = 0;
    bool ready = false;
    bool releasing = false;  // the node released it: retire once nothing is in flight
    bool gone = false;       // lost or retired: nothing more is sent or reported
    size_t in_flight = 0;
    std::deque<std::pair<uint64_t, std::vector<std::byte>>> outbox;  // (message id, bytes), in order
    std::unordered_map<uint64_t, uint64_t> message_step;             // message id -> its step (Pending key)
    std::unordered_map<uint64_t, Pending> steps;                     // by step id
  };

  void Send(Inst& inst, uint64_t runtime_id, uint64_t message, std::vector<std::byte> bytes);
  void Flush(Inst& inst, uint64_t runtime_id);
  // The instance is finished with: reports Lost (posted) unless the node released it, retires when it can.
  void Fail(uint64_t runtime_id, const std::string& reason);
  void MaybeRetire(Inst& inst, uint64_t runtime_id);
  void FreeMessage(size_t inst, const std::vector<uint64_t>& sequences);

  runtime::NodeMechanism& runtime_;
  Poster post_;
  Now now_;
  carrier::GenerationNode* node_ = nullptr;
  std::map<size_t, Function> functions_;
  std::unordered_map<uint64_t, Inst> insts_;                    // by runtime id
  std::unordered_map<uint64_t, std::vector<int64_t>> history_;  // per open sequence: its prompt and tokens
  uint64_t next_message_ = 1;
  uint64_t next_step_ = 1;
};

}  // namespace fluidfaas::daemon
