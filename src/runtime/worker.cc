#include "runtime/worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>

#include "runtime/control.h"

namespace fluidfaas::runtime {
namespace {

using StageKey = std::pair<uint64_t, uint64_t>;  // (instance, stage index)

constexpr Duration kPoll = Millis(100);

class WorkerServer {
 public:
  explicit WorkerServer(const WorkerOptions& options) : options_(options) {}

  int Serve() {
    nlohmann::json executors = nlohmann::json::array();
    for (const auto& [name, factory] : options_.executors) executors.push_back(name);
    Send({{"op", "ready"},
          {"pid", static_cast<int64_t>(getpid())},
          {"version", kControlVersion},
          {"device", options_.device},
          {"executors", executors}});
    for (bool running = true; running;) {
      auto message = ReceiveControl(options_.control_fd, Seconds(1));
      if (!message.ok()) {
        if (message.status().code() == StatusCode::kDeadlineExceeded) continue;
        if (message.status().code() == StatusCode::kInvalidArgument) {
          spdlog::warn("worker: dropped a control message: {}", message.status().message());
          continue;
        }
        // The node is gone (its end of the socket closed: it exited or was killed). Nothing is left to report
        // to, and a stage stuck in a run must not keep this process alive: leave now.
        spdlog::warn("worker: the node hung up ({}); exiting", message.status().message());
        std::_Exit(0);
      }
      try {
        running = Handle(*message);
      } catch (const std::exception& e) {  // a message of a shape no handler expected: dropped, never fatal
        spdlog::error("worker: control message '{}' dropped: {}", message->body.dump().substr(0, 200), e.what());
      }
    }
    StopAll();
    return 0;
  }

 private:
  struct Stage {
    StageSpec spec;
    uint64_t instance = 0;
    uint64_t index = 0;
    std::unique_ptr<StageExecutor> executor;
    Ring in;
    Ring out;
    std::atomic<bool> stop{false};
    std::thread thread;
  };

  // Returns false on "stop".
  bool Handle(ControlMessage& m) {
    const std::string op = m.body["op"].get<std::string>();
    if (op == "ping") {
      Send({{"op", "pong"}, {"seq", ValueOr(m.body, "seq", uint64_t{0})}});
    } else if (op == "stop") {
      return false;
    } else if (op == "load") {
      if (Status s = StartLoad(m); !s.ok()) {
        Send({{"op", "loaded"},
              {"instance", ValueOr(m.body, "instance", uint64_t{0})},
              {"stage", ValueOr(m.body, "stage", uint64_t{0})},
              {"ok", false},
              {"detail", s.message()}});
      }
    } else if (op == "evict") {
      if (Status s = Evict(m.body); !s.ok()) spdlog::warn("worker: evict: {}", s.message());
    } else {
      spdlog::warn("worker: unknown control op '{}'", op);
    }
    return true;
  }

  Status StartLoad(ControlMessage& m) {
    FF_ASSIGN_OR_RETURN(uint64_t instance, GetU64(m.body, "instance"));
    FF_ASSIGN_OR_RETURN(uint64_t index, GetU64(m.body, "stage"));
    const auto spec_json = m.body.find("spec");
    if (spec_json == m.body.end()) return Status::InvalidArgument("load: no \"spec\"");
    FF_ASSIGN_OR_RETURN(StageSpec spec, StageSpec::FromJson(*spec_json));
    if (m.fds.size() != 2) return Status::InvalidArgument("load: expected 2 ring descriptors");
    const StageKey key{instance, index};
    if (stages_.contains(key)) return Status::AlreadyExists("load: the stage is loaded already");
    auto stage = std::make_unique<Stage>();
    stage->spec = spec;
    stage->instance = instance;
    stage->index = index;
    FF_ASSIGN_OR_RETURN(stage->in, Ring::Open(std::move(m.fds[0])));
    FF_ASSIGN_OR_RETURN(stage->out, Ring::Open(std::move(m.fds[1])));
    if (auto warm = warm_.find(key); warm != warm_.end()) {
      stage->executor = std::move(warm->second);
      warm_.erase(warm);
    } else {
      const auto factory = options_.executors.find(spec.executor);
      if (factory == options_.executors.end()) {
        return Status::Unimplemented("load: this worker has no '" + spec.executor + "' executor");
      }
      FF_ASSIGN_OR_RETURN(stage->executor, factory->second(spec));
    }
    Stage* s = stage.get();
    stages_[key] = std::move(stage);
    s->thread = std::thread([this, s] { RunStage(*s); });
    return Status::Ok();
  }

