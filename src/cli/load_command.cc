// fluidfaas load: an open-loop load generator against a running daemon, with the simulator's workload
// generator (sim/workload.h) for the arrivals.
//
// Open loop: a request is sent at its arrival time whatever happened to the ones before (a pacing thread hands it
// to one of --connections sender threads, each with its own keep-alive connection); its latency counts from the
// arrival time, so a client that falls behind shows up as latency, not as a slower arrival rate. A hit is a
// request answered 200 within its function's SLO.
//
// Beside the measured row, the simulator's: the same arrivals through sim::Simulate on the daemon's node,
// functions and policy as /v1/node and the functions' metadata describe them (time scale 1 only), with the
// pipelines, migrations and evictions of each; --agree turns a disagreement into exit 1 (scripts/sim-vs-daemon.sh).
#include <fmt/format.h>
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
#include "common/clock.h"
#include "common/stats.h"
#include "policy/cluster_router.h"
#include "sim/experiment.h"
#include "sim/simulator.h"
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
  std::string popularity;  // zipf:S | uniform (replaces --zipf)
  std::string arrivals;    // gamma:CV | onoff:SHARE[:MEAN_ON_S] (replaces --cv)
  uint64_t seed = 1;
  int connections = 32;
  std::string out;
  bool json_output = false;
  double agree_points = 0;  // > 0: exit 1 unless the simulator agrees within this many points
  bool newcomer = false;    // send no timeout_ms: the daemon's cold-start rule applies (and the model's)
};

struct Target {
  std::string name;
  std::string model;  // the zoo model it serves
  double slo_ms = 0;
  double time_scale = 1;
  std::string body;  // the JSON header, then the input tensor's bytes
  size_t header_bytes = 0;
};

struct Outcome {
  int status = 0;  // 0: no answer (connection error)
  std::string code;
  double latency_ms = 0;
};

// Each request names its function's SLO as its deadline (timeout_ms), as a benchmark client does, unless
// `newcomer`: then it names none, and a function with no loaded instance holds it for its cold start.
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
    const json& params = m["parameters"];
    json header = {{"inputs",
                    {{{"name", m["inputs"][0]["name"]},
                      {"datatype", m["inputs"][0]["datatype"]},
                      {"shape", shape},
                      {"parameters", {{"binary_data_size", bytes}}}}}},
                   {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}};
    if (!o.newcomer) header["parameters"] = {{"timeout_ms", params["slo_ms"]}};
    Target t{name,
             params.value("zoo_model", ""),
             params["slo_ms"].get<double>(),
             params.value("time_scale", 1.0),
             header.dump(),
             0};
    t.header_bytes = t.body.size();
    t.body.append(bytes, '\0');  // zeros: finite in FP32 and FP16 alike
    out.push_back(std::move(t));
  }
  if (out.empty()) return Status::InvalidArgument("no function to load");
  return out;
}

// The daemon's GET /v1/node. A cluster's gateway has none: then its /v1/cluster names the nodes, and each node's
// /v1/node is read from its own address; the answer is the first node's settings with every node under
// "cluster_nodes" (by name), the gateway's "routing", and the nodes' totals summed.
Result<json> NodeState(const std::string& url) {
  httplib::Client c(url);
  auto r = c.Get("/v1/node");
  if (r && r->status == 200) {
    json node = json::parse(r->body, nullptr, false);
    if (node.is_discarded() || !node.is_object()) return Status::Unavailable("bad /v1/node from " + url);
    return node;
  }
  auto cl = c.Get("/v1/cluster");
  if (!cl || cl->status != 200) return Status::Unavailable("cannot read " + url + "/v1/node (nor /v1/cluster)");
  const json cluster = json::parse(cl->body, nullptr, false);
  if (cluster.is_discarded() || !cluster.contains("nodes")) return Status::Unavailable("bad /v1/cluster from " + url);
  json out = json::object();
  json nodes = json::array();
  std::map<std::string, int64_t> totals;
  for (const json& n : cluster["nodes"]) {
    if (!n.value("healthy", false)) continue;
    FF_ASSIGN_OR_RETURN(json node, NodeState("http://" + n.value("advertise", "")));
    if (node.contains("cluster_nodes")) return Status::InvalidArgument("a cluster node is itself a gateway");
    if (nodes.empty()) out = node;
    for (const char* k : {"launches", "pipelines", "migrations", "evictions"}) {
      totals[k] += node.contains("totals") ? node["totals"].value(k, int64_t{0}) : 0;
    }
    nodes.push_back(std::move(node));
  }
  if (nodes.empty()) return Status::Unavailable("the cluster at " + url + " has no healthy node");
  out["cluster_nodes"] = nodes;
  out["routing"] = cluster.value("routing", "warm-first");
  out["totals"] = totals;
  return out;
}

