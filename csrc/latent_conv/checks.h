// The argument checks of latent_conv2d and latent_conv_transpose2d, for the compiled kernels of
// every device (device_kernels.h runs them before any kernel). The C++ mirror of
// i2i_fast/ops/latent_conv/checks.py: the same checks in the same order with the same words
// (tests/test_operator_checks.py compares the two). Each returns the LatentConvSpec its kernels
// run.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string_view>
#include <vector>

#include "../common/checks.h"
#include "common.h"

namespace i2i_fast::latent_conv {

// x, z, weight floating tensors of consistent shapes, bias None or (C_out,).
inline void check_operands(std::string_view op, const at::Tensor& x, const at::Tensor& z,
                           const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           bool transposed) {
  checks::floating(op, "x", x);
  checks::floating(op, "z", z);
  checks::floating(op, "weight", weight);
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": x: expected shape (N, C_x, H, W), got ",
                    checks::shape_text(x.sizes()));
  TORCH_CHECK_VALUE(z.dim() == 2 && z.size(0) == x.size(0), op, ": z: expected shape (",
                    x.size(0), ", C_z) (one code per sample of x), got ",
                    checks::shape_text(z.sizes()));
  const int64_t expected_in = x.size(1) + z.size(1), in_dim = transposed ? 0 : 1;
  if (weight.dim() != 4 || weight.size(in_dim) != expected_in) {
    const std::string in = std::to_string(expected_in);
    TORCH_CHECK_VALUE(false, op, ": weight: expected shape ",
                      transposed ? "(" + in + ", C_out, k_h, k_w)" : "(C_out, " + in + ", k_h, k_w)",
                      " (C_x ", x.size(1), " + C_z ", z.size(1), " input channels), got ",
                      checks::shape_text(weight.sizes()));
  }
  const int64_t out_channels = weight.size(1 - in_dim);
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == out_channels, op,
                      ": bias: expected None or shape (", out_channels, ",), got ",
                      checks::shape_text(bias->sizes()));
  }
}

inline void check_geometry(std::string_view op, int64_t stride, int64_t padding) {
  TORCH_CHECK_VALUE(stride >= 1, op, ": stride: expected an int >= 1, got ", stride);
  TORCH_CHECK_VALUE(padding >= 0, op, ": padding: expected an int >= 0, got ", padding);
}

inline void check_devices_and_dtypes(std::string_view op, const at::Tensor& x,
                                     const at::Tensor& z, const at::Tensor& weight,
                                     const std::optional<at::Tensor>& bias) {
  const at::Tensor* b = bias.has_value() && bias->defined() ? &*bias : nullptr;
  const auto& device = x.device();
  checks::same_device(op, "z", z, device, " (the device of x)");
  checks::same_device(op, "weight", weight, device, " (the device of x)");
  if (b != nullptr) checks::same_device(op, "bias", *b, device, " (the device of x)");
  checks::same_dtype(op, "weight", weight, x.scalar_type(), " (the dtype of x)");
  if (b != nullptr) checks::same_dtype(op, "bias", *b, x.scalar_type(), " (the dtype of x)");
}

inline LatentConvSpec check_latent_conv2d(std::string_view op, const at::Tensor& x,
                                          const at::Tensor& z, const at::Tensor& weight,
                                          const std::optional<at::Tensor>& bias, int64_t stride,
                                          int64_t padding, std::string_view padding_mode) {
  check_operands(op, x, z, weight, bias, /*transposed=*/false);
  check_geometry(op, stride, padding);
  const bool reflect = checks::choice(op, "padding_mode", padding_mode, {"zeros", "reflect"}) == 1;
  const int64_t h = x.size(2), w = x.size(3), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK_VALUE(!reflect || (padding < h && padding < w), op,
                    ": padding: reflect padding needs padding < H and < W, got padding ", padding,
                    " for x of shape ", checks::shape_text(x.sizes()));
  check_devices_and_dtypes(op, x, z, weight, bias);
  TORCH_CHECK_VALUE(h + 2 * padding >= kh && w + 2 * padding >= kw, op,
                    ": weight: expected a kernel no larger than the padded input (",
                    h + 2 * padding, ", ", w + 2 * padding, "), got (", kh, ", ", kw, ")");
  checks::non_empty(op, "x", x);
  return LatentConvSpec{x.size(0), x.size(1), z.size(1), h, w, weight.size(0), kh, kw, stride,
                        padding, 0, reflect, /*transposed=*/false,
                        axis_plan(h, kh, stride, padding, reflect),
                        axis_plan(w, kw, stride, padding, reflect)};
}

inline LatentConvSpec check_latent_conv_transpose2d(std::string_view op, const at::Tensor& x,
                                                    const at::Tensor& z,
                                                    const at::Tensor& weight,
                                                    const std::optional<at::Tensor>& bias,
                                                    int64_t stride, int64_t padding,
                                                    int64_t output_padding) {
  check_operands(op, x, z, weight, bias, /*transposed=*/true);
  check_geometry(op, stride, padding);
  TORCH_CHECK_VALUE(output_padding >= 0 && output_padding < stride, op,
                    ": output_padding: expected an int in [0, stride ", stride, "), got ",
                    output_padding);
  check_devices_and_dtypes(op, x, z, weight, bias);
  const int64_t h = x.size(2), w = x.size(3), kh = weight.size(2), kw = weight.size(3);
  const AxisPlan rows = transposed_axis_plan(h, kh, stride, padding, output_padding);
  const AxisPlan cols = transposed_axis_plan(w, kw, stride, padding, output_padding);
  TORCH_CHECK_VALUE(rows.out >= 1 && cols.out >= 1, op,
                    ": padding: expected an output of at least 1 x 1 ((H - 1) * stride - 2 * "
                    "padding + k + output_padding), got (",
                    rows.out, ", ", cols.out, ")");
  checks::non_empty(op, "x", x);
  return LatentConvSpec{x.size(0), x.size(1), z.size(1), h, w, weight.size(1), kh, kw, stride,
                        padding, output_padding, /*reflect=*/false, /*transposed=*/true, rows,
                        cols};
}

// The backward's extra input: grad of the forward output's shape and x's dtype and device.
inline void check_grad(std::string_view op, const at::Tensor& grad, const at::Tensor& x,
                       const LatentConvSpec& s) {
  const std::vector<int64_t> expected{s.n, s.out_channels, s.rows.out, s.cols.out};
  TORCH_CHECK_VALUE(grad.sizes() == at::IntArrayRef(expected), op, ": grad: expected shape ",
                    checks::shape_text(expected), " (the output's), got ",
                    checks::shape_text(grad.sizes()));
  checks::same_device(op, "grad", grad, x.device(), " (the device of x)");
  checks::same_dtype(op, "grad", grad, x.scalar_type(), " (the dtype of x)");
}

}  // namespace i2i_fast::latent_conv
