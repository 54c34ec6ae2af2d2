// CPU implementation of the normalization family (see common/normalization.h for the math).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "common.h"

namespace i2i_fast::normalization::cpu {

// Returns (y, mean, rstd). y has the layout of x (contiguous or channels-last; anything else is
// made contiguous). mean/rstd are (N, C) for instance statistics and (N,) for layer statistics,
// float32 (float64 for a float64 x). weight/bias: (N, C) per sample, (C,) per channel, or absent.
// Batch statistics (batch_norm): (y, mean, var), the batch mean and biased variance (C,); its
// backward takes them in place of mean and rstd.
std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_forward(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const NormSpec& spec);

// Returns (grad_x, grad_weight, grad_bias). grad_weight/grad_bias have the shape and dtype of
// weight/bias; when those are absent, the gradient of an implicit per-channel weight of ones and
// bias of zeros, shape (C,), dtype of x.
std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_backward(
    const at::Tensor& grad_out, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    const NormSpec& spec);

}  // namespace i2i_fast::normalization::cpu
