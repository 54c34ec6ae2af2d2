// What the GAN loss kernels share across devices: the description of one loss (which per-element
// function, which label, which reduction), the per-element value and derivative, and the input
// checks.
//
// gan_loss(outputs, mode, target, label, domain, reduction): `outputs` are the discriminator's
// outputs at every scale, each (N, ...) -- or (N, K, ...) with one head per domain, of which
// head domain[n] is used for sample n. Every selected element x gets the loss f(x):
//   lsgan                (x - label)^2            label: 1 for real/generator, 0 for fake, or any
//   nsgan                softplus(x) - label * x  (BCE with logits; same labels as lsgan)
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

namespace i2i_fast {

enum class ElementLoss { kSquared, kBce, kHingeReal, kHingeFake, kLinear };
enum class Reduction { kMean, kSum, kNone };

struct GanLossSpec {
  ElementLoss loss;
  double label;  // kSquared and kBce
  double sign;   // kLinear: f(x) = sign * x
  Reduction reduction;
};

inline Reduction parse_reduction(const char* op, std::string_view reduction) {
  if (reduction == "mean") return Reduction::kMean;
  if (reduction == "sum") return Reduction::kSum;
  if (reduction == "none") return Reduction::kNone;
  TORCH_CHECK_VALUE(false, op, ": reduction: expected one of 'mean', 'sum', 'none', got '",
                    std::string(reduction), "'");
}

// mode x target (x label) -> the per-element function. target is "real", "fake", "generator" or
// "label" (a numeric label, lsgan and nsgan only; `label` holds it).
inline GanLossSpec gan_loss_spec(std::string_view mode, std::string_view target, double label,
                                 std::string_view reduction) {
  const Reduction red = parse_reduction("gan_loss", reduction);
  const bool is_label = target == "label";
  TORCH_CHECK_VALUE(is_label || target == "real" || target == "fake" || target == "generator",
                    "gan_loss: target: expected 'real', 'fake', 'generator' or a number, got '",
                    std::string(target), "'");
  if (mode == "lsgan" || mode == "nsgan") {
    const ElementLoss loss = mode == "lsgan" ? ElementLoss::kSquared : ElementLoss::kBce;
    double value = target == "fake" ? 0.0 : 1.0;
    if (is_label) {
      TORCH_CHECK_VALUE(std::isfinite(label), "gan_loss: target: expected a finite label, got ",
                        label);
      value = label;
    }
    return {loss, value, 0.0, red};
  }
  TORCH_CHECK_VALUE(mode == "hinge" || mode == "wgan",
                    "gan_loss: mode: expected one of 'lsgan', 'nsgan', 'hinge', 'wgan', got '",
                    std::string(mode), "'");
  TORCH_CHECK_VALUE(!is_label, "gan_loss: target: a numeric label (", label,
                    ") is only defined for mode 'lsgan' or 'nsgan'; mode '", std::string(mode),
                    "' takes 'real', 'fake' or 'generator'");
  if (target == "generator") return {ElementLoss::kLinear, 0.0, -1.0, red};
  if (mode == "hinge") {
    return {target == "real" ? ElementLoss::kHingeReal : ElementLoss::kHingeFake, 0.0, 0.0, red};
  }
  return {ElementLoss::kLinear, 0.0, target == "real" ? -1.0 : 1.0, red};
}

// ----- the per-element function and its derivative (A: float or double) -----------------------
// NaN in x gives NaN in f(x). The derivatives follow PyTorch's at every point, kinks included
// (relu'(0) = 0, as threshold_backward).

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
  switch (k) {
    case ElementLoss::kSquared:
      f(std::integral_constant<ElementLoss, ElementLoss::kSquared>{});
      break;
    case ElementLoss::kBce:
      f(std::integral_constant<ElementLoss, ElementLoss::kBce>{});
      break;
    case ElementLoss::kHingeReal:
      f(std::integral_constant<ElementLoss, ElementLoss::kHingeReal>{});
      break;
    case ElementLoss::kHingeFake:
      f(std::integral_constant<ElementLoss, ElementLoss::kHingeFake>{});
      break;
    case ElementLoss::kLinear:
      f(std::integral_constant<ElementLoss, ElementLoss::kLinear>{});
      break;
  }
}

// ----- input checks (the Python layer checks the same things first, with the same wording) ----

inline const char* floating_expected() {
  return "expected a floating tensor (float16, bfloat16, float32, float64), got ";
}

