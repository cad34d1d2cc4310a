#include "runtime/control.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/ring.h"

namespace fluidfaas::runtime {
namespace {

TEST(ControlTest, CarriesAMessageAndItsDescriptors) {
  auto pair = ControlSocketPair();
  ASSERT_TRUE(pair.ok());
  auto ring = Ring::Create("test", RingSpec{.slot_count = 2, .max_batch = 1, .payload_bytes = 64});
  ASSERT_TRUE(ring.ok());
  const int fds[1] = {ring->fd()};
  ASSERT_TRUE(SendControl(pair->first.get(), {{"op", "load"}, {"instance", 7}}, fds).ok());
  auto m = ReceiveControl(pair->second.get(), Seconds(1));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->body["op"], "load");
  EXPECT_EQ(*GetU64(m->body, "instance"), 7u);
  ASSERT_EQ(m->fds.size(), 1u);
  // The received descriptor maps the same ring.
  auto peer = Ring::Open(std::move(m->fds[0]));
  ASSERT_TRUE(peer.ok());
  ASSERT_TRUE(ring->BeginWrite(Millis(1)).ok());
  ring->EndWrite();
  EXPECT_EQ(peer->depth(), 1u);
}

TEST(ControlTest, GarbageIsRefusedAndTheSocketStaysUsable) {
  auto pair = ControlSocketPair();
  ASSERT_TRUE(pair.ok());
  const char junk[] = "not json {";
  ASSERT_GT(send(pair->first.get(), junk, sizeof(junk) - 1, 0), 0);
  EXPECT_EQ(ReceiveControl(pair->second.get(), Seconds(1)).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(SendControl(pair->first.get(), {{"no_op", 1}}).ok());
  EXPECT_EQ(ReceiveControl(pair->second.get(), Seconds(1)).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(SendControl(pair->first.get(), {{"op", "ping"}, {"seq", 1}}).ok());
  EXPECT_TRUE(ReceiveControl(pair->second.get(), Seconds(1)).ok());
}

TEST(ControlTest, TimeoutAndHangUpAreTold) {
  auto pair = ControlSocketPair();
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(ReceiveControl(pair->second.get(), Millis(5)).status().code(), StatusCode::kDeadlineExceeded);
  pair->first.Reset();
  EXPECT_EQ(ReceiveControl(pair->second.get(), Seconds(1)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(SendControl(pair->second.get(), {{"op", "ping"}}).code(), StatusCode::kUnavailable);
}

TEST(ControlTest, FieldReadersNameTheField) {
  const nlohmann::json body = {{"op", "x"}, {"instance", -1}, {"name", 3}};
  auto id = GetU64(body, "instance");
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("instance"), std::string::npos);
  EXPECT_FALSE(GetString(body, "name").ok());
  EXPECT_FALSE(GetU64(body, "missing").ok());
}

}  // namespace
}  // namespace fluidfaas::runtime
