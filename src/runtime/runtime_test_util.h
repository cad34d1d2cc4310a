// Helpers for the runtime's tests: an event sink that waits, and emulated pipelines of zoo models.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "model/zoo.h"
#include "runtime/node_runtime.h"

namespace fluidfaas::runtime::testing {

class EventLog {
 public:
  EventSink Sink() {
    return [this](RuntimeEvent e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
      cv_.notify_all();
    };
  }
  // The first unread event of type T (skipping none), waiting up to `timeout`.
  template <typename T>
  std::optional<T> Next(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<T> out;
    cv_.wait_for(lock, timeout, [&] {
      for (auto it = events_.begin(); it != events_.end(); ++it) {
        if (auto* t = std::get_if<T>(&*it)) {
          out = std::move(*t);
          events_.erase(it);
          return true;
        }
      }
      return false;
    });
    return out;
  }
  std::vector<RuntimeEvent> TakeAll() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<RuntimeEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
    events_.clear();
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RuntimeEvent> events_;
};

inline std::vector<RuntimeSlice> EmulatedSlices(size_t n) {
  std::vector<RuntimeSlice> slices;
  for (size_t i = 0; i < n; ++i) slices.push_back({"0:slice" + std::to_string(i), "MIG-test-" + std::to_string(i)});
  return slices;
}

// An emulated pipeline of zoo `model` with stages at `cuts` (last block of each stage but the last), on slices
// 0.. in order (or `slices`), every modelled time scaled by `scale`.
inline PipelineSpec EmulatedPipeline(uint64_t instance, const std::string& model, std::vector<size_t> cuts,
                                     std::vector<size_t> slices, int max_batch, double scale = 0.01) {
  const model::FunctionSpec f = *model::BuildZooModel(model);
  PipelineSpec p;
  p.instance = instance;
  p.max_batch = max_batch;
  int64_t in = model::BytesPerElement(f.dtype);
  for (int64_t d : f.input_shape) in *= d;
  p.input_bytes_per_sample = static_cast<uint64_t>(in);
  cuts.push_back(f.blocks.size() - 1);
  size_t first = 0;
  for (size_t i = 0; i < cuts.size(); ++i) {
    PipelineStage s;
    s.slice = slices[i];
    s.spec.executor = "emulated";
    s.spec.function = model;
    s.spec.model = model;
    s.spec.first_block = first;
    s.spec.last_block = cuts[i];
    s.spec.max_batch = max_batch;
    s.spec.profile = "2g.20gb";
    s.spec.time_scale = scale;
    s.output_bytes_per_sample = static_cast<uint64_t>(f.blocks[cuts[i]].ActivationOutBytes(f.dtype));
    p.stages.push_back(s);
    first = cuts[i] + 1;
  }
  return p;
}

}  // namespace fluidfaas::runtime::testing
