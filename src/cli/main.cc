// fluidfaas: the FluidFaaS command line.
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/log.h"

#ifdef FLUIDFAAS_TCMALLOC
#include <gperftools/tcmalloc.h>
#endif

namespace {

// The version, and the allocator the binary runs on (src/cli/CMakeLists.txt links tcmalloc where it is found).
std::string VersionText() {
  std::string text = "fluidfaas 0.1.0";
#ifdef FLUIDFAAS_TCMALLOC
  text += std::string(" (malloc: ") + tc_version(nullptr, nullptr, nullptr) + ")";
#else
  text += " (malloc: glibc)";
#endif
  return text;
}

int Run(int argc, char** argv) {
  using fluidfaas::cli::kExitBadInput;
  CLI::App app{"FluidFaaS: serverless ML inference on MIG-partitioned GPUs", "fluidfaas"};
  app.require_subcommand(1);
  app.set_version_flag("--version", VersionText());
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off (logs go to stderr)")
      ->capture_default_str();

  int exit_code = fluidfaas::cli::kExitOk;
  fluidfaas::cli::AddMigCommands(app, exit_code);
  fluidfaas::cli::AddNodeCommands(app, exit_code);
  fluidfaas::cli::AddZooCommands(app, exit_code);
  fluidfaas::cli::AddPlanCommand(app, exit_code);
  fluidfaas::cli::AddSimCommand(app, exit_code);
  fluidfaas::cli::AddGenCommand(app, exit_code);
  fluidfaas::cli::AddBenchCommands(app, exit_code);
  fluidfaas::cli::AddServeCommands(app, exit_code);
  fluidfaas::cli::AddLoadCommand(app, exit_code);
  fluidfaas::cli::AddGatewayCommand(app, exit_code);
  fluidfaas::cli::AddGenerateCommand(app, exit_code);
  fluidfaas::cli::AddGenLoadCommand(app, exit_code);
  app.parse_complete_callback([&log_level] {
    if (fluidfaas::Status s = fluidfaas::ConfigureLogging(log_level); !s.ok()) {
      throw CLI::ValidationError("--log-level", s.message());
    }
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and a hint
    return kExitBadInput;
  }
  return exit_code;
}

}  // namespace

// Commands answer errors as values; anything thrown past them (a library's exception, memory exhausted) is a
// bug, reported as a failure (exit 1) with its message rather than an abort.
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "fluidfaas: internal error: " << e.what() << '\n';
  } catch (...) {
    std::cerr << "fluidfaas: internal error\n";
  }
  return fluidfaas::cli::kExitFailure;
}
