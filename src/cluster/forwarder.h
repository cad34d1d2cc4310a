// Forwarder: the gateway's HTTP/1.1 client to the nodes, asynchronous on an event loop (Boost.Beast; its own, or
// the gateway edge's),
// with a pool of keep-alive connections per node: a request costs no connect while the node is busy. Any body size
// (tensors do not ride NATS: its max_payload is 1 MiB by default).
//
// A request on a pooled connection that the node had closed meanwhile (its idle timeout) is sent again once on a
// new connection, when not a byte of an answer came back. `reached` tells the caller whether the node accepted a
// connection at all: a node that refuses connections is down, and the request can go elsewhere untried.
//
// Thread safety: Send from any thread; `done` runs on the forwarder's loop thread. The destructor waits until
// every exchange has ended.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "common/time.h"

namespace fluidfaas::cluster {

struct ForwardResult {
  bool reached = false;   // a connection to the node was made (or reused)
  bool answered = false;  // a whole answer came back (then `response` holds it; streamed: its head only)
  bool streamed = false;  // its body went to the ForwardStream as it came
  api::HttpResponse response;
  std::string error;  // when not answered
};

struct ForwarderOptions {
  Duration connect_timeout = Seconds(2);
  Duration timeout = Seconds(120);  // a request's whole exchange
  size_t max_idle_per_node = 64;
  size_t max_body_bytes = size_t{256} << 20;
  // The event loop to run on, shared (the gateway's edge: a call is read, forwarded and answered on one thread).
  // REQUIRES: it runs until the forwarder is destroyed. Null: a loop of its own.
  api::EventLoop* loop = nullptr;
};

// A node's answer passed on as it comes rather than whole, when it is a stream: status 200, Content-Type
// text/event-stream (server-sent events: a generation's tokens). `head` runs once with its status, type and the
// headers passed back, then `chunk` with each piece of its body, in order, on the forwarder's loop thread; `done`
// follows as for any answer. An answer that is not a stream is read whole, as without one.
struct ForwardStream {
  std::function<void(const api::HttpResponse& head)> head;
  std::function<void(std::string_view bytes)> chunk;
  // Set from any thread when the caller's client has gone: at the stream's next piece the node's connection is
  // closed (so the node stops what it streams), and the exchange ends, not answered, with error "client_gone".
  std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);
};

class Forwarder {
 public:
  explicit Forwarder(ForwarderOptions options = {});
  ~Forwarder();  // stops the loop; requests in flight get done() with answered = false
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Sends `request` (its method, target, headers and body as they are) to `address` (HOST:PORT, an IP address or
  // localhost). `done` runs exactly once. The body is sent from `request` itself, not a copy: a call tried on
  // several nodes shares one.
  //
  // `stop` (a stream's own when null and `stream` is given): set when the caller's client has gone; Interrupt
  // then ends the exchange at once. An exchange started with it set ends at once, error "client_gone".
  void Send(const std::string& address, std::shared_ptr<const api::HttpRequest> request,
            std::function<void(ForwardResult)> done, std::shared_ptr<const ForwardStream> stream = nullptr,
            std::shared_ptr<std::atomic<bool>> stop = nullptr);
  // The exchange sent with `stop` (set by the caller) ends now, not answered, error "client_gone"; its connection
  // to the node is closed, so the node hears its client leave and stops the work (a generation answered whole).
  // Any thread; nothing happens when no such exchange is in flight.
  void Interrupt(const std::shared_ptr<std::atomic<bool>>& stop);
  // Closes the idle connections to `address` (a node that left or went down: they would sit half-closed).
  void Forget(const std::string& address);
  // Gives up on every request in flight to `address` (a node fallen silent: stopped, hung or cut off): each ends
  // now, reached and not answered, with `reason` as its error; idle connections are closed too.
  void Abort(const std::string& address, const std::string& reason);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fluidfaas::cluster
