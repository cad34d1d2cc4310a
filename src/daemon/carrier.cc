// The node's side of the shared carrier (carrier/carrier.h): what a launch, a batch and an eviction become on the
// runtime, and how a request the carrier ends is answered.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

Status Controller::Impl::Launch(const policy::LaunchDecision& d) {
  const Function* f = FindFunction(d.function);
  if (f == nullptr) return Status::NotFound("no function " + std::to_string(d.function));
  runtime::PipelineSpec p;
  p.instance = d.instance;
  p.max_batch = std::max(1, d.max_batch);
  p.input_bytes_per_sample = f->input_bytes;
  for (const policy::StagePlacement& st : d.stages) {
    runtime::PipelineStage s;
    s.slice = st.slice;
    s.spec.executor = !f->dir.empty() ? "torchscript" : "emulated";
    s.spec.function = f->info->name;
    s.spec.model = f->config.model;
    s.spec.dir = f->dir;
    if (st.first_block < f->block_inputs.size()) s.spec.input_shape = f->block_inputs[st.first_block];
    s.spec.first_block = st.first_block;
    s.spec.last_block = st.last_block;
    s.spec.max_batch = p.max_batch;
    s.spec.gpu = std::string(cluster[st.slice].kind.gpu->name);
    s.spec.profile = std::string(cluster[st.slice].kind.profile->name);
    s.spec.time_scale = f->config.time_scale;
    s.output_bytes_per_sample =
        static_cast<uint64_t>(f->spec->blocks[st.last_block].ActivationOutBytes(f->spec->dtype));
    p.stages.push_back(std::move(s));
  }
  Status s = runtime->Launch(p);
  if (!s.ok()) spdlog::warn("launch of instance {}: {}", d.instance, s.message());
  return s;
}

Status Controller::Impl::Submit(InstanceId instance, uint64_t batch, std::span<const RequestId> ids) {
  const auto it = carrier->instances().find(instance);
  const Function* f = it != carrier->instances().end() ? FindFunction(it->second.function) : nullptr;
  if (f == nullptr) return Status::NotFound("no instance " + std::to_string(instance));
  std::vector<std::byte> input;
  input.reserve(ids.size() * f->input_bytes);
  for (RequestId r : ids) {
    const auto& bytes = requests.at(r).input;
    input.insert(input.end(), bytes.begin(), bytes.end());
  }
  std::vector<int64_t> shape = {static_cast<int64_t>(ids.size())};
  shape.insert(shape.end(), f->spec->input_shape.begin(), f->spec->input_shape.end());
  Status s =
      runtime->Submit(instance, batch, ids, runtime::TensorView{static_cast<uint32_t>(f->spec->dtype), shape, input});
  if (!s.ok() && s.code() != StatusCode::kResourceExhausted) {
    spdlog::warn("submit to instance {}: {}", instance, s.message());  // going away: its event hands the queue back
  }
  return s;
}

Status Controller::Impl::Evict(InstanceId instance, bool keep_warm) {
  Status s = runtime->Evict(instance, keep_warm);
  if (!s.ok()) spdlog::warn("release of instance {}: {}", instance, s.message());
  return s;
}

void Controller::Impl::Ended(RequestId id, carrier::Ending ending, Reason code, const std::string& detail) {
  Answer(id, ending == carrier::Ending::kRejected ? Outcome::kRejected : Outcome::kFailed, code, detail);
}

void Controller::Impl::Later(std::function<void(TimePoint)> task) {
  // On the next turn of the loop; once it has stopped, Close answers every request and nothing is left to do.
  Post([this, task = std::move(task)] { task(clock->Now()); });
}

}  // namespace fluidfaas::daemon
