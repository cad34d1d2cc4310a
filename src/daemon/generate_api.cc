#include "daemon/generate_api.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "daemon/inference.h"

namespace fluidfaas::daemon {
namespace {

using api::HttpRequest;
using api::HttpResponse;
using api::Responder;
using api::RouteParams;
using api::StreamWriter;
using nlohmann::json;

enum class Form { kTriton, kCompletions, kChat };

// A generation request, whichever form it came in.
struct Call {
  Form form = Form::kTriton;
  bool stream = false;
  std::string model;
  std::string prompt;
  int max_tokens = 16;
  std::vector<std::string> stop;
};

constexpr size_t kMaxStops = 4;
constexpr size_t kMaxStopBytes = 256;
constexpr size_t kMaxMessages = 256;

// The chat template of the emulated zoo models (Zephyr's, which TinyLlama's chat model uses).
std::string ChatPrompt(const json& messages) {
  std::string p;
  for (const json& m : messages) {
    p += "<|" + m["role"].get<std::string>() + "|>\n" + m["content"].get<std::string>() + "</s>\n";
  }
  return p + "<|assistant|>\n";
}

// Reads the fields every form shares from `o` (the body, or Triton's "parameters"). Error: the message.
std::optional<std::string> ReadSampling(const json& o, Call& call) {
  if (const auto it = o.find("max_tokens"); it != o.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1 << 20) {
      return "\"max_tokens\" must be an integer of at least 1";
    }
    call.max_tokens = static_cast<int>(it->get<int64_t>());
  }
  if (const auto it = o.find("temperature"); it != o.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() >= 0 && it->get<double>() <= 2)) {
      return "\"temperature\" must be a number in [0, 2]";
    }
  }
  if (const auto it = o.find("top_p"); it != o.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0 && it->get<double>() <= 1)) {
      return "\"top_p\" must be a number in (0, 1]";
    }
  }
  if (const auto it = o.find("stop"); it != o.end() && !it->is_null()) {
    const json stops = it->is_string() ? json::array({*it}) : *it;
    if (!stops.is_array() || stops.size() > kMaxStops) return "\"stop\" must be a string or an array of up to 4";
    for (const json& s : stops) {
      if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>().size() > kMaxStopBytes) {
        return "each \"stop\" must be a string of 1 to 256 bytes";
      }
      call.stop.push_back(s.get<std::string>());
    }
  }
  if (const auto it = o.find("stream"); it != o.end()) {
    if (!it->is_boolean()) return "\"stream\" must be a boolean";
    if (call.form != Form::kTriton) call.stream = it->get<bool>();  // Triton's form is the route's
  }
  return std::nullopt;
}

// The call a body asks for. Error: the message.
std::variant<Call, std::string> ParseCall(const std::string& body, Form form) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::string("the body is not a JSON object");
  Call call;
  call.form = form;
  if (form == Form::kTriton) {
    const auto text = j.find("text_input");
    if (text == j.end() || !text->is_string()) return std::string("\"text_input\" must be a string");
    call.prompt = text->get<std::string>();
    if (auto e = ReadSampling(j, call)) return *e;
    if (const auto p = j.find("parameters"); p != j.end()) {
      if (!p->is_object()) return std::string("\"parameters\" must be an object");
      if (auto e = ReadSampling(*p, call)) return *e;
    }
    return call;
  }
  const auto model = j.find("model");
  if (model == j.end() || !model->is_string() || model->get<std::string>().empty()) {
    return std::string("\"model\" must name a deployed function");
  }
  call.model = model->get<std::string>();
  if (form == Form::kCompletions) {
    json prompt = j.value("prompt", json());
    if (prompt.is_array() && prompt.size() == 1) prompt = prompt[0];
    if (!prompt.is_string()) return std::string("\"prompt\" must be a string (or an array of one)");
    call.prompt = prompt.get<std::string>();
  } else {
    const auto messages = j.find("messages");
    if (messages == j.end() || !messages->is_array() || messages->empty() || messages->size() > kMaxMessages) {
      return std::string("\"messages\" must be an array of 1 to 256 messages");
    }
    for (const json& m : *messages) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
          !m["content"].is_string()) {
        return std::string("each message must be {\"role\": string, \"content\": string}");
      }
      const std::string role = m["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant") {
        return std::string("a message's role must be system, user or assistant");
      }
    }
    call.prompt = ChatPrompt(*messages);
  }
  if (auto e = ReadSampling(j, call)) return *e;
  return call;
}

int StatusFor(const std::string& code) {
  if (code == "unknown_function") return 404;
  if (code == "not_generative" || code == "too_long" || code == "bad_input") return 400;
  if (code == "overloaded") return 429;
  return 503;
}

HttpResponse ErrorAnswer(Form form, int status, const std::string& message, const std::string& code) {
  if (form == Form::kTriton) return api::JsonError(status, message, code);
  return api::JsonResponse(
      status,
      {{"error",
        {{"message", message}, {"type", status < 500 ? "invalid_request_error" : "server_error"}, {"code", code}}}});
}

