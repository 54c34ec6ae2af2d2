// The argument checks of the Gaussian NLL operators, for the compiled kernels of every device
// (device_kernels.h runs them before any kernel). The C++ mirror of
// i2i_fast/ops/gaussian_nll/checks.py: the same checks in the same order with the same words
// (tests/test_operator_checks.py compares the two).
#pragma once

#include <ATen/ATen.h>

#include <string_view>

#include "../common/checks.h"
#include "common.h"

namespace i2i_fast {

// z (N, ...), floating, non-empty; mu and logvar of z's shape, dtype and device; the reduction.
inline GaussianNllSpec check_gaussian_nll(std::string_view op, const at::Tensor& z,
                                          const at::Tensor& mu, const at::Tensor& logvar,
                                          std::string_view reduction) {
  checks::batched(op, "z", z, 1, "(N, ...) with a batch dimension");
  for (const auto& [name, t] : {std::pair<std::string_view, const at::Tensor&>{"mu", mu},
                                {"logvar", logvar}}) {
    TORCH_CHECK_VALUE(t.sizes() == z.sizes(), op, ": ", name, ": expected the shape of z ",
                      checks::shape_text(z.sizes()), ", got ", checks::shape_text(t.sizes()));
    TORCH_CHECK_TYPE(t.scalar_type() == z.scalar_type(), op, ": ", name, ": expected dtype ",
                     checks::dtype_text(z.scalar_type()), " (that of z), got ",
                     checks::dtype_text(t.scalar_type()));
    checks::same_device(op, name, t, z.device(), " (that of z)");
  }
  switch (checks::choice(op, "reduction", reduction, {"batch_sum", "sum", "mean"})) {
    case 0: return {NllReduction::kBatchSum};
    case 1: return {NllReduction::kSum};
    default: return {NllReduction::kMean};
  }
}

// The forward checks, then grad_loss: a floating scalar on the device of z.
inline GaussianNllSpec check_gaussian_nll_backward(const at::Tensor& grad_loss,
                                                   const at::Tensor& z, const at::Tensor& mu,
                                                   const at::Tensor& logvar,
                                                   std::string_view reduction) {
  constexpr std::string_view op = "gaussian_nll_backward";
  const GaussianNllSpec spec = check_gaussian_nll(op, z, mu, logvar, reduction);
  checks::loss_grad(op, grad_loss, reduction, z.size(0), z.device(), "z");
  return spec;
}

}  // namespace i2i_fast
