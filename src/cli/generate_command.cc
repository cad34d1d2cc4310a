// fluidfaas generate: one generation from a daemon's generative function (Triton's generate extension), whole or
// streamed token by token, with the client's own time to first token and time per output token on stderr.
#include <httplib.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;

struct GenerateOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string prompt;
  int max_tokens = 64;
  std::vector<std::string> stop;
  bool stream = false;
  bool json_output = false;
};

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The client-side figures: tokens, time to the first, per token after it.
void Figures(int tokens, double first_ms, double total_ms) {
  std::cerr << tokens << " tokens; first after " << first_ms << " ms";
  if (tokens > 1) std::cerr << ", then " << (total_ms - first_ms) / (tokens - 1) << " ms per token";
  std::cerr << "; " << total_ms << " ms in all\n";
}

int Failed(int status, const std::string& body) {
  std::cerr << "fluidfaas generate: " << status << ' ' << body << '\n';
  return status / 100 == 4 ? kExitBadInput : kExitFailure;
}

int RunGenerate(const GenerateOptions& o) {
  httplib::Client c(o.url);
  c.set_read_timeout(600, 0);
  json body = {{"text_input", o.prompt}, {"max_tokens", o.max_tokens}};
  if (!o.stop.empty()) body["stop"] = o.stop;
  const std::string path = "/v2/models/" + o.model + (o.stream ? "/generate_stream" : "/generate");
  const auto start = std::chrono::steady_clock::now();
  if (!o.stream) {
    auto r = c.Post(path, body.dump(), "application/json");
    if (!r) {
      std::cerr << "fluidfaas generate: " << httplib::to_string(r.error()) << '\n';
      return kExitFailure;
    }
    if (r->status != 200) return Failed(r->status, r->body);
    const json out = json::parse(r->body, nullptr, false);
    if (out.is_discarded()) return Failed(r->status, r->body);
    std::cout << (o.json_output ? out.dump() : out.value("text_output", std::string())) << '\n';
    return kExitOk;
  }
  // Server-sent events: one `data: {...}` per token; the last carries the finish reason, or an error.
  std::string pending;
  std::string error;
  int tokens = 0;
  double first_ms = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    pending.append(data, n);
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos; pending.erase(0, end + 2)) {
      if (pending.rfind("data: ", 0) != 0) continue;
      const json e = json::parse(pending.substr(6, end - 6), nullptr, false);
      if (e.is_discarded()) continue;
      if (e.contains("error")) {
        error = e.dump();
        continue;
      }
      if (o.json_output) {
        std::cout << e.dump() << '\n';
      } else {
        std::cout << e.value("text_output", std::string()) << std::flush;
      }
      if (!e.contains("finish_reason") && ++tokens == 1) first_ms = MsSince(start);
    }
    return true;
  };
  auto r = c.send(req);
  if (!r) {
    std::cerr << "\nfluidfaas generate: " << httplib::to_string(r.error()) << '\n';
    return kExitFailure;
  }
  if (r->status != 200) return Failed(r->status, r->body.empty() ? pending : r->body);
  if (!o.json_output) std::cout << '\n';
  if (!error.empty()) return Failed(r->status, error);
  Figures(tokens, first_ms, MsSince(start));
  return kExitOk;
}

}  // namespace

void AddGenerateCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "Generate text with a daemon's generative function (serve --generate MODEL), whole or streamed");
  cmd->add_option("--url", o->url, "The daemon's (or gateway's) address")->capture_default_str();
  cmd->add_option("--model", o->model, "Generative function")->required();
  cmd->add_option("--prompt", o->prompt, "The prompt text")->required();
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--stop", o->stop, "Stop before this text (up to 4; repeat the flag)");
  cmd->add_flag("--stream", o->stream,
                "Stream the tokens as they come (generate_stream); time to first token and per token on stderr");
  cmd->add_flag("--json", o->json_output, "Print the answer's JSON (each event's, streamed)");
  cmd->callback([o, &exit_code] { exit_code = RunGenerate(*o); });
}

}  // namespace fluidfaas::cli
