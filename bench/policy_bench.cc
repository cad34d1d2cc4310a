// Decision time of a policy as the deployed functions grow (issue 21): N functions deployed on one node, about 1%
// of them active at any time (on/off arrivals, 60 s active periods, 2 req/s each while active, uniform
// popularity, small models that can time-share), on 56 or 448 A100-80GB slices (seven 1g.10gb per GPU: 8 or 64
// GPUs), run by the simulator for --duration simulated seconds. Every call into the policy is timed on the wall
// clock; the table prints, per N and slice count, the requests, the p50/p99/max of a request's decision, the
// p50/p99 of a tick, the p99 of a tick that decided nothing (judging alone) and of a deciding tick's time per decision
// it made, the p99 over every call, the run's wall time and the process's peak RSS so far (rows run in order). A policy
// whose work follows the events shows flat columns as N grows: idle functions cost nothing per request or tick. With
// few functions the run may see none active (the first rows can be empty).
//
//   build/release/bench/policy_bench [--functions 100,1000,10000,100000] [--slices 56,448] [--duration 60]
//                                    [--policy fluidfaas]
//
// Target (issue 21): request decision p99 <= 50 us at 100,000 functions on 448 slices.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/table.h"
#include "policy/factory.h"
#include "sim/experiment.h"
#include "sim/simulator.h"
#include "sim/workload.h"

namespace fluidfaas {
namespace {

using policy::Decision;

// A policy with every call timed (wall clock, nanoseconds), by kind of call.
class TimedScheduler final : public policy::Scheduler {
 public:
  explicit TimedScheduler(policy::Scheduler& inner) : inner_(inner) {}

  std::vector<int64_t> requests, ticks, all;
  // Ticks that decided nothing (their cost is judging alone), and for the others their time per decision.
  std::vector<int64_t> quiet_ticks, tick_per_decision;

  std::string_view name() const override { return inner_.name(); }
  void OnRequest(const policy::RequestEvent& r, TimePoint now, std::vector<Decision>& out) override {
    Time(&requests, [&] { inner_.OnRequest(r, now, out); });
  }
  void OnStageFinished(const policy::StageFinished& s, TimePoint now, std::vector<Decision>& out) override {
    Time(nullptr, [&] { inner_.OnStageFinished(s, now, out); });
  }
  void OnStageFailed(const policy::StageFailed& s, TimePoint now, std::vector<Decision>& out) override {
    Time(nullptr, [&] { inner_.OnStageFailed(s, now, out); });
  }
  void OnLoadFinished(const policy::LoadFinished& l, TimePoint now, std::vector<Decision>& out) override {
    Time(nullptr, [&] { inner_.OnLoadFinished(l, now, out); });
  }
  void OnSliceLost(const policy::SliceLost& l, TimePoint now, std::vector<Decision>& out) override {
    Time(nullptr, [&] { inner_.OnSliceLost(l, now, out); });
  }
  void OnReleased(const policy::Released& r, TimePoint now, std::vector<Decision>& out) override {
    Time(nullptr, [&] { inner_.OnReleased(r, now, out); });
  }
  void OnSliceFreed(size_t slice, TimePoint now, std::vector<Decision>& out) override {
    Time(nullptr, [&] { inner_.OnSliceFreed(slice, now, out); });
  }
  void OnTick(TimePoint now, std::vector<Decision>& out) override {
    const size_t before = out.size();
    Time(&ticks, [&] { inner_.OnTick(now, out); });
    const auto decided = static_cast<int64_t>(out.size() - before);
    if (decided == 0) {
      quiet_ticks.push_back(ticks.back());
    } else {
      tick_per_decision.push_back(ticks.back() / decided);
    }
  }
  Status Deploy(policy::ServedFunction f) override { return inner_.Deploy(std::move(f)); }
  Status Remove(policy::FunctionId f, TimePoint now, std::vector<Decision>& out) override {
    return inner_.Remove(f, now, out);
  }
  Status Invariants() const override { return inner_.Invariants(); }

 private:
  template <typename Call>
  void Time(std::vector<int64_t>* kind, const Call& call) {
    const auto start = std::chrono::steady_clock::now();
    call();
    const int64_t ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    all.push_back(ns);
    if (kind != nullptr) kind->push_back(ns);
  }

  policy::Scheduler& inner_;
};

// The q-quantile of `ns` in microseconds (sorts it).
double QuantileUs(std::vector<int64_t>& ns, double q) {
  if (ns.empty()) return 0;
  std::sort(ns.begin(), ns.end());
  const size_t i = std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())));
  return static_cast<double>(ns[i]) / 1000.0;
}