// Launches, pipelines, migrations and evictions since the node started.
std::map<std::string, int64_t> Totals(const json& node) {
  std::map<std::string, int64_t> out;
  for (const char* k : {"launches", "pipelines", "migrations", "evictions"}) {
    out[k] = node.contains("totals") ? node["totals"].value(k, int64_t{0}) : 0;
  }
  return out;
}

// The simulator's run of the same arrivals on the daemon's node, functions and policy, or why there is none.
Result<sim::RunSummary> Predict(const json& node, const std::vector<Target>& targets,
                                const std::vector<sim::Arrival>& arrivals, bool newcomer) {
  FF_ASSIGN_OR_RETURN(std::vector<policy::ClusterSlice> slices, NodeSlicesOf(node));
  std::vector<sim::NodeFunction> functions;
  for (const Target& t : targets) {
    if (t.model.empty()) {
      return Status::Unimplemented("'" + t.name + "' is a TorchScript function; the simulator runs zoo models only");
    }
    if (t.time_scale != 1) {
      return Status::Unimplemented("'" + t.name + "' runs at time scale " + std::to_string(t.time_scale) +
                                   "; the simulator models time scale 1");
    }
    functions.push_back(sim::NodeFunction{t.model, t.slo_ms});
  }
  FF_ASSIGN_OR_RETURN(auto preset, sim::MakeNodePreset(std::move(slices), functions));
  const std::string policy = node.value("policy", "fluidfaas");
  FF_ASSIGN_OR_RETURN(auto scheduler, sim::MakeScheduler(policy, *preset));
  sim::SimOptions options;
  options.slo_margin = node.value("slo_margin", 0.0);
  if (!(options.slo_margin >= 0 && options.slo_margin <= 0.5)) return Status::InvalidArgument("bad slo_margin");
  // Requests without timeout_ms: the daemon applies the newcomer's cold-start rule, and so does the model.
  const double wait_s = newcomer ? node.value("cold_start_wait_s", 0.0) : 0.0;
  if (!(wait_s >= 0 && wait_s <= 600)) return Status::InvalidArgument("bad cold_start_wait_s");
  options.cold_start_wait = SecondsF(wait_s);
  sim::SimResult r;
  if (!node.contains("cluster_nodes")) {
    r = sim::Simulate(preset->slices, preset->functions, arrivals, *scheduler, options);
  } else {
    // A cluster: each node its own preset (its slices, the same functions) and scheduler, behind the gateway's
    // routing (sim::SimulateCluster).
    FF_ASSIGN_OR_RETURN(policy::Routing routing, policy::ParseRouting(node.value("routing", "warm-first")));
    std::vector<std::unique_ptr<sim::Preset>> presets;
    std::vector<std::unique_ptr<policy::Scheduler>> owned;
    std::vector<policy::Scheduler*> schedulers;
    std::vector<std::vector<policy::ClusterSlice>> node_slices;
    for (const json& n : node["cluster_nodes"]) {
      FF_ASSIGN_OR_RETURN(std::vector<policy::ClusterSlice> ns, NodeSlicesOf(n));
      FF_ASSIGN_OR_RETURN(auto p, sim::MakeNodePreset(std::move(ns), functions));
      FF_ASSIGN_OR_RETURN(auto s, sim::MakeScheduler(n.value("policy", policy), *p));
      node_slices.push_back(p->slices);
      schedulers.push_back(s.get());
      owned.push_back(std::move(s));
      presets.push_back(std::move(p));
    }
    r = sim::SimulateCluster(node_slices, preset->functions, arrivals, schedulers, routing, options);
  }
  if (!r.errors.empty()) return Status::Internal("the simulator found a scheduler error: " + r.errors.front());
  sim::RunSummary summary = sim::Summarize(r, 0, preset->functions);
  summary.policy = node.contains("cluster_nodes") ? policy + "@" + node.value("routing", "") : policy;
  return summary;
}

