#include "daemon/gen_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "model/block.h"
#include "runtime/generative_step.h"

namespace fluidfaas::daemon {

using runtime::GenStepMessage;

WorkerGenEngine::WorkerGenEngine(runtime::NodeMechanism& runtime, Poster post, Now now)
    : runtime_(runtime), post_(std::move(post)), now_(std::move(now)) {}

uint64_t WorkerGenEngine::StepBytes(const model::GenerativeManifest& m, int max_batch) {
  const auto rows = static_cast<uint64_t>(std::max(m.max_positions, max_batch));
  const auto d = static_cast<uint64_t>(m.d_model);
  // header, sequence ids, tokens, the hidden states' shape and values; rounded up to whole pages
  const uint64_t bytes = 256 + 8 * static_cast<uint64_t>(max_batch) + 8 * rows + 4 * rows * d;
  return (bytes + 4095) / 4096 * 4096;
}

void WorkerGenEngine::Load(size_t inst, const carrier::GenLaunch& launch) {
  const uint64_t id = kGenInstanceBit | inst;
  const Function& fn = functions_.at(launch.function);
  const uint64_t step_bytes = StepBytes(fn.manifest, carrier::GenNodeOptions{}.max_batch);
  runtime::PipelineSpec spec;
  spec.instance = id;
  spec.max_batch = 1;  // a message is a batch of one
  spec.input_bytes_per_sample = step_bytes;
  for (const policy::PlanStage& st : launch.stages) {
    runtime::PipelineStage s;
    s.slice = st.slice;
    s.spec.executor = "torchscript-generative";
    s.spec.function = fn.name;
    s.spec.dir = fn.dir;
    s.spec.first_block = st.first_block;
    s.spec.last_block = st.last_block;
    // Every lane's blocks: the node's books, page for page.
    s.spec.kv_pages = std::max<int64_t>(1, launch.kv_blocks_per_lane * static_cast<int64_t>(launch.lanes));
    s.spec.kv_page_tokens = launch.block_tokens;
    s.output_bytes_per_sample = step_bytes;
    spec.stages.push_back(std::move(s));
  }
  Inst& i = insts_[id];
  i.node_index = inst;
  if (Status s = runtime_.Launch(spec); !s.ok()) {
    spdlog::warn("{}: generative instance {} did not launch: {}", fn.name, inst, s.message());
    i.gone = true;
    post_([this, inst, why = "load_failed: " + s.message()] {
      if (node_ != nullptr) node_->Lost(now_(), inst, why);
    });
  }
}

void WorkerGenEngine::Step(size_t inst, size_t lane, const policy::GenStep& step) {
  const uint64_t id = kGenInstanceBit | inst;
  // Each send may end the instance (a refused submit fails it, and it is retired at once when nothing is in
  // flight): it is looked up again before every use.
  const auto live = [&]() -> Inst* {
    auto it = insts_.find(id);
    return it == insts_.end() || it->second.gone ? nullptr : &it->second;  // gone: its Lost is on its way
  };
  if (live() == nullptr) return;
  if (!step.preempted.empty()) FreeMessage(inst, step.preempted);  // recomputed later from their tokens
  if (step.kind != policy::GenStep::Kind::kPrefill && step.kind != policy::GenStep::Kind::kDecode) {
    return Fail(id, "step_failed: chunked prefill is not run by TorchScript stages");
  }
  std::vector<std::pair<uint64_t, std::vector<std::byte>>> messages;
  GenStepMessage decode{.kind = GenStepMessage::Kind::kDecode, .sequences = step.sequences};
  for (uint64_t seq : step.sequences) {
    const auto h = history_.find(seq);
    if (h == history_.end() || h->second.empty()) {
      return Fail(id, "step_failed: sequence " + std::to_string(seq) + " has no tokens");
    }
    if (step.kind == policy::GenStep::Kind::kPrefill) {
      messages.emplace_back(next_message_++,
                            runtime::EncodeStep({.kind = GenStepMessage::Kind::kPrefill,
                                                 .sequences = {seq},
                                                 .tokens_per_sequence = static_cast<uint32_t>(h->second.size()),
                                                 .tokens = h->second}));
    } else {
      decode.tokens.push_back(h->second.back());
    }
  }
  if (step.kind == policy::GenStep::Kind::kDecode) messages.emplace_back(next_message_++, runtime::EncodeStep(decode));
  Inst* i = live();
  if (i == nullptr) return;
  const uint64_t step_id = next_step_++;
  Pending& p = i->steps[step_id];
  p.lane = lane;
  p.order = step.sequences;
  p.messages = messages.size();
  for (auto& [message, bytes] : messages) {
    i = live();
    if (i == nullptr) return;
    i->message_step[message] = step_id;
    Send(*i, id, message, std::move(bytes));
  }
}

void WorkerGenEngine::FreeMessage(size_t inst, const std::vector<uint64_t>& sequences) {
  const uint64_t id = kGenInstanceBit | inst;
  auto it = insts_.find(id);
  if (it == insts_.end() || it->second.gone || sequences.empty()) return;
  Send(it->second, id, next_message_++,
       runtime::EncodeStep({.kind = GenStepMessage::Kind::kFree, .sequences = sequences}));
}

void WorkerGenEngine::Free(size_t inst, const std::vector<uint64_t>& sequences) {
  for (uint64_t seq : sequences) history_.erase(seq);
  FreeMessage(inst, sequences);
}

void WorkerGenEngine::Release(size_t inst) {
  const uint64_t id = kGenInstanceBit | inst;
  auto it = insts_.find(id);
  if (it == insts_.end()) return;
  it->second.releasing = true;
  it->second.outbox.clear();  // frees for stages about to go
  MaybeRetire(it->second, id);
}

void WorkerGenEngine::Send(Inst& inst, uint64_t runtime_id, uint64_t message, std::vector<std::byte> bytes) {
  inst.outbox.emplace_back(message, std::move(bytes));
  Flush(inst, runtime_id);
}

void WorkerGenEngine::Flush(Inst& inst, uint64_t runtime_id) {
  while (!inst.outbox.empty() && !inst.gone) {
    auto& [message, bytes] = inst.outbox.front();
    const runtime::TensorView view{.dtype = static_cast<uint32_t>(model::DType::kFp32),
                                   .shape = {1, static_cast<int64_t>(bytes.size() / 4)},
                                   .bytes = bytes};
    const uint64_t ids[] = {message};
    const Status s = runtime_.Submit(runtime_id, message, ids, view);
    if (s.code() == StatusCode::kResourceExhausted && inst.in_flight > 0) return;  // the ring is full: wait
    if (!s.ok()) return Fail(runtime_id, "step_failed: " + s.message());
    ++inst.in_flight;
    inst.outbox.pop_front();
  }
}

void WorkerGenEngine::OnLoadDone(const runtime::LoadDone& e) {
  auto it = insts_.find(e.instance);
  if (it == insts_.end() || it->second.gone) return;
  if (!e.ok) return Fail(e.instance, "load_failed: " + e.detail);
  it->second.ready = true;
  if (node_ != nullptr && !it->second.releasing) node_->Loaded(now_(), it->second.node_index);
}

void WorkerGenEngine::OnBatchCompleted(const runtime::BatchCompleted& e) {
  auto it = insts_.find(e.instance);
  if (it == insts_.end()) return;
  Inst& i = it->second;
  if (i.in_flight > 0) --i.in_flight;
  const auto step_of = i.message_step.find(e.batch);
  if (step_of != i.message_step.end() && !i.gone) {
    const uint64_t step_id = step_of->second;
    i.message_step.erase(step_of);
    Result<GenStepMessage> out = runtime::DecodeStep(e.output);
    Pending& p = i.steps.at(step_id);
    if (!out.ok() || out->tokens.size() != out->sequences.size()) {
      return Fail(e.instance, "step_failed: the last stage's answer is not a token per sequence");
    }
    for (size_t k = 0; k < out->sequences.size(); ++k) p.tokens[out->sequences[k]] = out->tokens[k];
    if (--p.messages == 0) {
      std::vector<int64_t> tokens;
      tokens.reserve(p.order.size());
      for (uint64_t seq : p.order) {
        const auto t = p.tokens.find(seq);
        const int64_t token = t != p.tokens.end() ? t->second : -1;
        tokens.push_back(token);
        if (auto h = history_.find(seq); h != history_.end() && token >= 0) h->second.push_back(token);
      }
      const size_t lane = p.lane;
      i.steps.erase(step_id);
      if (node_ != nullptr && !i.releasing) node_->Stepped(now_(), i.node_index, lane, tokens);
    }
  }
  auto again = insts_.find(e.instance);  // the node's call may have released it
  if (again == insts_.end()) return;
  Flush(again->second, e.instance);
  MaybeRetire(again->second, e.instance);
}

void WorkerGenEngine::OnBatchFailed(const runtime::BatchFailed& e) {
  auto it = insts_.find(e.instance);
  if (it == insts_.end()) return;
  if (it->second.in_flight > 0) --it->second.in_flight;
  Fail(e.instance, "step_failed: stage " + std::to_string(e.stage) + ": " + e.detail);
}

void WorkerGenEngine::OnInstanceLost(uint64_t runtime_instance, const std::string& detail) {
  auto it = insts_.find(runtime_instance);
  if (it == insts_.end()) return;
  it->second.in_flight = 0;     // the runtime has dropped it and what it had in flight
  it->second.releasing = true;  // nothing to retire
  const size_t inst = it->second.node_index;
  const bool report = !it->second.gone;
  insts_.erase(it);
  if (report) {
    post_([this, inst, why = "worker_lost: " + detail] {
      if (node_ != nullptr) node_->Lost(now_(), inst, why);
    });
  }
}

void WorkerGenEngine::Fail(uint64_t runtime_id, const std::string& reason) {
  auto it = insts_.find(runtime_id);
  if (it == insts_.end()) return;
  Inst& i = it->second;
  if (!i.gone && !i.releasing) {
    spdlog::warn("generative instance {}: {}", i.node_index, reason);
    post_([this, inst = i.node_index, reason] {
      if (node_ != nullptr) node_->Lost(now_(), inst, reason);
    });
  }
  i.gone = true;
  i.releasing = true;
  i.outbox.clear();
  i.steps.clear();
  i.message_step.clear();
  MaybeRetire(i, runtime_id);
}

void WorkerGenEngine::MaybeRetire(Inst& inst, uint64_t runtime_id) {
  if (!inst.releasing || inst.in_flight > 0) return;
  if (Status s = runtime_.Evict(runtime_id, /*keep_warm=*/false); !s.ok() && s.code() != StatusCode::kNotFound) {
    spdlog::warn("generative instance {}: retire: {}", inst.node_index, s.message());
  }
  insts_.erase(runtime_id);
}

}  // namespace fluidfaas::daemon
