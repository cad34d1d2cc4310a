// TorchGenerativeExecutor: a stage of a generative TorchScript function (model/torch_generative.h) in a worker:
// its blocks, and the KV caches of the sequences it serves in the stage's paged pool. A batch is one generation
// step (runtime/generative_step.h): the input slot holds the step's message, the output slot gets the next
// stage's (hidden states) or the answer (each sequence's next token). Eviction drops the stage and every cache:
// the node evicts only an instance that has no sequence.
//
// Only the worker binary compiles this file.
#include <chrono>
#include <cstring>

#include "model/block.h"
#include "model/torch_generative.h"
#include "runtime/executor.h"
#include "runtime/generative_step.h"
#include "runtime/torch_executor.h"

namespace fluidfaas::runtime {
namespace {

class TorchGenerativeExecutor final : public StageExecutor {
 public:
  explicit TorchGenerativeExecutor(StageSpec spec) : spec_(std::move(spec)) {}

  Result<LoadReport> Load() override {
    const auto start = std::chrono::steady_clock::now();
    FF_ASSIGN_OR_RETURN(stage_, model::GenerativeStage::Load(spec_.dir, spec_.first_block, spec_.last_block,
                                                             spec_.kv_pages, spec_.kv_page_tokens));
    LoadReport r;
    r.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return r;
  }

  int64_t Evict(bool /*keep_warm*/) override {
    stage_.reset();
    return 0;
  }
  bool warm() const override { return false; }

  Status Run(const Slot& in, Slot& out) override {
    if (!stage_) return Status::FailedPrecondition("the stage is not loaded");
    FF_ASSIGN_OR_RETURN(GenStepMessage m, DecodeStep(in.payload.first(in.header->payload_bytes)));
    GenStepMessage next{.kind = m.kind, .sequences = m.sequences, .tokens_per_sequence = m.tokens_per_sequence};
    if (m.kind == GenStepMessage::Kind::kFree) {
      for (uint64_t s : m.sequences) stage_->Free(s);
    } else {
      model::StageData data{.tokens = std::move(m.tokens)};
      if (!m.hidden.empty()) data.hidden = model::HostTensor{m.hidden_shape, std::move(m.hidden)};
      Result<model::StageData> r = Status::Internal("unset");
      if (m.kind == GenStepMessage::Kind::kPrefill) {
        if (m.sequences.size() != 1) return Status::InvalidArgument("a prefill step carries one sequence");
        r = stage_->Prefill(m.sequences[0], data);
      } else {
        r = stage_->Decode(m.sequences, data);
      }
      if (!r.ok()) return r.status();
      next.tokens = std::move(r->tokens);
      next.hidden_shape = std::move(r->hidden.shape);
      next.hidden = std::move(r->hidden.data);
    }
    const std::vector<std::byte> bytes = EncodeStep(next);
    if (bytes.size() > out.payload.size()) {
      return Status::ResourceExhausted("a step's output of " + std::to_string(bytes.size()) +
                                       " bytes over the slot's " + std::to_string(out.payload.size()));
    }
    std::memcpy(out.payload.data(), bytes.data(), bytes.size());
    out.header->payload_bytes = bytes.size();
    out.header->dtype = static_cast<uint32_t>(model::DType::kFp32);
    out.header->rank = 2;
    out.header->shape[0] = 1;
    out.header->shape[1] = static_cast<int64_t>(bytes.size() / 4);
    return Status::Ok();
  }

 private:
  StageSpec spec_;
  std::unique_ptr<model::GenerativeStage> stage_;
};

}  // namespace

Result<std::unique_ptr<StageExecutor>> MakeTorchGenerativeExecutor(const StageSpec& spec) {
  FF_ASSIGN_OR_RETURN(const model::GenerativeManifest m, model::ReadGenerativeManifest(spec.dir));
  if (spec.last_block >= m.blocks.size() || spec.first_block > spec.last_block) {
    return Status::InvalidArgument("blocks " + std::to_string(spec.first_block) + ".." +
                                   std::to_string(spec.last_block) + " of " + std::to_string(m.blocks.size()));
  }
  return std::unique_ptr<StageExecutor>(new TorchGenerativeExecutor(spec));
}

}  // namespace fluidfaas::runtime
