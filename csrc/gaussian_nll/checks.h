// The argument checks of the Gaussian latent terms (gaussian_nll, gaussian_kl), for the compiled
// kernels of every device (device_kernels.h runs them before any kernel). The C++ mirror of
// i2i_fast/ops/gaussian_nll/checks.py: the same checks in the same order with the same words
// (tests/test_operator_checks.py compares the two).
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <string_view>
#include <utility>

#include "../common/checks.h"
#include "common.h"

namespace i2i_fast {

using NamedTensor = std::pair<std::string_view, const at::Tensor&>;

// The inputs of a term: the first (N, ...), floating, non-empty; every other of its shape, dtype
// and device; then the reduction.
inline LatentTermSpec check_latent_term(std::string_view op,
                                        std::initializer_list<NamedTensor> inputs,
                                        std::string_view reduction) {
  const auto& [first_name, first] = *inputs.begin();
  checks::batched(op, first_name, first, 1, "(N, ...) with a batch dimension");
  for (auto input = inputs.begin() + 1; input != inputs.end(); ++input) {
    const auto& [name, t] = *input;
    TORCH_CHECK_VALUE(t.sizes() == first.sizes(), op, ": ", name, ": expected the shape of ",
                      first_name, " ", checks::shape_text(first.sizes()), ", got ",
                      checks::shape_text(t.sizes()));
    TORCH_CHECK_TYPE(t.scalar_type() == first.scalar_type(), op, ": ", name, ": expected dtype ",
                     checks::dtype_text(first.scalar_type()), " (that of ", first_name,
                     "), got ", checks::dtype_text(t.scalar_type()));
    TORCH_CHECK_VALUE(t.device() == first.device(), op, ": ", name, ": expected device ",
                      first.device(), " (that of ", first_name, "), got ", t.device());
  }
  switch (checks::choice(op, "reduction", reduction, {"batch_sum", "sum", "mean"})) {
    case 0: return {LatentReduction::kBatchSum};
    case 1: return {LatentReduction::kSum};
    default: return {LatentReduction::kMean};
  }
}

// The forward checks of a term, then grad_loss: a floating scalar on the device of the first
// input.
inline LatentTermSpec check_latent_term_backward(std::string_view op, const at::Tensor& grad_loss,
                                                 std::initializer_list<NamedTensor> inputs,
                                                 std::string_view reduction) {
  const LatentTermSpec spec = check_latent_term(op, inputs, reduction);
  const auto& [first_name, first] = *inputs.begin();
  checks::loss_grad(op, grad_loss, reduction, first.size(0), first.device(), first_name);
  return spec;
}

}  // namespace i2i_fast
