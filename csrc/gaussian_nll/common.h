// What the Gaussian NLL kernels share across devices: the description of a call and the
// per-element value and derivatives. The argument checks, which make a GaussianNllSpec from an
// operator's arguments, are in checks.h.
//
// gaussian_nll(z, mu, logvar, reduction): z, mu, logvar of one shape (N, ...); per element
//   t = (z - mu) * exp(-logvar / 2)            (the error in standard deviations)
//   e = logvar / 2 + t^2 / 2                   (-log N(z; mu, exp(logvar)) - log(2 pi) / 2)
// reduced: batch_sum = sum(e) / N, sum = sum(e), mean = sum(e) / numel; a scalar.
// Its gradient, with g = grad_loss / divisor the upstream gradient of each element:
//   dz = g * t * exp(-logvar / 2),  dmu = -dz,  dlogvar = g * (1 - t^2) / 2.
//
// Numerically safe: exp(-logvar) and exp(-logvar / 2) are never formed. With
// s = exp(-logvar / 4), t = ((z - mu) * s) * s and dz = ((g * t) * s) * s: s is finite and
// non-zero for |logvar| < 4 * 88 = 352 in float32 (2836 in float64), and each product overflows
// only where its true value does. Beyond that range s is 0 or inf: z == mu then gives t = 0
// (never 0 * inf), and any other z a t that is truly 0 or truly beyond the type's range. So the
// loss and the gradients are inf (or NaN from inf - inf) only where their true values are not
// finite, or where an input is. (An infinite or NaN input gives what the formula gives, except
// z == mu with logvar = -inf: t = 0 and e = -inf, where the formula's 0 * inf is NaN.)
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cmath>

namespace i2i_fast {

enum class NllReduction { kBatchSum, kSum, kMean };

// What a call computes, made from its arguments by check_gaussian_nll (checks.h).
struct GaussianNllSpec {
  NllReduction reduction;
};

// The loss is sum(e) / divisor.
inline double nll_divisor(NllReduction reduction, int64_t n, int64_t numel) {
  switch (reduction) {
    case NllReduction::kBatchSum: return static_cast<double>(n);
    case NllReduction::kMean: return static_cast<double>(numel);
    case NllReduction::kSum: break;
  }
  return 1.0;
}

// ----- per element (A: float or double) --------------------------------------------------------

// s = exp(-logvar / 4): exp(-logvar / 2) = s * s.
template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A nll_half_scale(A logvar) {
  using std::exp;
  return exp(A(-0.25) * logvar);
}

// x * s * s, exactly 0 for x == 0 also where s is inf (a NaN s stays NaN).
template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A nll_scaled(A x, A s) {
  return (x == A(0) && s == s) ? A(0) : (x * s) * s;
}

// t = (z - mu) * s * s.
template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A nll_error(A z, A mu, A s) {
  return nll_scaled(z - mu, s);
}

template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A nll_element(A z, A mu, A logvar) {
  const A t = nll_error(z, mu, nll_half_scale(logvar));
  return A(0.5) * logvar + A(0.5) * (t * t);
}

// The gradients of one element for its upstream gradient g: dz (dmu = -dz) and dlogvar.
template <typename A>
struct NllElementGrad {
  A dz;
  A dlogvar;
};

template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE NllElementGrad<A> nll_element_grad(A z, A mu, A logvar, A g) {
  const A s = nll_half_scale(logvar);
  const A t = nll_error(z, mu, s);
  return {nll_scaled(g * t, s), A(0.5) * g * (A(1) - t * t)};
}

// The dtype of the loss: float32 (fp32 accumulation) for 16- and 32-bit inputs, float64 for
// float64.
inline at::ScalarType nll_loss_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace i2i_fast
