// IEEE 754 binary16 <-> binary32, for FP16 tensors: round to nearest, ties to even, as a hardware conversion
// (_Float16, F16C's vcvtps2ph) does; overflow goes to infinity, tiny values to subnormals or zero.
//
// Written out rather than through _Float16 because clang 14 (the fuzz and lint builds) has no _Float16 on x86;
// half_test checks both agree on every half value and on the rounding boundaries where GCC has it.
//
// Thread safety: pure functions.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace fluidfaas {

constexpr uint16_t FloatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t exp8 = (x >> 23) & 0xff;
  const uint32_t mant = x & 0x7fffff;
  if (exp8 == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant != 0 ? 0x200 : 0));  // inf, quiet NaN
  const int32_t exp = static_cast<int32_t>(exp8) - 127 + 15;
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  // The 24-bit significand (implicit one included) shifted right by `shift`, rounded to nearest, ties to even.
  const uint32_t sig = exp8 == 0 ? mant : (mant | 0x800000);
  const uint32_t shift = exp > 0 ? 13 : static_cast<uint32_t>(14 - exp);
  if (shift > 24) return sign;  // under half the smallest subnormal
  uint32_t half = sig >> shift;
  const uint32_t rest = sig & ((uint32_t{1} << shift) - 1);
  const uint32_t halfway = uint32_t{1} << (shift - 1);
  if (rest > halfway || (rest == halfway && (half & 1))) ++half;  // a carry moves into the exponent, as it should
  if (exp > 0) half = (static_cast<uint32_t>(exp) << 10) + half - 0x400;  // drop the implicit one
  return static_cast<uint16_t>(sign | half);
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ffu;
  float f = 0;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    f = mant != 0 ? NAN : INFINITY;
  } else {
    f = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return (h & 0x8000u) != 0 ? -f : f;
}

}  // namespace fluidfaas
