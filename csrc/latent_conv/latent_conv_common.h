// latent_conv2d: what the CPU and CUDA implementations share.
//
//   latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
//     = conv2d(pad(cat[x, z broadcast over H x W]), weight, bias, stride)
//
// computed without the concatenation. With weight = [W_x | W_z] along its input channels:
//
//   out = conv2d(pad(x), W_x, bias, stride) + T(z)
//   V[n, o, a, b]    = sum_c W_z[o, c, a, b] z[n, c]                    (N, O, kh, kw)
//   T[n, o, i, j]    = sum over the valid taps (a, b) of (i, j) of V[n, o, a, b]
//
// A tap a of output row i is valid when the input row i * stride - padding + a lies inside
// [0, H) (zero padding; with reflect padding every tap reads a z value, so all are valid). The
// valid taps of a row form one interval, which is the same for every row of the interior: the
// output rows fall into a few *row classes* (AxisPlan): each of the first `head` rows (clipped
// at the top) is a class of its own, the interior rows [head, tail) are one class, each row from
// `tail` on (clipped at the bottom) is a class of its own. Columns likewise. T is then a small
// table Tab[n, o, row class, column class] spread over rectangles of the output, and
//
//   forward:  out[n, o, i, j] += Tab[n, o, class(i), class(j)]        (one pass, in place)
//   backward: S[n, o, r, c]    = sum of grad_out over the rectangle of (r, c)   (one pass)
//             G[n, o, a, b]    = sum over the classes (r, c) whose taps include (a, b) of S
//             grad_z[n, c]     = sum_{o, a, b} W_z[o, c, a, b] G[n, o, a, b]
//             grad_W_z[o, c, a, b] = sum_n z[n, c] G[n, o, a, b]
//             grad_bias[o]     = sum_{n, r, c} S[n, o, r, c]
//
// The two passes over the output are the device kernels (latent_conv_cpu.cpp,
// latent_conv_cuda.cu); the convolution of x and its backward are ATen's (oneDNN / cuDNN); the
// tables (V, Tab, G: N * O * a few dozen values) are small tensor products done here, in float32
// (float64 for float64). The Triton backend (i2i_fast/ops/latent_conv/triton.py) follows the same
// plan.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>
#include <utility>
#include <string>
#include <vector>

#include "../common/accumulate.h"
#include "../common/checks.h"

namespace i2i_fast::latent_conv {

template <typename T>
using AccumulateOf_t = typename i2i_fast::AccumulateOf<T>::type;

// The row (or column) classes of one output axis.
struct AxisPlan {
  int64_t head = 0;  // rows [0, head): one class each (taps clipped by the top padding)
  int64_t tail = 0;  // rows [tail, out): one class each (clipped by the bottom padding)
  int64_t out = 0;   // output rows