// Checks the outputs and the domain indices (values included: they are read on the host here);
// returns N.
inline int64_t check_gan_loss_inputs(at::TensorList outputs,
                                     const std::optional<at::Tensor>& domain) {
  TORCH_CHECK_VALUE(!outputs.empty(),
                    "gan_loss: outputs: expected a tensor or a non-empty list of tensors, got an "
                    "empty list");
  const bool heads = domain.has_value() && domain->defined();
  const at::Tensor& first = outputs[0];
  int64_t n = -1;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const at::Tensor& x = outputs[i];
    TORCH_CHECK_VALUE(x.defined(), "gan_loss: outputs[", i, "]: expected a tensor, got None");
    TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "gan_loss: outputs[", i, "]: ",
                     floating_expected(), x.scalar_type());
    if (heads) {
      TORCH_CHECK_VALUE(x.dim() >= 2, "gan_loss: outputs[", i,
                        "]: expected shape (N, K, ...) with one head per domain (domain is "
                        "given), got shape ",
                        x.sizes());
    } else {
      TORCH_CHECK_VALUE(x.dim() >= 1, "gan_loss: outputs[", i,
                        "]: expected shape (N, ...) with a batch dimension, got shape ",
                        x.sizes());
    }
    TORCH_CHECK_VALUE(x.numel() > 0, "gan_loss: outputs[", i,
                      "]: expected a non-empty tensor, got shape ", x.sizes());
    if (i == 0) {
      n = x.size(0);
      continue;
    }
    TORCH_CHECK_VALUE(x.size(0) == n, "gan_loss: outputs[", i, "]: expected batch size ", n,
                      " (that of outputs[0]), got ", x.size(0), " (shape ", x.sizes(), ")");
    TORCH_CHECK_TYPE(x.scalar_type() == first.scalar_type(), "gan_loss: outputs[", i,
                     "]: expected dtype ", first.scalar_type(), " (that of outputs[0]), got ",
                     x.scalar_type());
    TORCH_CHECK_VALUE(x.device() == first.device(), "gan_loss: outputs[", i,
                      "]: expected device ", first.device(), " (that of outputs[0]), got ",
                      x.device());
  }
  if (heads) {
    const at::Tensor& d = *domain;
    TORCH_CHECK_TYPE(d.scalar_type() == at::kLong || d.scalar_type() == at::kInt,
                     "gan_loss: domain: expected an int64 or int32 tensor of domain indices, got ",
                     d.scalar_type());
    TORCH_CHECK_VALUE(d.dim() == 1 && d.size(0) == n, "gan_loss: domain: expected shape [", n,
                      "] (one index per sample), got ", d.sizes());
    TORCH_CHECK_VALUE(d.device() == first.device(), "gan_loss: domain: expected device ",
                      first.device(), " (that of outputs), got ", d.device());
  }
  return n;
}

// Domain indices must lie in [0, K) for every scale (K = outputs[i].size(1)); `index(n)` reads
// sample n's index.
template <typename IndexFn>
void check_domain_range(at::TensorList outputs, int64_t n, IndexFn index) {
  int64_t k_min = outputs[0].size(1);
  size_t which = 0;
  for (size_t i = 1; i < outputs.size(); ++i) {
    if (outputs[i].size(1) < k_min) {
      k_min = outputs[i].size(1);
      which = i;
    }
  }
  for (int64_t s = 0; s < n; ++s) {
    const int64_t y = index(s);
    TORCH_CHECK_VALUE(y >= 0 && y < k_min, "gan_loss: domain: expected indices in [0, ", k_min,
                      ") (K = outputs[", which, "].shape[1]), got ", y, " at sample ", s);
  }
}

inline void check_loss_grad(const char* op, const at::Tensor& grad_loss, Reduction reduction,
                            int64_t n, const at::Tensor& like) {
  TORCH_CHECK_TYPE(at::isFloatingType(grad_loss.scalar_type()), op, ": grad_loss: ",
                   floating_expected(), grad_loss.scalar_type());
  if (reduction == Reduction::kNone) {
    TORCH_CHECK_VALUE(grad_loss.dim() == 1 && grad_loss.size(0) == n, op,
                      ": grad_loss: expected shape [", n, "] (reduction 'none'), got ",
                      grad_loss.sizes());
  } else {
    TORCH_CHECK_VALUE(grad_loss.dim() == 0, op,
                      ": grad_loss: expected a scalar (reduction 'mean' or 'sum'), got shape ",
                      grad_loss.sizes());
  }
  TORCH_CHECK_VALUE(grad_loss.device() == like.device(), op, ": grad_loss: expected device ",
                    like.device(), ", got ", grad_loss.device());
}

inline void check_r1_input(const at::Tensor& grads, double weight) {
  TORCH_CHECK_TYPE(at::isFloatingType(grads.scalar_type()), "r1_penalty: grads: ",
                   floating_expected(), grads.scalar_type());
  TORCH_CHECK_VALUE(grads.dim() >= 1,
                    "r1_penalty: grads: expected shape (N, ...) with a batch dimension, got "
                    "shape ",
                    grads.sizes());
  TORCH_CHECK_VALUE(grads.numel() > 0, "r1_penalty: grads: expected a non-empty tensor, got shape ",
                    grads.sizes());
  TORCH_CHECK_VALUE(std::isfinite(weight), "r1_penalty: weight: expected a finite number, got ",
                    weight);
}

// The dtype of a loss: float32 (fp32 accumulation) for 16- and 32-bit inputs, float64 for float64.
inline at::ScalarType loss_dtype_of(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace i2i_fast
