// Test helpers for the daemon: a controller on the embedded default node (an emulated A100-80GB with 1g + 2g +
// 4g, FLUIDFAAS_WORKER as its worker) served over HTTP on a free port of 127.0.0.1, with a real client.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <thread>
#include <vector>

#include "api/event_loop.h"
#include "daemon/http_api.h"
#include "gpu/node_config.h"

namespace fluidfaas::daemon::testing {

inline ControllerOptions EmulatedNodeOptions() {
  ControllerOptions o;
  auto config = gpu::LoadNodeConfig("");
  EXPECT_TRUE(config.ok());
  if (!config.ok()) return o;
  config->discovery = gpu::DiscoveryMode::kEmulated;
  auto node = gpu::EmulateNode(*config);
  EXPECT_TRUE(node.ok());
  if (node.ok()) o.node = *node;
  o.worker_binary = FLUIDFAAS_WORKER;
  return o;
}

// A started controller behind its HTTP API; stops both when destroyed (the server first).
class TestDaemon {
 public:
  TestDaemon() = default;
  TestDaemon(const TestDaemon&) = delete;
  TestDaemon& operator=(const TestDaemon&) = delete;
  ~TestDaemon() { Stop(); }

  // Fails the test (and leaves nothing started) when the controller does not start.
  // As `fluidfaas serve` runs them, the edge and the controller share one event loop.
  void Start(ControllerOptions options, const std::vector<FunctionConfig>& functions, HttpApiOptions api = {}) {
    loop_ = std::make_unique<api::EventLoop>();
    loop_->Start();
    options.loop = loop_.get();
    api.loop = loop_.get();
    auto c = Controller::Start(std::move(options), functions);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    controller_ = std::move(*c);
    api_ = std::make_unique<HttpApi>(*controller_, std::move(api));
    auto port = api_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok());
    port_ = *port;
  }
  void Stop() {
    if (api_) api_->Stop();
    api_.reset();
    controller_.reset();
    loop_.reset();
  }

  Controller& controller() { return *controller_; }
  int port() const { return port_; }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

 private:
  std::unique_ptr<api::EventLoop> loop_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<HttpApi> api_;
  int port_ = 0;
};

}  // namespace fluidfaas::daemon::testing
