// The device kernels of the latent_conv operators, written once for every device: each runs its
// operator's checks (checks.h), then the shared host side (common.h) with the device's two passes
// over the output (and, optionally, its own table products). A device file registers them with
// its own passes, e.g. in latent_conv_cuda.cu:
//
//   TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
//     register_kernels<LatentConvKernels<&add_table_cuda, &sum_by_class_cuda>>(m);
//   }
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <array>
#include <optional>

#include "../common/registration.h"
#include "checks.h"
#include "common.h"

namespace i2i_fast::latent_conv {

template <AddTableFn add_table, SumByClassFn sum_by_class,
          ClassTableFn class_table = &class_table_matmul,
          TapGradientsFn tap_gradients = &tap_gradients_matmul>
struct LatentConvKernels {
  using OptTensor = std::optional<at::Tensor>;
  using Tensor = at::Tensor;

  static Tensor conv2d_forward(const Tensor& x, const Tensor& z, const Tensor& weight,
                               const OptTensor& bias, int64_t stride, int64_t padding,
                               c10::string_view padding_mode) {
    const LatentConvSpec s =
        check_latent_conv2d("latent_conv2d", x, z, weight, bias, stride, padding, padding_mode);
    return forward_impl(x, z, weight, bias, s, add_table, class_table);
  }

  static Gradients conv2d_backward(const Tensor& grad, const Tensor& x, const Tensor& z,
                                   const Tensor& weight, int64_t stride, int64_t padding,
                                   c10::string_view padding_mode, std::array<bool, 4> mask) {
    const char* op = "latent_conv2d_backward";
    const LatentConvSpec s =
        check_latent_conv2d(op, x, z, weight, std::nullopt, stride, padding, padding_mode);
    check_grad(op, grad, x, s);
    return backward_impl(grad, x, z, weight, s, mask, sum_by_class, tap_gradients);
  }

  static Tensor transpose2d_forward(const Tensor& x, const Tensor& z, const Tensor& weight,
                                    const OptTensor& bias, int64_t stride, int64_t padding,
                                    int64_t output_padding) {
    const LatentConvSpec s = check_latent_conv_transpose2d(
        "latent_conv_transpose2d", x, z, weight, bias, stride, padding, output_padding);
    return forward_impl(x, z, weight, bias, s, add_table, class_table);
  }

  static Gradients transpose2d_backward(const Tensor& grad, const Tensor& x, const Tensor& z,
                                        const Tensor& weight, int64_t stride, int64_t padding,
                                        int64_t output_padding, std::array<bool, 4> mask) {
    const char* op = "latent_conv_transpose2d_backward";
    const LatentConvSpec s = check_latent_conv_transpose2d(op, x, z, weight, std::nullopt,
                                                           stride, padding, output_padding);
    check_grad(op, grad, x, s);
    return backward_impl(grad, x, z, weight, s, mask, sum_by_class, tap_gradients);
  }

  // The device operators (schemas in latent_conv_ops.cpp) and their kernels; a device file
  // registers them with register_kernels<...>(m) (common/registration.h).
  static constexpr std::tuple kernels{
      Kernel<&conv2d_forward>{"latent_conv2d_forward"},
      Kernel<&conv2d_backward>{"latent_conv2d_backward"},
      Kernel<&transpose2d_forward>{"latent_conv_transpose2d_forward"},
      Kernel<&transpose2d_backward>{"latent_conv_transpose2d_backward"},
  };
};

}  // namespace i2i_fast::latent_conv
