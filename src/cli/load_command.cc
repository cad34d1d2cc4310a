// fluidfaas load: an open-loop load generator against a running daemon, with the simulator's workload
// generator (sim/workload.h) for the arrivals.
//
// Open loop: a request is sent at its arrival time whatever happened to the ones before (a pacing thread hands it
// to one of --connections sender threads, each with its own keep-alive connection); its latency counts from the
// arrival time, so a client that falls behind shows up as latency, not as a slower arrival rate. A hit is a
// request answered 200 within its function's SLO.
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "common/stats.h"
#include "runtime/emulated_executor.h"
#include "runtime/ring.h"
#include "sim/workload.h"

namespace fluidfaas::cli {
namespace {

using nlohmann::json;

struct LoadOptions {
  std::string url = "http://127.0.0.1:8000";
  std::vector<std::string> functions;  // empty: every function the daemon serves
  double rate = 20;
  double duration = 30;
  double cv = 1.0;
  double zipf = 1.0;
  uint64_t seed = 1;
  int connections = 32;
  std::string out;
  bool json_output = false;
};

struct Target {
  std::string name;
  double slo_ms = 0;
  std::string body;  // the JSON header, then the input tensor's bytes
  size_t header_bytes = 0;
};

struct Outcome {
  int status = 0;  // 0: no answer (connection error)
  std::string code;
  double latency_ms = 0;
};

Result<std::vector<Target>> Targets(const LoadOptions& o) {
  httplib::Client c(o.url);
  std::vector<std::string> names = o.functions;
  if (names.empty()) {
    auto r = c.Get("/v1/functions");
    if (!r || r->status != 200) return Status::Unavailable("cannot list the daemon's functions at " + o.url);
    for (const json& f : json::parse(r->body)) names.push_back(f["name"].get<std::string>());
  }
  std::vector<Target> out;
  for (const std::string& name : names) {
    auto r = c.Get("/v2/models/" + name);
    if (!r || r->status != 200) return Status::NotFound("the daemon has no function '" + name + "'");
    const json m = json::parse(r->body, nullptr, false);
    if (m.is_discarded()) return Status::Unavailable("bad metadata for '" + name + "'");
    json shape = m["inputs"][0]["shape"];
    shape[0] = 1;
    int64_t elems = 1;
    for (size_t i = 1; i < shape.size(); ++i) elems *= shape[i].get<int64_t>();
    // The binary tensor extension both ways: a 224x224 image is 600 KB of floats, several MB as JSON text.
    const bool half = m["inputs"][0]["datatype"] == "FP16";
    const size_t bytes = static_cast<size_t>(elems) * (half ? 2 : 4);
    const json header = {{"inputs",
                          {{{"name", m["inputs"][0]["name"]},
                            {"datatype", m["inputs"][0]["datatype"]},
                            {"shape", shape},
                            {"parameters", {{"binary_data_size", bytes}}}}}},
                         {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}};
    Target t{name, m["parameters"]["slo_ms"].get<double>(), header.dump(), 0};
    t.header_bytes = t.body.size();
    t.body.append(bytes, '\0');  // zeros: finite in FP32 and FP16 alike
    out.push_back(std::move(t));
  }
  if (out.empty()) return Status::InvalidArgument("no function to load");
  return out;
}

int RunLoad(const LoadOptions& o) {
  auto targets = Targets(o);
  if (!targets.ok()) {
    std::cerr << "fluidfaas load: " << targets.status().message() << '\n';
    return targets.status().code() == StatusCode::kUnavailable ? kExitFailure : kExitBadInput;
  }
  sim::WorkloadSpec spec;
  spec.rate_rps = o.rate;
  spec.cv = o.cv;
  spec.functions = static_cast<uint32_t>(targets->size());
  spec.zipf_s = o.zipf;
  spec.duration = SecondsF(o.duration);
  spec.seed = o.seed;
  if (Status s = sim::ValidateWorkload(spec); !s.ok()) {
    std::cerr << "fluidfaas load: " << s.message() << '\n';
    return kExitBadInput;
  }
  const std::vector<sim::Arrival> arrivals = sim::GenerateWorkload(spec);
  std::vector<Outcome> outcomes(arrivals.size());
  std::mutex mu;
  std::condition_variable ready;
  std::deque<size_t> queue;
  bool done = false;
  std::atomic<size_t> finished{0};
  const int64_t start_ns = runtime::MonotonicNanos() + 50'000'000;
  const auto due_ns = [&](size_t i) { return start_ns + ToMicros(arrivals[i].at - TimePoint{}) * 1000; };

  std::vector<std::thread> senders;
  senders.reserve(static_cast<size_t>(o.connections));
  for (int t = 0; t < o.connections; ++t) {
    senders.emplace_back([&] {
      httplib::Client c(o.url);
      c.set_read_timeout(300, 0);
      c.set_tcp_nodelay(true);
      for (;;) {
        size_t i = 0;
        {
          std::unique_lock<std::mutex> lock(mu);
          ready.wait(lock, [&] { return done || !queue.empty(); });
          if (queue.empty()) return;
          i = queue.front();
          queue.pop_front();
        }
        const Target& target = (*targets)[arrivals[i].function];
        const httplib::Headers headers = {{"Inference-Header-Content-Length", std::to_string(target.header_bytes)}};
        auto r = c.Post("/v2/models/" + target.name + "/infer", headers, target.body, "application/octet-stream");
        Outcome& out = outcomes[i];
        out.latency_ms = static_cast<double>(runtime::MonotonicNanos() - due_ns(i)) / 1e6;
        if (r) {
          out.status = r->status;
          if (r->status != 200) {
            const json e = json::parse(r->body, nullptr, false);
            out.code = !e.is_discarded() && e.contains("code") ? e["code"].get<std::string>() : "?";
          }
        }
        ++finished;
      }
    });
  }
  std::thread progress([&] {
    for (size_t last = 0; finished < arrivals.size();) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const size_t now = finished;
      std::cerr << "\rfluidfaas load: " << now << " / " << arrivals.size() << " answered (" << (now - last) << "/s)   "
                << std::flush;
      last = now;
    }
    std::cerr << '\n';
  });
  for (size_t i = 0; i < arrivals.size(); ++i) {
    runtime::SleepUntilNanos(due_ns(i));
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(i);
    ready.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    ready.notify_all();
  }
  for (auto& t : senders) t.join();
  progress.join();

