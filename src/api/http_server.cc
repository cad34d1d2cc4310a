#include "api/http_server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <list>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <variant>

#include "api/event_loop.h"
#include "common/mutex.h"

namespace fluidfaas::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Status Validate(const HttpLimits& l) {
  const std::pair<const char*, Duration> durations[] = {{"idle_timeout", l.idle_timeout},
                                                        {"header_timeout", l.header_timeout},
                                                        {"body_timeout", l.body_timeout},
                                                        {"write_timeout", l.write_timeout}};
  for (const auto& [name, d] : durations) {
    if (d <= Duration{0}) return Status::InvalidArgument(std::string(name) + " must be positive");
  }
  const std::pair<const char*, size_t> sizes[] = {
      {"max_connections", l.max_connections},   {"max_header_bytes", l.max_header_bytes},
      {"max_header_count", l.max_header_count}, {"max_target_bytes", l.max_target_bytes},
      {"max_body_bytes", l.max_body_bytes},     {"max_inflight_bytes", l.max_inflight_bytes}};
  for (const auto& [name, n] : sizes) {
    if (n == 0) return Status::InvalidArgument(std::string(name) + " must be positive");
  }
  if (l.listen_backlog <= 0) return Status::InvalidArgument("listen_backlog must be positive");
  return Status::Ok();
}

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::chrono::steady_clock::duration Steady(Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

bool HttpRequest::HasHeader(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
}

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  return HttpResponse{.status = status, .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

HttpResponse JsonError(int status, std::string_view message, std::string_view code) {
  return JsonResponse(status, {{"error", message}, {"code", code}});
}

namespace {

using RequestParser = http::request_parser<http::string_body>;

// The refusal of a request whose headers did not parse (`ec`) or break a limit; none when it may go on. One rule
// for the server and for ParseHttpRequest (the fuzzer's and the tests' way in).
std::optional<HttpRefusal> CheckHead(beast::error_code ec, const RequestParser& parser, const HttpLimits& limits) {
  if (ec == http::error::header_limit) {
    // The request line alone over its limit (not parsed yet, or a long target) is a 414; else the headers are.
    const size_t target = parser.get().target().size();
    if (target == 0 || target > limits.max_target_bytes) {
      return HttpRefusal{414, "target_too_long",
                         "the request line is over " + std::to_string(limits.max_target_bytes) + " bytes"};
    }
    return HttpRefusal{431, "headers_too_large",
                       "the headers are over " + std::to_string(limits.max_header_bytes) + " bytes"};
  }
  if (ec == http::error::body_limit) {
    return HttpRefusal{413, "body_too_large", "the body is over " + std::to_string(limits.max_body_bytes) + " bytes"};
  }
  if (ec) return HttpRefusal{400, "bad_request", "malformed request: " + ec.message()};
  const auto& head = parser.get();
  if (head.target().size() > limits.max_target_bytes) {
    return HttpRefusal{414, "target_too_long",
                       "the request target is over " + std::to_string(limits.max_target_bytes) + " bytes"};
  }
  size_t fields = 0;
  size_t lengths = 0;
  for (const auto& f : head) {
    ++fields;
    if (f.name() == http::field::content_length) ++lengths;
  }
  if (fields > limits.max_header_count) {
    return HttpRefusal{431, "headers_too_large",
                       "more than " + std::to_string(limits.max_header_count) + " header fields"};
  }
  if (lengths > 1) return HttpRefusal{400, "bad_request", "more than one Content-Length field"};
  return std::nullopt;
}

// The request a parsed message is, its body moved out.
HttpRequest ToRequest(http::request<http::string_body>&& message) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.headers.reserve(8);
  for (const auto& f : message) request.headers.emplace_back(f.name_string(), f.value());
  request.body = std::move(message.body());
  return request;
}

}  // namespace

std::variant<HttpRequest, HttpRefusal> ParseHttpRequest(std::string_view bytes, const HttpLimits& limits) {
  RequestParser parser;
  parser.header_limit(static_cast<std::uint32_t>(std::min<size_t>(limits.max_header_bytes, UINT32_MAX)));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  beast::error_code ec;
  const size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec == http::error::need_more) return HttpRefusal{408, "incomplete", "the request is incomplete"};
  if (!parser.is_header_done() || ec) {
    if (!ec) ec = http::error::partial_message;
    return *CheckHead(ec, parser, limits);
  }
  if (auto refusal = CheckHead({}, parser, limits)) return *refusal;
  if (!parser.is_done()) {
    beast::error_code body_ec;
    parser.put(asio::buffer(bytes.data() + used, bytes.size() - used), body_ec);
    if (body_ec && body_ec != http::error::need_more) return *CheckHead(body_ec, parser, limits);
    if (!parser.is_done()) return HttpRefusal{408, "incomplete", "the body is incomplete"};
  }
  return ToRequest(parser.release());
}

