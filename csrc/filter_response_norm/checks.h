// The argument checks of the filter response normalization operators, for the compiled kernels
// of every device (device_kernels.h runs them before any kernel). The C++ mirror of
// i2i_fast/ops/filter_response_norm/checks.py: the same checks in the same order with the same
// words (tests/test_operator_checks.py compares the two). Each returns the FrnSpec its kernels
// run.
#pragma once

#include <ATen/ATen.h>

#include <string_view>
#include <utility>

#include "../common/checks.h"
#include "../normalization/checks.h"
#include "common.h"

namespace i2i_fast {

// x (N, C, H, W) floating, non-empty; weight, bias, tau (C,) with x's device and dtype (or
// float32 for a 16-bit x); eps finite and > 0.
inline FrnSpec check_filter_response_norm(std::string_view op, const at::Tensor& x,
                                          const at::Tensor& weight, const at::Tensor& bias,
                                          const at::Tensor& tau, double eps) {
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": x: expected shape (N, C, H, W), got ", x.dim(),
                    " dims with shape ", checks::shape_text(x.sizes()));
  checks::floating(op, "x", x);
  checks::non_empty(op, "x", x);
  const int64_t c[] = {x.size(1)};
  check_norm_param(op, "weight", weight, x, c);
  check_norm_param(op, "bias", bias, x, c);
  check_norm_param(op, "tau", tau, x, c);
  checks::eps(op, eps, /*positive=*/true);
  return {eps};
}

// The forward checks under the backward operator's name, then grad_out (x's shape) and rstd
// ((N, C), what the forward operator returned), both floating and on x's device.
inline FrnSpec check_filter_response_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& tau, const at::Tensor& rstd, double eps,
    std::string_view op = "filter_response_norm_backward") {
  const FrnSpec spec = check_filter_response_norm(op, x, weight, bias, tau, eps);
  TORCH_CHECK_VALUE(grad_out.sizes() == x.sizes(), op, ": grad_out: expected shape ",
                    checks::shape_text(x.sizes()), " (the shape of x), got ",
                    checks::shape_text(grad_out.sizes()));
  const int64_t stat_shape[] = {x.size(0), x.size(1)};
  TORCH_CHECK_VALUE(rstd.sizes() == at::IntArrayRef(stat_shape), op, ": rstd: expected shape ",
                    checks::shape_text(stat_shape), " (what the forward operator returned), got ",
                    checks::shape_text(rstd.sizes()));
  for (const auto& [name, t] :
       {std::pair<const char*, const at::Tensor&>{"grad_out", grad_out}, {"rstd", rstd}}) {
    checks::same_device(op, name, t, x.device(), " (the device of x)");
    checks::floating(op, name, t);
  }
  return spec;
}

// The backward checks under the double backward's name, then grad_grad_x (the gradient of
// grad_x: x's shape), on x's device and floating.
inline FrnSpec check_filter_response_norm_double_backward(
    const at::Tensor& grad_grad_x, const at::Tensor& grad_out, const at::Tensor& x,
    const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& tau,
    const at::Tensor& rstd, double eps) {
  const std::string_view op = "filter_response_norm_double_backward";
  const FrnSpec spec =
      check_filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps, op);
  TORCH_CHECK_VALUE(grad_grad_x.sizes() == x.sizes(), op, ": grad_grad_x: expected shape ",
                    checks::shape_text(x.sizes()), " (the shape of x), got ",
                    checks::shape_text(grad_grad_x.sizes()));
  checks::same_device(op, "grad_grad_x", grad_grad_x, x.device(), " (the device of x)");
  checks::floating(op, "grad_grad_x", grad_grad_x);
  return spec;
}

}  // namespace i2i_fast