std::string Sse(const json& event) {
  return "data: " + event.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One generation's state between the edge (the handler, the stream's `gone`) and the control thread (tokens, the
// end). The controller's callbacks are serial; the handle arrives from the handler's thread, perhaps after them.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Controller& c, Call call, Responder r) : c_(c), call_(std::move(call)), responder_(std::move(r)) {
    static std::atomic<uint64_t> next{1};
    created_ = UnixSeconds();
    id_ = (call_.form == Form::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(created_) + "-" +
          std::to_string(next.fetch_add(1));
    for (const std::string& s : call_.stop) hold_ = std::max(hold_, s.size() - 1);
  }

  void Start() {
    // The function's tokenizer (an unknown function: byte-level; the controller refuses it with a 404).
    const FunctionRef f = c_.Function(call_.model);
    if (f != nullptr && f->tokenizer != nullptr) tokenizer_ = f->tokenizer;
    auto tokens = tokenizer_->Encode(call_.prompt);
    if (!tokens.ok()) {
      c_.CountRefused(call_.model, "bad_input");
      return responder_.Send(ErrorAnswer(call_.form, 400, "the prompt: " + tokens.status().message(), "bad_input"));
    }
    auto self = shared_from_this();
    if (!call_.stream) {
      // Answered whole: a client that leaves first stops the sequence (its KV is free at the next step), as a
      // stream's does.
      responder_.OnGone([weak = weak_from_this()] {
        if (auto exchange = weak.lock()) exchange->AskStop(/*completed=*/false);
      });
    }
    const uint64_t handle = c_.Generate(call_.model, *tokens, call_.max_tokens,
                                        {.token = [self](int token, int) { self->Token(token); },
                                         .end = [self](GenerateEnd end) { self->End(std::move(end)); }});
    MutexLock lock(mu_);
    handle_ = handle;
    if (stop_asked_) c_.Stop(handle, stop_completes_);
  }

 private:
  // Asks the controller to stop the sequence (now, or once the handle is known).
  void AskStop(bool completed) {
    MutexLock lock(mu_);
    if (stop_asked_) return;
    stop_asked_ = true;
    stop_completes_ = completed;
    if (handle_) c_.Stop(*handle_, completed);
  }

  void Token(int token) {
    if (stopped_) return;
    text_ += tokenizer_->Piece(token);
    for (const std::string& s : call_.stop) {
      const size_t from = text_.size() > s.size() + 1 ? text_.size() - s.size() - 1 : 0;
      if (const size_t at = text_.find(s, from); at != std::string::npos) {
        text_.resize(at);
        stopped_ = true;
        AskStop(/*completed=*/true);
        break;
      }
    }
    if (!call_.stream) return;
    // The bytes that cannot be the start of a stop string go out.
    const size_t ready = stopped_ ? text_.size() : (text_.size() > hold_ ? text_.size() - hold_ : 0);
    if (ready > sent_) Emit(text_.substr(sent_, ready - sent_));
  }

  void End(GenerateEnd end) {
    const bool ok = end.outcome == Outcome::kCompleted;
    const std::string finish = stopped_ ? "stop" : "length";
    if (!call_.stream || !writer_.valid()) {
      if (!ok) {
        return responder_.Send(
            ErrorAnswer(call_.form, StatusFor(end.code), end.detail.empty() ? end.code : end.detail, end.code));
      }
      if (call_.stream) {  // ended without a token to open the stream with: an empty one
        Open();
        Close(end, finish);
        return;
      }
      return responder_.Send(api::JsonResponse(200, Whole(end, finish)));
    }
    if (!ok) {
      // Mid-stream: the error as the last event; the client sees no [DONE].
      writer_.Write(Sse({{"error", end.detail}, {"code", end.code}}));
      writer_.End();
      return;
    }
    if (text_.size() > sent_) Emit(text_.substr(sent_));
    Close(end, finish);
  }

  json Usage(const GenerateEnd& end) const {
    return {{"prompt_tokens", end.prompt_tokens},
            {"completion_tokens", end.generated},
            {"total_tokens", end.prompt_tokens + end.generated}};
  }

  json Whole(const GenerateEnd& end, const std::string& finish) const {
    switch (call_.form) {
      case Form::kTriton:
        return {{"model_name", call_.model},
                {"model_version", "1"},
                {"text_output", text_},
                {"finish_reason", finish},
                {"usage", Usage(end)}};
      case Form::kCompletions:
        return {{"id", id_},
                {"object", "text_completion"},
                {"created", created_},
                {"model", call_.model},
                {"choices", {{{"index", 0}, {"text", text_}, {"logprobs", nullptr}, {"finish_reason", finish}}}},
                {"usage", Usage(end)}};
      case Form::kChat:
        return {{"id", id_},
                {"object", "chat.completion"},
                {"created", created_},
                {"model", call_.model},
                {"choices",
                 {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text_}}}, {"finish_reason", finish}}}},
                {"usage", Usage(end)}};
    }
    return {};
  }

  // The stream's head, with the chat form's opening chunk.
  void Open() {
    std::weak_ptr<Exchange> weak = weak_from_this();
    writer_ = responder_.Stream(HttpResponse{.content_type = "text/event-stream"}, [weak] {
      if (auto self = weak.lock()) self->AskStop(/*completed=*/false);
    });
    if (call_.form == Form::kChat) writer_.Write(Sse(Chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr)));
  }

  json Chunk(const json& delta_or_text, const json& finish) const {
    if (call_.form == Form::kChat) {
      return {{"id", id_},
              {"object", "chat.completion.chunk"},
              {"created", created_},
              {"model", call_.model},
              {"choices", {{{"index", 0}, {"delta", delta_or_text}, {"finish_reason", finish}}}}};
    }
    return {{"id", id_},
            {"object", "text_completion"},
            {"created", created_},
            {"model", call_.model},
            {"choices", {{{"index", 0}, {"text", delta_or_text}, {"logprobs", nullptr}, {"finish_reason", finish}}}}};
  }

  void Emit(const std::string& piece) {
    if (!writer_.valid()) Open();
    sent_ += piece.size();
    switch (call_.form) {
      case Form::kTriton:
        writer_.Write(Sse({{"model_name", call_.model}, {"model_version", "1"}, {"text_output", piece}}));
        break;
      case Form::kCompletions: writer_.Write(Sse(Chunk(piece, nullptr))); break;
      case Form::kChat: writer_.Write(Sse(Chunk(json{{"content", piece}}, nullptr))); break;
    }
  }

  void Close(const GenerateEnd& end, const std::string& finish) {
    if (call_.form == Form::kTriton) {
      writer_.Write(Sse({{"model_name", call_.model},
                         {"model_version", "1"},
                         {"text_output", ""},
                         {"finish_reason", finish},
                         {"usage", Usage(end)}}));
    } else {
      json last = Chunk(call_.form == Form::kChat ? json::object() : json(""), finish);
      last["usage"] = Usage(end);
      writer_.Write(Sse(last));
      writer_.Write("data: [DONE]\n\n");
    }
    writer_.End();
  }

  Controller& c_;
  const Call call_;
  Responder responder_;
  std::string id_;
  int64_t created_ = 0;
  size_t hold_ = 0;  // bytes a stream holds back: the longest stop string's, less one
  std::shared_ptr<const model::Tokenizer> tokenizer_ = model::Tokenizer::SharedBytes();
  // Control thread (the callbacks).
  std::string text_;
  size_t sent_ = 0;
  bool stopped_ = false;
  StreamWriter writer_;
  // Shared with the edge.
  Mutex mu_;
  std::optional<uint64_t> handle_ GUARDED_BY(mu_);
  bool stop_asked_ GUARDED_BY(mu_) = false;
  bool stop_completes_ GUARDED_BY(mu_) = false;
};

}  // namespace