// ---------------------------------------------------------------------------------------------------- the server

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  class Connection;

  Impl(HttpLimits l, HttpHandler h, BodyLimit b, EventLoop* shared)
      : limits(l),
        handler(std::move(h)),
        body_limit(std::move(b)),
        own_loop(shared == nullptr ? std::make_unique<EventLoop>() : nullptr),
        loop(shared == nullptr ? *own_loop : *shared) {}

  const HttpLimits limits;
  const HttpHandler handler;
  const BodyLimit body_limit;
  const std::unique_ptr<EventLoop> own_loop;  // when none is shared with the server
  EventLoop& loop;
  asio::io_context& io = loop.io();
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  bool started = false;

  // Loop thread only.
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections;
  std::list<Connection*> idle;  // oldest first
  bool stopping = false;

  // Answers from other threads: queued here and handed to the loop by one posted drain, so a thread that answers
  // a batch of requests wakes the loop once, not once per answer. Refused once the loop is stopped, so nothing is
  // queued on a dead loop.
  // A posted item: a whole answer, or a stream's head, chunk, end or cut (its producer dropped it unended).
  struct Posted {
    enum class Kind { kAnswer, kStreamHead, kChunk, kEnd, kCut, kWatch } kind = Kind::kAnswer;
    std::weak_ptr<Connection> connection;
    HttpResponse response;       // kAnswer, kStreamHead; kChunk: the bytes in its body
    std::function<void()> gone;  // kStreamHead, kWatch
  };
  Mutex post_mu;
  bool stopped GUARDED_BY(post_mu) = false;
  std::vector<Posted> answers GUARDED_BY(post_mu);
  void DrainAnswers();

  mutable Mutex stats_mu;
  EdgeStats stats GUARDED_BY(stats_mu);

  void Count(const std::string& refusal) {
    MutexLock lock(stats_mu);
    ++stats.refusals[refusal];
  }
  template <typename F>
  void Update(F&& f) {
    MutexLock lock(stats_mu);
    f(stats);
  }

  void Accept();
  void CloseOldestIdle();

  // Every connection's deadline, checked each `sweep_every` (a tenth of the shortest timeout, 1 to 100 ms): a
  // deadline is enforced at most that late.
  asio::steady_timer sweep{io};
  std::chrono::steady_clock::duration sweep_every{};
  void Sweep();

  // Stop's work on the loop thread: the listener and every connection closed.
  void CloseAll();
};

struct Responder::Exchange {
  using Kind = HttpServer::Impl::Posted::Kind;
  std::shared_ptr<HttpServer::Impl> server;
  std::weak_ptr<HttpServer::Impl::Connection> connection;
  std::atomic<bool> sent{false};
  std::atomic<bool> streaming{false};
  std::atomic<bool> ended{false};
  ~Exchange() {
    if (!sent.load()) {
      Post(Kind::kAnswer, JsonError(500, "the request was dropped without an answer", "internal"));
    } else if (streaming.load() && !ended.load()) {
      Post(Kind::kCut, {});
    }
  }
  void Post(Kind kind, HttpResponse response, std::function<void()> gone = nullptr);
};

class HttpServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Phase { kIdle, kHeader, kBody, kHandling, kWriting, kStreaming, kLingering, kClosed };

  Connection(std::shared_ptr<Impl> server, tcp::socket socket)
      : keep_(std::move(server)), server_(*keep_), socket_(std::move(socket)) {}

  void Start() { WaitForRequest(); }

  // The answer to the request being handled (loop thread).
  void Answer(HttpResponse response) {
    if (phase_ != Phase::kHandling) return;
    handling_gone_ = nullptr;
    Write(std::move(response), /*close=*/!keep_alive_);
  }

  // Responder::OnGone (loop thread): the client leaving before the answer runs `gone`.
  void WatchHandling(std::function<void()> gone) {
    if (phase_ != Phase::kHandling) return;  // answered (or closed) already
    handling_gone_ = std::move(gone);
    Watch();
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    if (phase_ == Phase::kIdle) server_.idle.erase(idle_at_);
    const bool cut = phase_ == Phase::kStreaming;
    const bool abandoned = phase_ == Phase::kHandling && handling_gone_;
    phase_ = Phase::kClosed;
    if (cut) {
      server_.Update([](EdgeStats& s) { ++s.streams_cut; });
      if (auto gone = std::move(stream_gone_)) gone();
    }
    if (abandoned) {
      server_.Update([](EdgeStats& s) { ++s.abandoned; });
      if (auto gone = std::move(handling_gone_)) gone();
    }
    ReleaseInflight();
    Disarm();
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_.Update([](EdgeStats& s) { --s.connections_open; });
    server_.connections.erase(this);  // may destroy *this: nothing after
  }

  // Accepted over the connection limit with none idle to close: answered 503 at once, then closed.
  void Overflow() { Refuse(503, "every connection the node takes is busy; retry", "connections", /*linger=*/false); }

  // A streamed answer (loop thread): its head, then chunks, then its end. While it streams, one read watches the
  // socket: the client closing it ends the stream (`gone`); bytes of a next request it brings wait in the buffer.
  void StreamHead(const HttpResponse& head, std::function<void()> gone) {
    if (phase_ != Phase::kHandling) {
      if (gone) gone();
      return;
    }
    phase_ = Phase::kStreaming;
    handling_gone_ = nullptr;  // the stream's `gone` takes over
    stream_gone_ = std::move(gone);
    close_after_write_ = !keep_alive_ || server_.stopping;
    server_.Update([](EdgeStats& s) { ++s.streams; });
    std::string& out = stream_out_;
    out.append("HTTP/1.1 ").append(std::to_string(head.status)).append(" ");
    out.append(http::obsolete_reason(static_cast<http::status>(head.status)));
    out.append("\r\nServer: fluidfaas\r\nContent-Type: ").append(head.content_type);
    out.append("\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n");
    for (const auto& [k, v] : head.headers) out.append(k).append(": ").append(v).append("\r\n");
    if (close_after_write_) out += "Connection: close\r\n";
    out += "\r\n";
    Flush();
    Watch();
  }

  // One read that watches the socket while a request is handled or streamed: the client closing it closes the
  // connection (the producer hears `gone`); bytes of a next request it brings wait in the buffer, and once the
  // answer is written the same read goes on as the idle connection's. None when a pipelined request is read
  // already (it waits for this answer) or one is pending.
  void Watch() {
    if (watching_ || buffer_.size() > 0) return;
    watching_ = true;
    socket_.async_read_some(buffer_.prepare(kIdleReadBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->watching_ = false;
                              if (self->phase_ == Phase::kClosed) return;
                              self->buffer_.commit(n);
                              if (ec || n == 0 || self->timed_out_) {
                                if (self->phase_ == Phase::kIdle && self->timed_out_)
                                  self->server_.Update([](EdgeStats& s) { ++s.idle_closed; });
                                return self->Close();  // the client went away (the producer hears `gone`)
                              }
                              if (self->phase_ == Phase::kIdle) {  // the answer was written: this is the next request
                                self->server_.idle.erase(self->idle_at_);
                                self->ReadHeader();
                              }
                            });
  }
  void StreamChunk(const std::string& bytes) {
    if (phase_ != Phase::kStreaming || stream_ended_ || bytes.empty()) return;
    char size[24];
    const int len = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    stream_out_.append(size, static_cast<size_t>(len)).append(bytes).append("\r\n");
    Flush();
  }
  // The producer dropped the stream without its end: the connection is cut, so the client sees it broken.
  // What was written before goes out first.
  void CutStream() {
    if (phase_ != Phase::kStreaming || stream_ended_) return;
    stream_cut_ = true;
    if (!stream_writing_) Close();
  }
  void StreamEnd() {
    if (phase_ != Phase::kStreaming || stream_ended_) return;
    stream_ended_ = true;
    stream_out_ += "0\r\n\r\n";
    Flush();
  }

 private:
  // Waits for the next request's first bytes with one read of up to kIdleReadBytes: a connection holds no parser
  // while idle, and a buffer of at most that size. A read, not a wait for readability: asio re-arms the socket's
  // epoll registration (epoll_ctl) for every wait, where a read that found the socket drained is queued on the
  // registration it has, and a read that drains it tells asio to skip the next speculative read.
  static constexpr size_t kIdleReadBytes = 2048;
  void WaitForRequest() {
    if (buffer_.size() > 0) return ReadHeader();                           // a pipelined request already read
    if (buffer_.capacity() > 4 * kIdleReadBytes) buffer_.shrink_to_fit();  // a large request's buffer is not kept
    phase_ = Phase::kIdle;
    idle_at_ = server_.idle.insert(server_.idle.end(), this);
    Arm(server_.limits.idle_timeout);
    socket_.async_read_some(buffer_.prepare(kIdleReadBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (self->phase_ != Phase::kIdle) return;
                              self->buffer_.commit(n);
                              self->server_.idle.erase(self->idle_at_);
                              self->phase_ = Phase::kHeader;
                              if (ec || self->timed_out_ || n == 0) {
                                if (self->timed_out_) self->server_.Update([](EdgeStats& s) { ++s.idle_closed; });
                                return self->Close();
                              }
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    phase_ = Phase::kHeader;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<size_t>(server_.limits.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_.limits.max_body_bytes);
    Arm(server_.limits.header_timeout);
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (timed_out_)
      return Refuse(408, "the request's headers did not arrive within the header deadline", "header_timeout",
                    /*linger=*/false);
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset) {
      return Close();  // the client went away between or during requests
    }
    if (auto refusal = CheckHead(ec, *parser_, server_.limits)) {
      return Refuse(refusal->status, refusal->message, refusal->code);
    }
    server_.Update([](EdgeStats& s) { ++s.requests; });
    const auto& head = parser_->get();
    keep_alive_ = parser_->keep_alive();
    body_limit_ = server_.limits.max_body_bytes;
    if (server_.body_limit) {
      body_limit_ = std::min(body_limit_, server_.body_limit(head.method_string(), head.target()));
    }
    if (parser_->content_length() && *parser_->content_length() > body_limit_) return RefuseBodyTooLarge();
    // Reserve the body's bytes in the budget before reading them (chunked bodies reserve as they arrive).
    const size_t declared = parser_->content_length() ? static_cast<size_t>(*parser_->content_length()) : 0;
    if (!Reserve(declared)) return RefuseInflight();
    if (parser_->is_done()) return Dispatch();
    phase_ = Phase::kBody;
    Arm(server_.limits.body_timeout);
    if (EqualsIgnoreCase(head[http::field::expect], "100-continue")) {
      continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, head.version());
      return http::async_write(socket_, *continue_, [self = shared_from_this()](beast::error_code wec, size_t) {
        if (self->phase_ == Phase::kClosed) return;
        if (wec) return self->Close();
        self->ReadBody();
      });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read_some(socket_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (timed_out_) {
      return Refuse(408, "the body did not arrive within the body deadline", "body_timeout", /*linger=*/false);
    }
    if (ec == http::error::body_limit) return RefuseBodyTooLarge();
    if (ec == asio::error::eof || ec == http::error::partial_message || ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec) return Refuse(400, "malformed body: " + ec.message(), "bad_request");
    if (parser_->get().body().size() > body_limit_) return RefuseBodyTooLarge();
    if (!Reserve(parser_->get().body().size())) return RefuseInflight();
    if (!parser_->is_done()) return ReadBody();
    Dispatch();
  }

  void Dispatch() {
    Disarm();
    phase_ = Phase::kHandling;
    HttpRequest request = ToRequest(parser_->release());
    parser_.reset();
    auto exchange = std::make_shared<Responder::Exchange>();
    exchange->server = server_.shared_from_this();
    exchange->connection = weak_from_this();
    try {
      server_.handler(std::move(request), Responder(std::move(exchange)));
    } catch (const std::exception& e) {
      spdlog::error("http: a handler threw: {}", e.what());  // its Responder answers 500 when dropped
    }
  }

  // A refusal: the rest of the request is not read, so the connection closes after the answer, lingering (below)
  // unless `linger` is false: a connection over the limit, or a client too slow to finish its request in time
  // (a slow sender loses nothing to a reset, and lingering would hold its connection longer), goes at once.
  void Refuse(int status, const std::string& message, const std::string& code, bool linger = true) {
    server_.Count(code);
    HttpResponse r = JsonError(status, message, code);
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    linger_after_write_ = linger;
    Write(std::move(r), /*close=*/true);
  }

  // A refusal's close. The client may still be sending the rest of its request, and a close with unread bytes
  // resets the connection, which can discard the answer before the client has read it (RFC 9112 9.6; seen as
  // status 0 for a 413 in edge_daemon_test). So the server stops sending, reads and drops what still comes, and
  // closes when the client does, or after kLingerTime or kLingerBytes, as nginx's lingering close does.
  static constexpr Duration kLingerTime = Seconds(2);
  static constexpr size_t kLingerBytes = size_t{64} << 20;  // 2 s of loopback at most; a slow sender meets the time
  void Linger() {
    phase_ = Phase::kLingering;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    Arm(std::min(kLingerTime, server_.limits.body_timeout));
    DropIncoming();
  }
  void DropIncoming() {
    buffer_.consume(buffer_.size());
    socket_.async_read_some(buffer_.prepare(16 << 10), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (self->phase_ != Phase::kLingering) return;
      self->lingered_ += n;
      if (ec || self->timed_out_ || self->lingered_ > kLingerBytes) return self->Close();
      self->DropIncoming();
    });
  }
  void RefuseBodyTooLarge() {
    Refuse(413, "the body is over " + std::to_string(body_limit_) + " bytes, this request's limit", "body_too_large");
  }
  void RefuseInflight() { Refuse(503, "the node holds too many request bytes at once; retry", "inflight_bytes"); }

  bool Reserve(size_t bytes) {
    if (bytes <= reserved_) return true;
    const size_t more = bytes - reserved_;
    MutexLock lock(server_.stats_mu);
    if (server_.stats.inflight_bytes + more > server_.limits.max_inflight_bytes) return false;
    server_.stats.inflight_bytes += more;
    reserved_ = bytes;
    return true;
  }
  void ReleaseInflight() {
    if (reserved_ == 0) return;
    server_.Update([n = reserved_](EdgeStats& s) { s.inflight_bytes -= n; });
    reserved_ = 0;
  }

  void Write(HttpResponse r, bool close) {
    phase_ = Phase::kWriting;
    close_after_write_ = close || server_.stopping;
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "fluidfaas");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->insert(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(!close_after_write_);
    res->prepare_payload();
    Arm(server_.limits.write_timeout);
    http::async_write(socket_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (self->phase_ == Phase::kClosed) return;
      self->Disarm();
      self->ReleaseInflight();
      if (ec || self->timed_out_) return self->Close();
      if (self->close_after_write_) {
        // No second read while the watch read is pending.
        return self->linger_after_write_ && !self->watching_ ? self->Linger() : self->Close();
      }
      self->NextRequest();
    });
  }

  // After an answer: the next request, read already, or awaited by the watch read if one is pending, else by a
  // new read.
  void NextRequest() {
    if (!watching_) return WaitForRequest();
    phase_ = Phase::kIdle;
    idle_at_ = server_.idle.insert(server_.idle.end(), this);
    Arm(server_.limits.idle_timeout);
  }

  // Writes what the stream has queued, one write at a time; once its end is written, the connection closes or
  // takes its next request.
  void Flush() {
    if (stream_writing_ || stream_out_.empty()) return;
    stream_writing_ = true;
    stream_inflight_.clear();
    stream_inflight_.swap(stream_out_);
    Arm(server_.limits.write_timeout);
    asio::async_write(socket_, asio::buffer(stream_inflight_),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->stream_writing_ = false;
                        if (self->phase_ == Phase::kClosed) return;
                        self->Disarm();
                        if (ec || self->timed_out_) return self->Close();
                        if (!self->stream_out_.empty()) return self->Flush();
                        if (self->stream_ended_) return self->FinishStream();
                        if (self->stream_cut_) self->Close();
                      });
  }
  void FinishStream() {
    phase_ = Phase::kWriting;  // ended: a close now is no cut
    stream_gone_ = nullptr;
    stream_ended_ = false;
    ReleaseInflight();
    if (close_after_write_) return Close();
    NextRequest();
  }

  // The deadline of the current phase, checked by the server's sweep (Impl::Sweep) rather than by a timer per
  // connection: arming one costs a clock read, where an asio timer cost an allocation, a heap update and, when
  // cancelled, a handler run, three times per request.
  void Arm(Duration d) {
    timed_out_ = false;
    deadline_ = std::chrono::steady_clock::now() + Steady(d);
  }
  void Disarm() { deadline_ = kNever; }

 public:
  static constexpr std::chrono::steady_clock::time_point kNever = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }

  // Past its deadline: the socket's operation is cancelled and its handler sees timed_out_; a write is abandoned.
  void Expire() {
    if (phase_ == Phase::kClosed) return;
    Disarm();
    timed_out_ = true;
    beast::error_code ignored;
    socket_.cancel(ignored);
    if (phase_ == Phase::kWriting || phase_ == Phase::kStreaming) Close();
  }

 private:
  // Kept alive by its connections: on a shared loop, a closed connection's last handlers may run after Stop.
  // The cycle (the server's table holds its connections) ends when a connection leaves the table.
  const std::shared_ptr<Impl> keep_;
  Impl& server_;
  tcp::socket socket_;
  std::chrono::steady_clock::time_point deadline_ = kNever;
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::empty_body>> continue_;
  Phase phase_ = Phase::kIdle;
  std::list<Connection*>::iterator idle_at_;
  size_t reserved_ = 0;
  size_t body_limit_ = 0;  // of the request being read
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  bool linger_after_write_ = false;  // a refusal: the close lingers (Linger)
  size_t lingered_ = 0;              // bytes read and dropped while lingering
  // A streamed answer's state.
  std::function<void()> stream_gone_;
  std::function<void()> handling_gone_;  // Responder::OnGone, while the request is handled
  std::string stream_out_;               // queued, not yet written
  std::string stream_inflight_;          // being written
  bool stream_writing_ = false;
  bool stream_ended_ = false;
  bool stream_cut_ = false;
  bool watching_ = false;  // the read that watches for the client's close is pending
};

