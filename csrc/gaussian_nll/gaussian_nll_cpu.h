// CPU implementation of the Gaussian NLL operators (see common.h for the definitions).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "common.h"

namespace i2i_fast::gaussian_nll::cpu {

// The loss: a float32 scalar (float64 for float64 inputs). The inputs must have passed
// check_gaussian_nll (checks.h).
at::Tensor gaussian_nll_forward(const at::Tensor& z, const at::Tensor& mu,
                                const at::Tensor& logvar, const GaussianNllSpec& spec);

// (dz, dmu, dlogvar): contiguous, the inputs' shape and dtype.
std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_nll_backward(
    const at::Tensor& grad_loss, const at::Tensor& z, const at::Tensor& mu,
    const at::Tensor& logvar, const GaussianNllSpec& spec);

}  // namespace i2i_fast::gaussian_nll::cpu
