// fluidfaas gen-load: load on a daemon's generative function, streamed, measured on the client: time to first token
// (from each request's arrival), time per output token, the gaps between tokens, SLO attainment (both objectives
// met), tokens/s. Open loop (--rate: Poisson arrivals, each on a connection of its own) or closed loop
// (--concurrency: that many sequences at all times, each connection sending its next at once).
//
// Beside the measured row, the simulator's: the same arrivals through sim::SimulateGeneration on the daemon's
// slices, with the function as the daemon serves it (its objectives and placement design from its metadata). The
// daemon and the simulator run the same GenerationNode (carrier/generation_node.h); what differs is the daemon's
// own time (the control thread, the edge, the client) and, at time scales below 1, that the simulator's times are
// the model's. --agree turns a gap in attainment over that many points into exit 1.
//
// One thread: every connection non-blocking under poll, the response's chunked framing and its server-sent events
// decoded as they arrive.
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/stats.h"
#include "sim/generation.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct GenLoadOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  double rate = 0;      // > 0: open loop
  int concurrency = 0;  // > 0: closed loop
  double duration = 30;
  std::string prompt = "128..1024";
  std::string output = "32..256";
  uint64_t seed = 1;
  bool json_output = false;
  double agree_points = 0;
};

// One sequence on its connection: the request sent, the response's head, chunks and events parsed as they come.
struct Session {
  int fd = -1;
  double arrival = 0;  // seconds from the run's start
  int prompt = 0, output = 0;
  std::string out;   // request bytes not yet sent
  std::string in;    // response bytes not yet parsed
  std::string body;  // the chunked body's bytes, decoded, not yet split into events
  bool head_done = false;
  int status = 0;
  int64_t chunk_left = -1;     // bytes of the current chunk still to come; -1: reading a size line
  std::vector<double> tokens;  // each token's time
  bool finished = false, failed = false;
  std::string error;
};

struct Outcome {
  double arrival = 0;
  int output = 0;
  bool ok = false;
  double ttft_ms = 0, tpot_ms = 0;
  std::string error;
};