void Responder::Exchange::Post(Kind kind, HttpResponse response, std::function<void()> gone) {
  {
    MutexLock lock(server->post_mu);
    if (!server->stopped) {
      server->answers.push_back({kind, connection, std::move(response), std::move(gone)});
      if (server->answers.size() == 1) asio::post(server->io, [s = server] { s->DrainAnswers(); });
      return;
    }
  }
  if (gone) gone();  // a stream's head on a stopped server: its producer must still hear it
}

void HttpServer::Impl::DrainAnswers() {
  std::vector<Posted> ready;
  {
    MutexLock lock(post_mu);
    ready.swap(answers);
  }
  using Kind = Posted::Kind;
  for (Posted& p : ready) {
    auto conn = p.connection.lock();
    if (!conn) {
      if (p.gone) p.gone();
      continue;
    }
    switch (p.kind) {
      case Kind::kAnswer: conn->Answer(std::move(p.response)); break;
      case Kind::kStreamHead: conn->StreamHead(p.response, std::move(p.gone)); break;
      case Kind::kChunk: conn->StreamChunk(p.response.body); break;
      case Kind::kEnd: conn->StreamEnd(); break;
      case Kind::kCut: conn->CutStream(); break;
      case Kind::kWatch: conn->WatchHandling(std::move(p.gone)); break;
    }
  }
}

