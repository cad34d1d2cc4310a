// FakeMechanism: a node runtime for the controller's tests. It records what the controller asks (launches,
// batches, evictions) and sends back the events the test chooses, when it chooses, stamped with the test's clock:
// with ControllerOptions::manual_loop and a ManualClock, a controller test is deterministic, with no process,
// thread or sleep.
//
// Thread safety: one thread (the test's, which also runs Controller::RunPending).
#pragma once

#include <vector>

#include "common/clock.h"
#include "runtime/node_runtime.h"

namespace fluidfaas::daemon::testing {

class FakeMechanism final : public runtime::NodeMechanism {
 public:
  struct Batch {
    uint64_t instance = 0;
    uint64_t batch = 0;
    std::vector<uint64_t> requests;
    std::vector<int64_t> shape;
    size_t input_bytes = 0;
  };

  FakeMechanism(runtime::EventSink sink, const Clock& clock) : sink_(std::move(sink)), clock_(clock) {}

  Status Launch(const runtime::PipelineSpec& spec) override {
    launched.push_back(spec);
    return Status::Ok();
  }
  Status Submit(uint64_t instance, uint64_t batch, std::span<const uint64_t> requests,
                const runtime::TensorView& input) override {
    submitted.push_back(Batch{instance, batch, std::vector<uint64_t>(requests.begin(), requests.end()), input.shape,
                              input.bytes.size()});
    return Status::Ok();
  }
  Status Evict(uint64_t instance, bool keep_warm) override {
    evicted.emplace_back(instance, keep_warm);
    for (const auto& p : launched) {
      if (p.instance != instance) continue;
      for (const auto& st : p.stages) sink_(runtime::StageReleased{instance, st.slice});
    }
    return Status::Ok();
  }
  runtime::RuntimeStats Stats() const override { return {}; }

  // ---- the test's hand
  void FinishLoad(uint64_t instance, bool ok = true) { sink_(runtime::LoadDone{instance, ok, ok ? "" : "failed"}); }
  // Completes `b` as having run from `started` to now on each of `stages` stages (in turn, evenly), every output
  // row `row_bytes` of `fill`.
  void Complete(const Batch& b, TimePoint started, size_t stages, size_t row_bytes, std::byte fill = std::byte{1}) {
    runtime::BatchCompleted done;
    done.instance = b.instance;
    done.batch = b.batch;
    done.requests = b.requests;
    const int64_t from = ToMicros(started) * 1000;
    const int64_t to = ToMicros(clock_.Now()) * 1000;
    for (size_t s = 0; s < stages; ++s) {
      const auto a = from + (to - from) * static_cast<int64_t>(s) / static_cast<int64_t>(stages);
      const auto z = from + (to - from) * static_cast<int64_t>(s + 1) / static_cast<int64_t>(stages);
      done.timings.push_back(runtime::StageTiming{a, z});
    }
    done.completed_ns = to;
    done.shape = {static_cast<int64_t>(b.requests.size()), static_cast<int64_t>(row_bytes / 4)};
    done.output.assign(b.requests.size() * row_bytes, fill);
    sink_(std::move(done));
  }

  std::vector<runtime::PipelineSpec> launched;
  std::vector<Batch> submitted;
  std::vector<std::pair<uint64_t, bool>> evicted;

 private:
  runtime::EventSink sink_;
  const Clock& clock_;
};

}  // namespace fluidfaas::daemon::testing
