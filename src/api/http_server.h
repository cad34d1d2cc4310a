// HttpServer: the edge of a FluidFaaS process (the node daemon today, the cluster gateway next), an event-driven
// HTTP/1.1 server on Boost.Beast over Asio, with the overload manager's limits on every connection.
//
// One event-loop thread serves every connection: a connection costs memory (a few KiB while it idles), never a
// thread. The loop is the server's own, or one it shares (the node daemon's controller runs its turns on it). A handler
// runs on the loop thread, must not block, and answers through its Responder from any thread, now or later (the
// controller answers inference from its own thread). A request is answered exactly once: a Responder dropped without an
// answer answers 500 `internal` itself.
//
// The limits, each checked before anything that could amplify the bytes a client sends:
//   - an idle connection (no byte of a next request) is closed after `idle_timeout`; when the connection limit
//     is reached, the longest-idle connection is closed to make room for a new one, so idle connections can
//     never lock a client out;
//   - from a request's first byte, its request line and headers must arrive within `header_timeout` (408), in
//     at most `max_header_bytes` (431; 414 when the request line alone is over `max_target_bytes`) and
//     `max_header_count` fields (431): a slow or endless header costs its sender, not the server;
//   - the body must arrive within `body_timeout` (408) and hold at most `max_body_bytes`, whether sized by
//     Content-Length (refused before a byte is read) or chunked (refused as soon as it crosses the limit) (413);
//   - bodies being read or waiting for their answer hold at most `max_inflight_bytes` across all connections;
//     beyond it a request is refused with 503 `overloaded` and Retry-After before its body is read;
//   - two different Content-Length fields, or Content-Length beside chunked, are a 400 (RFC 9112 6.3: the shape
//     of request smuggling).
// Every refusal is a JSON body {"error", "code"} and a count in EdgeStats.
//
// Thread safety: Start, Stop and the destructor from one thread; Stats from any thread. Responder: any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/result.h"
#include "common/time.h"

namespace fluidfaas::api {

struct HttpLimits {
  size_t max_connections = 16384;                 // open at once; at the limit the longest-idle one is closed
  Duration idle_timeout = Seconds(30);            // between requests on a keep-alive connection
  Duration header_timeout = Seconds(10);          // first byte of a request to the end of its headers (408)
  Duration body_timeout = Seconds(30);            // end of the headers to the end of the body (408)
  Duration write_timeout = Seconds(30);           // an answer not taken by the client within this closes it
  size_t max_header_bytes = 16 << 10;             // request line and headers (431)
  size_t max_header_count = 100;                  // header fields (431)
  size_t max_target_bytes = 8 << 10;              // the request line (414)
  size_t max_body_bytes = size_t{64} << 20;       // per request, chunked bodies included (413)
  size_t max_inflight_bytes = size_t{256} << 20;  // request bodies held across all connections (503)
  int listen_backlog = 4096;                      // connections the kernel completes before they are accepted
};

// REQUIRES: every duration > 0, every size > 0. InvalidArgument names the field.
Status Validate(const HttpLimits& limits);

struct HttpRequest {
  std::string method;                                        // "GET", "POST", ... as sent
  std::string target;                                        // path and query, as sent (percent-encoded)
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;
  // The value of the first header named `name` (case-insensitive), or empty.
  std::string_view Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type and Content-Length
  std::string body;
};

// A JSON error answer: {"error": message, "code": code}, the message escaped (any bytes from the client in it are
// written as valid UTF-8, invalid sequences replaced).
HttpResponse JsonError(int status, std::string_view message, std::string_view code);
// `body` as the answer's JSON (invalid UTF-8 in it replaced, not thrown on: names from URLs may hold any bytes).
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// A request the edge refuses: its status, reason code and message.
struct HttpRefusal {
  int status = 400;
  std::string code;
  std::string message;
};

// Parses one request from `bytes` with the edge's parser and checks, without a socket (the fuzzer's and the
// tests' way in): the request, or the refusal the server would answer (408 `incomplete` when bytes are missing).
std::variant<HttpRequest, HttpRefusal> ParseHttpRequest(std::string_view bytes, const HttpLimits& limits);

class HttpServer;
class StreamWriter;

// Answers one request, once, from any thread. Copies share the answer: the first Send wins, later ones are
// dropped (and logged). The last copy dropped without a Send answers 500 `internal`.
class Responder {
 public:
  Responder() = default;
  void Send(HttpResponse response) const;
  // Answers with a stream instead (server-sent events, one write per token): `head`'s status, content type and
  // headers now, its body ignored, with Transfer-Encoding: chunked; then each StreamWriter::Write as one chunk, in
  // order. `gone` runs once, on the loop thread, if the connection closes before the stream's End (the client went
  // away, a write timed out, the server stopped): the producer should stop, and its later writes are dropped. An
  // empty StreamWriter when the request was answered already.
  StreamWriter Stream(HttpResponse head, std::function<void()> gone) const;
  // For a request whose answer takes long (a generation answered whole): `gone` runs once, on the loop thread, if
  // the client closes the connection before the answer is written, so the work behind it can stop; a later Send
  // is dropped. While the request is handled, one read watches the socket (bytes of a pipelined request it brings
  // wait in the buffer). Nothing runs when the request was answered already.
  void OnGone(std::function<void()> gone) const;
  bool valid() const { return exchange_ != nullptr; }

