#include "common/half.h"

#include <gtest/gtest.h>

#include <cstring>

namespace fluidfaas {
namespace {

TEST(HalfTest, RoundsToNearestEven) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 2048), 0x3c00);     // a tie: to the even 1.0 (was 0x3c01)
  EXPECT_EQ(FloatToHalf(1.0f + 3.0f / 2048), 0x3c02);     // a tie: to the even 1+2/1024
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);               // the largest half
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);               // rounds up to infinity
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // half of it: a tie, to even zero
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0) continue;  // NaN payloads are not kept
    EXPECT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
  }
}

#ifdef __FLT16_MAX__
TEST(HalfTest, AgreesWithTheCompilersFloat16) {
  for (uint64_t i = 0; i < (uint64_t{1} << 32); i += 65521) {  // a prime stride over every float bit pattern
    const auto bits = static_cast<uint32_t>(i);
    float f = 0;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f)) continue;
    const auto h = static_cast<_Float16>(f);
    uint16_t want = 0;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(FloatToHalf(f), want) << std::hex << bits;
  }
}
#endif

}  // namespace
}  // namespace fluidfaas
