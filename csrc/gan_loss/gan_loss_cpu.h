// CPU implementation of the GAN loss family (see common.h for the definitions).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "common.h"

namespace i2i_fast::gan_loss::cpu {

// The loss over every scale in one pass: a scalar for reductions mean/sum, (N,) for none; float32
// (float64 for float64 outputs). The inputs must have passed check_gan_loss (checks.h).
at::Tensor gan_loss_forward(at::TensorList outputs, const std::optional<at::Tensor>& domain,
                            const GanLossSpec& spec);

// The gradient of every scale in one pass: one contiguous tensor per scale, shape and dtype of
// that scale; zero for the heads a sample does not select.
std::vector<at::Tensor> gan_loss_backward(const at::Tensor& grad_loss, at::TensorList outputs,
                                          const std::optional<at::Tensor>& domain,
                                          const GanLossSpec& spec);

// weight * reduce_n(sum of grads[n]^2): a scalar for mean/sum, (N,) for none; float32 (float64
// for float64 grads).
at::Tensor r1_penalty_forward(const at::Tensor& grads, double weight, Reduction reduction);

// 2 * weight * grads[n] * c_n with c_n = grad_loss / N (mean), grad_loss (sum) or grad_loss[n]
// (none); dtype of grads, layout of grads when it is contiguous or channels-last (batch-major
// dense), otherwise contiguous.
at::Tensor r1_penalty_backward(const at::Tensor& grad_loss, const at::Tensor& grads,
                               double weight, Reduction reduction);

}  // namespace i2i_fast::gan_loss::cpu
