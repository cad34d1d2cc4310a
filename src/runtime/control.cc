#include "runtime/control.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace fluidfaas::runtime {

Result<std::pair<UniqueFd, UniqueFd>> ControlSocketPair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return Status::IoError(std::string("control socketpair: ") + std::strerror(errno));
  }
  return std::make_pair(UniqueFd(sv[0]), UniqueFd(sv[1]));
}

Status SendControl(int socket, const nlohmann::json& body, std::span<const int> fds) {
  const std::string text = body.dump();
  if (text.size() > kMaxControlBytes) return Status::InvalidArgument("control message over 64 KiB");
  if (fds.size() > kMaxControlFds) return Status::InvalidArgument("control message with too many descriptors");
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxControlFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    if (sendmsg(socket, &msg, MSG_NOSIGNAL) >= 0) return Status::Ok();
    if (errno == EINTR) continue;
    return Status::Unavailable(std::string("control send: ") + std::strerror(errno));
  }
}

Result<ControlMessage> ReceiveControl(int socket, Duration timeout) {
  pollfd p{socket, POLLIN, 0};
  const int ms = static_cast<int>(std::max<int64_t>(0, (ToMicros(timeout) + 999) / 1000));
  int n = 0;
  do {
    n = poll(&p, 1, ms);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return Status::DeadlineExceeded("control: no message");
  if (n < 0) return Status::IoError(std::string("control poll: ") + std::strerror(errno));
  std::string buf(kMaxControlBytes + 1, '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxControlFds)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t got = 0;
  do {
    got = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return Status::Unavailable(std::string("control receive: ") + std::strerror(errno));
  ControlMessage out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        out.fds.emplace_back(fd);
      }
    }
  }
  if (got == 0 && out.fds.empty()) return Status::Unavailable("control: the peer hung up");
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) return Status::InvalidArgument("control: message too large");
  out.body = nlohmann::json::parse(buf.begin(), buf.begin() + got, nullptr, /*allow_exceptions=*/false);
  if (!out.body.is_object() || !out.body.contains("op") || !out.body["op"].is_string()) {
    return Status::InvalidArgument("control: not a JSON object with a string \"op\"");
  }
  return out;
}

Result<uint64_t> GetU64(const nlohmann::json& body, const char* field) {
  const auto it = body.find(field);
  if (it == body.end() || !it->is_number_unsigned()) {
    return Status::InvalidArgument(std::string("control: \"") + field + "\" must be an unsigned integer");
  }
  return it->get<uint64_t>();
}

Result<std::string> GetString(const nlohmann::json& body, const char* field) {
  const auto it = body.find(field);
  if (it == body.end() || !it->is_string()) {
    return Status::InvalidArgument(std::string("control: \"") + field + "\" must be a string");
  }
  return it->get<std::string>();
}

}  // namespace fluidfaas::runtime
