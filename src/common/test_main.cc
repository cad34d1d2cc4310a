// The test binaries' main: logging is configured before any test starts a thread, as the entry points (cli/) do.
//
// spdlog's registry is created on first use. Left to the first log call, that use can come from a thread a test
// started (a gateway's watcher) while the test's own thread logs too; the registry is then built under a race that
// ThreadSanitizer reports, since Debian's libspdlog is not built with it. Configuring it here, single-threaded,
// mirrors production. FLUIDFAAS_TEST_LOG sets the level (default info).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "common/log.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const char* level = std::getenv("FLUIDFAAS_TEST_LOG");
  if (const fluidfaas::Status s = fluidfaas::ConfigureLogging(level != nullptr ? level : "info"); !s.ok()) {
    std::fprintf(stderr, "FLUIDFAAS_TEST_LOG: %s\n", s.message().c_str());
    return 2;
  }
  return RUN_ALL_TESTS();
}
