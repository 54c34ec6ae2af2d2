// What the kernels of the Gaussian latent terms share across devices: the description of a call,
// the reductions, and each operator's per-element value and derivatives (a "term": the CPU and
// CUDA kernels are written once over it). The argument checks, which make a LatentTermSpec from an
// operator's arguments, are in checks.h.
//
// gaussian_nll(z, mu, logvar, reduction) (NllTerm): z, mu, logvar of one shape (N, ...); per
// element
//   t = (z - mu) * exp(-logvar / 2)            (the error in standard deviations)
//   e = logvar / 2 + t^2 / 2                   (-log N(z; mu, exp(logvar)) - log(2 pi) / 2)
// with the upstream gradient g of the element:
//   dz = g * t * exp(-logvar / 2),  dmu = -dz,  dlogvar = g * (1 - t^2) / 2.
//
// gaussian_kl(mu, logvar, reduction) (KlTerm): mu, logvar of one shape (N, ...); per element
//   e = -(1 + logvar - mu^2 - exp(logvar)) / 2  (KL(N(mu, exp(logvar)) || N(0, 1)))
//   dmu = g * mu,  dlogvar = g * (exp(logvar) - 1) / 2.
//
// Either reduced: batch_sum = sum(e) / N, sum = sum(e), mean = sum(e) / numel; a scalar, and
// g = grad_loss / divisor.
//
// Numerically safe: exp(-logvar) and exp(-logvar / 2) (NLL) and exp(logvar) (KL) are never
// formed. With s = exp(-logvar / 4), t = ((z - mu) * s) * s and dz = ((g * t) * s) * s; with
// h = exp(logvar / 2), exp(logvar) / 2 = (h / 2) * h and g exp(logvar) / 2 = ((g / 2) * h) * h.
// s and h are finite and non-zero for |logvar| < 4 * 88 = 352 (resp. 2 * 88 = 176) in float32
// (2836, 1418 in float64), and each product overflows only where its true value does. Beyond that
// range s is 0 or inf: z == mu then gives t = 0 (never 0 * inf), and any other z a t that is
// truly 0 or truly beyond the type's range; h is inf only where exp(logvar) / 2 is, and where h
// underflows to 0 the KL term is -logvar / 2 - 1 / 2 + mu^2 / 2, its value to the type's
// precision (exp(logvar) is below it), finite for a finite logvar. So the losses and
// the gradients are inf (or NaN from inf - inf) only where their true values are not finite, or
// where an input is. (An infinite or NaN input gives what the formula gives, except z == mu with
// logvar = -inf in the NLL: t = 0 and e = -inf, where the formula's 0 * inf is NaN.)
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cmath>
#include <utility>

namespace i2i_fast {

enum class LatentReduction { kBatchSum, kSum, kMean };

// What a call computes, made from its arguments by the checks (checks.h).
struct LatentTermSpec {
  LatentReduction reduction;
};

// The loss is sum(e) / divisor.
inline double latent_divisor(LatentReduction reduction, int64_t n, int64_t numel) {
  switch (reduction) {
    case LatentReduction::kBatchSum: return static_cast<double>(n);
    case LatentReduction::kMean: return static_cast<double>(numel);
    case LatentReduction::kSum: break;
  }
  return 1.0;
}

// The dtype of a loss: float32 (fp32 accumulation) for 16- and 32-bit inputs, float64 for
// float64.
inline at::ScalarType latent_loss_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// x * s * s, exactly 0 for x == 0 also where s is inf (a NaN s stays NaN).
template <typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A nll_scaled(A x, A s) {
  return (x == A(0) && s == s) ? A(0) : (x * s) * s;
}

// ----- the terms (A: float or double) ----------------------------------------------------------
// A term has kInputs inputs (the operator's tensors, in schema order); value(inputs...) is the
// value of one element, and grads(inputs..., g, d) writes the derivatives of g * value with
// respect to the inputs into d[0], d[1], ... The kernels call them through term_value and
// term_grads, on the inputs' values held in an array.

// -log N(z; mu, exp(logvar)) without its constant.
struct NllTerm {
  static constexpr int kInputs = 3;  // z, mu, logvar

  template <typename A>
  C10_HOST_DEVICE C10_ALWAYS_INLINE static A value(A z, A mu, A logvar) {
    using std::exp;
    const A t = nll_scaled(z - mu, exp(A(-0.25) * logvar));
    return A(0.5) * logvar + A(0.5) * (t * t);
  }

  template <typename A>
  C10_HOST_DEVICE C10_ALWAYS_INLINE static void grads(A z, A mu, A logvar, A g, A* d) {
    using std::exp;
    const A s = exp(A(-0.25) * logvar);
    const A t = nll_scaled(z - mu, s);
    d[0] = nll_scaled(g * t, s);
    d[1] = -d[0];
    d[2] = A(0.5) * g * (A(1) - t * t);
  }
};

// KL(N(mu, exp(logvar)) || N(0, 1)), with h = exp(logvar / 2): exp(logvar) / 2 = (h / 2) * h.
struct KlTerm {
  static constexpr int kInputs = 2;  // mu, logvar

  template <typename A>
  C10_HOST_DEVICE C10_ALWAYS_INLINE static A value(A mu, A logvar) {
    using std::exp;
    const A h = exp(A(0.5) * logvar);
    return (((A(0.5) * h) * h - A(0.5)) - A(0.5) * logvar) + A(0.5) * (mu * mu);
  }

  template <typename A>
  C10_HOST_DEVICE C10_ALWAYS_INLINE static void grads(A mu, A logvar, A g, A* d) {
    using std::exp;
    const A half_g = A(0.5) * g;
    const A h = exp(A(0.5) * logvar);
    d[0] = g * mu;
    d[1] = (half_g * h) * h - half_g;
  }
};

template <typename Term, typename A, size_t... I>
C10_HOST_DEVICE C10_ALWAYS_INLINE A term_value(const A* x, std::index_sequence<I...>) {
  return Term::value(x[I]...);
}

template <typename Term, typename A, size_t... I>
C10_HOST_DEVICE C10_ALWAYS_INLINE void term_grads(const A* x, A g, A* d,
                                                  std::index_sequence<I...>) {
  Term::grads(x[I]..., g, d);
}

// The value of one element, and the derivatives of g times it, from its inputs' values x[0..K).
template <typename Term, typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE A term_value(const A* x) {
  return term_value<Term>(x, std::make_index_sequence<Term::kInputs>());
}

template <typename Term, typename A>
C10_HOST_DEVICE C10_ALWAYS_INLINE void term_grads(const A* x, A g, A* d) {
  term_grads<Term>(x, g, d, std::make_index_sequence<Term::kInputs>());
}

}  // namespace i2i_fast
