// fluidfaas-worker: the process that runs stages on one slice (one worker per MIG slice in use).
//
//   fluidfaas-worker serve --control-fd N   started by the node (runtime/worker_process.h), never by hand
//   fluidfaas-worker check DIR [--json]     load a TorchScript function directory and check its blocks chain
//   fluidfaas-worker example DIR            write an example function directory
//
// It is the only FluidFaaS binary that links LibTorch (when it is built with it): loading LibTorch costs most of
// a second and 160 MB per process.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/log.h"
#include "common/strings.h"
#include "runtime/emulated_executor.h"
#include "runtime/worker.h"

#ifdef FLUIDFAAS_HAS_TORCH
#include "model/torch_generative.h"
#include "model/torchscript.h"
#include "runtime/torch_executor.h"
#endif

namespace {

#ifdef FLUIDFAAS_HAS_TORCH
std::string Shape(const std::vector<int64_t>& s) {
  return "[" + fluidfaas::Join(s, ", ", [](int64_t d) { return std::to_string(d); }) + "]";
}

// `check`'s answer for a directory that does not load or run: exit 2.
int Invalid(const fluidfaas::Status& s, bool json_output) {
  if (json_output) {
    std::cout << nlohmann::json{{"valid", false}, {"reason", s.message()}}.dump(2) << '\n';
  } else {
    std::cerr << "fluidfaas-worker: " << s.message() << '\n';
  }
  return 2;
}

// A generative function (kind: generative): its blocks chained over a prompt of one token, four generated.
int RunGenerativeCheck(const std::string& dir, const fluidfaas::model::GenerativeManifest& m, bool json_output) try {
  const auto tokens = fluidfaas::model::GenerateWithoutCache(dir, {1}, 4);
  if (!tokens.ok()) return Invalid(tokens.status(), json_output);
  if (json_output) {
    nlohmann::json blocks = nlohmann::json::array();
    for (const auto& b : m.blocks) blocks.push_back({{"name", b.name}, {"file", b.file}});
    std::cout << nlohmann::json{{"valid", true},
                                {"name", m.name},
                                {"kind", "generative"},
                                {"vocab", m.vocab},
                                {"d_model", m.d_model},
                                {"heads", m.heads},
                                {"max_positions", m.max_positions},
                                {"blocks", blocks},
                                {"sample_tokens", *tokens}}
                     .dump(2)
              << '\n';
    return 0;
  }
  std::cout << m.name << ": generative, " << m.blocks.size() << " blocks (embed, " << m.blocks.size() - 2
            << " layers, head), vocab " << m.vocab << ", d_model " << m.d_model << ", " << m.heads << " heads, "
            << m.max_positions << " positions; after token 1 it generates " << Shape(*tokens) << '\n';
  return 0;
} catch (const std::exception& e) {  // printing its JSON
  std::cerr << "fluidfaas-worker: " << e.what() << '\n';
  return 1;
}

int RunCheck(const std::string& dir, bool json_output) {
  using fluidfaas::model::TorchScriptFunction;
  if (auto g = fluidfaas::model::ReadGenerativeManifest(dir); g.ok()) return RunGenerativeCheck(dir, *g, json_output);
  auto f = TorchScriptFunction::Load(dir);
  if (!f.ok()) return Invalid(f.status(), json_output);
  const auto& m = (*f)->manifest();
  if (json_output) {
    nlohmann::json blocks = nlohmann::json::array();
    for (size_t i = 0; i < m.blocks.size(); ++i) {
      blocks.push_back({{"name", m.blocks[i].name},
                        {"file", m.blocks[i].file},
                        {"params", (*f)->block_params()[i]},
                        {"output_shape", (*f)->output_shapes()[i]}});
    }
    std::cout << nlohmann::json{{"valid", true},
                                {"name", m.name},
                                {"slo_ms", m.slo_ms},
                                {"max_batch", m.max_batch},
                                {"dtype", fluidfaas::model::ToString(m.dtype)},
                                {"input_shape", m.input_shape},
                                {"blocks", blocks}}
                     .dump(2)
              << '\n';
    return 0;
  }
  std::cout << m.name << ": " << m.blocks.size() << " blocks, input " << Shape(m.input_shape) << ", SLO " << m.slo_ms
            << " ms, max batch " << m.max_batch << "\n\n";
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    std::cout << "  " << i << "  " << m.blocks[i].name << "  " << m.blocks[i].file << "  " << (*f)->block_params()[i]
              << " params  -> " << Shape((*f)->output_shapes()[i]) << '\n';
  }
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"FluidFaaS worker: runs a function's stages on one slice", "fluidfaas-worker"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")->capture_default_str();
  int exit_code = 0;

