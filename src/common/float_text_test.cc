#include "common/float_text.h"

#include <fmt/compile.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace fluidfaas {
namespace {

std::string Mine(float x) {
  char buf[kFloatTextRoom + 8];
  return std::string(buf, WriteShortestFloat(buf, x));
}

std::string Fmt(float x) {
  return fmt::format(FMT_COMPILE("{}"), x);
}

TEST(FloatTextTest, WritesWhatFmtWritesAtEveryEdge) {
  const float cases[] = {0.0f,
                         -0.0f,
                         1.0f,
                         -1.0f,
                         0.1f,
                         0.5f,
                         1e-4f,
                         1.5e-4f,
                         9.999e-5f,
                         1e15f,
                         1e16f,
                         9.999999e15f,
                         123456789.0f,
                         1.5365222e16f,
                         100.0f,
                         1234500.0f,
                         3.0e-45f,  // subnormal
                         std::numeric_limits<float>::min(),
                         std::numeric_limits<float>::max(),
                         std::numeric_limits<float>::lowest(),
                         std::numeric_limits<float>::denorm_min(),
                         std::numeric_limits<float>::epsilon()};
  for (float x : cases) EXPECT_EQ(Mine(x), Fmt(x)) << "bits " << std::bit_cast<uint32_t>(x);
}

TEST(FloatTextTest, WritesWhatFmtWritesForAMillionRandomFloats) {
  std::mt19937 rng(20261205);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  while (checked < 1'000'000) {
    const float x = std::bit_cast<float>(bits(rng));
    if (!std::isfinite(x)) continue;
    ++checked;
    const std::string mine = Mine(x);
    ASSERT_EQ(mine, Fmt(x)) << "bits " << std::bit_cast<uint32_t>(x);
    ASSERT_LE(mine.size(), static_cast<size_t>(kMaxFloatText));
  }
}

TEST(FloatTextTest, EveryTextReadsBackAsTheSameFloat) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1000);
  for (int i = 0; i < 100'000; ++i) {
    const float x = normal(rng);
    EXPECT_EQ(std::strtof(Mine(x).c_str(), nullptr), x);
  }
}

}  // namespace
}  // namespace fluidfaas