void AddGenerateRoutes(api::Router& router, Controller& c, size_t max_body_bytes) {
  const auto handle = [&c](Form form, bool stream, HttpRequest&& req, const std::string& model, Responder r) {
    auto parsed = ParseCall(req.body, form);
    if (auto* error = std::get_if<std::string>(&parsed)) {
      c.CountRefused(model, "bad_input");
      return r.Send(ErrorAnswer(form, 400, *error, "bad_input"));
    }
    Call call = std::get<Call>(std::move(parsed));
    if (form == Form::kTriton) {
      call.model = model;
      call.stream = stream;
    }
    if (call.prompt.empty()) {
      c.CountRefused(call.model, "bad_input");
      return r.Send(ErrorAnswer(form, 400, "the prompt is empty", "bad_input"));
    }
    std::make_shared<Exchange>(c, std::move(call), std::move(r))->Start();
  };
  const auto limit = [max_body_bytes](const RouteParams&) { return max_body_bytes; };
  for (const char* base : {"/v2/models/{}", "/v2/models/{}/versions/{}"}) {
    for (const bool stream : {false, true}) {
      router.Add(
          "POST", std::string(base) + (stream ? "/generate_stream" : "/generate"),
          [&c, handle, stream](HttpRequest&& req, const RouteParams& p, Responder r) {
            auto resolved = ResolveModel(c, p[0], p.size() > 1 ? p[1] : "", /*count=*/true);
            if (auto* refusal = std::get_if<InferRefusal>(&resolved)) {
              return r.Send(api::JsonError(refusal->http_status, refusal->message, refusal->code));
            }
            handle(Form::kTriton, stream, std::move(req), p[0], std::move(r));
          },
          limit);
    }
  }
  router.Add(
      "POST", "/v1/completions",
      [handle](HttpRequest&& req, const RouteParams&, Responder r) {
        handle(Form::kCompletions, false, std::move(req), "", std::move(r));
      },
      limit);
  router.Add(
      "POST", "/v1/chat/completions",
      [handle](HttpRequest&& req, const RouteParams&, Responder r) {
        handle(Form::kChat, false, std::move(req), "", std::move(r));
      },
      limit);
}

}  // namespace fluidfaas::daemon