 private:
  friend class HttpServer;
  friend class StreamWriter;
  struct Exchange;
  explicit Responder(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
  std::shared_ptr<Exchange> exchange_;
};

// A streamed answer's body, from any thread. The last copy dropped before End cuts the connection, so that the
// client sees the stream broken rather than complete.
class StreamWriter {
 public:
  StreamWriter() = default;
  void Write(std::string bytes) const;  // one chunk; empty bytes are skipped
  void End() const;                     // the last chunk; the connection then takes its next request
  bool valid() const { return exchange_ != nullptr; }

 private:
  friend class Responder;
  explicit StreamWriter(std::shared_ptr<Responder::Exchange> exchange) : exchange_(std::move(exchange)) {}
  std::shared_ptr<Responder::Exchange> exchange_;
};

using HttpHandler = std::function<void(HttpRequest&&, Responder)>;

// The body limit of one request, from its method and target, once its headers are in: a route that knows how
// large its bodies can be (an infer call: its function's sample size) refuses a larger one with 413 before
// reading it. Called on the loop thread; must not block. The result is capped at HttpLimits::max_body_bytes.
using BodyLimit = std::function<size_t(std::string_view method, std::string_view target)>;

// Counters of the edge, for /metrics. Refusals by reason code ("header_timeout", "body_timeout",
// "headers_too_large", "target_too_long", "body_too_large", "inflight_bytes", "bad_request", ...).
struct EdgeStats {
  uint64_t connections_open = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_evicted = 0;  // idle ones closed to make room
  uint64_t idle_closed = 0;          // idle past idle_timeout
  uint64_t requests = 0;             // whose headers were read
  uint64_t streams = 0;              // answers streamed
  uint64_t streams_cut = 0;          // ... whose connection closed before their end
  uint64_t abandoned = 0;            // requests watched with OnGone whose client left before the answer
  uint64_t inflight_bytes = 0;
  std::map<std::string, uint64_t> refusals;
};

class EventLoop;

class HttpServer {
 public:
  // `loop`: the event loop to serve on, shared with other work (api/event_loop.h), started and stopped by its
  // owner, after this server's Stop. REQUIRES: outlives this server. Null: a loop of the server's own.
  HttpServer(HttpLimits limits, HttpHandler handler, BodyLimit body_limit = nullptr, EventLoop* loop = nullptr);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `host`:`port` (0: any free port) and starts its own loop's thread. Returns the bound port. IoError when
  // the address cannot be bound.
  Result<int> Start(const std::string& host, int port);
  // Closes the listener and every connection, on the loop, and waits for that (and, with a loop of its own, ends
  // it). Answers that arrive later are dropped. Not on the loop's thread.
  void Stop();
  EdgeStats Stats() const;

 private:
  friend struct Responder::Exchange;
  friend class StreamWriter;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Raises this process's open-file limit to its hard limit (logged) and returns the new soft limit.
uint64_t RaiseOpenFileLimit();

}  // namespace fluidfaas::api
