// The widest vector register the build targets (-march=native), and a compiler barrier that keeps
// a vector value in registers.
//
// The CPU kernels that use GCC's vector extension pick their vector size independently of the
// machine (64 bytes: one AVX-512 register, two AVX2 ones, four SSE/NEON ones). An inline-asm
// register constraint on such a value only compiles when it fits one register, so
// hold_in_register applies the barrier where it fits and is a no-op elsewhere (the compiler then
// decides on its own whether to keep the value in registers).
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
