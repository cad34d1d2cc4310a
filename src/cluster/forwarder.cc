#include "cluster/forwarder.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "api/event_loop.h"

namespace fluidfaas::cluster {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::chrono::steady_clock::duration Steady(Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
}

// The answer's headers a client of the gateway needs besides Content-Type and Content-Length.
constexpr std::string_view kPassedBack[] = {"Retry-After", "Inference-Header-Content-Length"};

}  // namespace

struct Forwarder::Impl : std::enable_shared_from_this<Forwarder::Impl> {
  struct Exchange;
  explicit Impl(ForwarderOptions opts)
      : o(opts),
        own_loop(o.loop == nullptr ? std::make_unique<api::EventLoop>() : nullptr),
        loop(o.loop == nullptr ? *own_loop : *o.loop) {}
  const ForwarderOptions o;
  const std::unique_ptr<api::EventLoop> own_loop;  // when none is shared with the forwarder
  api::EventLoop& loop;
  asio::io_context& io = loop.io();
  // Loop thread only.
  std::map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> idle;
  std::set<Exchange*> live;
  bool stopping = false;
  std::function<void()> drained;  // on a shared loop, once stopping: called when the last exchange has ended

  // Ends every exchange in flight that `which` picks, with `reason`: its socket closes, its pending read or write
  // fails at once, and Failed ends it.
  void EndWhere(const std::function<bool(const Exchange&)>& which, const std::string& reason) const;
};

constexpr size_t kAnswerReadBytes = 16 << 10;

struct Forwarder::Impl::Exchange : std::enable_shared_from_this<Exchange> {
  std::shared_ptr<Impl> impl;
  std::string address;
  tcp::endpoint endpoint;
  std::shared_ptr<const api::HttpRequest> request;  // owns the body `req` sends
  http::request<http::span_body<const char>> req;
  std::function<void(ForwardResult)> done;
  std::unique_ptr<beast::tcp_stream> stream;
  bool pooled = false;
  bool retried = false;
  std::string aborted;  // Forwarder::Abort's reason
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  std::shared_ptr<const ForwardStream> streaming;  // when the caller takes a stream as it comes
  std::shared_ptr<std::atomic<bool>> stop;         // the caller's client has gone (Interrupt)
  ForwardResult result;

  void Start() {
    impl->live.insert(this);
    if (impl->stopping) return Finish("the gateway is stopping");
    if (stop && stop->load()) return Finish("client_gone");
    auto& pool = impl->idle[address];
    if (!pool.empty()) {
      stream = std::move(pool.back());
      pool.pop_back();
      pooled = true;
      result.reached = true;
      return Write();
    }
    Connect();
  }

  void Connect() {
    stream = std::make_unique<beast::tcp_stream>(impl->io);
    stream->expires_after(Steady(impl->o.connect_timeout));
    stream->async_connect(endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        return self->Finish(self->aborted.empty() ? "cannot connect to " + self->address + ": " + ec.message()
                                                  : self->aborted);
      }
      self->result.reached = true;
      beast::error_code ignored;
      self->stream->socket().set_option(tcp::no_delay(true), ignored);
      self->Write();
    });
  }

  void Write() {
    stream->expires_after(Steady(impl->o.timeout));
    http::async_write(*stream, req, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Failed(ec, /*answer_begun=*/false);
      self->Read();
    });
  }

  void Read() {
    parser.emplace();
    parser->body_limit(impl->o.max_body_bytes);
    // Room for a typical answer in one read: beast sizes each read by the buffer's free capacity (512 bytes at
    // first), and each read is a trip round the loop; a 3 KB answer took seven (strace: 15 epoll_waits a call).
    buffer.reserve(kAnswerReadBytes);
    if (!streaming) {
      http::async_read(*stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t n) {
        if (ec) return self->Failed(ec, n > 0);
        self->Answered();
      });
      return;
    }
    http::async_read_header(*stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->Failed(ec, n > 0);
      const auto& head = self->parser->get();
      if (head.result_int() != 200 || !head[http::field::content_type].starts_with("text/event-stream")) {
        // Not a stream: the rest read whole.
        return http::async_read(*self->stream, self->buffer, *self->parser, [self](beast::error_code rec, size_t) {
          if (rec) return self->Failed(rec, true);
          self->Answered();
        });
      }
      self->parser->body_limit(boost::none);  // a stream is as long as it lasts; what it holds is passed on at once
      self->result.streamed = true;
      self->streaming->head(self->Head(self->parser->get()));
      self->ReadSome();
    });
  }

  // A stream's body, a piece at a time.
  void ReadSome() {
    stream->expires_after(Steady(impl->o.timeout));
    http::async_read_some(*stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
      std::string& body = self->parser->get().body();
      if (!body.empty()) {
        self->streaming->chunk(body);
        body.clear();
      }
      if (ec) return self->Failed(ec, true);
      if (self->parser->is_done()) return self->Answered();
      if (self->stop->load()) {
        beast::error_code ignored;
        self->stream->socket().close(ignored);  // the node hears its client leave and stops
        return self->Finish("client_gone");
      }
      self->ReadSome();
    });
  }

  // The answer's status, type and the headers passed back.
  template <typename Message>
  static api::HttpResponse Head(const Message& res) {
    api::HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    for (std::string_view name : kPassedBack) {
      if (auto it = res.find(beast::string_view(name.data(), name.size())); it != res.end()) {
        out.headers.emplace_back(std::string(name), std::string(it->value()));
      }
    }
    return out;
  }

  // A pooled connection the node had closed: once more on a new one, if no answer had begun.
  void Failed(const beast::error_code& ec, bool answer_begun) {
    if (!aborted.empty()) return Finish(aborted);
    if (pooled && !retried && !answer_begun && !impl->stopping) {
      retried = true;
      pooled = false;
      buffer.clear();
      return Connect();
    }
    Finish(address + ": " + ec.message());
  }

  void Answered() {
    http::response<http::string_body> res = parser->release();
    result.answered = true;
    result.response = Head(res);
    result.response.body = std::move(res.body());
    if (res.keep_alive() && !impl->stopping && buffer.size() == 0) {
      auto& pool = impl->idle[address];
      if (pool.size() < impl->o.max_idle_per_node) {
        stream->expires_never();
        pool.push_back(std::move(stream));
      }
    }
    Finish("");
  }

  void Finish(const std::string& error) {
    impl->live.erase(this);
    // Posted: it runs once this callback (which may send a retry that ends at once) has unwound.
    if (impl->stopping && impl->live.empty() && impl->drained)
      asio::post(impl->io, std::exchange(impl->drained, nullptr));
    if (!done) return;
    result.error = error;
    auto d = std::move(done);
    done = nullptr;
    d(std::move(result));
  }
};

