// Helpers shared by the CUDA kernels of every operator family: 16-byte vector loads and stores,
// deterministic warp and block reductions, device properties, launch geometry.
//
// Only c10's CUDA headers are used (no ATen/cuda/CUDAContext.h): that header pulls in cuBLAS and
// cuSPARSE headers, which minimal CUDA toolkits (the compiler-only PyPI wheels, some system
// installs) do not have, and these kernels need neither.
#pragma once

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/macros/Macros.h>
#include <c10/util/Exception.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "accumulate.h"
#include "team_layout.h"

namespace i2i_fast::cuda {

constexpr int kWarpSize = kTeamWarpSize;
constexpr unsigned kFullWarpMask = 0xffffffffu;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

using i2i_fast::AccumulateOf;  // accumulate.h

// Smallest power of two >= v (v >= 1).
inline int64_t next_power_of_two(int64_t v) {
  int64_t p = 1;
  while (p < v) p *= 2;
  return p;
}

// ----- 16-byte vectors -----

// VEC consecutive elements, aligned so that one instruction moves them all.
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

// Elements of T in 16 bytes: the widest load a thread can issue.
template <typename T>
constexpr int kPackWidth = static_cast<int>(16 / sizeof(T));

inline bool is_aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Calls f(std::integral_constant<int, VEC>) with the pack width that the pointers and the run
// length allow: 16-byte packs (kPackWidth<T> elements) when every pointer is 16-byte aligned and
// `run` (the elements a pack must not straddle the end of: a row, a sample) is a multiple of the
// pack, else 1.
template <typename T, typename F>
void dispatch_pack_width(std::initializer_list<const void*> pointers, int64_t run, F&& f) {
  constexpr int kVec = kPackWidth<T>;
  bool vectorized = run % kVec == 0;
  for (const void* ptr : pointers) vectorized = vectorized && is_aligned(ptr, 16);
  if (vectorized) {
    f(std::integral_constant<int, kVec>{});
  } else {
    f(std::integral_constant<int, 1>{});
  }
}

template <typename T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, VEC>*>(p);
}

template <typename T, int VEC>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, VEC>& v) {
  *reinterpret_cast<Pack<T, VEC>*>(p) = v;
}

// ----- reductions -----
// All of them combine values in an order fixed by the launch configuration, so results are
// identical from run to run (no atomics).

// Sum over the 32 lanes of a warp; every lane gets the same (bitwise) total.
template <typename V>
__device__ __forceinline__ V warp_sum(V v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(kFullWarpMask, v, offset);
  }
  return v;
}

// Sum over a team of `team` consecutive threads (a power of two >= 32 dividing blockDim.x; see
// team_layout.h). A block may hold several teams: each team adds its own warps' partials. Teams
// larger than a warp synchronise the whole block, so every thread of the block must call this,
// with the same `team`, including the threads of idle teams (predicate their work, never return
// early). `scratch` holds blockDim.x / 32 values. Every thread of a team gets the same total.
template <typename V>
__device__ __forceinline__ V team_sum(V v, int team, V* scratch) {
  v = warp_sum(v);
  if (team <= kWarpSize) return v;
  if (threadIdx.x % kWarpSize == 0) scratch[threadIdx.x / kWarpSize] = v;
  __syncthreads();
  const TeamWarps warps = team_warps(threadIdx.x, team);
  V total = scratch[warps.first];
  for (int w = 1; w < warps.count; ++w) total += scratch[warps.first + w];
  __syncthreads();  // scratch may be reused right after
  return total;
}

// ----- device properties, read once per device -----

constexpr int kMaxDevices = 64;

inline int device_attribute(cudaDeviceAttr attribute, int device, std::atomic<int>* cache) {
  TORCH_CHECK(device >= 0 && device < kMaxDevices, "i2i_fast: CUDA device index ", device,
              " out of the supported range [0, ", kMaxDevices, ")");
  int value = cache[device].load(std::memory_order_relaxed);
  if (value == 0) {
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, device));
    cache[device].store(value, std::memory_order_relaxed);
  }
  return value;
}

inline int multiprocessor_count(int device) {
  static std::atomic<int> cache[kMaxDevices] = {};
  return device_attribute(cudaDevAttrMultiProcessorCount, device, cache);
}

inline int64_t l2_cache_bytes(int device) {
  static std::atomic<int> cache[kMaxDevices] = {};
  return device_attribute(cudaDevAttrL2CacheSize, device, cache);
}

// ----- launch geometry -----

// A 1-D grid of `blocks` blocks, checked against the hardware limit of 2^31 - 1.
inline dim3 grid(int64_t blocks) {
  TORCH_CHECK(blocks > 0 && blocks <= INT32_MAX, "i2i_fast (CUDA): a launch of ", blocks,
              " blocks does not fit in one grid (at most 2^31 - 1); the tensor is too large");
  return dim3(static_cast<unsigned>(blocks));
}

// Blocks of `block` threads for a grid-stride loop over `work` items: enough to fill the GPU
// (16 blocks per multiprocessor), no more.
inline int64_t stride_blocks(int64_t work, int64_t block, int device) {
  const int64_t wanted = ceil_div(work, block);
  const int64_t cap = static_cast<int64_t>(multiprocessor_count(device)) * 16;
  return wanted < 1 ? 1 : (wanted > cap ? cap : wanted);
}

}  // namespace i2i_fast::cuda
