// How the CPU kernels split work over at::parallel_for.
#pragma once

#include <algorithm>
#include <cstdint>

namespace i2i_fast::cpu {

// Tasks per parallel chunk so that a chunk holds at least kMinParallelWork elements: small
// problems run inline on the calling thread (opening a parallel region costs microseconds,
// longer than normalising a few thousand values).
constexpr int64_t kMinParallelWork = int64_t(1) << 15;

inline int64_t grain_for(int64_t elements_per_task) {
  return std::max<int64_t>(1, kMinParallelWork / std::max<int64_t>(elements_per_task, 1));
}

}  // namespace i2i_fast::cpu
