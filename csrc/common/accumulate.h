// The type a kernel accumulates tensor element type T in, on every device: float (for float,
// half and bfloat16), double for double. Included by cpu_element.h and cuda_utils.cuh.
#pragma once

namespace i2i_fast {

template <typename T>
struct AccumulateOf {
  using type = float;
};
template <>
struct AccumulateOf<double> {
  using type = double;
};

}  // namespace i2i_fast