  // The stage's thread: load, report, then serve batches until stopped or its rings close.
  void RunStage(Stage& s) {
    auto report = s.executor->Load();
    if (!report.ok()) {
      Send({{"op", "loaded"},
            {"instance", s.instance},
            {"stage", s.index},
            {"ok", false},
            {"detail", report.status().message()}});
      return;
    }
    Send({{"op", "loaded"},
          {"instance", s.instance},
          {"stage", s.index},
          {"ok", true},
          {"from_warm", report->from_warm},
          {"load_ms", report->load_ms},
          {"device_bytes", report->device_bytes},
          {"host_bytes", report->host_bytes}});
    while (!s.stop.load(std::memory_order_acquire)) {
      auto in = s.in.BeginRead(kPoll);
      if (!in.ok()) {
        if (in.status().code() == StatusCode::kDeadlineExceeded) continue;
        if (in.status().code() == StatusCode::kInternal) spdlog::error("worker: {}", in.status().message());
        return;  // closed (evicted, retired or the node is tearing the pipeline down)
      }
      Result<Slot> out = Status::DeadlineExceeded("");
      while (!s.stop.load(std::memory_order_acquire)) {
        out = s.out.BeginWrite(kPoll);
        if (out.ok() || out.status().code() != StatusCode::kDeadlineExceeded) break;
      }
      if (!out.ok()) return;
      const SlotHeader& ih = *in->header;
      Status ran;
      int64_t started = 0;
      int64_t finished = 0;
      {
        std::lock_guard<std::mutex> device(device_mu_);
        started = MonotonicNanos();
        ran = s.executor->Run(*in, *out);
        finished = MonotonicNanos();
      }
      if (ran.ok() && ih.stages_done >= static_cast<uint32_t>(kMaxStages)) {
        ran = Status::InvalidArgument("more than 8 stages");
      }
      if (!ran.ok()) {
        s.out.AbandonWrite();
        Send({{"op", "stage_failed"},
              {"instance", s.instance},
              {"stage", s.index},
              {"batch", ih.batch},
              {"detail", ran.message()}});
      } else {
        SlotHeader& oh = *out->header;
        oh.batch = ih.batch;
        oh.instance = ih.instance;
        oh.count = ih.count;
        std::copy_n(in->ids.begin(), ih.count, out->ids.begin());
        oh.stages_done = ih.stages_done + 1;
        std::copy_n(ih.timings, ih.stages_done, oh.timings);
        oh.timings[ih.stages_done] = StageTiming{started, finished};
        s.out.EndWrite();
      }
      s.in.EndRead();
    }
  }

  Status Evict(const nlohmann::json& body) {
    FF_ASSIGN_OR_RETURN(uint64_t instance, GetU64(body, "instance"));
    FF_ASSIGN_OR_RETURN(uint64_t index, GetU64(body, "stage"));
    const bool keep_warm = ValueOr(body, "keep_warm", false);
    const StageKey key{instance, index};
    int64_t host_bytes = 0;
    if (auto it = stages_.find(key); it != stages_.end()) {
      std::unique_ptr<Stage> stage = std::move(it->second);
      stages_.erase(it);
      stage->stop.store(true, std::memory_order_release);
      stage->in.Close();
      stage->out.Close();
      if (stage->thread.joinable()) stage->thread.join();
      host_bytes = stage->executor->Evict(keep_warm);
      if (keep_warm) warm_[key] = std::move(stage->executor);
    } else if (auto warm = warm_.find(key); warm != warm_.end() && !keep_warm) {
      warm->second->Evict(false);
      warm_.erase(warm);
    } else if (warm != warm_.end()) {
      host_bytes = warm->second->Evict(true);
    }
    Send({{"op", "released"}, {"instance", instance}, {"stage", index}, {"host_bytes", host_bytes}});
    return Status::Ok();
  }

  void StopAll() {
    for (auto& [key, stage] : stages_) {
      stage->stop.store(true, std::memory_order_release);
      stage->in.Close();
      stage->out.Close();
    }
    for (auto& [key, stage] : stages_) {
      if (stage->thread.joinable()) stage->thread.join();
    }
    stages_.clear();
    warm_.clear();
  }

  void Send(const nlohmann::json& body) {
    std::lock_guard<std::mutex> lock(send_mu_);
    if (Status s = SendControl(options_.control_fd, body); !s.ok()) spdlog::debug("worker: {}", s.message());
  }

  const WorkerOptions& options_;
  std::map<StageKey, std::unique_ptr<Stage>> stages_;        // control thread only
  std::map<StageKey, std::unique_ptr<StageExecutor>> warm_;  // control thread only
  std::mutex send_mu_;
  std::mutex device_mu_;  // one batch on the slice at a time
};

}  // namespace

int ServeWorker(const WorkerOptions& options) {
  WorkerServer server(options);
  return server.Serve();
}

}  // namespace fluidfaas::runtime