  // Summary in the simulator's column names.
  int64_t hits = 0, late = 0, rejected = 0, failed = 0, lost = 0;
  std::map<std::string, int64_t> codes;
  std::vector<double> completed_ms;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& out = outcomes[i];
    if (out.status == 200) {
      completed_ms.push_back(out.latency_ms);
      (out.latency_ms <= (*targets)[arrivals[i].function].slo_ms ? hits : late)++;
    } else if (out.status == 0) {
      ++lost;
    } else {
      ++codes[out.code];
      (out.status == 429 || out.code == "no_capacity" || out.code == "draining" || out.code == "bad_input" ? rejected
                                                                                                           : failed)++;
    }
  }
  const auto n = static_cast<int64_t>(outcomes.size());
  double mean = 0;
  for (double v : completed_ms) mean += v / static_cast<double>(completed_ms.size());
  json summary = {{"url", o.url},
                  {"rate_rps", o.rate},
                  {"duration_s", o.duration},
                  {"requests", n},
                  {"hits", hits},
                  {"late", late},
                  {"rejected", rejected},
                  {"failed", failed},
                  {"unanswered", lost},
                  {"slo_hit_rate", n > 0 ? static_cast<double>(hits) / static_cast<double>(n) : 0},
                  {"mean_ms", mean},
                  {"p50_ms", Percentile(completed_ms, 0.5)},
                  {"p99_ms", Percentile(completed_ms, 0.99)},
                  {"throughput_rps", static_cast<double>(hits) / o.duration},
                  {"codes", codes}};
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    std::ofstream(std::filesystem::path(o.out) / "summary.json") << summary.dump(2) << '\n';
    std::ofstream csv(std::filesystem::path(o.out) / "summary.csv");
    csv << "rate_rps,requests,hits,late,rejected,failed,slo_hit_rate,mean_ms,p50_ms,p99_ms,throughput_rps\n"
        << o.rate << ',' << n << ',' << hits << ',' << late << ',' << rejected << ',' << failed << ','
        << summary["slo_hit_rate"].get<double>() << ',' << mean << ',' << summary["p50_ms"].get<double>() << ','
        << summary["p99_ms"].get<double>() << ',' << summary["throughput_rps"].get<double>() << '\n';
  }
  if (o.json_output) {
    std::cout << summary.dump(2) << '\n';
  } else {
    std::cout << "requests " << n << ": " << hits << " hits, " << late << " late, " << rejected << " rejected, "
              << failed << " failed, " << lost << " unanswered; SLO hit rate "
              << 100.0 * summary["slo_hit_rate"].get<double>() << "%; completed p50 " << summary["p50_ms"].get<double>()
              << " ms, p99 " << summary["p99_ms"].get<double>() << " ms; codes " << json(codes).dump() << '\n';
  }
  return lost == 0 ? kExitOk : kExitFailure;
}

}  // namespace

void AddLoadCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<LoadOptions>();
  CLI::App* load = app.add_subcommand(
      "load", "Open-loop load against a running daemon (arrivals from the simulator's workload generator)");
  load->add_option("--url", o->url, "The daemon's address")->capture_default_str();
  load->add_option("--functions", o->functions, "Functions to call (default: every one the daemon serves)")
      ->delimiter(',');
  load->add_option("--rate", o->rate, "Mean arrival rate, requests/s")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  load->add_option("--duration", o->duration, "Seconds of arrivals")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  load->add_option("--cv", o->cv, "CV of inter-arrival gaps (1: Poisson)")
      ->check(CLI::Range(0.01, 100.0))
      ->capture_default_str();
  load->add_option("--zipf", o->zipf, "Popularity exponent over the functions (0: uniform)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  load->add_option("--seed", o->seed, "Seed of the arrivals")->capture_default_str();
  load->add_option("--connections", o->connections, "Sender threads, one keep-alive connection each")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  load->add_option("--out", o->out, "Write summary.json and summary.csv here");
  load->add_flag("--json", o->json_output, "Print the summary as JSON");
  load->callback([o, &exit_code] { exit_code = RunLoad(*o); });
}

}  // namespace fluidfaas::cli