Result<sim::TokenRange> ParseRange(const std::string& text, const std::string& flag) {
  const size_t dots = text.find("..");
  try {
    const int lo = std::stoi(text.substr(0, dots));
    const int hi = dots == std::string::npos ? lo : std::stoi(text.substr(dots + 2));
    if (lo >= 1 && hi >= lo && hi <= 1 << 20) return sim::TokenRange{lo, hi};
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument(flag + ": '" + text + "' is not A..B with 1 <= A <= B");
}

class Runner {
 public:
  Runner(const GenLoadOptions& o, std::string host, int port, std::string model)
      : o_(o), host_(std::move(host)), port_(port), model_(std::move(model)) {}

  // Runs the arrivals (open loop), or the closed loop for the duration; the outcomes in arrival order.
  std::vector<Outcome> Run(const std::vector<sim::GenArrival>& arrivals) {
    start_ = Clock::now();
    size_t next = 0;
    std::vector<std::unique_ptr<Session>> live;
    std::vector<Outcome> done;
    std::mt19937_64 rng(o_.seed);
    const auto closed_next = [&]() -> sim::GenArrival {
      std::uniform_int_distribution<int> p(prompt_.lo, prompt_.hi), q(output_.lo, output_.hi);
      return {.t_s = Now(), .prompt = p(rng), .output = q(rng)};
    };
    for (;;) {
      const double now = Now();
      if (o_.concurrency > 0) {
        while (now < o_.duration && live.size() < static_cast<size_t>(o_.concurrency))
          live.push_back(Open(closed_next()));
      } else {
        while (next < arrivals.size() && arrivals[next].t_s <= now) live.push_back(Open(arrivals[next++]));
      }
      if (live.empty() && (o_.concurrency > 0 ? now >= o_.duration : next >= arrivals.size())) break;
      std::vector<pollfd> fds;
      fds.reserve(live.size());
      for (const auto& s : live) {
        fds.push_back({s->fd, static_cast<short>(POLLIN | (s->out.empty() ? 0 : POLLOUT)), 0});
      }
      double wait_s = 0.05;
      if (o_.concurrency == 0 && next < arrivals.size()) wait_s = std::min(wait_s, arrivals[next].t_s - now);
      ::poll(fds.data(), fds.size(), static_cast<int>(std::max(0.0, wait_s) * 1000));
      for (size_t i = 0; i < live.size(); ++i) {
        if (fds[i].revents != 0) Step(*live[i]);
      }
      for (auto it = live.begin(); it != live.end();) {
        if (!(*it)->finished) {
          ++it;
          continue;
        }
        done.push_back(Finish(**it));
        ::close((*it)->fd);
        it = live.erase(it);
      }
    }
    std::sort(done.begin(), done.end(), [](const Outcome& a, const Outcome& b) { return a.arrival < b.arrival; });
    return done;
  }

  void SetRanges(sim::TokenRange p, sim::TokenRange q) {
    prompt_ = p;
    output_ = q;
  }
  const std::vector<double>& gaps() const { return gaps_; }  // microseconds between a sequence's tokens

 private:
  double Now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  std::unique_ptr<Session> Open(const sim::GenArrival& a) {
    auto s = std::make_unique<Session>();
    s->arrival = a.t_s;
    s->prompt = a.prompt;
    s->output = a.output;
    s->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    ::setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    ::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
    if (::connect(s->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
      Fail(*s, "connect: " + std::string(strerror(errno)));  // reported when the loop collects it
    }
    // The prompt: printable bytes, one token each (the zoo models' byte-level tokenizer).
    std::string text(static_cast<size_t>(a.prompt), 'a');
    for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + (i * 7 + a.prompt) % 26);
    const std::string body = json{{"text_input", text}, {"max_tokens", a.output}}.dump();
    s->out =
        "POST /v2/models/" + model_ + "/generate_stream HTTP/1.1\r\nHost: " + host_ +
        "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    return s;
  }

  void Fail(Session& s, std::string why) {
    s.failed = s.finished = true;
    s.error = std::move(why);
  }

  void Step(Session& s) {
    if (!s.out.empty()) {
      const ssize_t n = ::send(s.fd, s.out.data(), s.out.size(), MSG_NOSIGNAL);
      if (n > 0) s.out.erase(0, static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN && errno != EINPROGRESS) return Fail(s, "send: " + std::string(strerror(errno)));
    }
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
      if (n > 0) {
        s.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 && !s.finished) {
        Parse(s);
        if (!s.finished) Fail(s, s.status == 200 ? "the stream was cut" : "HTTP " + std::to_string(s.status));
        return;
      }
      break;  // EAGAIN (or an error the next poll reports)
    }
    Parse(s);
  }

  // The response so far: its head, its chunks, the events in them.
  void Parse(Session& s) {
    if (!s.head_done) {
      const size_t end = s.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      s.status = std::atoi(s.in.c_str() + 9);
      s.in.erase(0, end + 4);
      s.head_done = true;
      if (s.status != 200) return Fail(s, "HTTP " + std::to_string(s.status));
    }
    const double now = Now();
    for (;;) {
      if (s.chunk_left < 0) {
        const size_t line = s.in.find("\r\n");
        if (line == std::string::npos) break;
        s.chunk_left = std::strtoll(s.in.c_str(), nullptr, 16);
        s.in.erase(0, line + 2);
        if (s.chunk_left == 0) {
          s.finished = true;
          break;
        }
      }
      if (s.in.size() < static_cast<size_t>(s.chunk_left) + 2) break;
      s.body.append(s.in, 0, static_cast<size_t>(s.chunk_left));
      s.in.erase(0, static_cast<size_t>(s.chunk_left) + 2);
      s.chunk_left = -1;
    }
    for (size_t end; (end = s.body.find("\n\n")) != std::string::npos; s.body.erase(0, end + 2)) {
      const std::string_view event(s.body.data(), end);
      if (event.find("\"error\"") != std::string_view::npos) {
        Fail(s, std::string(event));
      } else if (event.find("\"finish_reason\"") == std::string_view::npos) {
        s.tokens.push_back(now);
      }
    }
  }

  Outcome Finish(const Session& s) {
    Outcome o{.arrival = s.arrival, .output = s.output};
    if (s.failed || s.tokens.empty()) {
      o.error = s.error.empty() ? "no token" : s.error;
      return o;
    }
    o.ok = true;
    o.ttft_ms = (s.tokens.front() - s.arrival) * 1e3;
    o.tpot_ms = s.tokens.size() > 1 ? (s.tokens.back() - s.tokens.front()) * 1e3 / (s.tokens.size() - 1) : 0;
    for (size_t i = 1; i < s.tokens.size(); ++i) gaps_.push_back((s.tokens[i] - s.tokens[i - 1]) * 1e6);
    return o;
  }

  const GenLoadOptions& o_;
  std::string host_;
  int port_;
  std::string model_;
  sim::TokenRange prompt_, output_;
  Clock::time_point start_;
  std::vector<double> gaps_;  // microseconds between a sequence's tokens
};