void Responder::Send(HttpResponse response) const {
  if (!exchange_) return;
  if (exchange_->sent.exchange(true)) {
    spdlog::warn("http: a second answer to one request was dropped");
    return;
  }
  exchange_->Post(Exchange::Kind::kAnswer, std::move(response));
}

void Responder::OnGone(std::function<void()> gone) const {
  if (!exchange_ || exchange_->sent.load()) return;
  exchange_->Post(Exchange::Kind::kWatch, {}, std::move(gone));
}

StreamWriter Responder::Stream(HttpResponse head, std::function<void()> gone) const {
  if (!exchange_ || exchange_->sent.exchange(true)) return StreamWriter();
  exchange_->streaming = true;
  exchange_->Post(Exchange::Kind::kStreamHead, std::move(head), std::move(gone));
  return StreamWriter(exchange_);
}

void StreamWriter::Write(std::string bytes) const {
  if (!exchange_ || exchange_->ended.load() || bytes.empty()) return;
  HttpResponse chunk;
  chunk.body = std::move(bytes);
  exchange_->Post(Responder::Exchange::Kind::kChunk, std::move(chunk));
}

void StreamWriter::End() const {
  if (!exchange_ || exchange_->ended.exchange(true)) return;
  exchange_->Post(Responder::Exchange::Kind::kEnd, {});
}

