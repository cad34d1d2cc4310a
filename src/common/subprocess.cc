#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace fluidfaas {
namespace {

constexpr size_t kErrTail = 4096;

class Pipe {
 public:
  Pipe() {
    if (pipe2(fds_.data(), O_CLOEXEC) != 0) fds_ = {-1, -1};
  }
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  bool ok() const { return fds_[0] >= 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void CloseRead() { Close(fds_[0]); }
  void CloseWrite() { Close(fds_[1]); }

 private:
  static void Close(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  std::array<int, 2> fds_{-1, -1};
};

// Async-signal-safe: for the child between fork and exec.
void CloseRange(unsigned first, unsigned last) {
  if (first > last) return;
  if (syscall(SYS_close_range, first, last, 0U) == 0) return;
  for (unsigned fd = first; fd <= last && fd < 65536; ++fd) (void)::close(static_cast<int>(fd));  // before Linux 5.9
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv, Duration timeout, size_t max_output) {
  if (argv.empty()) return Status::InvalidArgument("RunProcess: no program");
  const std::string& program = argv.front();
  Pipe out;
  Pipe err;
  Pipe exec_status;  // the child writes errno here when exec fails; closed by a successful exec (close-on-exec)
  if (!out.ok() || !err.ok() || !exec_status.ok()) {
    return Status::IoError("cannot run " + program + ": pipe: " + std::strerror(errno));
  }
  // Built before fork: after it the child makes only async-signal-safe calls.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) return Status::IoError("cannot run " + program + ": fork: " + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out.write_end(), 1) < 0 || dup2(err.write_end(), 2) < 0) {
      const int e = errno;
      (void)!::write(exec_status.write_end(), &e, sizeof e);
      _exit(127);
    }
    // Keep 0-2 and the exec-status pipe (close-on-exec) only.
    const auto keep = static_cast<unsigned>(exec_status.write_end());
    CloseRange(3, keep - 1);
    CloseRange(keep + 1, ~0U);
    execv(args[0], args.data());
    const int e = errno;
    (void)!::write(keep, &e, sizeof e);
    _exit(127);
  }
  out.CloseWrite();
  err.CloseWrite();
  exec_status.CloseWrite();

  auto reap = [pid] {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  };
  int exec_errno = 0;
  ssize_t n = 0;
  while ((n = ::read(exec_status.read_end(), &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    reap();
    return Status::IoError("cannot run " + program + ": " + std::strerror(exec_errno));
  }

  ProcessOutput result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<pollfd, 2> fds{pollfd{out.read_end(), POLLIN, 0}, pollfd{err.read_end(), POLLIN, 0}};
  std::array<char, 16384> buf{};
  Status failure = Status::Ok();
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      failure = Status::DeadlineExceeded(
          program + " ran past " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + " ms");
      break;
    }
    const int ready = poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) {
      failure = Status::IoError(std::string("poll: ") + std::strerror(errno));
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds[i].fd = -1;
        continue;
      }
      std::string& sink = i == 0 ? result.out : result.err;
      sink.append(buf.data(), static_cast<size_t>(got));
      if (i == 1 && sink.size() > 2 * kErrTail) sink.erase(0, sink.size() - kErrTail);
    }
    if (result.out.size() > max_output) {
      failure = Status::ResourceExhausted(program + " printed more than " + std::to_string(max_output) + " bytes");
      break;
    }
  }
  if (!failure.ok()) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    reap();
    return failure;
  }
  if (result.err.size() > kErrTail) result.err.erase(0, result.err.size() - kErrTail);
  result.exit_code = ExitCode(reap());
  return result;
}

}  // namespace fluidfaas
