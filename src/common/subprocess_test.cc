#include "common/subprocess.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace fluidfaas {
namespace {

TEST(RunProcessTest, CollectsOutputAndExitCode) {
  auto r = RunProcess({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, Seconds(10), 1024);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(RunProcessTest, ArgumentsAreNotInterpreted) {
  auto r = RunProcess({"/bin/echo", "$(id)", ";", "*"}, Seconds(10), 1024);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "$(id) ; *\n");
}

TEST(RunProcessTest, AProgramThatCannotStartIsAnIoErrorNamingIt) {
  auto r = RunProcess({"/nonexistent/helper", "x"}, Seconds(10), 1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find("/nonexistent/helper"), std::string::npos);
  EXPECT_NE(r.status().message().find("No such file"), std::string::npos);
}

TEST(RunProcessTest, ATimeoutKillsTheProgramAndItsChildren) {
  // The grandchild holds stdout open: the group is killed, not only the shell.
  auto r = RunProcess({"/bin/sh", "-c", "sleep 30 & sleep 30"}, Millis(200), 1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(RunProcessTest, OutputOverTheLimitIsRefused) {
  auto r = RunProcess({"/bin/sh", "-c", "yes | head -c 100000"}, Seconds(10), 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST(RunProcessTest, StandardErrorKeepsItsTail) {
  auto r = RunProcess({"/bin/sh", "-c", "head -c 20000 /dev/zero | tr '\\0' a >&2; echo end >&2"}, Seconds(10), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->err.size(), 4096U);
  EXPECT_EQ(r->err.substr(r->err.size() - 4), "end\n");
}

TEST(RunProcessTest, TheChildInheritsNoDescriptorOfTheCaller) {
  const int fd = ::open("/dev/null", O_RDONLY);  // not close-on-exec
  ASSERT_GE(fd, 3);
  auto r = RunProcess({"/bin/sh", "-c", "ls /proc/self/fd"}, Seconds(10), 4096);
  ::close(fd);
  ASSERT_TRUE(r.ok());
  // 0, 1, 2, and the descriptor ls opens to read the directory.
  EXPECT_EQ(r->out, "0\n1\n2\n3\n");
}

}  // namespace
}  // namespace fluidfaas