Forwarder::Forwarder(ForwarderOptions options) : impl_(std::make_shared<Impl>(options)) {
  if (impl_->own_loop) impl_->own_loop->Start();
}

void Forwarder::Impl::EndWhere(const std::function<bool(const Exchange&)>& which, const std::string& reason) const {
  const std::set<Exchange*> ending = live;
  for (Exchange* e : ending) {
    if (!e->stream || !which(*e)) continue;
    e->aborted = reason;
    beast::error_code ignored;
    e->stream->socket().close(ignored);  // the node sees the close
  }
}

Forwarder::~Forwarder() {
  // Every exchange in flight is cancelled on the loop, and ends (done() with answered = false) there. On a shared
  // loop, which goes on, this waits for the last one: their callbacks reach the caller's state.
  auto drained = std::make_shared<std::promise<void>>();
  asio::post(impl_->io, [impl = impl_, drained, shared = impl_->own_loop == nullptr] {
    impl->stopping = true;
    impl->idle.clear();
    const std::set<Impl::Exchange*> live = impl->live;
    for (Impl::Exchange* e : live) {
      if (e->stream) e->stream->cancel();
    }
    if (!shared) return;
    if (impl->live.empty()) return drained->set_value();
    impl->drained = [drained] { drained->set_value(); };
  });
  if (impl_->own_loop) {
    impl_->own_loop->Stop();  // ends once the cancelled exchanges have finished
    return;
  }
  if (drained->get_future().wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    spdlog::error("forwarder: exchanges still open 5 s after the stop; left to the loop");
  }
}

void Forwarder::Forget(const std::string& address) {
  asio::post(impl_->io, [impl = impl_, address] { impl->idle.erase(address); });
}

void Forwarder::Abort(const std::string& address, const std::string& reason) {
  asio::post(impl_->io, [impl = impl_, address, reason] {
    impl->idle.erase(address);
    impl->EndWhere([&](const Impl::Exchange& e) { return e.address == address; }, reason);
  });
}

void Forwarder::Interrupt(const std::shared_ptr<std::atomic<bool>>& stop) {
  asio::post(impl_->io, [impl = impl_, stop] {
    impl->EndWhere([&](const Impl::Exchange& e) { return e.stop == stop; }, "client_gone");
  });
}

void Forwarder::Send(const std::string& address, std::shared_ptr<const api::HttpRequest> request,
                     std::function<void(ForwardResult)> done, std::shared_ptr<const ForwardStream> stream,
                     std::shared_ptr<std::atomic<bool>> stop) {
  auto x = std::make_shared<Impl::Exchange>();
  x->impl = impl_;
  x->stop = stop ? std::move(stop) : stream ? stream->stop : nullptr;
  x->streaming = std::move(stream);
  x->address = address;
  x->done = std::move(done);
  const size_t colon = address.rfind(':');
  beast::error_code ec;
  const std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  const auto ip = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  int port = 0;
  if (colon != std::string::npos) port = std::atoi(address.c_str() + colon + 1);
  if (ec || port <= 0 || port > 65535) {
    ForwardResult r;
    r.error = "the node's address '" + address + "' is not IP:PORT";
    return x->done(std::move(r));
  }
  x->endpoint = tcp::endpoint(ip, static_cast<unsigned short>(port));
  x->req.method_string(request->method);
  x->req.target(request->target);
  x->req.version(11);
  for (const auto& [name, value] : request->headers) {
    // Hop-by-hop and framing headers are the gateway's own.
    if (beast::iequals(name, "Connection") || beast::iequals(name, "Keep-Alive") ||
        beast::iequals(name, "Transfer-Encoding") || beast::iequals(name, "Content-Length") ||
        beast::iequals(name, "Host") || beast::iequals(name, "Expect")) {
      continue;
    }
    x->req.insert(name, value);
  }
  x->req.set(http::field::host, address);
  x->req.keep_alive(true);
  x->req.body() = {request->body.data(), request->body.size()};
  x->request = std::move(request);
  x->req.prepare_payload();
  // Called on the loop (the gateway's edge shares it): started at once, a loop round sooner. `done` may then run
  // before Send returns, as it does for a bad address.
  if (impl_->io.get_executor().running_in_this_thread()) return x->Start();
  asio::post(impl_->io, [x] { x->Start(); });
}

}  // namespace fluidfaas::cluster
