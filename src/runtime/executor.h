// StageExecutor: what runs a pipeline stage's blocks inside a worker process, behind one interface.
//
//   emulated     a zoo model on an emulated slice: a batch takes the latency model's time for the stage, batch and
//                slice kind on the real clock and writes an output of the stage's real activation size. Device and
//                host memory are booked, not allocated, so llama2-13b "runs" on a laptop. (emulated_executor.h)
//   torchscript-generative  a generative function's blocks (model/torch_generative.h) with the KV caches of the
//                sequences they serve; a batch is one generation step's message (runtime/generative_step.h)
//   torchscript  the blocks of a function directory through LibTorch, on the device the process sees (CUDA when
//                the LibTorch build has it and a device is visible, the CPU otherwise). Input and output are views
//                of ring slots. Only the worker binary links it. (torch_executor.h)
//
// Residency, per stage: cold (nothing), warm (weights in host memory, pinned where CUDA is), loaded (weights on
// the device, the host copy kept). Load() goes cold or warm to loaded; Evict(keep_warm) goes back.
//
// Thread safety: one thread uses an executor at a time (the worker's stage thread, or its control thread while
// the stage is stopped).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/ring.h"

namespace fluidfaas::runtime {

// What a worker needs to know to run one stage; travels in the "load" control message.
struct StageSpec {
  std::string executor = "emulated";  // "emulated" | "torchscript" | "torchscript-generative"
  std::string function;               // the function's name (logs)
  size_t first_block = 0;
  size_t last_block = 0;
  int max_batch = 1;
  // emulated
  std::string model;              // zoo model name
  int seq_len = 0;                // 0: the model's default
  std::string gpu = "a100-80gb";  // GPU type of the emulated slice
  std::string profile = "7g.80gb";
  double time_scale = 1.0;  // multiplies every modelled time (tests run the clock faster); (0, 1000]
  // torchscript
  std::string dir;                   // the function directory
  std::vector<int64_t> input_shape;  // the stage's input per sample; when known, a load warms the blocks up
  // torchscript-generative: pages of the stage's KV pool (runtime/generative_step.h)
  int64_t kv_pages = 256;
  int kv_page_tokens = 16;

  nlohmann::json ToJson() const;
  // InvalidArgument naming the field for anything missing or out of range.
  static Result<StageSpec> FromJson(const nlohmann::json& j);
};

struct LoadReport {
  bool from_warm = false;    // the weights came from this process's host copy
  double load_ms = 0;        // measured
  int64_t device_bytes = 0;  // booked (emulated) or allocated (torchscript) on the device
  int64_t host_bytes = 0;    // the warm copy kept in host memory
};

class StageExecutor {
 public:
  virtual ~StageExecutor() = default;

  // Cold or warm to loaded. ResourceExhausted, NotFound, InvalidArgument with the cause.
  virtual Result<LoadReport> Load() = 0;
  // Loaded to warm (keep_warm) or cold. Returns the host bytes still held.
  virtual int64_t Evict(bool keep_warm) = 0;
  virtual bool warm() const = 0;

  // Runs one batch: `in` is the input slot (header->count requests, payload of header->payload_bytes), `out` the
  // output slot to fill (payload, payload_bytes, dtype, rank, shape). REQUIRES: loaded. InvalidArgument for an
  // input the blocks reject, ResourceExhausted for an output larger than the slot.
  virtual Status Run(const Slot& in, Slot& out) = 0;
};

using ExecutorFactory = std::function<Result<std::unique_ptr<StageExecutor>>(const StageSpec&)>;

}  // namespace fluidfaas::runtime
