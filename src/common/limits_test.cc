#include "common/limits.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

namespace fluidfaas {
namespace {

TEST(LimitsTest, RangesRejectNonFiniteAndOutOfRangeNamingTheField) {
  EXPECT_TRUE(CheckRange("--x", 5.0, 0, 10).ok());
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(), -1.0, 11.0}) {
    const Status s = CheckRange("--x", bad, 0, 10);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("--x"), std::string::npos);
    EXPECT_NE(s.message().find("[0, 10]"), std::string::npos) << s.message();
  }
  EXPECT_FALSE(CheckRange("--x", 0.0, 0, 10, /*open_low=*/true).ok());
  EXPECT_FALSE(CheckRange("--n", int64_t{0}, 1, 4096).ok());
}

TEST(LimitsTest, ArithmeticIsCheckedOrSaturates) {
  EXPECT_EQ(*CheckedMul("m", 1 << 20, 1 << 20), int64_t{1} << 40);
  EXPECT_FALSE(CheckedMul("m", int64_t{1} << 40, int64_t{1} << 40).ok());
  EXPECT_FALSE(CheckedMul("m", -1, 5).ok());
  EXPECT_EQ(SaturatingMul(int64_t{1} << 40, int64_t{1} << 40), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(SaturatingAdd(std::numeric_limits<int64_t>::max(), 1), std::numeric_limits<int64_t>::max());
}

TEST(LimitsTest, NamesArePlainShortAndEchoedEscaped) {
  EXPECT_TRUE(CheckName("name", "node-a.1_x").ok());
  EXPECT_FALSE(CheckName("name", "").ok());
  EXPECT_FALSE(CheckName("name", "-lead").ok());
  EXPECT_FALSE(CheckName("name", std::string(64, 'a')).ok());
  const Status esc = CheckName("name", "evil\x1b[2J");
  ASSERT_FALSE(esc.ok());
  EXPECT_EQ(esc.message().find('\x1b'), std::string::npos) << "echoed raw";
  EXPECT_NE(esc.message().find("\\x1b"), std::string::npos);
  EXPECT_EQ(Printable(std::string(200, 'x'), 10), "xxxxxxxxxx...");
}

TEST(LimitsTest, FilesOverTheLimitAreRefusedBeforeReading) {
  const std::string path = testing::TempDir() + "/big.txt";
  std::ofstream(path) << std::string(2048, 'y');
  EXPECT_EQ(ReadBoundedFile(path, 4096, "config")->size(), 2048u);
  const Result<std::string> big = ReadBoundedFile(path, 1024, "config");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("over the limit of 1024"), std::string::npos);
  EXPECT_EQ(ReadBoundedFile(path + ".none", 1024, "config").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fluidfaas