void HttpServer::Impl::Sweep() {
  sweep.expires_after(sweep_every);
  sweep.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->stopping) return;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<Connection>> expired;
    for (const auto& [ptr, conn] : self->connections) {
      if (ptr->deadline() <= now) expired.push_back(conn);
    }
    for (const auto& conn : expired) conn->Expire();  // may close, and so erase from `connections`
    self->Sweep();
  });
}

void HttpServer::Impl::CloseOldestIdle() {
  if (idle.empty()) return;
  Connection* oldest = idle.front();
  Update([](EdgeStats& s) { ++s.connections_evicted; });
  oldest->Close();
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopping) return;
    if (ec) {
      // Out of descriptors (EMFILE/ENFILE) or a transient error: free an idle connection's descriptor and retry
      // shortly, rather than spinning.
      spdlog::warn("http: accept: {}", ec.message());
      self->Count("accept_failed");
      self->CloseOldestIdle();
      self->accept_retry.expires_after(std::chrono::milliseconds(20));
      self->accept_retry.async_wait([self](beast::error_code wec) {
        if (!wec && !self->stopping) self->Accept();
      });
      return;
    }
    if (self->connections.size() >= self->limits.max_connections) self->CloseOldestIdle();
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // an answer is one write: never wait for the last ACK
    auto conn = std::make_shared<Connection>(self, std::move(socket));
    self->Update([](EdgeStats& s) {
      ++s.connections_open;
      ++s.connections_accepted;
    });
    self->connections.emplace(conn.get(), conn);
    if (self->connections.size() > self->limits.max_connections) {
      // Every connection is busy reading or being answered: this one is told so, and closed.
      conn->Overflow();
    } else {
      conn->Start();
    }
    self->Accept();
  });
}

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler, BodyLimit body_limit, EventLoop* loop)
    : impl_(std::make_shared<Impl>(limits, std::move(handler), std::move(body_limit), loop)) {}