  C10_HOST_DEVICE int64_t classes() const { return head + 1 + (out - tail); }
  C10_HOST_DEVICE int64_t class_of(int64_t i) const {
    return i < head ? i : (i >= tail ? head + 1 + (i - tail) : head);
  }
  // The rows [*first, *last) of class r (empty for the interior class when there is none).
  C10_HOST_DEVICE void rows_of(int64_t r, int64_t* first, int64_t* last) const {
    if (r < head) {
      *first = r;
      *last = r + 1;
    } else if (r == head) {
      *first = head;
      *last = tail;
    } else {
      *first = tail + (r - head - 1);
      *last = *first + 1;
    }
  }
};

// One axis: input size `in`, `taps` kernel taps, stride, padding, zero or reflect padding.
inline AxisPlan axis_plan(int64_t in, int64_t taps, int64_t stride, int64_t padding, bool reflect) {
  AxisPlan p;
  p.out = (in + 2 * padding - taps) / stride + 1;
  if (reflect) {
    p.head = 0;
    p.tail = p.out;
    return p;
  }
  // Row i is clipped at the top when i * stride < padding, at the bottom when
  // i * stride - padding + taps > in.
  const int64_t head = std::min(p.out, (padding + stride - 1) / stride);
  const int64_t room = in + padding - taps;  // the last unclipped row has i * stride <= room
  const int64_t tail = room < 0 ? 0 : room / stride + 1;
  p.head = head;
  p.tail = std::max(head, std::min(p.out, tail));
  return p;
}

// (classes, taps) 0/1 matrix: mask[r, a] = 1 when tap a is valid for the rows of class r.
inline at::Tensor tap_mask(const AxisPlan& p, int64_t in, int64_t taps, int64_t stride,
                           int64_t padding, bool reflect, const at::TensorOptions& options) {
  const int64_t k = p.classes();
  std::vector<double> values(static_cast<size_t>(k * taps), 0.0);
  for (int64_t r = 0; r < k; ++r) {
    int64_t first = 0, last = 0;
    p.rows_of(r, &first, &last);
    const int64_t row = std::min(first, p.out - 1);  // any row of the class (all share taps)
    for (int64_t a = 0; a < taps; ++a) {
      const int64_t at = row * stride - padding + a;
      values[static_cast<size_t>(r * taps + a)] = (reflect || (at >= 0 && at < in)) ? 1.0 : 0.0;
    }
  }
  return at::tensor(values, at::TensorOptions().dtype(at::kDouble))
      .view({k, taps})
      .to(options);
}

// What the checks return: the sizes of a valid call.
struct LatentConvSpec {
  int64_t n, cx, cz, h, w, out_channels, kh, kw, stride, padding;
  bool reflect;
  AxisPlan rows, cols;
};

// The accumulation dtype of the tables: float64 for float64 inputs, else float32.
inline at::ScalarType accumulate_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// The argument checks of i2i_fast/ops/latent_conv/checks.py (same order, same words): a direct
// operator call, a compiled graph and the public function refuse the same calls.
using checks::shape_text;  // csrc/common/checks.h: values as Python prints them

inline std::string dtype_text(const at::Tensor& t) { return checks::dtype_text(t.scalar_type()); }

inline bool is_floating(const at::Tensor& t) { return checks::is_floating(t.scalar_type()); }

inline LatentConvSpec check_latent_conv2d(const char* op, const at::Tensor& x, const at::Tensor& z,
                                          const at::Tensor& weight,
                                          const std::optional<at::Tensor>& bias, int64_t stride,
                                          int64_t padding, c10::string_view padding_mode) {
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"x", &x},
                                {"z", &z}, {"weight", &weight}}) {
    TORCH_CHECK_TYPE(is_floating(*t), op, ": ", name, ": expected a floating point tensor, got ",
                     dtype_text(*t));
  }
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": x: expected shape (N, C_x, H, W), got ",
                    shape_text(x.sizes()));
  TORCH_CHECK_VALUE(z.dim() == 2 && z.size(0) == x.size(0), op, ": z: expected shape (",
                    x.size(0), ", C_z) (one code per sample of x), got ", shape_text(z.sizes()));
  const int64_t expected_in = x.size(1) + z.size(1);
  TORCH_CHECK_VALUE(weight.dim() == 4 && weight.size(1) == expected_in, op,
                    ": weight: expected shape (C_out, ", expected_in, ", k_h, k_w) (C_x ",
                    x.size(1), " + C_z ", z.size(1), " input channels), got ",
                    shape_text(weight.sizes()));
  const bool has_bias = bias.has_value() && bias->defined();
  if (has_bias) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == weight.size(0), op,
                      ": bias: expected None or shape (", weight.size(0), ",), got ",
                      shape_text(bias->sizes()));
  }
  TORCH_CHECK_VALUE(stride >= 1, op, ": stride: expected an int >= 1, got ", stride);
  TORCH_CHECK_VALUE(padding >= 0, op, ": padding: expected an int >= 0, got ", padding);
  const bool reflect = padding_mode == "reflect";
  TORCH_CHECK_VALUE(reflect || padding_mode == "zeros", op,
                    ": padding_mode: expected one of zeros, reflect, got '",
                    std::string(padding_mode), "'");
  const int64_t h = x.size(2), w = x.size(3), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK_VALUE(!reflect || (padding < h && padding < w), op,
                    ": padding: reflect padding needs padding < H and < W, got padding ", padding,
                    " for x of shape ", shape_text(x.sizes()));
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"z", &z},
                                {"weight", &weight}, {"bias", has_bias ? &*bias : nullptr}}) {
    if (t == nullptr) continue;
    TORCH_CHECK_VALUE(t->device() == x.device(), op, ": ", name, ": expected device ",
                      x.device(), " (the device of x), got ", t->device());
  }
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"weight", &weight},
                                {"bias", has_bias ? &*bias : nullptr}}) {
    if (t == nullptr) continue;
    TORCH_CHECK_TYPE(t->scalar_type() == x.scalar_type(), op, ": ", name,
                     ": expected dtype ", dtype_text(x), " (the dtype of x), got ",
                     dtype_text(*t));
  }
  TORCH_CHECK_VALUE(h + 2 * padding >= kh && w + 2 * padding >= kw, op,
                    ": weight: expected a kernel no larger than the padded input (",
                    h + 2 * padding, ", ", w + 2 * padding, "), got (", kh, ", ", kw, ")");
  TORCH_CHECK_VALUE(x.numel() > 0, op, ": x: expected a non-empty tensor, got shape ",
                    shape_text(x.sizes()));
  LatentConvSpec s{x.size(0), x.size(1), z.size(1), h, w, weight.size(0), kh, kw, stride, padding,
                   reflect, axis_plan(h, kh, stride, padding, reflect),
                   axis_plan(w, kw, stride, padding, reflect)};
  return s;
}

