// fluidfaas bench: measurements of the node's mechanism on this machine (today: the shared-memory hop).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/table.h"
#include "daemon/grpc_load.h"
#include "runtime/shm_bench.h"

namespace fluidfaas::cli {
namespace {

std::string Bytes(uint64_t b) {
  if (b >= (1u << 20) && b % (1u << 20) == 0) return std::to_string(b >> 20) + " MiB";
  if (b >= (1u << 10) && b % (1u << 10) == 0) return std::to_string(b >> 10) + " KiB";
  return std::to_string(b) + " B";
}

int RunShm(const runtime::ShmBenchOptions& options, bool json_output) {
  auto rows = runtime::RunShmBench(options);
  if (!rows.ok()) {
    std::cerr << "fluidfaas bench shm: " << rows.status().message() << '\n';
    return rows.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  }
  if (json_output) {
    nlohmann::json out{{"rows", nlohmann::json::array()}};
    for (const auto& r : *rows) {
      out["rows"].push_back({{"bytes", r.bytes},
                             {"hop_p50_us", r.hop_p50_us},
                             {"hop_p99_us", r.hop_p99_us},
                             {"stream_gbs", r.stream_gbs},
                             {"memcpy_gbs", r.memcpy_gbs},
                             {"baseline_p50_us", r.baseline_p50_us}});
    }
    std::cout << out.dump(2) << '\n';
    return kExitOk;
  }
  Table table({">payload", ">hop p50 us", ">hop p99 us", ">stream GB/s", ">memcpy GB/s", ">stream/memcpy",
               ">socket p50 us", ">socket/hop"});
  for (const auto& r : *rows) {
    table.AddRow({Bytes(r.bytes), Fixed(r.hop_p50_us, 2), Fixed(r.hop_p99_us, 2), Fixed(r.stream_gbs, 2),
                  Fixed(r.memcpy_gbs, 2), Fixed(r.stream_gbs / r.memcpy_gbs, 2), Fixed(r.baseline_p50_us, 1),
                  Fixed(r.baseline_p50_us / r.hop_p50_us, 0) + "x"});
  }
  table.Print(std::cout);
  return kExitOk;
}

int RunGrpc(const daemon::GrpcLoadOptions& options, bool json_output) {
  auto r = daemon::RunGrpcLoad(options);
  if (!r.ok()) {
    std::cerr << "fluidfaas bench grpc: " << r.status().message() << '\n';
    return r.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  }
  if (json_output) {
    std::cout << nlohmann::json{{"connections", options.connections},
                                {"completed", r->completed},
                                {"failed", r->failed},
                                {"seconds", r->seconds},
                                {"requests_per_s", r->requests_per_s},
                                {"p50_ms", r->p50_ms},
                                {"p99_ms", r->p99_ms},
                                {"first_error", r->first_error}}
                     .dump()
              << '\n';
  } else {
    std::cout << "gRPC ModelInfer " << options.model << " at " << options.target << ", " << options.connections
              << " connections: " << r->requests_per_s << " req/s, p50 " << r->p50_ms << " ms, p99 " << r->p99_ms
              << " ms, " << r->completed << " completed, " << r->failed << " failed"
              << (r->first_error.empty() ? "" : " (first: " + r->first_error + ")") << '\n';
  }
  return r->failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace

void AddBenchCommands(CLI::App& app, int& exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Measure the node's mechanism on this machine");
  bench->require_subcommand(1);
  auto options = std::make_shared<runtime::ShmBenchOptions>();
  auto json_output = std::make_shared<bool>(false);
  CLI::App* shm = bench->add_subcommand(
      "shm",
      "Shared-memory pipeline hops between two processes: hop latency (p50, p99), streaming bandwidth, against "
      "single-thread memcpy and a Unix-socket two-copy baseline, per payload size");
  shm->add_option("--sizes", options->sizes, "Payload sizes in bytes, comma-separated (default 64 B ... 64 MiB)")
      ->delimiter(',')
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  shm->add_option("--hops", options->hop_samples, "Hops timed per size")
      ->check(CLI::Range(10, 1'000'000))
      ->capture_default_str();
  shm->add_option("--stream-seconds", options->stream_seconds, "Streaming time per size")
      ->check(CLI::Range(0.01, 60.0))
      ->capture_default_str();
  shm->add_flag("--json", *json_output, "Print JSON: {\"rows\": [{\"bytes\", \"hop_p50_us\", ...}]}");
  shm->callback([options, json_output, &exit_code] { exit_code = RunShm(*options, *json_output); });
  auto grpc_options = std::make_shared<daemon::GrpcLoadOptions>();
  auto duration_s = std::make_shared<double>(10);
  CLI::App* grpc = bench->add_subcommand(
      "grpc", "Closed-loop gRPC ModelInfer load on a daemon (one call in flight per connection): req/s, p50, p99");
  grpc->add_option("--target", grpc_options->target, "The daemon's gRPC HOST:PORT")->capture_default_str();
  grpc->add_option("--model", grpc_options->model, "Function name")->required();
  grpc->add_option("--connections", grpc_options->connections, "Connections, one call in flight on each")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  grpc->add_option("--duration", *duration_s, "Seconds")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  grpc->add_flag("--json", *json_output, "One JSON object");
  grpc->callback([grpc_options, duration_s, json_output, &exit_code] {
    grpc_options->duration = SecondsF(*duration_s);
    exit_code = RunGrpc(*grpc_options, *json_output);
  });
}

}  // namespace fluidfaas::cli