HttpServer::~HttpServer() {
  Stop();
}

Result<int> HttpServer::Start(const std::string& host, int port) {
  if (Status st = Validate(impl_->limits); !st.ok()) return st;
  beast::error_code ec;
  const auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Status::InvalidArgument("cannot listen on '" + host + "': not an IP address");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  tcp::acceptor& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(impl_->limits.listen_backlog, ec);
  if (ec) return Status::IoError("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  const int bound = a.local_endpoint().port();
  const HttpLimits& l = impl_->limits;
  const Duration shortest = std::min({l.idle_timeout, l.header_timeout, l.body_timeout, l.write_timeout});
  impl_->sweep_every =
      std::clamp(Steady(shortest) / 10, std::chrono::steady_clock::duration(std::chrono::milliseconds(1)),
                 std::chrono::steady_clock::duration(std::chrono::milliseconds(100)));
  impl_->Accept();
  impl_->Sweep();
  impl_->started = true;
  if (impl_->own_loop) impl_->own_loop->Start();
  return bound;
}

void HttpServer::Impl::CloseAll() {
  stopping = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  sweep.cancel();
  std::vector<std::shared_ptr<Connection>> open;
  for (auto& [ptr, conn] : connections) open.push_back(conn);
  for (auto& conn : open) conn->Close();
  // Each closed connection has left the table; its handlers still queued hold it (and this server) until they
  // have run.
}

void HttpServer::Stop() {
  Impl& s = *impl_;
  if (!s.started) return;
  s.started = false;
  {
    MutexLock lock(s.post_mu);
    s.stopped = true;
  }
  if (s.own_loop) {
    // The loop is this server's: closing everything leaves it no work, and it ends once the closed connections'
    // handlers have run.
    asio::post(s.io, [impl = impl_] { impl->CloseAll(); });
    s.own_loop->Stop();
    return;
  }
  // A shared loop goes on: the closing runs there, and this waits for it.
  std::promise<void> closed;
  if (!s.loop.Post([impl = impl_, &closed] {
        impl->CloseAll();
        closed.set_value();
      })) {
    return;  // the loop has stopped already: nothing of this server runs any more
  }
  closed.get_future().wait();
}

EdgeStats HttpServer::Stats() const {
  MutexLock lock(impl_->stats_mu);
  return impl_->stats;
}

uint64_t RaiseOpenFileLimit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return 1024;
  const rlim_t before = files.rlim_cur;
  if (files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
      spdlog::warn("open files: cannot raise the limit from {} to {}", before, files.rlim_max);
      return before;
    }
  }
  spdlog::info("open files: limit {} (was {})", files.rlim_cur, before);
  return files.rlim_cur;
}

}  // namespace fluidfaas::api