// The backward's extra input: grad of the forward output's shape and x's dtype and device.
inline void check_latent_conv2d_grad(const char* op, const at::Tensor& grad, const at::Tensor& x,
                                     const LatentConvSpec& s) {
  const std::vector<int64_t> expected{s.n, s.out_channels, s.rows.out, s.cols.out};
  TORCH_CHECK_VALUE(grad.sizes() == at::IntArrayRef(expected), op,
                    ": grad: expected shape ", shape_text(expected), " (the output's), got ",
                    shape_text(grad.sizes()));
  TORCH_CHECK_VALUE(grad.device() == x.device(), op, ": grad: expected device ", x.device(),
                    " (the device of x), got ", grad.device());
  TORCH_CHECK_TYPE(grad.scalar_type() == x.scalar_type(), op, ": grad: expected dtype ",
                   dtype_text(x), " (the dtype of x), got ", dtype_text(grad));
}

// ----- the host side, for any device: ATen's convolution plus the device's two passes ---------

// AddTable(out, table, spec): out[n, o, i, j] += table[n, o, class(i), class(j)] in place.
// SumByClass(grad, spec) -> S (N, O, Kr, Kc) in the accumulation dtype.
using AddTableFn = void (*)(at::Tensor& out, const at::Tensor& table, const LatentConvSpec& s);
using SumByClassFn = at::Tensor (*)(const at::Tensor& grad, const LatentConvSpec& s);

inline at::Tensor padded_x(const at::Tensor& x, const LatentConvSpec& s) {
  return s.reflect && s.padding > 0
             ? at::reflection_pad2d(x, {s.padding, s.padding, s.padding, s.padding})
             : x;
}

inline int64_t conv_padding(const LatentConvSpec& s) { return s.reflect ? 0 : s.padding; }

// Tab (N, O, Kr, Kc) in the accumulation dtype.
inline at::Tensor class_table(const at::Tensor& x, const at::Tensor& z, const at::Tensor& weight,
                              const LatentConvSpec& s) {
  const auto acc = x.options().dtype(accumulate_type(x));
  const at::Tensor wz = weight.narrow(1, s.cx, s.cz).to(acc);           // (O, Cz, kh, kw)
  const at::Tensor zc = z.to(x.scalar_type()).to(acc);                  // z as the reference rounds it
  const at::Tensor v = at::matmul(zc, wz.permute({1, 0, 2, 3}).reshape({s.cz, -1}))
                           .view({s.n, s.out_channels, s.kh, s.kw});   // V
  const at::Tensor rows = tap_mask(s.rows, s.h, s.kh, s.stride, s.padding, s.reflect, acc);
  const at::Tensor cols = tap_mask(s.cols, s.w, s.kw, s.stride, s.padding, s.reflect, acc);
  // Tab[n, o, r, c] = sum_{a, b} rows[r, a] V[n, o, a, b] cols[c, b]
  return at::matmul(at::matmul(rows, v), cols.t()).contiguous();
}

