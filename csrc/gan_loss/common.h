// What the GAN loss kernels share across devices: the description of one loss (which per-element
// function, which label, which reduction) and the per-element value and derivative. The argument
// checks, which make a GanLossSpec from an operator's arguments, are in checks.h.
//
// gan_loss(outputs, mode, target, label, domain, reduction): `outputs` are the discriminator's
// outputs at every scale, each (N, ...) -- or (N, K, ...) with one head per domain, of which
// head domain[n] is used for sample n. Every selected element x gets the loss f(x):
//   lsgan                (x - label)^2            label: 1 for real/generator, 0 for fake, or any
//   nsgan                softplus(x) - label * x  (BCE with logits; same labels as lsgan)
//   sigmoid_bce          (label - 1) * max(log1p(-p), -100) - label * max(log p, -100), with
//                        p = sigmoid(x) rounded to the compute type (DRIT: sigmoid, then
//                        nn.BCELoss; same labels as lsgan, numeric ones in [0, 1])
//   hinge, real          relu(1 - x)
//   hinge, fake          relu(1 + x)
//   hinge/wgan generator -x
//   wgan, real           -x
//   wgan, fake           +x
// Reductions, with R_s the number of selected elements per sample at scale s:
//   mean  sum over scales of (the scale's mean over its N * R_s selected elements)
//   sum   sum over scales of the scale's sum over its selected elements
//   none  (N,): for each sample, sum over scales of the sample's mean over its R_s elements
//
// r1_penalty(grads, weight, reduction): p_n = sum of grads[n]^2 over all non-batch elements;
//   mean: weight * mean_n p_n, sum: weight * sum_n p_n, none: weight * p_n, shape (N,).
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "../common/dispatch.h"

namespace i2i_fast {

enum class ElementLoss { kSquared, kBce, kSigmoidBce, kHingeReal, kHingeFake, kLinear };
enum class Reduction { kMean, kSum, kNone };

// What a call computes, made from its arguments by check_gan_loss (checks.h).
struct GanLossSpec {
  ElementLoss loss;
  double label;  // kSquared, kBce and kSigmoidBce
  double sign;   // kLinear: f(x) = sign * x
  Reduction reduction;
  const char* op;  // the operator called ("gan_loss" or "gan_loss_backward"), for messages
};

// ----- the per-element function and its derivative (A: float or double) -----------------------
// NaN in x gives NaN in f(x). The derivatives follow PyTorch's at every point, kinks included
// (relu'(0) = 0, as threshold_backward).

// sigmoid_bce's probability as PyTorch's sigmoid computes it, 1 / (1 + exp(-x)): exactly 0 or 1
// where it saturates in A (float: x < ~-88.7 or x > ~16.6; double: x < ~-709.8 or x > ~36.7),
// which the loss must see as it is.
template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A sigmoid_probability(A x) {
  using std::exp;
  return A(1) / (A(1) + exp(-x));
}

// max(v, -100) as binary_cross_entropy clamps its logarithms (NaN stays NaN, as std::max(v, -100)).
template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A clamped_log(A v) {
  return v < A(-100) ? A(-100) : v;
}

template <ElementLoss kind, typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A element_loss(A x, A label, A sign) {
  if constexpr (kind == ElementLoss::kSquared) {
    const A d = x - label;
    return d * d;
  } else if constexpr (kind == ElementLoss::kBce) {
    // softplus(x) - label * x, written as PyTorch's binary_cross_entropy_with_logits writes it,
    // (1 - label) * x - log_sigmoid(x) with -log_sigmoid(x) = max(-x, 0) + log1p(exp(-|x|)):
    // no overflow for any finite x, and the same result for infinite x.
    using std::abs;
    using std::exp;
    using std::log1p;
    const A negative_part = x < A(0) ? -x : A(0);
    return (A(1) - label) * x + negative_part + log1p(exp(-abs(x)));
  } else if constexpr (kind == ElementLoss::kSigmoidBce) {
    // binary_cross_entropy(sigmoid(x), label), term for term as PyTorch writes it.
    using std::log;
    using std::log1p;
    const A p = sigmoid_probability(x);
    return (label - A(1)) * clamped_log(log1p(-p)) - label * clamped_log(log(p));
  } else if constexpr (kind == ElementLoss::kHingeReal) {
    const A z = A(1) - x;
    return z < A(0) ? A(0) : z;
  } else if constexpr (kind == ElementLoss::kHingeFake) {
    const A z = A(1) + x;
    return z < A(0) ? A(0) : z;
  } else {
    return sign * x;
  }
}

// f'(x) * g, with g the upstream gradient. Where relu's derivative is zero the result is 0 even
// for a NaN g, as PyTorch's threshold_backward selects rather than multiplies.
template <ElementLoss kind, typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A element_loss_grad(A x, A label, A sign, A g) {
  if constexpr (kind == ElementLoss::kSquared) {
    return A(2) * (x - label) * g;
  } else if constexpr (kind == ElementLoss::kBce) {
    // sigmoid(x) - label, without overflow of exp for large |x|.
    using std::exp;
    A sigmoid;
    if (x >= A(0)) {
      sigmoid = A(1) / (A(1) + exp(-x));
    } else {
      const A e = exp(x);
      sigmoid = e / (A(1) + e);
    }
    return (sigmoid - label) * g;
  } else if constexpr (kind == ElementLoss::kSigmoidBce) {
    // What autograd gives through the two steps, in PyTorch's order: binary_cross_entropy's
    // backward g * (p - label) / max((1 - p) * p, 1e-12), then sigmoid's, times (1 - p) * p. Where
    // (1 - p) * p < 1e-12 (x < ~-27.6; in double also x > ~27.6) the clamp scales the gradient
    // down; where p is exactly 0 or 1 it is 0.
    // PyTorch's 1e-12 is a float constant, in double too.
    constexpr A kEps = static_cast<A>(1e-12f);
    const A p = sigmoid_probability(x);
    const A variance = (A(1) - p) * p;
    const A bce_grad = g * (p - label) / (variance < kEps ? kEps : variance);
    return bce_grad * (A(1) - p) * p;
  } else if constexpr (kind == ElementLoss::kHingeReal) {
    return (A(1) - x) <= A(0) ? A(0) : -g;
  } else if constexpr (kind == ElementLoss::kHingeFake) {
    return (A(1) + x) <= A(0) ? A(0) : g;
  } else {
    return sign * g;
  }
}

// Calls f(std::integral_constant<ElementLoss, k>{}) so kernels get the function at compile time.
template <typename F>
void dispatch_element_loss(ElementLoss k, F&& f) {
  dispatch_constant<ElementLoss, ElementLoss::kSquared, ElementLoss::kBce, ElementLoss::kSigmoidBce,
                    ElementLoss::kHingeReal, ElementLoss::kHingeFake, ElementLoss::kLinear>(
      k, std::forward<F>(f));
}

// The dtype of a loss: float32 (fp32 accumulation) for 16- and 32-bit inputs, float64 for float64.
inline at::ScalarType loss_dtype_of(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace i2i_fast
