// Shared by the libFuzzer harnesses: the input as text. Each harness feeds one parser that takes input from
// outside FluidFaaS and checks only that it returns (a value or an error) without crashing, hanging or leaking:
// AddressSanitizer and UndefinedBehaviorSanitizer run with it (scripts/fuzz.sh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

inline std::string FuzzText(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}
