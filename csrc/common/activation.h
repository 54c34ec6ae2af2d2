// Activations fused after a normalization: none, ReLU, LeakyReLU.
//
// Host and device code (the CPU and CUDA kernels share these definitions). The forward and the
// derivative follow PyTorch exactly, NaN included:
//   relu(z)            = z < 0 ? 0 : z          (NaN passes through, as torch.relu)
//   relu'(z) * g       = z <= 0 ? 0 : g         (threshold_backward on the output)
//   leaky_relu(z)      = z > 0 ? z : z * slope
//   leaky_relu'(z) * g = z > 0 ? g : g * slope
#pragma once

#include <c10/macros/Macros.h>

#include <utility>

#include "dispatch.h"

namespace i2i_fast {

// Parsed from an operator's `activation` argument by its checks (e.g. check_activation in
// csrc/normalization/checks.h).
enum class Activation : int { kNone = 0, kRelu = 1, kLeakyRelu = 2 };

template <Activation act, typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A activate(A z, A slope) {
  if constexpr (act == Activation::kNone) {
    return z;
  } else if constexpr (act == Activation::kRelu) {
    return z < A(0) ? A(0) : z;
  } else {
    return z > A(0) ? z : z * slope;
  }
}

// Gradient through the activation, given its input z and the incoming gradient g.
template <Activation act, typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A activation_grad(A z, A g, A slope) {
  if constexpr (act == Activation::kNone) {
    return g;
  } else if constexpr (act == Activation::kRelu) {
    return z <= A(0) ? A(0) : g;
  } else {
    return z > A(0) ? g : g * slope;
  }
}

// Calls f(std::integral_constant<Activation, a>{}) so kernels get the activation at compile time.
template <typename F>
void dispatch_activation(Activation a, F&& f) {
  dispatch_constant<Activation, Activation::kNone, Activation::kRelu, Activation::kLeakyRelu>(
      a, std::forward<F>(f));
}

}  // namespace i2i_fast