int RunGenLoad(const GenLoadOptions& o) {
  const auto fail = [](const std::string& why, int code = kExitBadInput) {
    std::cerr << "fluidfaas gen-load: " << why << '\n';
    return code;
  };
  if ((o.rate > 0) == (o.concurrency > 0)) return fail("give --rate (open loop) or --concurrency (closed loop)");
  auto prompt = ParseRange(o.prompt, "--prompt");
  auto output = ParseRange(o.output, "--output");
  if (!prompt.ok()) return fail(prompt.status().message());
  if (!output.ok()) return fail(output.status().message());
  const std::string scheme = "http://";
  if (o.url.rfind(scheme, 0) != 0) return fail("--url must be http://HOST:PORT");
  const std::string hostport = o.url.substr(scheme.size());
  const size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return fail("--url must name a port");
  const std::string host = hostport.substr(0, colon) == "localhost" ? "127.0.0.1" : hostport.substr(0, colon);
  const int port = std::atoi(hostport.c_str() + colon + 1);

  httplib::Client c(o.url);
  auto meta = c.Get("/v2/models/" + o.model);
  auto node = c.Get("/v1/node");
  if (!meta || meta->status != 200) return fail("no function '" + o.model + "' at " + o.url, kExitFailure);
  const json m = json::parse(meta->body, nullptr, false);
  if (m.is_discarded() || !m["parameters"].value("generative", false)) {
    return fail("'" + o.model + "' does not generate (serve --generate MODEL)");
  }
  const json& p = m["parameters"];
  sim::GenFunction fn{.name = o.model,
                      .model = p.value("zoo_model", ""),
                      .rate_per_s = o.rate,
                      .prompt = *prompt,
                      .output = *output,
                      .ttft_slo_ms = p.value("ttft_slo_ms", 0.0),
                      .tpot_slo_ms = p.value("tpot_slo_ms", 0.0),
                      .design_context = p.value("design_context", 0),
                      .max_prompt = p.value("max_prompt", 0)};
  if (fn.prompt.hi + fn.output.hi > p.value("max_positions", 0)) {
    return fail("--prompt and --output together exceed the model's " + std::to_string(p.value("max_positions", 0)) +
                " tokens");
  }
  const double scale = p.value("time_scale", 1.0);
  sim::GenScenario scenario{.name = "daemon", .functions = {fn}};
  if (node && node->status == 200) {
    auto slices = NodeSlicesOf(json::parse(node->body, nullptr, false));
    if (slices.ok()) scenario.slices = std::move(*slices);
  }
  const std::vector<sim::GenArrival> arrivals =
      o.rate > 0 ? sim::GenArrivals(scenario, o.duration, o.seed) : std::vector<sim::GenArrival>{};

  Runner runner(o, host, port, o.model);
  runner.SetRanges(*prompt, *output);
  const auto t0 = Clock::now();
  const std::vector<Outcome> outcomes = runner.Run(arrivals);
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();

  std::vector<double> ttft, tpot;
  int64_t met = 0, tokens = 0, failed = 0;
  std::map<std::string, int64_t> errors;
  for (const Outcome& r : outcomes) {
    if (!r.ok) {
      ++failed;
      ++errors[r.error.substr(0, 60)];
      continue;
    }
    ttft.push_back(r.ttft_ms);
    tpot.push_back(r.tpot_ms);
    tokens += r.output;
    if (r.ttft_ms <= fn.ttft_slo_ms && r.tpot_ms <= fn.tpot_slo_ms) ++met;
  }
  const auto pct = [](const std::vector<double>& v, double q) { return v.empty() ? 0.0 : Percentile(v, q); };
  const double attainment = outcomes.empty() ? 0 : 100.0 * static_cast<double>(met) / outcomes.size();
  json out = {{"model", o.model},
              {"requests", outcomes.size()},
              {"failed", failed},
              {"met_pct", attainment},
              {"ttft_p50_ms", pct(ttft, 0.5)},
              {"ttft_p99_ms", pct(ttft, 0.99)},
              {"tpot_p50_ms", pct(tpot, 0.5)},
              {"tpot_p99_ms", pct(tpot, 0.99)},
              {"gap_p50_us", pct(runner.gaps(), 0.5)},
              {"gap_p99_us", pct(runner.gaps(), 0.99)},
              // Per second of arrivals, as the simulator counts them (closed loop: of the run).
              {"tokens_per_s", static_cast<double>(tokens) / (o.rate > 0 ? o.duration : std::max(wall, 1e-9))},
              {"errors", errors}};
  Table table({"row", ">requests", ">met %", ">TTFT p50", ">p99 ms", ">TPOT p50", ">p99 ms", ">tokens/s"});
  table.AddRow({"measured", std::to_string(outcomes.size()), Fixed(attainment, 1), Fixed(pct(ttft, 0.5), 1),
                Fixed(pct(ttft, 0.99), 1), Fixed(pct(tpot, 0.5), 2), Fixed(pct(tpot, 0.99), 2),
                Fixed(out["tokens_per_s"].get<double>(), 0)});
  int code = kExitOk;
  if (o.rate > 0 && !scenario.slices.empty()) {
    // The simulator's times are the model's: at a time scale below 1 the daemon runs faster than it.
    Result<sim::GenResult> r = sim::SimulateGeneration(scenario, arrivals, o.duration, {});
    if (r.ok() && !r->functions.empty()) {
      const sim::GenFunctionResult& f = r->functions[0];
      const double sim_pct = 100.0 * f.attainment();
      table.AddRow({"simulated", std::to_string(f.requests), Fixed(sim_pct, 1), Fixed(f.ttft_p50_ms, 1),
                    Fixed(f.ttft_p99_ms, 1), Fixed(f.tpot_p50_ms, 2), Fixed(f.tpot_p99_ms, 2),
                    Fixed(r->tokens_per_s(), 0)});
      out["simulated"] = {{"met_pct", sim_pct},
                          {"ttft_p50_ms", f.ttft_p50_ms},
                          {"tpot_p50_ms", f.tpot_p50_ms},
                          {"time_scale_applied", scale == 1.0}};
      if (o.agree_points > 0 && scale == 1.0 && std::fabs(sim_pct - attainment) > o.agree_points) code = kExitFailure;
    } else if (!r.ok()) {
      std::cerr << "simulated row: " << r.status().message() << '\n';
    }
  }
  if (o.json_output) {
    std::cout << out.dump(2) << '\n';
  } else {
    std::cout << o.model << ": "
              << (o.rate > 0 ? Fixed(o.rate, 2) + " req/s open loop"
                             : std::to_string(o.concurrency) + " sequences closed loop")
              << " for " << Fixed(o.duration, 0) << " s; objectives TTFT " << Fixed(fn.ttft_slo_ms, 1) << " ms, TPOT "
              << Fixed(fn.tpot_slo_ms, 1) << " ms; time scale " << scale << "\n";
    table.Print(std::cout);
    std::cout << "between tokens of a sequence: p50 " << Fixed(pct(runner.gaps(), 0.5), 0) << " us, p99 "
              << Fixed(pct(runner.gaps(), 0.99), 0) << " us";
    if (failed > 0) std::cout << "; " << failed << " failed";
    std::cout << '\n';
    for (const auto& [e, n] : errors) std::cout << "  " << n << " x " << e << '\n';
  }
  if (failed > 0 && code == kExitOk) code = kExitFailure;
  return code;
}

}  // namespace

void AddGenLoadCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<GenLoadOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gen-load",
      "Streamed load on a daemon's generative function: TTFT, TPOT, the gaps between tokens and SLO attainment on the "
      "client, beside the simulator's row for the same arrivals");
  cmd->add_option("--url", o->url, "The daemon's address (http://HOST:PORT)")->capture_default_str();
  cmd->add_option("--model", o->model, "Generative function")->required();
  cmd->add_option("--rate", o->rate, "Open loop: Poisson arrivals per second")->check(CLI::Range(0.001, 1e5));
  cmd->add_option("--concurrency", o->concurrency, "Closed loop: sequences at all times")->check(CLI::Range(1, 4096));
  cmd->add_option("--duration", o->duration, "Seconds of arrivals")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option("--prompt", o->prompt, "Prompt tokens, uniform in A..B")->capture_default_str();
  cmd->add_option("--output", o->output, "Tokens to generate, uniform in A..B")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Arrivals' seed")->capture_default_str();
  cmd->add_option("--agree", o->agree_points,
                  "Exit 1 unless the simulated attainment is within this many points (time scale 1 only)");
  cmd->add_flag("--json", o->json_output, "Print the figures as JSON");
  cmd->callback([o, &exit_code] { exit_code = RunGenLoad(*o); });
}

}  // namespace fluidfaas::cli
