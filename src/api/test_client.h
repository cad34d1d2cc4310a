// A raw HTTP/1.1 test client over a blocking socket: it sends exactly the bytes a test gives (hostile ones
// included) and reads one response, so tests can assert the status, the body and how long the answer took.
//
// Thread safety: one RawClient per thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fluidfaas::api::testing {

struct RawResponse {
  int status = 0;  // 0: no response (closed or timed out)
  std::string head;
  std::string body;
  double seconds = 0;  // from the call to the full response
};

class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False when the peer closed the connection (or the send failed otherwise).
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response (Content-Length framed) within `timeout_s`.
  RawResponse Read(double timeout_s = 10) {
    const auto start = std::chrono::steady_clock::now();
    RawResponse r;
    for (;;) {
      const size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::string head = buffer_.substr(0, end);
        size_t length = 0;
        const size_t cl = Lower(head).find("content-length:");
        if (cl != std::string::npos) length = std::stoul(head.substr(cl + 15));
        if (buffer_.size() >= end + 4 + length) {
          r.head = head;
          r.body = buffer_.substr(end + 4, length);
          buffer_.erase(0, end + 4 + length);
          r.status = std::stoi(head.substr(9, 3));
          break;
        }
      }
      const double left = timeout_s - Elapsed(start);
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) break;
      char chunk[65536];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    r.seconds = Elapsed(start);
    return r;
  }

  // Reads one response with a chunked body (a stream) within `timeout_s`: its chunks in order. `complete` is false
  // when the connection closed or the time ran out before the last chunk.
  struct Chunked {
    int status = 0;
    std::string head;
    std::vector<std::string> chunks;
    bool complete = false;
  };
  Chunked ReadChunked(double timeout_s = 10) {
    const auto start = std::chrono::steady_clock::now();
    Chunked r;
    size_t at = std::string::npos;  // where the next chunk's size line starts, once the head is in
    for (;;) {
      if (at == std::string::npos) {
        const size_t end = buffer_.find("\r\n\r\n");
        if (end != std::string::npos) {
          r.head = buffer_.substr(0, end);
          r.status = std::stoi(r.head.substr(9, 3));
          at = end + 4;
        }
      }
      while (at != std::string::npos) {
        const size_t line = buffer_.find("\r\n", at);
        if (line == std::string::npos) break;
        const size_t size = std::stoul(buffer_.substr(at, line - at), nullptr, 16);
        if (buffer_.size() < line + 2 + size + 2) break;
        if (size == 0) {
          buffer_.erase(0, line + 4);
          r.complete = true;
          return r;
        }
        r.chunks.push_back(buffer_.substr(line + 2, size));
        at = line + 2 + size + 2;
      }
      const double left = timeout_s - Elapsed(start);
      if (left <= 0) return r;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) return r;
      char chunk[65536];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return r;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // True when the server closed the connection within `timeout_s`.
  bool ClosedWithin(double timeout_s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout_s * 1000)) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK) <= 0;
  }

  RawResponse Request(std::string_view bytes, double timeout_s = 10) {
    if (!Send(bytes)) return {};
    return Read(timeout_s);
  }

  static std::string Get(std::string_view path) { return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n\r\n"; }
  static std::string Post(std::string_view path, std::string_view body, std::string_view extra_headers = "") {
    return "POST " + std::string(path) + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" +
           std::string(extra_headers) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           std::string(body);
  }

 private:
  static double Elapsed(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

}  // namespace fluidfaas::api::testing
