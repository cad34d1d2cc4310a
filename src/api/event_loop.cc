#include "api/event_loop.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <map>
#include <optional>
#include <thread>

#include "common/mutex.h"
#include "common/wake_round.h"

namespace fluidfaas::api {

namespace asio = boost::asio;

struct EventLoop::Impl {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{io.get_executor()};
  std::thread thread;
  std::atomic<std::thread::id> loop_id{};
  std::atomic<bool> stopped{false};

  // Delayed tasks (loop thread only): one timer, armed at the earliest.
  using SteadyTime = std::chrono::steady_clock::time_point;
  std::multimap<SteadyTime, std::function<void()>> delayed;
  asio::steady_timer timer{io};
  std::optional<SteadyTime> armed;

  Mutex done_mu;
  std::condition_variable_any done_cv;
  bool done GUARDED_BY(done_mu) = false;

  void Run() {
    loop_id = std::this_thread::get_id();
    for (;;) {
      try {
        for (;;) {
          WakeRound round;
          if (io.run_one() == 0) break;
          for (int i = 1; i < kRoundHandlers && io.poll_one() > 0; ++i) {
          }
        }
        break;
      } catch (const std::exception& e) {
        spdlog::error("event loop: a handler threw: {}", e.what());
      }
    }
    MutexLock lock(done_mu);
    done = true;
    done_cv.notify_all();
  }

  void Arm() {
    if (delayed.empty()) return;
    const SteadyTime first = delayed.begin()->first;
    if (armed && *armed <= first) return;
    armed = first;
    timer.expires_at(first);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // re-armed earlier, or stopping
      armed.reset();
      const SteadyTime now = std::chrono::steady_clock::now();
      while (!delayed.empty() && delayed.begin()->first <= now) {
        auto task = std::move(delayed.begin()->second);
        delayed.erase(delayed.begin());
        task();
      }
      Arm();
    });
  }
};

EventLoop::EventLoop() : impl_(std::make_unique<Impl>()) {}

EventLoop::~EventLoop() {
  Stop();
}

void EventLoop::Start() {
  if (impl_->thread.joinable() || impl_->stopped.load()) return;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void EventLoop::Stop() {
  Impl& s = *impl_;
  if (s.stopped.exchange(true)) return;
  if (!s.thread.joinable()) return;
  asio::post(s.io, [&s] {
    s.delayed.clear();
    s.timer.cancel();
    s.guard.reset();  // run_one returns 0 once the work queued has finished
  });
  {
    MutexLock lock(s.done_mu);
    if (!lock.WaitFor(s.done_cv, std::chrono::microseconds(ToMicros(kStopGrace)), [&s] {
          s.done_mu.AssertHeld();
          return s.done;
        })) {
      spdlog::warn("event loop: work still queued after {} ms; dropped", ToMicros(kStopGrace) / 1000);
      s.io.stop();
    }
  }
  s.thread.join();
}

bool EventLoop::Post(std::function<void()> task) {
  if (impl_->stopped.load()) return false;
  asio::post(impl_->io, std::move(task));
  return true;
}

void EventLoop::PostAfter(Duration delay, std::function<void()> task) {
  if (impl_->stopped.load()) return;
  const auto when = std::chrono::steady_clock::now() + std::chrono::microseconds(ToMicros(delay));
  asio::post(impl_->io, [s = impl_.get(), when, task = std::move(task)]() mutable {
    if (s->stopped.load()) return;
    s->delayed.emplace(when, std::move(task));
    s->Arm();
  });
}

bool EventLoop::InLoop() const {
  return impl_->loop_id.load() == std::this_thread::get_id();
}

asio::io_context& EventLoop::io() {
  return impl_->io;
}

}  // namespace fluidfaas::api
