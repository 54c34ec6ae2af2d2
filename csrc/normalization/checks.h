// The argument checks of the normalization operators, for the compiled kernels of every device
// (device_kernels.h runs them before any kernel). The C++ mirror of
// i2i_fast/ops/normalization/checks.py: the same checks in the same order with the same words
// (tests/test_operator_checks.py compares the two). Each returns the NormSpec its kernels run.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string_view>

#include "../common/checks.h"
#include "common.h"

namespace i2i_fast {

// x: (N, C, L), (N, C, H, W) or (N, C, D, H, W), floating, non-empty.
inline void check_norm_input(std::string_view op, const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.dim() >= 3 && x.dim() <= 5, op,
                    ": x: expected shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), got ",
                    x.dim(), " dims with shape ", checks::shape_text(x.sizes()));
  checks::floating(op, "x", x);
  checks::non_empty(op, "x", x);
}

// A modulation parameter: the given shape, x's device, x's dtype (or float32 for a 16-bit x).
inline void check_norm_param(std::string_view op, std::string_view name, const at::Tensor& p,
                             const at::Tensor& x, at::IntArrayRef expected_shape) {
  TORCH_CHECK_VALUE(p.sizes() == expected_shape, op, ": ", name, ": expected shape ",
                    checks::shape_text(expected_shape), ", got ", checks::shape_text(p.sizes()));
  checks::same_device(op, name, p, x.device(), " (the device of x)");
  const auto pt = p.scalar_type();
  const bool fp32_for_low_precision =
      pt == at::kFloat && (x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16);
  TORCH_CHECK_TYPE(pt == x.scalar_type() || fp32_for_low_precision, op, ": ", name,
                   ": expected dtype ", checks::dtype_text(x.scalar_type()),
                   " (or float32 for a float16/bfloat16 x), got ", checks::dtype_text(pt));
}

// instance_norm's and layer_norm's weight and bias: (C,) each, or absent.
inline void check_per_channel_params(std::string_view op, const at::Tensor& x,
                                     const std::optional<at::Tensor>& weight,
                                     const std::optional<at::Tensor>& bias) {
  const int64_t c[] = {x.size(1)};
  if (weight.has_value() && weight->defined()) check_norm_param(op, "weight", *weight, x, c);
  if (bias.has_value() && bias->defined()) check_norm_param(op, "bias", *bias, x, c);
}

inline Activation check_activation(std::string_view op, std::string_view activation) {
  if (activation == "none") return Activation::kNone;
  if (activation == "relu") return Activation::kRelu;
  if (activation == "leaky_relu") return Activation::kLeakyRelu;
  TORCH_CHECK_VALUE(false, op, ": activation: expected None, 'relu' or 'leaky_relu', got ",
                    checks::repr_text(activation));
  return Activation::kNone;  // not reached
}

inline StdKind check_layer_norm_style(std::string_view op, std::string_view style) {
  if (style == "munit") return StdKind::kUnbiasedStdPlusEps;
  if (style == "standard") return StdKind::kBiasedVar;
  TORCH_CHECK_VALUE(false, op, ": style: expected 'munit' or 'standard', got ",
                    checks::repr_text(style));
  return StdKind::kBiasedVar;  // not reached
}

// The options every normalization checks last (activation, then eps), and its NormSpec.
inline NormSpec norm_spec(std::string_view op, Grouping grouping, StdKind std_kind, double eps,
                          std::string_view activation, double negative_slope) {
  const Activation act = check_activation(op, activation);
  checks::eps(op, eps);
  return {grouping, std_kind, eps, act, negative_slope};
}

// ----- each operator's checks, and the NormSpec its kernels run -----
// `op`: the operator's name in the messages ("adain", or "adain_backward" for its backward).

inline NormSpec check_adain(std::string_view op, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, double eps, std::string_view activation,
                            double negative_slope) {
  check_norm_input(op, x);
  const int64_t nc[] = {x.size(0), x.size(1)};
  check_norm_param(op, "weight", weight, x, nc);
  check_norm_param(op, "bias", bias, x, nc);
  return norm_spec(op, Grouping::kInstance, StdKind::kBiasedVar, eps, activation, negative_slope);
}

