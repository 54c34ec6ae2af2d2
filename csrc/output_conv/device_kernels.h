// The device kernels of output_conv2d, written once for every device: each runs the operator's
// checks (checks.h), then the device's forward or backward. A device file registers them with
// its own functions, e.g. in output_conv_cpu.cpp:
//
//   TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
//     register_kernels<OutputConvKernels<&forward_cpu, &backward_cpu>>(m);
//   }
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <tuple>

#include "../common/registration.h"
#include "checks.h"

namespace i2i_fast::output_conv {

// (grad_x, grad_weight, grad_bias), each undefined where the mask says it is not needed.
using Gradients = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using ForwardFn = at::Tensor (*)(const at::Tensor& x, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, const OutputConvSpec& s);
using BackwardFn = Gradients (*)(const at::Tensor& grad, const at::Tensor& x,
                                 const at::Tensor& weight, const std::optional<at::Tensor>& out,
                                 const OutputConvSpec& s, std::array<bool, 3> mask);

template <ForwardFn forward, BackwardFn backward>
struct OutputConvKernels {
  using OptTensor = std::optional<at::Tensor>;
  using Tensor = at::Tensor;

  static Tensor output_conv2d_forward(const Tensor& x, const Tensor& weight,
                                      const OptTensor& bias, int64_t padding,
                                      c10::string_view padding_mode,
                                      c10::string_view activation) {
    const OutputConvSpec s = check_output_conv2d("output_conv2d", x, weight, bias, padding,
                                                 padding_mode, activation);
    return forward(x, weight, bias, s);
  }

  // per_sample_bias: the bias was (N, C_out) (its gradient is then per sample too).
  static Gradients output_conv2d_backward(const Tensor& grad, const Tensor& x,
                                          const Tensor& weight, const OptTensor& out,
                                          int64_t padding, c10::string_view padding_mode,
                                          c10::string_view activation, bool per_sample_bias,
                                          std::array<bool, 3> mask) {
    const char* op = "output_conv2d_backward";
    OutputConvSpec s =
        check_output_conv2d(op, x, weight, std::nullopt, padding, padding_mode, activation);
    s.per_sample_bias = per_sample_bias;
    check_backward_inputs(op, grad, out, x, s);
    return backward(grad, x, weight, out, s, mask);
  }

  static constexpr std::tuple kernels{
      Kernel<&output_conv2d_forward>{"output_conv2d_forward"},
      Kernel<&output_conv2d_backward>{"output_conv2d_backward"},
  };
};

}  // namespace i2i_fast::output_conv