  int control_fd = -1;
  CLI::App* serve =
      app.add_subcommand("serve", "Serve stages for the node over a control socket (started by the node)");
  serve->add_option("--control-fd", control_fd, "The control socket's descriptor")
      ->required()
      ->check(CLI::Range(0, 1 << 20));
  serve->callback([&] {
    if (fluidfaas::Status s = fluidfaas::ConfigureLogging(log_level); !s.ok()) {
      std::cerr << "fluidfaas-worker: " << s.message() << '\n';
      exit_code = 2;
      return;
    }
    fluidfaas::runtime::WorkerOptions options;
    options.control_fd = control_fd;
    options.executors["emulated"] = fluidfaas::runtime::MakeEmulatedExecutor;
    options.device = "emulated";
#ifdef FLUIDFAAS_HAS_TORCH
    options.executors["torchscript"] = fluidfaas::runtime::MakeTorchExecutor;
    options.executors["torchscript-generative"] = fluidfaas::runtime::MakeTorchGenerativeExecutor;
    options.device = fluidfaas::runtime::TorchDeviceName();
#endif
    exit_code = fluidfaas::runtime::ServeWorker(options);
  });

#ifdef FLUIDFAAS_HAS_TORCH
  std::string dir;
  bool json_output = false;
  CLI::App* check = app.add_subcommand(
      "check", "Load a function directory (manifest.yaml + one .pt per block) and check that its blocks chain");
  check->add_option("DIR", dir, "Function directory")->required();
  check->add_flag("--json", json_output, "Print JSON");
  check->callback([&] { exit_code = RunCheck(dir, json_output); });
  CLI::App* example = app.add_subcommand(
      "example", "Write an example function directory (a three-block MLP; --generative: a tiny byte-level GPT)");
  example->add_option("DIR", dir, "Directory to create (refused when it exists and is not empty)")->required();
  bool force = false;
  bool generative = false;
  example->add_flag("--force", force, "Write into DIR even when it is not empty");
  example->add_flag("--generative", generative,
                    "A decoder of embed, 4 layers carrying their KV caches, and a greedy head (kind: generative)");
  example->callback([&] {
    const fluidfaas::Status s = generative ? fluidfaas::model::WriteGenerativeExample(dir, force)
                                           : fluidfaas::model::WriteExampleFunction(dir, force);
    if (!s.ok()) std::cerr << "fluidfaas-worker: " << s.message() << '\n';
    exit_code = s.ok() ? 0 : (s.code() == fluidfaas::StatusCode::kAlreadyExists ? 2 : 1);
  });
  int mib = 256;
  int trials = 5;
  CLI::App* reload = app.add_subcommand(
      "bench-reload", "Measure a TorchScript stage's cold load and warm reload (host to device) against memcpy");
  reload->add_option("--mib", mib, "Weights of the stage, MiB")->capture_default_str();
  reload->add_option("--trials", trials, "Warm reloads timed (the median is reported)")->capture_default_str();
  reload->add_flag("--json", json_output, "Print JSON");
  reload->callback([&] {
    const std::string tmp =
        (std::filesystem::temp_directory_path() / ("fluidfaas-reload-" + std::to_string(getpid()))).string();
    auto r = fluidfaas::runtime::MeasureReload(tmp, mib, trials);
    if (!r.ok()) {
      std::cerr << "fluidfaas-worker: " << r.status().message() << '\n';
      exit_code = r.status().code() == fluidfaas::StatusCode::kInvalidArgument ? 2 : 1;
      return;
    }
    if (json_output) {
      std::cout << nlohmann::json{{"device", r->device},
                                  {"bytes", r->bytes},
                                  {"cold_ms", r->cold_ms},
                                  {"warm_ms", r->warm_ms},
                                  {"warm_gbs", r->warm_gbs},
                                  {"memcpy_gbs", r->memcpy_gbs},
                                  {"warm_over_memcpy", r->warm_gbs / r->memcpy_gbs}}
                       .dump(2)
                << '\n';
      return;
    }
    std::printf(
        "device %s, %.1f MiB of weights\n  cold load   %9.1f ms (disk to host to device)\n"
        "  warm reload %9.1f ms  %6.2f GB/s (host to device)\n  memcpy                   %6.2f GB/s"
        "  (warm reload at %.0f%% of it)\n",
        r->device.c_str(), static_cast<double>(r->bytes) / (1 << 20), r->cold_ms, r->warm_ms, r->warm_gbs,
        r->memcpy_gbs, 100 * r->warm_gbs / r->memcpy_gbs);
  });
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