inline at::Tensor latent_conv2d_forward_impl(const at::Tensor& x, const at::Tensor& z,
                                             const at::Tensor& weight,
                                             const std::optional<at::Tensor>& bias,
                                             const LatentConvSpec& s, AddTableFn add_table) {
  const int64_t p = conv_padding(s);
  at::Tensor out = at::convolution(padded_x(x, s), weight.narrow(1, 0, s.cx), bias,
                                   {s.stride, s.stride}, {p, p}, {1, 1}, false, {0, 0}, 1);
  if (s.cz > 0) add_table(out, class_table(x, z, weight, s), s);
  return out;
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> latent_conv2d_backward_impl(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& z, const at::Tensor& weight,
    const LatentConvSpec& s, std::array<bool, 4> mask, SumByClassFn sum_by_class) {
  at::Tensor grad_x, grad_z, grad_weight, grad_bias, grad_wx;
  if (mask[0] || mask[2]) {
    const int64_t p = conv_padding(s);
    const at::Tensor xp = padded_x(x, s);
    auto grads = at::convolution_backward(grad, xp, weight.narrow(1, 0, s.cx), std::nullopt,
                                          {s.stride, s.stride}, {p, p}, {1, 1}, false, {0, 0}, 1,
                                          {mask[0], mask[2], false});
    grad_x = std::get<0>(grads);
    grad_wx = std::get<1>(grads);
    if (mask[0] && s.reflect && s.padding > 0) {
      grad_x = at::reflection_pad2d_backward(grad_x, x,
                                             {s.padding, s.padding, s.padding, s.padding});
    }
  }
  if (mask[1] || mask[2] || mask[3]) {
    const at::Tensor sums = sum_by_class(grad, s);  // S (N, O, Kr, Kc)
    if (mask[3]) grad_bias = sums.sum({0, 2, 3}).to(weight.scalar_type());
    if (s.cz > 0 && (mask[1] || mask[2])) {
      const auto acc = sums.options();
      const at::Tensor rows = tap_mask(s.rows, s.h, s.kh, s.stride, s.padding, s.reflect, acc);
      const at::Tensor cols = tap_mask(s.cols, s.w, s.kw, s.stride, s.padding, s.reflect, acc);
      // G[n, o, a, b] = sum_{r, c} rows[r, a] S[n, o, r, c] cols[c, b]   -> (N, O * kh * kw)
      const at::Tensor g = at::matmul(at::matmul(rows.t(), sums), cols).reshape({s.n, -1});
      const at::Tensor wz = weight.narrow(1, s.cx, s.cz).to(acc);  // (O, Cz, kh, kw)
      const at::Tensor wz_rows = wz.permute({1, 0, 2, 3}).reshape({s.cz, -1});  // (Cz, O kh kw)
      if (mask[1]) grad_z = at::matmul(g, wz_rows.t()).to(z.scalar_type());
      if (mask[2]) {
        const at::Tensor zc = z.to(x.scalar_type()).to(acc);
        const at::Tensor gwz = at::matmul(zc.t(), g)  // (Cz, O kh kw)
                                   .view({s.cz, s.out_channels, s.kh, s.kw})
                                   .permute({1, 0, 2, 3})
                                   .to(weight.scalar_type());
        grad_weight = at::cat({grad_wx, gwz}, 1);
      }
    } else if (mask[1]) {
      grad_z = at::zeros_like(z, at::MemoryFormat::Contiguous);  // no latent channels
    }
  }
  if (mask[2] && s.cz == 0) grad_weight = grad_wx;
  if (grad_weight.defined()) grad_weight = grad_weight.contiguous();
  return {grad_x, grad_z, grad_weight, grad_bias};
}

}  // namespace i2i_fast::latent_conv