std::string Us(double us) {
  char text[32];
  std::snprintf(text, sizeof text, us < 10 ? "%.2f" : "%.1f", us);
  return text;
}

double PeakRssMib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

int Run(const std::string& policy, int functions, int slices, double duration_s, cli::Table& table) {
  sim::PresetOptions options;
  options.functions = functions;
  options.gpus = slices / 7;
  options.layouts = {"1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb"};
  options.mix = {{"resnet50", 1}, {"bert-base", 1}, {"vit-b16", 1}, {"resnet152", 1}};
  options.zipf_s = 0;
  options.active_share = 0.01;
  options.mean_on_s = 60;
  Result<std::unique_ptr<sim::Preset>> preset = sim::MakePreset("serverless", options);
  if (!preset.ok()) {
    std::cerr << "policy_bench: " << preset.status().message() << '\n';
    return 1;
  }
  const sim::Preset& p = **preset;
  Result<std::unique_ptr<policy::Scheduler>> inner = sim::MakeScheduler(policy, p);
  if (!inner.ok()) {
    std::cerr << "policy_bench: " << inner.status().message() << '\n';
    return 1;
  }
  // 2 req/s per active function: rate = functions x active share x 2.
  const double rate = static_cast<double>(functions) * options.active_share.value() * 2.0;
  sim::WorkloadGenerator generator(sim::PresetWorkload(p, rate, SecondsF(duration_s), /*seed=*/1));
  std::vector<sim::Arrival> arrivals;
  while (std::optional<sim::Arrival> a = generator.Next()) arrivals.push_back(*a);

  TimedScheduler timed(**inner);
  const auto start = std::chrono::steady_clock::now();
  const sim::SimResult result = sim::Simulate(sim::ClusterFor(policy, p), p.functions, arrivals, timed);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.errors.empty()) {
    std::cerr << "policy_bench: " << result.errors.front() << '\n';
    return 1;
  }
  int64_t hits = 0;
  for (const sim::RequestRecord& r : result.requests) hits += r.outcome == sim::Outcome::kHit;
  table.AddRow(
      {std::to_string(functions), std::to_string(p.slices.size()), std::to_string(arrivals.size()),
       Us(100.0 * static_cast<double>(hits) / static_cast<double>(std::max<size_t>(1, arrivals.size()))),
       Us(QuantileUs(timed.requests, 0.5)), Us(QuantileUs(timed.requests, 0.99)), Us(QuantileUs(timed.requests, 1.0)),
       Us(QuantileUs(timed.ticks, 0.5)), Us(QuantileUs(timed.ticks, 0.99)), Us(QuantileUs(timed.quiet_ticks, 0.99)),
       Us(QuantileUs(timed.tick_per_decision, 0.99)), Us(QuantileUs(timed.all, 0.99)), Us(wall), Us(PeakRssMib())});
  return 0;
}

}  // namespace
}  // namespace fluidfaas

namespace fluidfaas {
namespace {
int Main(int argc, char** argv) {
  CLI::App app{"Decision time of a policy as deployed functions grow, 1% of them active"};
  std::vector<int> functions = {100, 1000, 10000, 100000};
  std::vector<int> slices = {56, 448};
  double duration = 60;
  std::string policy = "fluidfaas";
  app.add_option("--functions", functions, "deployed functions, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000));
  app.add_option("--slices", slices, "slices (multiples of 7: seven 1g.10gb per GPU, 1..64 GPUs), comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(7, 448));
  app.add_option("--duration", duration, "simulated seconds of arrivals")->check(CLI::Range(1.0, 3600.0));
  app.add_option("--policy", policy, "the policy (fluidfaas, esg, infless, exclusive[:keep_alive=...])");
  CLI11_PARSE(app, argc, argv);
  cli::Table table({"functions", "slices", "requests", "hit %", "request p50 us", "p99", "max", "tick p50 us", "p99",
                    "quiet tick p99", "per decision p99", "any call p99", "wall s", "RSS MiB"});
  for (int s : slices) {
    for (int f : functions) {
      if (Run(policy, f, s, duration, table) != 0) return 1;
    }
  }
  std::cout << "policy " << policy << ", 1% of functions active (60 s on, 2 req/s while on), " << duration
            << " s simulated\n";
  table.Print(std::cout);
  return 0;
}
}  // namespace
}  // namespace fluidfaas

int main(int argc, char** argv) {
  try {
    return fluidfaas::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "policy_bench: " << e.what() << '\n';
    return 1;
  }
}
