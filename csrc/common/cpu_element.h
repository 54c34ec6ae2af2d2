// Element types as the CPU kernels see them, with conversions the compiler can vectorise.
//
// c10::BFloat16 and c10::Half convert with a NaN branch (and Half through a table-free but
// branchy routine), which stops GCC from vectorising any loop that loads or stores them. The
// kernels therefore read 16-bit data through a storage type and these branch-free conversions,
// bit-exact with c10's (round to nearest even, NaN → canonical quiet NaN; checked exhaustively
// against c10 over every half value and its neighbours and a sweep of float bit patterns):
//   bfloat16: uint16_t bits; widen = shift; narrow = RNE on the float bits
//   float16:  _Float16 where the compiler has it (loads become vcvtph2ps), else c10::Half;
//             narrow = RNE through the exponent-bias trick (scale into the half range so the
//             FPU rounds the mantissa, then re-bias)
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>

#include "accumulate.h"

namespace i2i_fast::cpu {

#if defined(__FLT16_MANT_DIG__)
using HalfStorage = _Float16;
#else
using HalfStorage = c10::Half;
#endif

// The type a kernel reads and writes for tensor element type T.
template <typename T>
struct StorageOf {
  using type = T;
};
template <>
struct StorageOf<c10::BFloat16> {
  using type = uint16_t;
};
template <>
struct StorageOf<c10::Half> {
  using type = HalfStorage;
};

using i2i_fast::AccumulateOf;  // accumulate.h

C10_ALWAYS_INLINE uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

C10_ALWAYS_INLINE float float_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// ----- widen: storage → accumulation type -----

C10_ALWAYS_INLINE float widen(float v) { return v; }
C10_ALWAYS_INLINE double widen(double v) { return v; }
C10_ALWAYS_INLINE float widen(uint16_t bfloat16_bits) {
  return float_from_bits(static_cast<uint32_t>(bfloat16_bits) << 16);
}
#if defined(__FLT16_MANT_DIG__)
C10_ALWAYS_INLINE float widen(_Float16 v) { return static_cast<float>(v); }
#else
C10_ALWAYS_INLINE float widen(c10::Half v) { return static_cast<float>(v); }
#endif

// ----- narrow: accumulation type → storage -----

C10_ALWAYS_INLINE uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? uint16_t(0x7FC0) : static_cast<uint16_t>(rounded);
}

C10_ALWAYS_INLINE uint16_t float_to_half_bits(float f) {
  const uint32_t w = float_bits(f);
  const uint32_t sign = w & 0x80000000u;
  const uint32_t twice = w + w;  // exponent and mantissa with the sign shifted out
  // |f| * 2^112 * 2^-110 overflows to inf exactly when the half would, and keeps the value.
  float base = (__builtin_fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
  uint32_t bias = twice & 0xFF000000u;
  bias = bias < 0x71000000u ? 0x71000000u : bias;  // every subnormal half shares one bias
  // Adding 2^(e-13)-scaled bias makes the FPU round the mantissa to the half's 10 bits (RNE).
  base = float_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t b = float_bits(base);
  const uint32_t nonsign = ((b >> 13) & 0x00007C00u) + (b & 0x00000FFFu);
  return static_cast<uint16_t>((sign >> 16) | (twice > 0xFF000000u ? 0x7E00u : nonsign));
}

template <typename S>
C10_ALWAYS_INLINE S narrow(float v);
template <typename S>
C10_ALWAYS_INLINE S narrow(double v);

template <>
C10_ALWAYS_INLINE float narrow<float>(float v) {
  return v;
}
template <>
C10_ALWAYS_INLINE double narrow<double>(double v) {
  return v;
}
template <>
C10_ALWAYS_INLINE uint16_t narrow<uint16_t>(float v) {
  return float_to_bfloat16_bits(v);
}
#if defined(__FLT16_MANT_DIG__)
template <>
C10_ALWAYS_INLINE _Float16 narrow<_Float16>(float v) {
  const uint16_t bits = float_to_half_bits(v);
  _Float16 h;
  std::memcpy(&h, &bits, sizeof(h));
  return h;
}
#else
template <>
C10_ALWAYS_INLINE c10::Half narrow<c10::Half>(float v) {
  return c10::Half(float_to_half_bits(v), c10::Half::from_bits());
}
#endif

}  // namespace i2i_fast::cpu
