// The argument checks of output_conv2d, for the compiled kernels of every device
// (device_kernels.h runs them before any kernel). The C++ mirror of
// i2i_fast/ops/output_conv/checks.py: the same checks in the same order with the same words
// (tests/test_operator_checks.py compares the two).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string_view>
#include <vector>

#include "../common/checks.h"

namespace i2i_fast::output_conv {

// What the kernels run: the input (N, C, H, W), the kernel (O, C, kh, kw), the padding.
struct OutputConvSpec {
  int64_t n, c, h, w, o, kh, kw, padding;
  bool reflect, tanh, per_sample_bias;
  int64_t out_h() const { return h + 2 * padding - kh + 1; }
  int64_t out_w() const { return w + 2 * padding - kw + 1; }
};

inline OutputConvSpec check_output_conv2d(std::string_view op, const at::Tensor& x,
                                          const at::Tensor& weight,
                                          const std::optional<at::Tensor>& bias, int64_t padding,
                                          std::string_view padding_mode,
                                          std::string_view activation) {
  checks::floating(op, "x", x);
  checks::floating(op, "weight", weight);
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": x: expected shape (N, C, H, W), got ",
                    checks::shape_text(x.sizes()));
  TORCH_CHECK_VALUE(weight.dim() == 4 && weight.size(1) == x.size(1), op,
                    ": weight: expected shape (C_out, ", x.size(1), ", k_h, k_w), got ",
                    checks::shape_text(weight.sizes()));
  const int64_t o = weight.size(0);
  const at::Tensor* b = bias.has_value() && bias->defined() ? &*bias : nullptr;
  if (b != nullptr) {
    const bool one = b->dim() == 1 && b->size(0) == o;
    const bool per_sample = b->dim() == 2 && b->size(0) == x.size(0) && b->size(1) == o;
    TORCH_CHECK_VALUE(one || per_sample, op, ": bias: expected None, shape (", o, ",) or (",
                      x.size(0), ", ", o, "), got ", checks::shape_text(b->sizes()));
  }
  TORCH_CHECK_VALUE(padding >= 0, op, ": padding: expected an int >= 0, got ", padding);
  const bool reflect = checks::choice(op, "padding_mode", padding_mode, {"zeros", "reflect"}) == 1;
  const bool tanh = checks::choice(op, "activation", activation, {"none", "tanh"}) == 1;
  const int64_t h = x.size(2), w = x.size(3), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK_VALUE(!reflect || (padding < h && padding < w), op,
                    ": padding: reflect padding needs padding < H and < W, got padding ", padding,
                    " for x of shape ", checks::shape_text(x.sizes()));
  const auto& device = x.device();
  checks::same_device(op, "weight", weight, device, " (the device of x)");
  if (b != nullptr) checks::same_device(op, "bias", *b, device, " (the device of x)");
  checks::same_dtype(op, "weight", weight, x.scalar_type(), " (the dtype of x)");
  if (b != nullptr) checks::same_dtype(op, "bias", *b, x.scalar_type(), " (the dtype of x)");
  TORCH_CHECK_VALUE(h + 2 * padding >= kh && w + 2 * padding >= kw, op,
                    ": weight: expected a kernel no larger than the padded input (",
                    h + 2 * padding, ", ", w + 2 * padding, "), got (", kh, ", ", kw, ")");
  checks::non_empty(op, "x", x);
  checks::non_empty(op, "weight", weight);
  return OutputConvSpec{x.size(0), x.size(1), h, w, o, kh, kw, padding, reflect, tanh,
                        b != nullptr && b->dim() == 2};
}

// The backward's extra inputs: grad of the output's shape, and the output itself (what tanh's
// derivative reads) exactly when the activation is tanh.
inline void check_backward_inputs(std::string_view op, const at::Tensor& grad,
                                  const std::optional<at::Tensor>& out, const at::Tensor& x,
                                  const OutputConvSpec& s) {
  const std::vector<int64_t> expected{s.n, s.o, s.out_h(), s.out_w()};
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"grad", &grad},
                                {"out", out.has_value() && out->defined() ? &*out : nullptr}}) {
    if (t == nullptr) continue;
    TORCH_CHECK_VALUE(t->sizes() == at::IntArrayRef(expected), op, ": ", name,
                      ": expected shape ", checks::shape_text(expected), " (the output's), got ",
                      checks::shape_text(t->sizes()));
    checks::same_device(op, name, *t, x.device(), " (the device of x)");
    checks::same_dtype(op, name, *t, x.scalar_type(), " (the dtype of x)");
  }
  const bool has_out = out.has_value() && out->defined();
  TORCH_CHECK_VALUE(has_out == s.tanh, op, ": out: expected ",
                    s.tanh ? "the forward's output (tanh's derivative reads it)"
                           : "None (activation 'none' does not read it)",
                    ", got ", has_out ? "a tensor" : "None");
}

}  // namespace i2i_fast::output_conv