int RunLoad(const LoadOptions& o) {
  sim::WorkloadSpec spec;
  spec.cv = o.cv;
  spec.zipf_s = o.zipf;
  // The simulator's workload knobs (sim/experiment.h).
  if (!o.popularity.empty()) {
    auto zipf = sim::ParsePopularity(o.popularity);
    if (!zipf.ok()) {
      std::cerr << "fluidfaas load: " << zipf.status().message() << '\n';
      return kExitBadInput;
    }
    spec.zipf_s = *zipf;
  }
  if (!o.arrivals.empty()) {
    auto shape = sim::ParseArrivals(o.arrivals);
    if (!shape.ok()) {
      std::cerr << "fluidfaas load: " << shape.status().message() << '\n';
      return kExitBadInput;
    }
    spec.cv = shape->cv.value_or(spec.cv);
    spec.active_share = shape->active_share.value_or(1.0);
    spec.mean_on_s = shape->mean_on_s.value_or(spec.mean_on_s);
  }
  auto targets = Targets(o);
  if (!targets.ok()) {
    std::cerr << "fluidfaas load: " << targets.status().message() << '\n';
    return targets.status().code() == StatusCode::kUnavailable ? kExitFailure : kExitBadInput;
  }
  spec.rate_rps = o.rate;
  spec.functions = static_cast<uint32_t>(targets->size());
  spec.duration = SecondsF(o.duration);
  spec.seed = o.seed;
  if (Status s = sim::ValidateWorkload(spec); !s.ok()) {
    std::cerr << "fluidfaas load: " << s.message() << '\n';
    return kExitBadInput;
  }
  const std::vector<sim::Arrival> arrivals = sim::GenerateWorkload(spec);
  auto node_before = NodeState(o.url);
  if (!node_before.ok()) {
    std::cerr << "fluidfaas load: " << node_before.status().message() << '\n';
    return kExitFailure;
  }
  std::vector<Outcome> outcomes(arrivals.size());
  std::mutex mu;
  std::condition_variable ready;
  std::deque<size_t> queue;
  bool done = false;
  std::atomic<size_t> finished{0};
  const int64_t start_ns = MonotonicNanos() + 50'000'000;
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
        out.latency_ms = static_cast<double>(MonotonicNanos() - due_ns(i)) / 1e6;
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
    SleepUntilNanos(due_ns(i));
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

  // Summary in the simulator's column names, with the simulator's run of the same arrivals beside it.
  sim::RunSummary m;
  m.policy = node_before->value("policy", "?");
  m.rate_rps = o.rate;
  int64_t lost = 0;
  std::map<std::string, int64_t> codes;
  std::vector<double> completed_ms;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& out = outcomes[i];
    if (out.status == 200) {
      completed_ms.push_back(out.latency_ms);
      (out.latency_ms <= (*targets)[arrivals[i].function].slo_ms ? m.hits : m.late)++;
    } else if (out.status == 0) {
      ++lost;
    } else {
      ++codes[out.code];
      (out.status == 429 || out.code == "no_capacity" || out.code == "draining" || out.code == "bad_input"
           ? m.rejected
           : m.failed)++;
    }
  }
  m.requests = static_cast<int64_t>(outcomes.size());
  m.hit_rate = m.requests > 0 ? static_cast<double>(m.hits) / static_cast<double>(m.requests) : 0;
  for (double v : completed_ms) m.mean_ms += v / static_cast<double>(completed_ms.size());
  m.p50_ms = Percentile(completed_ms, 0.5);
  m.p99_ms = Percentile(completed_ms, 0.99);
  m.throughput_rps = static_cast<double>(m.hits) / o.duration;
  if (auto after = NodeState(o.url); after.ok()) {
    auto before = Totals(*node_before), now = Totals(*after);
    m.pipelines = now["pipelines"] - before["pipelines"];
    m.migrations = now["migrations"] - before["migrations"];
    m.evictions = now["evictions"] - before["evictions"];
  }
  const auto predicted = Predict(*node_before, *targets, arrivals, o.newcomer);

  const auto row_json = [](const sim::RunSummary& r) {
    return json{{"policy", r.policy},
                {"requests", r.requests},
                {"hits", r.hits},
                {"late", r.late},
                {"rejected", r.rejected},
                {"failed", r.failed},
                {"slo_hit_rate", r.hit_rate},
                {"mean_ms", r.mean_ms},
                {"p50_ms", r.p50_ms},
                {"p99_ms", r.p99_ms},
                {"pipelines", r.pipelines},
                {"migrations", r.migrations},
                {"evictions", r.evictions}};
  };
  json summary = row_json(m);
  summary.update({{"url", o.url},
                  {"rate_rps", o.rate},
                  {"duration_s", o.duration},
                  {"unanswered", lost},
                  {"throughput_rps", m.throughput_rps},
                  {"codes", codes}});
  if (predicted.ok()) {
    summary["simulated"] = row_json(*predicted);
  } else {
    summary["simulated"] = nullptr;
    summary["no_simulation"] = predicted.status().message();
  }
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    std::ofstream(std::filesystem::path(o.out) / "summary.json") << summary.dump(2) << '\n';
    std::ofstream csv(std::filesystem::path(o.out) / "summary.csv");
    csv << "source,policy,rate_rps,requests,hits,late,rejected,failed,slo_hit_rate,mean_ms,p50_ms,p99_ms,"
           "throughput_rps,pipelines,migrations,evictions\n";
    const auto row = [&](const char* source, const sim::RunSummary& r) {
      csv << source << ',' << r.policy << ',' << o.rate << ',' << r.requests << ',' << r.hits << ',' << r.late << ','
          << r.rejected << ',' << r.failed << ',' << r.hit_rate << ',' << r.mean_ms << ',' << r.p50_ms << ','
          << r.p99_ms << ',' << static_cast<double>(r.hits) / o.duration << ',' << r.pipelines << ',' << r.migrations
          << ',' << r.evictions << '\n';
    };
    row("measured", m);
    if (predicted.ok()) row("simulated", *predicted);
  }
  if (o.json_output) {
    std::cout << summary.dump(2) << '\n';
  } else {
    const auto line = [](const char* source, const sim::RunSummary& r) {
      std::cout << fmt::format("{:<9} {:>8} {:>7} {:>6} {:>8} {:>6} {:>7.1f}% {:>9.1f} {:>9.1f} {:>9} {:>10}\n", source,
                               r.requests, r.hits, r.late, r.rejected, r.failed, 100 * r.hit_rate, r.p50_ms, r.p99_ms,
                               r.pipelines, r.migrations);
    };
    std::cout << fmt::format("{:<9} {:>8} {:>7} {:>6} {:>8} {:>6} {:>8} {:>9} {:>9} {:>9} {:>10}\n", "", "requests",
                             "hits", "late", "rejected", "failed", "SLO hit", "p50 ms", "p99 ms", "pipelines",
                             "migrations");
    line("measured", m);
    if (predicted.ok()) {
      line("simulated", *predicted);
    } else {
      std::cout << "simulated: none (" << predicted.status().message() << ")\n";
    }
    std::cout << lost << " unanswered; codes " << json(codes).dump() << '\n';
  }
  if (lost > 0) return kExitFailure;
  if (o.agree_points > 0) {
    if (!predicted.ok()) {
      std::cerr << "fluidfaas load: --agree: no simulation to compare with\n";
      return kExitFailure;
    }
    const double gap = 100 * std::abs(predicted->hit_rate - m.hit_rate);
    const int64_t pipeline_gap = std::abs(predicted->pipelines - m.pipelines);
    std::cerr << "fluidfaas load: simulator vs daemon: SLO hit rate " << gap << " points apart (at most "
              << o.agree_points << "), pipelines " << pipeline_gap << " apart (at most 1)\n";
    if (gap > o.agree_points || pipeline_gap > 1) return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void AddLoadCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<LoadOptions>();
  CLI::App* load = app.add_subcommand(
      "load",
      "Open-loop load against a running daemon (arrivals from the simulator's workload generator), with the "
      "simulator's run of the same arrivals on the daemon's node, functions and policy beside the measured row (it "
      "starts from an empty node: compare against a freshly started daemon)");
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
  load->add_option("--popularity", o->popularity, "zipf:S or uniform (as fluidfaas sim; replaces --zipf)");
  load->add_option("--arrivals", o->arrivals,
                   "gamma:CV or onoff:ACTIVE_SHARE[:MEAN_ON_S] (as fluidfaas sim; gamma replaces --cv)");
  load->add_option("--seed", o->seed, "Seed of the arrivals")->capture_default_str();
  load->add_option("--connections", o->connections, "Sender threads, one keep-alive connection each")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  load->add_option("--out", o->out, "Write summary.json and summary.csv here");
  load->add_flag("--json", o->json_output, "Print the summary as JSON");
  load->add_flag("--newcomer", o->newcomer,
                 "Send no timeout_ms (default: each function's SLO): cold starts are waited for, as the daemon's "
                 "--cold-start-wait says, in the daemon and in the simulated run beside it");
  load->add_option("--agree", o->agree_points,
                   "Exit 1 unless the simulator's SLO hit rate for the same arrivals is within this many points of "
                   "the measured one and its pipelines within 1")
      ->check(CLI::Range(0.01, 100.0));
  load->callback([o, &exit_code] { exit_code = RunLoad(*o); });
}

Result<std::vector<policy::ClusterSlice>> NodeSlicesOf(const nlohmann::json& node) {
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  std::vector<policy::ClusterSlice> slices;
  for (const nlohmann::json& s : node.value("slices", json::array())) {
    const std::string profile = s.value("profile", "");
    const auto p = std::find_if(a100.profiles.begin(), a100.profiles.end(),
                                [&](const gpu::MigProfile& m) { return m.name == profile; });
    if (p == a100.profiles.end())
      return Status::Unimplemented("slice profile '" + profile + "' is not an A100-80GB one");
    slices.push_back(policy::ClusterSlice{s.value("id", ""), s.value("gpu", 0), policy::SliceKind{&a100, &*p}, true});
  }
  return slices;
}

}  // namespace fluidfaas::cli
