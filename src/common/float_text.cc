#include "common/float_text.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace fluidfaas {
namespace {

constexpr char kPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

int DigitCount(uint32_t v) {  // v < 10^9: a float's shortest significand has at most 9 digits
  return v < 10000       ? (v < 100 ? (v < 10 ? 1 : 2) : (v < 1000 ? 3 : 4))
         : v < 1000000   ? (v < 100000 ? 5 : 6)
         : v < 100000000 ? (v < 10000000 ? 7 : 8)
                         : 9;
}

// The 9 digits of `v` (< 10^9, zero-padded on the left) at `p`: the same work for every value, no branches.
// The two digits of `v` (< 100).
const char* Pair(uint32_t v) {
  return kPairs + size_t{v} * 2;
}

void WriteNineDigits(char* p, uint32_t v) {
  const uint32_t hi = v / 100000000;
  const uint32_t lo = v % 100000000;
  p[0] = static_cast<char>('0' + hi);
  const uint32_t a = lo / 10000;
  const uint32_t b = lo % 10000;
  std::memcpy(p + 1, Pair(a / 100), 2);
  std::memcpy(p + 3, Pair(a % 100), 2);
  std::memcpy(p + 5, Pair(b / 100), 2);
  std::memcpy(p + 7, Pair(b % 100), 2);
}

}  // namespace

char* WriteShortestFloat(char* p, float x) {
  if (std::signbit(x)) {
    *p++ = '-';
    x = -x;
  }
  // The shortest digits that round-trip: significand x 10^exponent (significand 0 for zero).
  const auto dec = fmt::detail::dragonbox::to_decimal(x);
  const int n = DigitCount(dec.significand);
  const int output_exp = dec.exponent + n - 1;  // the exponent of the first digit
  // Copies below are of fixed sizes (a few moves each, where a copy of n bytes is a call): what lies past the
  // text's end is scratch, within kFloatTextRoom.
  char nine[18] = {};
  WriteNineDigits(nine, dec.significand);
  const char* digits = nine + 9 - n;
  if (output_exp < -4 || output_exp >= 16) {  // d[.ddd]e+XX
    p[0] = digits[0];
    p[1] = '.';
    std::memcpy(p + 2, digits + 1, 8);
    p += n > 1 ? n + 1 : 1;
    p[0] = 'e';
    p[1] = output_exp < 0 ? '-' : '+';
    const int e = output_exp < 0 ? -output_exp : output_exp;  // a float's is below 100
    std::memcpy(p + 2, Pair(static_cast<uint32_t>(e)), 2);
    return p + 4;
  }
  if (dec.exponent >= 0) {  // 1234e2 -> 123400 (up to 16 digits)
    std::memcpy(p, digits, 9);
    std::memset(p + n, '0', 16);
    return p + n + dec.exponent;
  }
  const int integral = n + dec.exponent;  // digits before the point
  if (integral > 0) {                     // 1234e-2 -> 12.34
    std::memcpy(p, digits, 9);
    std::memcpy(p + integral + 1, digits + integral, 9);
    p[integral] = '.';
    return p + n + 1;
  }
  // 1234e-6 -> 0.001234 (up to three zeros after the point)
  p[0] = '0';
  p[1] = '.';
  std::memset(p + 2, '0', 4);
  std::memcpy(p + 2 - integral, digits, 9);
  return p + 2 - integral + n;
}

}  // namespace fluidfaas
