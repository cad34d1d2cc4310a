// Floats as JSON numbers: the shortest decimal that reads back as the same float, written as fmt's "{}" writes
// it (fixed notation for decimal exponents in [-4, 16), else d.ddde+XX), for a few nanoseconds a value.
//
// Why not fmt's own writer: fmt's Dragonbox finds the digits (used here), but its general writer (padding, locale and
// digit grouping, checked per value) cost more than the digit search. Measured on this machine, 768k values: 18 ns a
// value through fmt against 12 ns here for one repeated value (the emulated executor's answers), 34 against 25 ns
// for normally distributed ones; the daemon's JSON infer at 16 connections went from 26.1k to 28.4k requests/s.
// float_text_test.cc checks the text equals fmt's for every edge case and a million random floats (and 4.3M
// evenly spaced bit patterns were checked once by hand).
//
// Thread safety: pure functions.
#pragma once

namespace fluidfaas {

// The longest text WriteShortestFloat writes: "-1000000000000000" (fixed notation up to 10^16, with a sign).
inline constexpr int kMaxFloatText = 17;
// The room it needs at `p`: it copies fixed-size runs and may write scratch bytes past the text's end.
inline constexpr int kFloatTextRoom = 32;

// Writes `x` at `p` and returns the end of its text (at most kMaxFloatText characters). REQUIRES: x is finite, and
// kFloatTextRoom bytes are writable at `p`.
char* WriteShortestFloat(char* p, float x);

}  // namespace fluidfaas
