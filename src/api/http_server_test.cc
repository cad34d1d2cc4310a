#include "api/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "api/test_client.h"

namespace fluidfaas::api {
namespace {

using testing::RawClient;

// An echo server: GET answers "ok"; POST answers the body's size; POST /hold keeps the responder until Release;
// /watch is held too, with OnGone counting in watch_gone_.
class EdgeTest : public ::testing::Test {
 protected:
  void Start(HttpLimits limits) {
    server_ = std::make_unique<HttpServer>(limits, [this](HttpRequest&& req, Responder r) {
      if (req.target == "/hold" || req.target == "/watch") {
        if (req.target == "/watch") r.OnGone([this] { ++watch_gone_; });
        std::lock_guard<std::mutex> lock(mu_);
        held_.push_back(std::move(r));
        return;
      }
      if (req.target == "/drop") return;  // the Responder goes out of scope unanswered
      if (req.target.starts_with("/stream")) return Stream(req.target, std::move(r));
      if (req.target == "/throw") throw std::runtime_error("boom");
      r.Send(HttpResponse{.body = req.method == "GET" ? "ok" : std::to_string(req.body.size())});
    });
    auto port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  void TearDown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_.clear();
      held_streams_.clear();
    }
    if (server_) server_->Stop();
  }
  size_t Held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  // Waits (up to a second) until `n` requests are held by /hold.
  void AwaitHeld(size_t n) {
    for (int i = 0; i < 200 && Held() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  void ReleaseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (Responder& r : held_) r.Send(HttpResponse{.body = "released"});
    held_.clear();
  }
  // A well-formed request from a new connection: answered 200 within `within_s`.
  void ExpectGoodClientServed(double within_s = 1.0) {
    RawClient c(port_);
    ASSERT_TRUE(c.connected());
    const auto r = c.Request(RawClient::Get("/"), 5);
    EXPECT_EQ(r.status, 200);
    EXPECT_LT(r.seconds, within_s);
  }
  static HttpLimits Short() {
    HttpLimits l;
    l.header_timeout = Millis(300);
    l.body_timeout = Millis(300);
    l.idle_timeout = Seconds(5);
    l.max_body_bytes = 64 << 10;
    l.max_header_bytes = 4096;
    l.max_target_bytes = 1024;
    l.max_header_count = 20;
    return l;
  }

  // /stream: three chunks from another thread, then the end. /stream/hold: one chunk, the writer kept (held_streams_)
  // until the test drops it. /stream/drop: one chunk, then the writer dropped without its end.
  void Stream(const std::string& target, Responder r) {
    StreamWriter w = r.Stream(HttpResponse{.content_type = "text/event-stream"}, [this] { ++gone_; });
    if (target == "/stream") {
      std::thread([w] {
        for (const char* c : {"a", "bb", "ccc"}) {
          w.Write(c);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        w.End();
      }).detach();
      return;
    }
    w.Write("first");
    if (target == "/stream/hold") {
      std::lock_guard<std::mutex> lock(mu_);
      held_streams_.push_back(w);
    }
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<Responder> held_;
  std::vector<StreamWriter> held_streams_;
  std::atomic<int> gone_{0};
  std::atomic<int> watch_gone_{0};
};

TEST_F(EdgeTest, ServesKeepAliveAndPipelinedRequestsInOrder) {
  Start(Short());
  RawClient c(port_);
  EXPECT_EQ(c.Request(RawClient::Get("/")).body, "ok");
  EXPECT_EQ(c.Request(RawClient::Post("/", "12345")).body, "5");
  // Two requests in one write: both answered, in order, on the same connection.
  ASSERT_TRUE(c.Send(RawClient::Post("/", "abc") + RawClient::Get("/")));
  EXPECT_EQ(c.Read().body, "3");
  EXPECT_EQ(c.Read().body, "ok");
  EXPECT_EQ(server_->Stats().connections_accepted, 1u);
}

TEST_F(EdgeTest, StreamsChunksFromAnotherThreadThenTakesTheNextRequest) {
  Start(Short());
  RawClient c(port_);
  // The stream, and a request pipelined behind it: answered once the stream has ended, on the same connection.
  ASSERT_TRUE(c.Send(RawClient::Get("/stream") + RawClient::Post("/", "abcd")));
  const RawClient::Chunked s = c.ReadChunked();
  EXPECT_EQ(s.status, 200);
  EXPECT_NE(s.head.find("Transfer-Encoding: chunked"), std::string::npos) << s.head;
  EXPECT_NE(s.head.find("Content-Type: text/event-stream"), std::string::npos) << s.head;
  EXPECT_TRUE(s.complete);
  EXPECT_EQ(s.chunks, (std::vector<std::string>{"a", "bb", "ccc"}));
  EXPECT_EQ(c.Read().body, "4");
  EXPECT_EQ(c.Request(RawClient::Get("/")).body, "ok");
  EXPECT_EQ(server_->Stats().connections_accepted, 1u);
  EXPECT_EQ(server_->Stats().streams, 1u);
  EXPECT_EQ(gone_.load(), 0);
}

TEST_F(EdgeTest, AClientThatLeavesMidStreamIsHeardAsGone) {
  Start(Short());
  {
    RawClient c(port_);
    ASSERT_TRUE(c.Send(RawClient::Get("/stream/hold")));
    const RawClient::Chunked s = c.ReadChunked(0.5);
    EXPECT_EQ(s.chunks, std::vector<std::string>{"first"});
    EXPECT_FALSE(s.complete);
  }  // closed
  for (int i = 0; i < 200 && gone_.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(gone_.load(), 1);
  EXPECT_EQ(server_->Stats().streams_cut, 1u);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_EQ(held_streams_.size(), 1u);
    held_streams_[0].Write("late");  // dropped, harmless
    held_streams_[0].End();
  }
  ExpectGoodClientServed();
  EXPECT_EQ(gone_.load(), 1) << "gone runs once";
}

TEST_F(EdgeTest, AClientThatLeavesAWatchedRequestIsHeardAsGoneOnce) {
  Start(Short());
  {
    RawClient c(port_);
    ASSERT_TRUE(c.Send(RawClient::Get("/watch")));
    AwaitHeld(1);
    ASSERT_EQ(Held(), 1u);
  }  // closed before the answer
  for (int i = 0; i < 200 && watch_gone_.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(watch_gone_.load(), 1);
  EXPECT_EQ(server_->Stats().abandoned, 1u);
  ReleaseAll();  // the late answer is dropped, harmless
  ExpectGoodClientServed();
  EXPECT_EQ(watch_gone_.load(), 1) << "gone runs once";
}

TEST_F(EdgeTest, AWatchedRequestAnsweredKeepsItsConnectionAndThePipelinedRequestBehindIt) {
  Start(Short());
  RawClient c(port_);
  // The watched request, and one pipelined behind it (the watch read may take its bytes): both answered, in order.
  ASSERT_TRUE(c.Send(RawClient::Get("/watch") + RawClient::Post("/", "abcdef")));
  AwaitHeld(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ReleaseAll();
  EXPECT_EQ(c.Read().body, "released");
  EXPECT_EQ(c.Read().body, "6");
  // Watched again, answered, then the connection's next request: the watch read serves as the idle read.
  ASSERT_TRUE(c.Send(RawClient::Get("/watch")));
  AwaitHeld(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ReleaseAll();
  EXPECT_EQ(c.Read().body, "released");
  EXPECT_EQ(c.Request(RawClient::Get("/")).body, "ok");
  EXPECT_EQ(server_->Stats().connections_accepted, 1u);
  EXPECT_EQ(watch_gone_.load(), 0);
  EXPECT_EQ(server_->Stats().abandoned, 0u);
}

TEST_F(EdgeTest, AStreamDroppedWithoutItsEndIsCutNotCompleted) {
  Start(Short());
  RawClient c(port_);
  ASSERT_TRUE(c.Send(RawClient::Get("/stream/drop")));
  const RawClient::Chunked s = c.ReadChunked(2);
  EXPECT_EQ(s.chunks, std::vector<std::string>{"first"});
  EXPECT_FALSE(s.complete) << "the client must not take a cut stream for a whole one";
  EXPECT_TRUE(c.ClosedWithin(1));
  EXPECT_EQ(gone_.load(), 1);
}

TEST_F(EdgeTest, SlowHeadersGet408AtTheDeadlineWhileOthersAreServed) {
  Start(Short());
  RawClient slow(port_);
  ASSERT_TRUE(slow.Send("GET / HTTP/1.1\r\n"));
  std::thread dribble([&] {
    for (int i = 0; i < 20 && slow.Send("X"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  ExpectGoodClientServed();
  const auto r = slow.Read(3);
  dribble.join();
  EXPECT_EQ(r.status, 408);
  EXPECT_NE(r.body.find("header_timeout"), std::string::npos) << r.body;
  EXPECT_LT(r.seconds, 1.0);
  EXPECT_EQ(server_->Stats().refusals["header_timeout"], 1u);
}

TEST_F(EdgeTest, ASlowBodyGets408AtTheBodyDeadline) {
  Start(Short());
  RawClient slow(port_);
  const auto r = slow.Request("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly this", 3);
  EXPECT_EQ(r.status, 408);
  EXPECT_NE(r.body.find("body_timeout"), std::string::npos);
  EXPECT_LT(r.seconds, 1.0);
}

TEST_F(EdgeTest, ABodyOverTheLimitIs413BeforeItIsRead) {
  Start(Short());
  RawClient declared(port_);
  auto r = declared.Request("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 200000000\r\n\r\n");
  EXPECT_EQ(r.status, 413);
  // Chunked: refused as soon as it crosses the limit, although the client goes on sending.
  RawClient chunked(port_);
  ASSERT_TRUE(chunked.Send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "4000\r\n" + std::string(0x4000, 'a') + "\r\n";
  for (int i = 0; i < 64 && chunked.Send(chunk); ++i) {
  }
  r = chunked.Read(3);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("body_too_large"), std::string::npos);
  for (int i = 0; i < 200 && server_->Stats().inflight_bytes > 0; ++i) {  // released when the refusal is written
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->Stats().inflight_bytes, 0u);
  ExpectGoodClientServed();
}

// A client that goes on sending the body the server refused still reads the refusal: the server lingers, reading
// and dropping what comes, instead of closing with unread bytes (which resets the connection and can discard the
// answer before the client reads it).
TEST_F(EdgeTest, AClientStillSendingARefusedBodyReadsTheRefusal) {
  Start(Short());
  // 16 MB, more than the sockets' buffers hold: sent whole before the client reads, as a simple client does. A
  // server that closed at once would fail the send (status 0 here) before the answer is read.
  const std::string body(16 << 20, 'a');
  for (int round = 0; round < 3; ++round) {
    RawClient c(port_);
    const auto r = c.Request(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body, 5);
    ASSERT_EQ(r.status, 413) << "round " << round;
    EXPECT_NE(r.body.find("body_too_large"), std::string::npos);
  }
  ExpectGoodClientServed();
}

TEST_F(EdgeTest, ARoutesOwnBodyLimitRefusesBeforeTheBodyIsRead) {
  server_ = std::make_unique<HttpServer>(
      Short(), [](HttpRequest&& req, Responder r) { r.Send(HttpResponse{.body = std::to_string(req.body.size())}); },
      [](std::string_view, std::string_view target) { return target == "/small" ? size_t{10} : size_t{1} << 30; });
  auto port = server_->Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  port_ = *port;
  RawClient c(port_);
  EXPECT_EQ(c.Request(RawClient::Post("/small", "0123456789")).body, "10");
  EXPECT_EQ(c.Request(RawClient::Post("/small", "0123456789a")).status, 413);
  RawClient chunked(port_);
  EXPECT_EQ(chunked
                .Request("POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "c\r\n0123456789ab\r\n0\r\n\r\n")
                .status,
            413);
  RawClient other(port_);  // capped at max_body_bytes (64 KiB here)
  EXPECT_EQ(other.Request(RawClient::Post("/big", std::string(70 << 10, 'x'))).status, 413);
}

TEST_F(EdgeTest, OversizedHeadersAndTargetsAre431And414) {
  Start(Short());
  RawClient a(port_);
  EXPECT_EQ(a.Request("GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n").status, 414);
  RawClient b(port_);
  EXPECT_EQ(b.Request("GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(8000, 'b') + "\r\n\r\n").status, 431);
  RawClient c(port_);
  std::string many = "GET / HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 30; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(c.Request(many + "\r\n").status, 431);
  // Endless headers are refused at the limit, not read on.
  RawClient d(port_);
  ASSERT_TRUE(d.Send("GET / HTTP/1.1\r\n"));
  for (int i = 0; i < 100 && d.Send("X-Y: " + std::string(100, 'z') + "\r\n"); ++i) {
  }
  EXPECT_EQ(d.Read(3).status, 431);
}

TEST_F(EdgeTest, ConflictingFramingIs400) {
  Start(Short());
  RawClient a(port_);
  auto r = a.Request("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
  EXPECT_EQ(r.status, 400);
  RawClient b(port_);
  r = b.Request("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(r.status, 400);
  RawClient c(port_);
  r = c.Request("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  RawClient d(port_);
  EXPECT_EQ(d.Request("NOT HTTP AT ALL\r\n\r\n").status, 400);
}

TEST_F(EdgeTest, BytesInFlightAreBudgetedAcrossConnections) {
  HttpLimits l = Short();
  l.max_inflight_bytes = 100 << 10;
  l.max_body_bytes = 80 << 10;
  Start(l);
  const std::string body(60 << 10, 'x');
  RawClient first(port_);
  ASSERT_TRUE(first.Send(RawClient::Post("/hold", body)));
  AwaitHeld(1);
  ASSERT_EQ(Held(), 1u);
  EXPECT_EQ(server_->Stats().inflight_bytes, body.size());
  RawClient second(port_);
  const auto refused = second.Request(RawClient::Post("/", body));
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.head.find("Retry-After"), std::string::npos);
  ReleaseAll();
  EXPECT_EQ(first.Read().body, "released");
  RawClient third(port_);
  EXPECT_EQ(third.Request(RawClient::Post("/", body)).body, std::to_string(body.size()));
}

TEST_F(EdgeTest, IdleConnectionsNeverLockANewClientOut) {
  HttpLimits l = Short();
  l.max_connections = 8;
  Start(l);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 8; ++i) {
    idle.push_back(std::make_unique<RawClient>(port_));
    EXPECT_EQ(idle.back()->Request(RawClient::Get("/")).status, 200);
  }
  ExpectGoodClientServed();  // the longest-idle connection was closed to make room
  EXPECT_TRUE(idle.front()->ClosedWithin(2));
  EXPECT_GE(server_->Stats().connections_evicted, 1u);
  EXPECT_LE(server_->Stats().connections_open, 8u);
}

TEST_F(EdgeTest, OverTheLimitWithNoneIdleANewConnectionGets503) {
  HttpLimits l = Short();
  l.max_connections = 2;
  Start(l);
  RawClient a(port_), b(port_);
  ASSERT_TRUE(a.Send(RawClient::Get("/hold")));
  ASSERT_TRUE(b.Send(RawClient::Get("/hold")));
  AwaitHeld(2);
  ASSERT_EQ(Held(), 2u);
  RawClient c(port_);
  const auto r = c.Request(RawClient::Get("/"), 3);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("\"connections\""), std::string::npos) << r.body;
  ReleaseAll();
  EXPECT_EQ(a.Read().body, "released");
}

TEST_F(EdgeTest, IdleConnectionsCloseAfterTheIdleTimeout) {
  HttpLimits l = Short();
  l.idle_timeout = Millis(200);
  Start(l);
  RawClient c(port_);
  EXPECT_EQ(c.Request(RawClient::Get("/")).status, 200);
  EXPECT_TRUE(c.ClosedWithin(2));
  EXPECT_EQ(server_->Stats().idle_closed, 1u);
}

TEST_F(EdgeTest, EveryRequestIsAnsweredOnceEvenWhenItsHandlerDropsOrThrows) {
  Start(Short());
  RawClient c(port_);
  auto r = c.Request(RawClient::Get("/drop"));
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("internal"), std::string::npos);
  r = c.Request(RawClient::Get("/throw"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(c.Request(RawClient::Get("/")).status, 200);  // the connection serves on
}

TEST_F(EdgeTest, AnswersComeFromAnyThreadAndASecondAnswerIsDropped) {
  Start(Short());
  RawClient c(port_);
  ASSERT_TRUE(c.Send(RawClient::Get("/hold")));
  AwaitHeld(1);
  Responder held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_EQ(held_.size(), 1u);
    held = held_.front();
    held_.clear();
  }
  std::thread([held] {
    held.Send(HttpResponse{.body = "first"});
    held.Send(HttpResponse{.body = "second"});
  }).join();
  EXPECT_EQ(c.Read().body, "first");
  EXPECT_EQ(c.Request(RawClient::Get("/")).body, "ok");
}

TEST_F(EdgeTest, ExpectContinueIsHonoured) {
  Start(Short());
  RawClient c(port_);
  ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  const auto interim = c.Read(2);
  EXPECT_EQ(interim.status, 100);
  ASSERT_TRUE(c.Send("abcd"));
  EXPECT_EQ(c.Read().body, "4");
}

TEST_F(EdgeTest, StopWithAnswersStillOwedNeitherHangsNorCrashes) {
  Start(Short());
  RawClient c(port_);
  ASSERT_TRUE(c.Send(RawClient::Get("/hold")));
  AwaitHeld(1);
  server_->Stop();
  EXPECT_TRUE(c.ClosedWithin(2));
  ReleaseAll();  // dropped: the loop is gone
}

TEST(HttpLimitsTest, ZeroLimitsAreRefused) {
  HttpLimits l;
  EXPECT_TRUE(Validate(l).ok());
  l.header_timeout = Duration{0};
  EXPECT_EQ(Validate(l).code(), StatusCode::kInvalidArgument);
  l = HttpLimits{};
  l.max_body_bytes = 0;
  EXPECT_NE(Validate(l).message().find("max_body_bytes"), std::string::npos);
}

TEST(JsonErrorTest, InvalidUtf8IsReplacedNotThrown) {
  const HttpResponse r = JsonError(404, "unknown model '\xff\xfe'", "unknown_function");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("\"code\":\"unknown_function\""), std::string::npos);
  EXPECT_NE(r.body.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
}

}  // namespace
}  // namespace fluidfaas::api

namespace fluidfaas::api {
namespace {

TEST(ParseHttpRequestTest, ParsesOneRequestAsTheServerDoes) {
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_target_bytes = 128;
  limits.max_body_bytes = 16;
  auto ok = ParseHttpRequest("POST /x?y=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", limits);
  ASSERT_TRUE(std::holds_alternative<HttpRequest>(ok));
  EXPECT_EQ(std::get<HttpRequest>(ok).target, "/x?y=1");
  EXPECT_EQ(std::get<HttpRequest>(ok).body, "abc");
  EXPECT_EQ(std::get<HttpRequest>(ok).Header("content-length"), "3");
  const auto status = [&](std::string_view bytes) {
    const auto r = ParseHttpRequest(bytes, limits);
    return std::holds_alternative<HttpRefusal>(r) ? std::get<HttpRefusal>(r).status : 200;
  };
  EXPECT_EQ(status("POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\n"), 413);
  EXPECT_EQ(
      status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'a') + "\r\n0\r\n\r\n"),
      413);
  EXPECT_EQ(status("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n"), 414);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nX: " + std::string(2000, 'b') + "\r\n\r\n"), 431);
  EXPECT_EQ(status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na"), 400);
  EXPECT_EQ(status("GET / HTTP/1.1\r\n"), 408);  // incomplete
  EXPECT_EQ(status("\x01\x02 nonsense\r\n\r\n"), 400);
}

}  // namespace
}  // namespace fluidfaas::api