inline NormSpec check_instance_norm(std::string_view op, const at::Tensor& x,
                                    const std::optional<at::Tensor>& weight,
                                    const std::optional<at::Tensor>& bias, double eps,
                                    std::string_view activation, double negative_slope) {
  check_norm_input(op, x);
  check_per_channel_params(op, x, weight, bias);
  return norm_spec(op, Grouping::kInstance, StdKind::kBiasedVar, eps, activation, negative_slope);
}

inline NormSpec check_layer_norm(std::string_view op, const at::Tensor& x,
                                 const std::optional<at::Tensor>& weight,
                                 const std::optional<at::Tensor>& bias, double eps,
                                 std::string_view style, std::string_view activation,
                                 double negative_slope) {
  check_norm_input(op, x);
  check_per_channel_params(op, x, weight, bias);
  const StdKind std_kind = check_layer_norm_style(op, style);
  return norm_spec(op, Grouping::kLayer, std_kind, eps, activation, negative_slope);
}

inline NormSpec check_batch_norm(std::string_view op, const at::Tensor& x,
                                 const std::optional<at::Tensor>& weight,
                                 const std::optional<at::Tensor>& bias, double eps,
                                 std::string_view activation, double negative_slope) {
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": x: expected shape (N, C, H, W), got ", x.dim(),
                    " dims with shape ", checks::shape_text(x.sizes()));
  checks::floating(op, "x", x);
  checks::non_empty(op, "x", x);
  // F.batch_norm's condition in training mode.
  TORCH_CHECK_VALUE(x.size(0) * x.size(2) * x.size(3) != 1, op,
                    ": x: expected more than 1 value per channel (N * H * W > 1, as F.batch_norm "
                    "in training mode), got shape ",
                    checks::shape_text(x.sizes()));
  check_per_channel_params(op, x, weight, bias);
  return norm_spec(op, Grouping::kBatch, StdKind::kBiasedVar, eps, activation, negative_slope);
}

// What a backward operator takes besides its forward operator's arguments: grad_out like x, and
// the statistics the forward operator returned ((N, C) for instance statistics, (N,) for layer
// statistics, (C,) for batch statistics; the second named `second`: "rstd", or "var" for
// batch_norm), all floating and on x's device. The kernels index them by x's shape, so a
// mismatch must stop here.
inline void check_norm_backward_inputs(std::string_view op, const at::Tensor& grad_out,
                                       const at::Tensor& x, const at::Tensor& mean,
                                       const at::Tensor& rstd, Grouping grouping,
                                       const char* second = "rstd") {
  TORCH_CHECK_VALUE(grad_out.sizes() == x.sizes(), op, ": grad_out: expected shape ",
                    checks::shape_text(x.sizes()), " (the shape of x), got ",
                    checks::shape_text(grad_out.sizes()));
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"grad_out", grad_out},
                                {"mean", mean},
                                {second, rstd}}) {
    checks::same_device(op, name, t, x.device(), " (the device of x)");
    checks::floating(op, name, t);
  }
  const int64_t instance[] = {x.size(0), x.size(1)};
  const int64_t layer[] = {x.size(0)};
  const int64_t batch[] = {x.size(1)};
  const at::IntArrayRef stat_shape = grouping == Grouping::kInstance ? at::IntArrayRef(instance)
                                     : grouping == Grouping::kLayer  ? at::IntArrayRef(layer)
                                                                     : at::IntArrayRef(batch);
  for (const auto& [name, t] :
       {std::pair<const char*, const at::Tensor&>{"mean", mean}, {second, rstd}}) {
    TORCH_CHECK_VALUE(t.sizes() == stat_shape, op, ": ", name, ": expected shape ",
                      checks::shape_text(stat_shape),
                      " (what the forward operator returned), got ", checks::shape_text(t.sizes()));
  }
}

}  // namespace i2i_fast
