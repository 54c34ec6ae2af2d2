// How the CPU kernels split work over at::parallel_for, and sum long rows.
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

// The sum of element(i) over i in [0, n): blocks of `block` elements summed in A (the
// accumulation type; vectorised), folded into a double in block order. The blocks depend only on
// n, so the result does not depend on where the row came from or on the thread count.
template <typename A, int64_t block, typename Element>
double blocked_sum(int64_t n, const Element& element) {
  double total = 0;
  for (int64_t b = 0; b < n; b += block) {
    const int64_t e = std::min(n, b + block);
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += element(i);
    total += static_cast<double>(s);
  }
  return total;
}

}  // namespace i2i_fast::cpu
