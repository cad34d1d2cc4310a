#include "daemon/grpc_load.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "common/half.h"
#include "grpc_predict_v2.grpc.pb.h"

namespace fluidfaas::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// One connection's loop: a call, and on its answer the next, until the end time.
class Lane {
 public:
  Lane(std::unique_ptr<inference::GRPCInferenceService::Stub> stub, const inference::ModelInferRequest& request,
       Clock::time_point end)
      : stub_(std::move(stub)), request_(request), end_(end) {}

  void Start() { Issue(); }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
  }
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }
  uint64_t failed() const { return failed_; }
  const std::string& first_error() const { return first_error_; }

 private:
  void Issue() {
    context_ = std::make_unique<grpc::ClientContext>();
    response_.Clear();
    started_ = Clock::now();
    stub_->async()->ModelInfer(context_.get(), &request_, &response_, [this](const grpc::Status& status) {
      const auto now = Clock::now();
      if (status.ok()) {
        latencies_ms_.push_back(std::chrono::duration<double, std::milli>(now - started_).count());
      } else {
        if (failed_++ == 0) first_error_ = status.error_message();
      }
      if (now < end_) return Issue();
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      done_cv_.notify_all();
    });
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  const inference::ModelInferRequest& request_;
  const Clock::time_point end_;
  std::unique_ptr<grpc::ClientContext> context_;
  inference::ModelInferResponse response_;
  Clock::time_point started_;
  std::vector<double> latencies_ms_;  // written by this lane's callbacks only, one at a time
  uint64_t failed_ = 0;
  std::string first_error_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool done_ = false;  // GUARDED_BY(mu_)
};

std::shared_ptr<grpc::Channel> Channel(const std::string& target, int index) {
  grpc::ChannelArguments args;
  args.SetInt("fluidfaas.lane", index);  // a distinct argument: a channel of its own, not a shared subchannel
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

Result<GrpcLoadResult> RunGrpcLoad(const GrpcLoadOptions& o) {
  if (o.connections < 1 || o.connections > 1024) return Status::InvalidArgument("connections must be in 1..1024");
  if (o.duration <= Duration{0}) return Status::InvalidArgument("duration must be positive");
  // The model's input, from its metadata.
  auto meta_stub = inference::GRPCInferenceService::NewStub(Channel(o.target, -1));
  grpc::ClientContext meta_ctx;
  meta_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  inference::ModelMetadataRequest meta_req;
  meta_req.set_name(o.model);
  inference::ModelMetadataResponse meta;
  if (const grpc::Status st = meta_stub->ModelMetadata(&meta_ctx, meta_req, &meta); !st.ok()) {
    return Status::Unavailable("ModelMetadata of '" + o.model + "' at " + o.target + ": " + st.error_message());
  }
  if (meta.inputs_size() != 1)
    return Status::InvalidArgument("the model has " + std::to_string(meta.inputs_size()) + " inputs");
  inference::ModelInferRequest request;
  request.set_model_name(o.model);
  auto* in = request.add_inputs();
  in->set_name(meta.inputs(0).name());
  in->set_datatype(meta.inputs(0).datatype());
  int64_t elems = 1;
  for (int i = 0; i < meta.inputs(0).shape_size(); ++i) {
    const int64_t d = i == 0 ? 1 : meta.inputs(0).shape(i);  // one sample
    in->add_shape(d);
    elems *= d;
  }
  std::string raw;
  if (in->datatype() == "FP16") {
    const uint16_t h = FloatToHalf(0.5f);
    for (int64_t i = 0; i < elems; ++i) raw.append(reinterpret_cast<const char*>(&h), 2);
  } else {
    const float x = 0.5f;
    for (int64_t i = 0; i < elems; ++i) raw.append(reinterpret_cast<const char*>(&x), 4);
  }
  request.add_raw_input_contents(std::move(raw));

  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(o.duration);
  std::vector<std::unique_ptr<Lane>> lanes;
  lanes.reserve(static_cast<size_t>(o.connections));
  for (int i = 0; i < o.connections; ++i) {
    lanes.push_back(
        std::make_unique<Lane>(inference::GRPCInferenceService::NewStub(Channel(o.target, i)), request, end));
  }
  for (auto& lane : lanes) lane->Start();
  for (auto& lane : lanes) lane->Wait();
  GrpcLoadResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& lane : lanes) {
    all.insert(all.end(), lane->latencies_ms().begin(), lane->latencies_ms().end());
    r.failed += lane->failed();
    if (r.first_error.empty()) r.first_error = lane->first_error();
  }
  r.completed = all.size();
  r.requests_per_s = static_cast<double>(r.completed) / r.seconds;
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return r;
}

}  // namespace fluidfaas::daemon
