// Generation through the daemon: the generate extension and the OpenAI-compatible routes, streamed and whole, over
// the emulated node's GenerationNode; stop strings, errors, a client that leaves mid-stream, shutdown.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "api/test_client.h"
#include "daemon/daemon_test_util.h"

namespace fluidfaas::daemon {
namespace {

using api::testing::RawClient;
using nlohmann::json;
using testing::EmulatedNodeOptions;
using testing::TestDaemon;

// The payloads of a stream's `data:` events.
std::vector<std::string> Events(const RawClient::Chunked& s) {
  std::string all;
  for (const std::string& c : s.chunks) all += c;
  std::vector<std::string> out;
  for (size_t at = 0; (at = all.find("data: ", at)) != std::string::npos;) {
    const size_t end = all.find("\n\n", at);
    out.push_back(all.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

class GenerateApiTest : public ::testing::Test {
 protected:
  // tinyllama generating at `scale` of its modelled times, beside bert-base (single pass).
  void Start(double scale) {
    d_.Start(EmulatedNodeOptions(), {{.model = "bert-base", .time_scale = 1e-3},
                                     {.model = "tinyllama-1.1b", .time_scale = scale, .generate = true}});
  }
  json Post(const std::string& path, const json& body, int expect_status) {
    RawClient c(d_.port());
    const auto r = c.Request(RawClient::Post(path, body.dump()), 30);
    EXPECT_EQ(r.status, expect_status) << path << " " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  RawClient::Chunked Stream(const std::string& path, const json& body) {
    RawClient c(d_.port());
    EXPECT_TRUE(c.Send(RawClient::Post(path, body.dump())));
    return c.ReadChunked(30);
  }
  std::string Metrics() { return d_.Client().Get("/metrics")->body; }

  TestDaemon d_;
};

TEST_F(GenerateApiTest, GeneratesWholeAndStreamedTheSameDeterministicText) {
  Start(1e-3);
  const json whole = Post("/v2/models/tinyllama-1.1b/generate", {{"text_input", "Hello"}, {"max_tokens", 24}}, 200);
  const std::string text = whole["text_output"];
  EXPECT_EQ(text.size(), 24u);
  EXPECT_EQ(whole["finish_reason"], "length");
  EXPECT_EQ(whole["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(whole["usage"]["completion_tokens"], 24);
  // Again, through the versioned path: the same text (the emulated executor is deterministic per prompt).
  EXPECT_EQ(Post("/v2/models/tinyllama-1.1b/versions/1/generate",
                 {{"text_input", "Hello"}, {"parameters", {{"max_tokens", 24}}}}, 200)["text_output"],
            text);
  EXPECT_NE(
      Post("/v2/models/tinyllama-1.1b/generate", {{"text_input", "Other"}, {"max_tokens", 24}}, 200)["text_output"],
      text);

  const RawClient::Chunked s =
      Stream("/v2/models/tinyllama-1.1b/generate_stream", {{"text_input", "Hello"}, {"max_tokens", 24}});
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.complete);
  EXPECT_NE(s.head.find("text/event-stream"), std::string::npos);
  const std::vector<std::string> events = Events(s);
  ASSERT_EQ(events.size(), 25u) << "one event per token, then the last with the finish reason";
  std::string streamed;
  for (size_t i = 0; i + 1 < events.size(); ++i) streamed += json::parse(events[i])["text_output"].get<std::string>();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(json::parse(events.back())["finish_reason"], "length");

  const std::string m = Metrics();
  EXPECT_NE(m.find("fluidfaas_generated_tokens_total{function=\"tinyllama-1.1b\"} 96"), std::string::npos) << m;
  EXPECT_NE(m.find("fluidfaas_time_to_first_token_seconds_count{function=\"tinyllama-1.1b\"} 4"), std::string::npos);
  EXPECT_NE(m.find("fluidfaas_requests_total{function=\"tinyllama-1.1b\",outcome=\"completed\",code=\"\"} 4"),
            std::string::npos);
}

TEST_F(GenerateApiTest, SpeaksOpenAIsCompletionsAndChatWithStopStrings) {
  Start(1e-3);
  const json full = Post("/v1/completions", {{"model", "tinyllama-1.1b"}, {"prompt", "abc"}, {"max_tokens", 40}}, 200);
  const std::string text = full["choices"][0]["text"];
  ASSERT_EQ(text.size(), 40u);
  EXPECT_EQ(full["object"], "text_completion");
  EXPECT_EQ(full["usage"]["total_tokens"], 43);
  // A stop string from inside the text: the answer ends before it.
  const size_t space = text.find(' ', 3);
  ASSERT_NE(space, std::string::npos);
  const std::string stop = text.substr(space, 3);
  const json stopped = Post("/v1/completions",
                            {{"model", "tinyllama-1.1b"},
                             {"prompt", "abc"},
                             {"max_tokens", 40},
                             {"stop", stop},
                             {"temperature", 0.7},
                             {"top_p", 0.9}},
                            200);
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(stopped["choices"][0]["text"], text.substr(0, text.find(stop)));
  // Streamed, with the same stop: the bytes that could begin it are held back, so none of it leaks out.
  const RawClient::Chunked s = Stream("/v1/completions", {{"model", "tinyllama-1.1b"},
                                                          {"prompt", "abc"},
                                                          {"max_tokens", 40},
                                                          {"stop", json::array({stop, "zzzz"})},
                                                          {"stream", true}});
  std::vector<std::string> events = Events(s);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string streamed;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json e = json::parse(events[i]);
    streamed += e["choices"][0]["text"].get<std::string>();
    if (i + 2 == events.size()) {
      EXPECT_EQ(e["choices"][0]["finish_reason"], "stop");
    }
  }
  EXPECT_EQ(streamed, text.substr(0, text.find(stop)));

  const json chat =
      Post("/v1/chat/completions",
           {{"model", "tinyllama-1.1b"},
            {"messages", {{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", "hi"}}}},
            {"max_tokens", 6}},
           200);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat["choices"][0]["message"]["content"].get<std::string>().size(), 6u);
  const std::vector<std::string> chunks =
      Events(Stream("/v1/chat/completions", {{"model", "tinyllama-1.1b"},
                                             {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                             {"max_tokens", 3},
                                             {"stream", true}}));
  ASSERT_EQ(chunks.size(), 6u) << "role, three tokens, the finish, [DONE]";
  EXPECT_EQ(json::parse(chunks[0])["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(json::parse(chunks[4])["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(chunks[5], "[DONE]");
}

TEST_F(GenerateApiTest, RefusesWhatItCannotServeWithAStatusAndACode) {
  Start(1e-3);
  const json unknown = Post("/v1/completions", {{"model", "nope"}, {"prompt", "x"}}, 404);
  EXPECT_EQ(unknown["error"]["code"], "unknown_function");
  EXPECT_EQ(Post("/v1/completions", {{"model", "bert-base"}, {"prompt", "x"}}, 400)["error"]["code"], "not_generative");
  EXPECT_EQ(Post("/v1/completions", {{"model", "tinyllama-1.1b"}, {"prompt", "x"}, {"max_tokens", 5000}},
                 400)["error"]["code"],
            "too_long");
  for (const json& bad : {json{{"model", "tinyllama-1.1b"}, {"prompt", "x"}, {"temperature", 3}},
                          json{{"model", "tinyllama-1.1b"}, {"prompt", "x"}, {"max_tokens", 0}},
                          json{{"model", "tinyllama-1.1b"}, {"prompt", ""}},
                          json{{"model", "tinyllama-1.1b"}, {"prompt", "x"}, {"stop", json::array({"", "a"})}},
                          json{{"model", "tinyllama-1.1b"}}}) {
    EXPECT_EQ(Post("/v1/completions", bad, 400)["error"]["code"], "bad_input") << bad.dump();
  }
  EXPECT_EQ(Post("/v2/models/tinyllama-1.1b/generate", {{"prompt", "x"}}, 400)["code"], "bad_input");
  EXPECT_EQ(Post("/v2/models/nope/generate", {{"text_input", "x"}}, 404)["code"], "unknown_function");
  // A streamed request refused before its first token gets its status, not a stream.
  RawClient c(d_.port());
  const auto r = c.Request(RawClient::Post("/v2/models/bert-base/generate_stream", R"({"text_input":"x"})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["code"], "not_generative");
  // The single-pass routes turn a generative function away.
  EXPECT_EQ(Post("/v2/models/tinyllama-1.1b/infer", {{"inputs", json::array()}}, 400)["code"], "generative");
  EXPECT_EQ(d_.controller().open_requests(), 0u);
}

TEST_F(GenerateApiTest, AClientThatLeavesMidStreamStopsItsSequence) {
  Start(0.05);  // ~1 ms a token
  {
    RawClient c(d_.port());
    ASSERT_TRUE(c.Send(
        RawClient::Post("/v2/models/tinyllama-1.1b/generate_stream", R"({"text_input":"go","max_tokens":1500})")));
    const RawClient::Chunked first = c.ReadChunked(0.5);
    EXPECT_FALSE(first.chunks.empty());
    EXPECT_FALSE(first.complete);
  }  // gone
  for (int i = 0; i < 200 && d_.controller().open_requests() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(d_.controller().open_requests(), 0u) << "the sequence ended long before its 1,500 tokens";
  EXPECT_NE(Metrics().find("outcome=\"failed\",code=\"cancelled\"} 1"), std::string::npos);
}

TEST_F(GenerateApiTest, AClientThatLeavesBeforeAWholeAnswerStopsItsSequence) {
  Start(0.05);  // ~1 ms a token
  for (const char* path : {"/v2/models/tinyllama-1.1b/generate", "/v1/completions"}) {
    {
      RawClient c(d_.port());
      const json body = std::string(path) == "/v1/completions"
                            ? json{{"model", "tinyllama-1.1b"}, {"prompt", "go"}, {"max_tokens", 1500}}
                            : json{{"text_input", "go"}, {"max_tokens", 1500}};
      ASSERT_TRUE(c.Send(RawClient::Post(path, body.dump())));
      for (int i = 0; i < 200 && d_.controller().open_requests() == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      ASSERT_EQ(d_.controller().open_requests(), 1u) << path;
    }  // gone before its 1,500 tokens (about 1.5 s)
    for (int i = 0; i < 100 && d_.controller().open_requests() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(d_.controller().open_requests(), 0u) << path << ": the sequence ended long before its 1,500 tokens";
  }
  EXPECT_NE(Metrics().find("outcome=\"failed\",code=\"cancelled\"} 2"), std::string::npos) << Metrics();
  EXPECT_NE(Metrics().find("fluidfaas_http_abandoned_total 2"), std::string::npos) << Metrics();
  // The node serves on.
  EXPECT_EQ(Post("/v2/models/tinyllama-1.1b/generate", {{"text_input", "Hi"}, {"max_tokens", 4}}, 200)["text_output"]
                .get<std::string>()
                .size(),
            4u);
}

TEST_F(GenerateApiTest, ShutdownEndsEveryOpenGeneration) {
  Start(1.0);  // real time: a cold start of seconds, so these are open when the node stops
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&] {
      RawClient c(d_.port());
      const auto r = c.Request(RawClient::Post("/v2/models/tinyllama-1.1b/generate", R"({"text_input":"x"})"), 30);
      if (r.status == 503 && json::parse(r.body)["code"] == "shutdown") ++answered;
    });
  }
  for (int i = 0; i < 200 && d_.controller().open_requests() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(d_.controller().open_requests(), 3u);
  d_.controller().Shutdown();
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), 3);
}

TEST_F(GenerateApiTest, GenerativeInstancesTakeSlicesTheSingleScheduleLeavesFree) {
  Start(1e-3);
  Post("/v2/models/tinyllama-1.1b/generate", {{"text_input", "x"}, {"max_tokens", 2}}, 200);
  const json node = json::parse(d_.Client().Get("/v1/node")->body);
  ASSERT_EQ(node["generative_instances"].size(), 1u);
  const std::string slice = node["generative_instances"][0]["slices"][0];
  for (const json& s : node["slices"]) {
    if (s["id"] == slice) {
      EXPECT_EQ(s["residents"], json::array({"generative:tinyllama-1.1b"}));
    }
  }
  // bert-base is still served, on another slice.
  RawClient c(d_.port());
  json infer = {
      {"inputs",
       {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 128}}, {"data", std::vector<float>(128, 0.5f)}}}}};
  EXPECT_EQ(c.Request(RawClient::Post("/v2/models/bert-base/infer", infer.dump()), 30).status, 200);
  const json after = json::parse(d_.Client().Get("/v1/node")->body);
  for (const json& inst : after["instances"]) {
    for (const json& st : inst["stages"]) EXPECT_NE(st["slice"], slice) << "a single-pass instance on the leased slice";
  }
}

}  // namespace
}  // namespace fluidfaas::daemon
