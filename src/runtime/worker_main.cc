// fluidfaas-worker: the process that runs a function's blocks on one slice (one worker per MIG slice).
//
// It is the only FluidFaaS binary that links LibTorch. Today it checks function directories; the node daemon
// will start one per slice to host stages.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/table.h"
#include "common/strings.h"
#include "model/torchscript.h"

namespace {

std::string Shape(const std::vector<int64_t>& s) {
  return "[" + fluidfaas::Join(s, ", ", [](int64_t d) { return std::to_string(d); }) + "]";
}

int RunCheck(const std::string& dir, bool json_output) {
  using fluidfaas::model::TorchScriptFunction;
  auto f = TorchScriptFunction::Load(dir);
  if (!f.ok()) {
    if (json_output) {
      std::cout << nlohmann::json{{"valid", false}, {"reason", f.status().message()}}.dump(2) << '\n';
    } else {
      std::cerr << "fluidfaas-worker: " << f.status().message() << '\n';
    }
    return 2;
  }
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
                                {"input_shape", m.input_shape},
                                {"blocks", blocks}}
                     .dump(2)
              << '\n';
    return 0;
  }
  std::cout << m.name << ": " << m.blocks.size() << " blocks, input " << Shape(m.input_shape) << ", SLO " << m.slo_ms
            << " ms, max batch " << m.max_batch << "\n\n";
  fluidfaas::cli::Table table({">#", "block", "file", ">params", "output"});
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    table.AddRow({std::to_string(i), m.blocks[i].name, m.blocks[i].file, std::to_string((*f)->block_params()[i]),
                  Shape((*f)->output_shapes()[i])});
  }
  table.Print(std::cout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"FluidFaaS worker: runs a function's TorchScript blocks on one slice", "fluidfaas-worker"};
  app.require_subcommand(1);
  std::string dir;
  bool json_output = false;
  int exit_code = 0;
  CLI::App* check = app.add_subcommand(
      "check", "Load a function directory (manifest.yaml + one .pt per block) and check that its blocks chain");
  check->add_option("DIR", dir, "Function directory")->required();
  check->add_flag("--json", json_output, "Print JSON");
  check->callback([&] { exit_code = RunCheck(dir, json_output); });
  CLI::App* example = app.add_subcommand("example", "Write an example function directory (a three-block MLP)");
  example->add_option("DIR", dir, "Directory to create (refused when it exists and is not empty)")->required();
  bool force = false;
  example->add_flag("--force", force, "Write into DIR even when it is not empty");
  example->callback([&] {
    const fluidfaas::Status s = fluidfaas::model::WriteExampleFunction(dir, force);
    if (!s.ok()) std::cerr << "fluidfaas-worker: " << s.message() << '\n';
    exit_code = s.ok() ? 0 : (s.code() == fluidfaas::StatusCode::kAlreadyExists ? 2 : 1);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
