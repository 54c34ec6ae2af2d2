// Streaming (non-temporal) stores for CPU outputs too large to stay in the caches.
//
// An ordinary store brings the destination's cache line in first (write-allocate) and writes it
// back later: writing a 32 MiB output moves 64 MiB, and the write-backs compete with the reads of
// whatever runs next. A streaming store writes whole lines straight to memory. The kernels that
// write a large output compute a stretch of it into a small buffer in L1 (kStreamChunkBytes)
// and copy the buffer out with stream_copy; they call stream_fence before their results may be
// read by another thread (streaming stores are weakly ordered).
//
// Only worth it when the output would not be read back from the caches: streams(bytes) is true
// for outputs of at least kStreamingBytes (half the 32 MiB L3 of the 2-core machine the project is
// measured on; a smaller output is often read by the next operator while still cached).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "common/cpu_vector_width.h"

namespace i2i_fast::cpu {

constexpr int64_t kStreamingBytes = int64_t(16) << 20;
constexpr int64_t kStreamChunkBytes = 4096;  // the L1 buffer a streamed stretch is written to

inline bool streams(int64_t output_bytes) { return output_bytes >= kStreamingBytes; }

// Copies `bytes` from src (the L1 buffer) to dst: the part of dst aligned to the vector width with
// streaming stores, its ends with ordinary ones.
inline void stream_copy(void* dst, const void* src, size_t bytes) {
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
#if defined(__SSE2__)
  constexpr size_t kWidth = kNativeVectorBytes;
#else
  constexpr size_t kWidth = 0;
#endif
  if constexpr (kWidth > 0) {
    size_t head = (kWidth - (reinterpret_cast<uintptr_t>(d) & (kWidth - 1))) & (kWidth - 1);
    if (head > bytes) head = bytes;
    std::memcpy(d, s, head);
    d += head;
    s += head;
    bytes -= head;
    for (; bytes >= kWidth; bytes -= kWidth, d += kWidth, s += kWidth) {
#if defined(__AVX512F__)
      _mm512_stream_si512(reinterpret_cast<__m512i*>(d), _mm512_loadu_si512(s));
#elif defined(__AVX__)
      _mm256_stream_si256(reinterpret_cast<__m256i*>(d),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)));
#elif defined(__SSE2__)
      _mm_stream_si128(reinterpret_cast<__m128i*>(d),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
#endif
    }
  }
  std::memcpy(d, s, bytes);
}

// Orders the streaming stores before anything that follows (call before the results are read).
inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace i2i_fast::cpu
