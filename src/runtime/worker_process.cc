#include "runtime/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "runtime/control.h"
#include "runtime/ring.h"

extern char** environ;

namespace fluidfaas::runtime {
namespace {
constexpr const char* kSpawnedEnv = "FLUIDFAAS_WORKER_SPAWNED_NS=";
constexpr size_t kSpawnedEnvLength = 28;
}  // namespace

int64_t WorkerSpawnedNanos() {
  static const int64_t kSpawned = [] {
    const char* v = std::getenv("FLUIDFAAS_WORKER_SPAWNED_NS");
    char* end = nullptr;
    const long long ns = v != nullptr ? std::strtoll(v, &end, 10) : 0;
    const int64_t now = MonotonicNanos();
    // Anything but a time in the past (at most an hour ago) is ignored: now, then.
    return v != nullptr && end != v && *end == '\0' && ns > 0 && ns <= now && now - ns < 3'600'000'000'000 ? ns : now;
  }();
  return kSpawned;
}

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::Start(const WorkerLaunch& launch) {
  FF_ASSIGN_OR_RETURN(auto pair, ControlSocketPair());
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> args = {launch.binary, "--log-level", launch.log_level, "serve", "--control-fd", "3"};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0 && std::strncmp(*e, kSpawnedEnv, kSpawnedEnvLength) != 0) {
      env.emplace_back(*e);
    }
  }
  env.push_back("CUDA_VISIBLE_DEVICES=" + launch.slice_uuid);
  env.push_back(std::string(kSpawnedEnv) + std::to_string(MonotonicNanos()));
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const int child_fd = pair.second.get();

  const pid_t pid = fork();
  if (pid < 0) return Status::IoError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (getppid() != parent) _exit(127);  // the node died already
    setpgid(0, 0);  // its own process group: a Ctrl-C at the node's terminal is the node's to handle
    if (child_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(child_fd, 3) < 0) _exit(127);  // fd 3, kept across exec
    // Nothing else of the node's crosses: not its listening socket (a worker outliving the node would keep the
    // port bound), its clients' connections (one held open by a worker is never closed for its client), rings.
    if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0) {
      for (int fd = 4; fd < 65536; ++fd) (void)::close(fd);  // before Linux 5.9
    }
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  std::unique_ptr<WorkerProcess> w(new WorkerProcess());
  w->pid_ = pid;
  w->control_ = std::move(pair.first);
  w->pidfd_.Reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  return w;
}

WorkerProcess::~WorkerProcess() {
  if (pid_ <= 0 || reaped_) return;
  (void)Send({{"op", "stop"}});
  for (int i = 0; i < 100 && !Reap(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!reaped_) {
    Kill();
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

Status WorkerProcess::Send(const nlohmann::json& body, std::span<const int> fds) {
  std::lock_guard<std::mutex> lock(send_mu_);
  return SendControl(control_.get(), body, fds);
}

void WorkerProcess::Kill() const {
  if (pid_ > 0 && !reaped_) kill(pid_, SIGKILL);
}

bool WorkerProcess::Reap() {
  if (reaped_) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) reaped_ = true;
  return reaped_;
}

}  // namespace fluidfaas::runtime
