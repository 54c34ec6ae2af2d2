// The vector registers the build targets (-march=native): their width and number, and a compiler
// barrier that keeps a vector value in a register.
//
// A kernel written with GCC's vector extension uses vectors of kKernelVectorBytes (one native
// register) and blocks its register-held sums by kVectorRegisters: vectors wider than a register,
// or more sums than registers, spill to memory (output_conv2d's kernels, tuned with 64-byte
// vectors for AVX-512's 32 registers, ran 2.4 to 5.4 times slower than ATen on an AVX2 machine).
// An inline-asm register constraint only compiles for a value that fits one register, so
// hold_in_register applies the barrier where it fits and is a no-op elsewhere.
#pragma once

#include <cstddef>

namespace i2i_fast::cpu {

#if defined(__AVX512F__)
constexpr size_t kNativeVectorBytes = 64;
#elif defined(__AVX__)
constexpr size_t kNativeVectorBytes = 32;
#elif defined(__SSE2__) || defined(__aarch64__)
constexpr size_t kNativeVectorBytes = 16;
#else
constexpr size_t kNativeVectorBytes = 0;
#endif

// The vector registers the kernels may block their sums in: 32 with AVX-512 (zmm0-31) and on
// aarch64 (v0-31), 16 otherwise (ymm or xmm 0-15).
#if defined(__AVX512F__) || defined(__aarch64__)
constexpr int kVectorRegisters = 32;
#else
constexpr int kVectorRegisters = 16;
#endif

// The vector size of kernels written with GCC's vector extension: the native register, at least
// 16 bytes (plain scalar code where the target has no vectors).
constexpr size_t kKernelVectorBytes = kNativeVectorBytes >= 16 ? kNativeVectorBytes : 16;

// Tells the compiler that v lives in a vector register here: a value loaded once is then not
// re-loaded from memory for each of its uses. Only where the value fits one register.
template <typename V>
inline void hold_in_register(V& v) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (sizeof(V) <= kNativeVectorBytes) asm("" : "+v"(v));
#elif defined(__aarch64__)
  if constexpr (sizeof(V) <= kNativeVectorBytes) asm("" : "+w"(v));
#else
  (void)v;
#endif
}

}  // namespace i2i_fast::cpu
