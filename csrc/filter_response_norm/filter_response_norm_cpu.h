// CPU implementation of the filter response normalization operators (see common.h for the math).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "common.h"

namespace i2i_fast::filter_response_norm::cpu {

// Returns (y, rstd): y in x's layout (contiguous or channels-last; anything else is made
// contiguous), rstd (N, C) float32 (float64 for a float64 x).
std::tuple<at::Tensor, at::Tensor> frn_forward(const at::Tensor& x, const at::Tensor& weight,
                                               const at::Tensor& bias, const at::Tensor& tau,
                                               const FrnSpec& spec);

// Returns (grad_x, grad_weight, grad_bias, grad_tau), each parameter's gradient in its dtype.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> frn_backward(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& tau, const at::Tensor& rstd, const FrnSpec& spec);

// Returns (d grad_out, d x, d weight): the gradient of grad_x's inner product with grad_grad_x
// (common.h), in the dtypes of grad_out, x and weight; d x in x's layout.
std::tuple<at::Tensor, at::Tensor, at::Tensor> frn_double_backward(
    const at::Tensor& grad_grad_x, const at::Tensor& grad_out, const at::Tensor& x,
    const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& tau,
    const at::Tensor& rstd, const FrnSpec& spec);

}  // namespace i2i_fast::filter_response_norm::cpu
