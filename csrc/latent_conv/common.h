// latent_conv2d and latent_conv_transpose2d: what the CPU and CUDA implementations share (the
// argument checks are in checks.h, the device operators in device_kernels.h).
//
//   latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)
//     = conv2d(pad(cat[x, z broadcast over H x W]), weight, bias, stride)
//   latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding)
//     = conv_transpose2d(cat[x, z broadcast over H x W], weight, bias, stride, padding,
//                        output_padding)
//
// computed without the concatenation. Split the weight along its input channels into the part
// that multiplies x and the part that multiplies z, W = [W_x | W_z] (dim 1 of a conv2d weight
// (O, C_x + C_z, kh, kw), dim 0 of a transposed one (C_x + C_z, O, kh, kw)):
//
//   out = conv(x, W_x, bias) + T(z)   (conv: ATen's, oneDNN / cuDNN; output_conv2d's to <= 4
//                                      channels at stride 1, see as_output_conv)
//   V[n, o, a, b] = sum_c W_z[c, o, a, b] z[n, c]          (N, O, kh, kw)
//   T[n, o, i, j] = sum over the taps (a, b) that reach output (i, j) of V[n, o, a, b]
//
// Which taps reach an output row depends on the geometry only:
//   conv2d: tap a of output row i reads input row i * stride - padding + a; it counts when that
//     row lies inside [0, H) (zero padding; with reflect padding every tap reads a z value).
//   transposed: input row r sends its tap a to output row r * stride - padding + a, so tap a
//     reaches row i when d = i + padding - a is a multiple of stride with 0 <= d / stride < H.
// The output rows fall into a few *row classes* (AxisPlan) that share their taps: each of the
// first `head` rows (clipped at the top) is a class of its own, the interior rows [head, tail)
// form `period` classes by their phase (i - head) mod period (period 1 for conv2d: one class;
// stride for a transposed conv, whose taps alternate with the row's parity), each row from `tail`
// on (clipped at the bottom) is a class of its own. Columns likewise. T is then a small table
// Tab[n, o, row class, column class] spread over the output, and
//
//   forward:  out[n, o, i, j] += Tab[n, o, class(i), class(j)]         (one pass, in place)
//   backward: S[n, o, r, c]    = sum of grad_out over the rows of r x the columns of c (one pass)
//             G[n, o, a, b]    = sum over the classes (r, c) whose taps include (a, b) of S
//             grad_z[n, c]     = sum_{o, a, b} W_z[c, o, a, b] G[n, o, a, b]
//             grad_W_z[c, o, a, b] = sum_n z[n, c] G[n, o, a, b]
//             grad_bias[o]     = sum_{n, r, c} S[n, o, r, c]
//
// The two passes over the output are the device kernels (latent_conv_cpu.cpp,
// latent_conv_cuda.cu). The tables (V, Tab, G: N * O * a few dozen values) are in float32
// (float64 for float64): ATen matmuls here (`class_table_matmul`, `tap_gradients_matmul`), or
// a device's own loops (the CPU's: a dozen BLAS calls on matrices this small cost more than the
// passes). The Triton backend (i2i_fast/ops/latent_conv/triton.py, plan.py) follows the same
// plan.
//
// One exception, latent_conv2d only: where the weight slice W_x (a strided view of the weight,
// which oneDNN and cuDNN copy on every call) is larger than the concatenated input, the
// operator convolves the concatenation instead (`concatenates`): BicycleGAN's deepest U-Net
// levels (512 channels at 2 x 2 or 1 x 1), where the copy cost more than the fusion saves.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>
#include <vector>

#include "../common/accumulate.h"
#include "../common/operator_handle.h"
#include "gemm_convolution.h"

namespace i2i_fast::latent_conv {

template <typename T>
using AccumulateOf_t = typename i2i_fast::AccumulateOf<T>::type;

// The row (or column) classes of one output axis.
struct AxisPlan {
  int64_t head = 0;    // rows [0, head): one class each (taps clipped by the top border)
  int64_t tail = 0;    // rows [tail, out): one class each (clipped by the bottom border)
  int64_t out = 0;     // output rows
  int64_t period = 1;  // the interior rows [head, tail) form `period` classes, by phase

  C10_HOST_DEVICE int64_t classes() const { return head + period + (out - tail); }
  C10_HOST_DEVICE int64_t class_of(int64_t i) const {
    return i < head ? i : (i >= tail ? head + period + (i - tail) : head + (i - head) % period);
  }
  // The rows of class r: first, first + step, ..., `count` of them (none for an interior phase
  // that no row has).
  C10_HOST_DEVICE void rows_of(int64_t r, int64_t* first, int64_t* count, int64_t* step) const {
    if (r < head) {
      *first = r;
      *count = 1;
      *step = 1;
    } else if (r < head + period) {
      *first = r;
      *step = period;
      *count = r < tail ? (tail - r + period - 1) / period : 0;
    } else {
      *first = tail + (r - head - period);
      *count = 1;
      *step = 1;
    }
  }
};

// One axis of a conv2d: input size `in`, `taps` kernel taps, stride, padding, zero or reflect
// padding.
inline AxisPlan axis_plan(int64_t in, int64_t taps, int64_t stride, int64_t padding,
                          bool reflect) {
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

// One axis of a transposed conv. Row i is clipped at the top when a tap a <= taps - 1 has
// i + padding - a < 0 (i < taps - 1 - padding), at the bottom when one has
// i + padding - a > stride * (in - 1) (i > stride * (in - 1) - padding).
inline AxisPlan transposed_axis_plan(int64_t in, int64_t taps, int64_t stride, int64_t padding,
                                     int64_t output_padding) {
  AxisPlan p;
  p.out = (in - 1) * stride - 2 * padding + taps + output_padding;
  p.period = stride;
  p.head = std::min(p.out, std::max<int64_t>(0, taps - 1 - padding));
  p.tail = std::max(p.head, std::min(p.out, stride * (in - 1) - padding + 1));
  return p;
}

// What the checks return: the sizes of a valid call.
struct LatentConvSpec {
  int64_t n, cx, cz, h, w, out_channels, kh, kw, stride, padding, output_padding;
  bool reflect, transposed;
  AxisPlan rows, cols;
};

// Whether tap a reaches output row `row` of an axis with input size `in`.
inline bool tap_reaches(const LatentConvSpec& s, int64_t in, int64_t row, int64_t a) {
  if (s.transposed) {
    const int64_t d = row + s.padding - a;
    return d >= 0 && d % s.stride == 0 && d / s.stride < in;
  }
  const int64_t at = row * s.stride - s.padding + a;
  return s.reflect || (at >= 0 && at < in);
}

// (classes, taps) 0/1 flags, row-major: flag[r * taps + a] = 1 when tap a reaches the rows of
// class r.
inline std::vector<double> tap_flags(const AxisPlan& p, int64_t in, int64_t taps,
                                     const LatentConvSpec& s) {
  const int64_t k = p.classes();
  std::vector<double> values(static_cast<size_t>(k * taps), 0.0);
  for (int64_t r = 0; r < k; ++r) {
    int64_t first = 0, count = 0, step = 0;
    p.rows_of(r, &first, &count, &step);
    // any row of the class (all share their taps); a class without rows is never read
    const int64_t row = std::min(first, p.out - 1);
    for (int64_t a = 0; a < taps; ++a) {
      values[static_cast<size_t>(r * taps + a)] = tap_reaches(s, in, row, a) ? 1.0 : 0.0;
    }
  }
  return values;
}

// The same flags as a (classes, taps) tensor.
inline at::Tensor tap_mask(const AxisPlan& p, int64_t in, int64_t taps, const LatentConvSpec& s,
                           const at::TensorOptions& options) {
  return at::tensor(tap_flags(p, in, taps, s), at::TensorOptions().dtype(at::kDouble))
      .view({p.classes(), taps})
      .to(options);
}

// latent_conv2d convolves the concatenation when the slice W_x (copied by the convolution: a
// strided view) holds more elements than the concatenated input (plan.py: `concatenates`).
inline bool concatenates(const LatentConvSpec& s) {
  return !s.transposed && s.cz > 0 &&
         s.out_channels * s.cx * s.kh * s.kw > s.n * (s.cx + s.cz) * s.h * s.w;
}

// The accumulation dtype of the tables: float64 for float64 inputs, else float32.
inline at::ScalarType accumulate_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// ----- the host side, for any device: ATen's convolution plus the device's two passes ---------

// AddTable(out, table, spec): out[n, o, i, j] += table[n, o, class(i), class(j)] in place.
// SumByClass(grad, spec) -> S (N, O, Kr, Kc) in the accumulation dtype.
using AddTableFn = void (*)(at::Tensor& out, const at::Tensor& table, const LatentConvSpec& s);
using SumByClassFn = at::Tensor (*)(const at::Tensor& grad, const LatentConvSpec& s);

inline std::array<int64_t, 4> reflect_pads(const LatentConvSpec& s) {
  return {s.padding, s.padding, s.padding, s.padding};
}

// What the convolution reads: x, reflect-padded for a reflect conv2d (then conv_padding is 0).
inline at::Tensor padded(const at::Tensor& input, const LatentConvSpec& s) {
  return s.reflect && s.padding > 0 ? at::reflection_pad2d(input, reflect_pads(s)) : input;
}

inline int64_t conv_padding(const LatentConvSpec& s) { return s.reflect ? 0 : s.padding; }

// The input channels of the weight: dim 1 of a conv2d weight, dim 0 of a transposed one.
inline int64_t input_dim(const LatentConvSpec& s) { return s.transposed ? 0 : 1; }

// A stride-1 convolution to at most 4 channels (a generator's output layer: DRIT's 1x1
// transposed conv to RGB) runs on output_conv2d's device operators, whose CPU kernel vectorises
// over output columns where oneDNN's blocks of 16 output channels would leave most lanes idle.
// A 1x1 transposed conv at stride 1 without padding is the 1x1 conv with the weight's two channel
// axes swapped.
using OutputConvForward = at::Tensor(const at::Tensor&, const at::Tensor&,
                                     const std::optional<at::Tensor>&, int64_t, c10::string_view,
                                     c10::string_view);
using OutputConvBackward = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
    int64_t, c10::string_view, c10::string_view, bool, std::array<bool, 3>);
inline I2I_FAST_OPERATOR_HANDLE(output_conv2d_forward_op, OutputConvForward,
                                "i2i_fast::output_conv2d_forward")
inline I2I_FAST_OPERATOR_HANDLE(output_conv2d_backward_op, OutputConvBackward,
                                "i2i_fast::output_conv2d_backward")

constexpr int64_t kOutputConvChannels = 4;

inline bool as_output_conv(const LatentConvSpec& s) {
  if (s.stride != 1 || s.out_channels > kOutputConvChannels) return false;
  return !s.transposed || (s.kh == 1 && s.kw == 1 && s.padding == 0 && s.output_padding == 0);
}

// The weight as a conv2d's (O, C, kh, kw).
inline at::Tensor conv2d_weight(const at::Tensor& weight, const LatentConvSpec& s) {
  return s.transposed ? weight.transpose(0, 1) : weight;
}

// The convolution of `input` (x, or the concatenation) with `weight` (W_x, or all of it).
inline at::Tensor convolve(const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, const LatentConvSpec& s) {
  if (as_output_conv(s)) {
    return output_conv2d_forward_op().call(input, conv2d_weight(weight, s), bias, s.padding,
                                           s.reflect ? "reflect" : "zeros", "none");
  }
  const int64_t p = conv_padding(s), op = s.output_padding;
  const at::Tensor in = padded(input, s);
  const gemm::Geometry geometry{s.stride, p, op, s.transposed};
  if (gemm::worthwhile(in, weight, geometry)) return gemm::forward(in, weight, bias, geometry);
  return at::convolution(in, weight, bias, {s.stride, s.stride}, {p, p}, {1, 1}, s.transposed,
                         {op, op}, 1);
}

// Its backward: (grad_input, grad_weight) as `mask` asks, grad_input of `input`'s size.
inline std::tuple<at::Tensor, at::Tensor> convolve_backward(const at::Tensor& grad,
                                                            const at::Tensor& input,
                                                            const at::Tensor& weight,
                                                            const LatentConvSpec& s, bool input_grad,
                                                            bool weight_grad) {
  if (as_output_conv(s)) {
    auto [gi, gw, unused] = output_conv2d_backward_op().call(
        grad, input, conv2d_weight(weight, s), std::nullopt, s.padding,
        s.reflect ? "reflect" : "zeros", "none", false, {input_grad, weight_grad, false});
    return {gi, gw.defined() ? conv2d_weight(gw, s) : gw};
  }
  const int64_t p = conv_padding(s), op = s.output_padding;
  const at::Tensor in = padded(input, s);
  const gemm::Geometry geometry{s.stride, p, op, s.transposed};
  at::Tensor grad_input, grad_weight;
  if (gemm::worthwhile(in, weight, geometry)) {
    std::tie(grad_input, grad_weight) =
        gemm::backward(grad, in, weight, geometry, input_grad, weight_grad);
  } else {
    std::tie(grad_input, grad_weight, std::ignore) = at::convolution_backward(
        grad, in, weight, std::nullopt, {s.stride, s.stride}, {p, p}, {1, 1}, s.transposed,
        {op, op}, 1, {input_grad, weight_grad, false});
  }
  if (input_grad && s.reflect && s.padding > 0) {
    grad_input = at::reflection_pad2d_backward(grad_input, input, reflect_pads(s));
  }
  return {grad_input, grad_weight};
}

// z as the reference rounds it (to x's dtype), in the accumulation dtype.
inline at::Tensor z_rounded(const at::Tensor& x, const at::Tensor& z, at::ScalarType acc) {
  return z.to(x.scalar_type()).to(acc);
}

// W_z as (C_z, O * kh * kw) rows, in the accumulation dtype.
inline at::Tensor z_weight_rows(const at::Tensor& weight, const LatentConvSpec& s,
                                at::ScalarType acc) {
  const at::Tensor wz = weight.narrow(input_dim(s), s.cx, s.cz).to(acc);
  return (s.transposed ? wz : wz.permute({1, 0, 2, 3})).reshape({s.cz, -1});
}

// The concatenation cat[x, z broadcast] (latent_conv2d where it `concatenates`), in x's layout.
inline at::Tensor concatenation(const at::Tensor& x, const at::Tensor& z,
                                const LatentConvSpec& s) {
  const at::Tensor zmap =
      z.to(x.scalar_type()).unsqueeze(2).unsqueeze(3).expand({s.n, s.cz, s.h, s.w});
  return at::cat({x, zmap}, 1).contiguous(x.suggest_memory_format());
}

// Tab (N, O, Kr, Kc) in the accumulation dtype, from x (its dtype), z and the weight.
using ClassTableFn = at::Tensor (*)(const at::Tensor& x, const at::Tensor& z,
                                    const at::Tensor& weight, const LatentConvSpec& s);

// What the backward takes from S (N, O, Kr, Kc): grad_z (N, C_z) in z's dtype, grad_W_z in the
// weight's layout ((O, C_z, kh, kw), or (C_z, O, kh, kw) transposed) and dtype, grad_bias (O) in
// the weight's dtype; each only where asked (`mask`: z, W_z, bias).
struct TapGradients {
  at::Tensor grad_z, grad_weight_z, grad_bias;
};
using TapGradientsFn = TapGradients (*)(const at::Tensor& sums, const at::Tensor& x,
                                        const at::Tensor& z, const at::Tensor& weight,
                                        const LatentConvSpec& s, std::array<bool, 3> mask);

inline at::Tensor class_table_matmul(const at::Tensor& x, const at::Tensor& z,
                                     const at::Tensor& weight, const LatentConvSpec& s) {
  const auto acc = accumulate_type(x);
  const at::Tensor v = at::matmul(z_rounded(x, z, acc), z_weight_rows(weight, s, acc))
                           .view({s.n, s.out_channels, s.kh, s.kw});  // V
  const auto options = x.options().dtype(acc);
  const at::Tensor rows = tap_mask(s.rows, s.h, s.kh, s, options);
  const at::Tensor cols = tap_mask(s.cols, s.w, s.kw, s, options);
  // Tab[n, o, r, c] = sum_{a, b} rows[r, a] V[n, o, a, b] cols[c, b]
  return at::matmul(at::matmul(rows, v), cols.t()).contiguous();
}

inline TapGradients tap_gradients_matmul(const at::Tensor& sums, const at::Tensor& x,
                                         const at::Tensor& z, const at::Tensor& weight,
                                         const LatentConvSpec& s, std::array<bool, 3> mask) {
  TapGradients out;
  if (mask[2]) out.grad_bias = sums.sum({0, 2, 3}).to(weight.scalar_type());
  if (!mask[0] && !mask[1]) return out;
  const auto acc = sums.scalar_type();
  const at::Tensor rows = tap_mask(s.rows, s.h, s.kh, s, sums.options());
  const at::Tensor cols = tap_mask(s.cols, s.w, s.kw, s, sums.options());
  // G[n, o, a, b] = sum_{r, c} rows[r, a] S[n, o, r, c] cols[c, b]   -> (N, O * kh * kw)
  const at::Tensor g = at::matmul(at::matmul(rows.t(), sums), cols).reshape({s.n, -1});
  if (mask[0]) out.grad_z = at::matmul(g, z_weight_rows(weight, s, acc).t()).to(z.scalar_type());
  if (mask[1]) {
    at::Tensor gwz = at::matmul(z_rounded(x, z, acc).t(), g)  // (Cz, O kh kw)
                         .view({s.cz, s.out_channels, s.kh, s.kw});
    if (!s.transposed) gwz = gwz.permute({1, 0, 2, 3});
    out.grad_weight_z = gwz.to(weight.scalar_type());
  }
  return out;
}

inline at::Tensor forward_impl(const at::Tensor& x, const at::Tensor& z, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, const LatentConvSpec& s,
                               AddTableFn add_table, ClassTableFn class_table) {
  if (concatenates(s)) return convolve(concatenation(x, z, s), weight, bias, s);
  at::Tensor out = convolve(x, weight.narrow(input_dim(s), 0, s.cx), bias, s);
  if (s.cz > 0) add_table(out, class_table(x, z, weight, s), s);
  return out;
}

using Gradients = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// The backward through the concatenation (where the forward `concatenates`).
inline Gradients backward_concatenated(const at::Tensor& grad, const at::Tensor& x,
                                       const at::Tensor& z, const at::Tensor& weight,
                                       const LatentConvSpec& s, std::array<bool, 4> mask) {
  at::Tensor grad_x, grad_z, grad_weight, grad_bias;
  if (mask[0] || mask[1] || mask[2]) {
    auto [grad_input, gw] =
        convolve_backward(grad, concatenation(x, z, s), weight, s, mask[0] || mask[1], mask[2]);
    if (mask[0]) {  // in x's suggested layout, as the fake gives it
      grad_x = at::empty_like(x, x.suggest_memory_format());
      grad_x.copy_(grad_input.narrow(1, 0, s.cx));
    }
    if (mask[1]) {
      grad_z = grad_input.narrow(1, s.cx, s.cz)
                   .sum({2, 3}, false, accumulate_type(x))
                   .to(z.scalar_type());
    }
    if (mask[2]) grad_weight = gw.contiguous();
  }
  if (mask[3]) grad_bias = grad.sum({0, 2, 3}, false, accumulate_type(x)).to(weight.scalar_type());
  return {grad_x, grad_z, grad_weight, grad_bias};
}

inline Gradients backward_impl(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& z,
                               const at::Tensor& weight, const LatentConvSpec& s,
                               std::array<bool, 4> mask, SumByClassFn sum_by_class,
                               TapGradientsFn tap_gradients) {
  if (concatenates(s)) return backward_concatenated(grad, x, z, weight, s, mask);
  at::Tensor grad_x, grad_z, grad_weight, grad_bias, grad_wx;
  const int64_t dim = input_dim(s);
  if (mask[0] || mask[2]) {
    std::tie(grad_x, grad_wx) =
        convolve_backward(grad, x, weight.narrow(dim, 0, s.cx), s, mask[0], mask[2]);
  }
  if (mask[1] || mask[2] || mask[3]) {
    const at::Tensor sums = sum_by_class(grad, s);  // S (N, O, Kr, Kc)
    const bool latent = s.cz > 0;
    TapGradients t = tap_gradients(sums, x, z, weight, s,
                                   {latent && mask[1], latent && mask[2], mask[3]});
    grad_bias = t.grad_bias;
    if (latent) {
      grad_z = t.grad_z;
      if (mask[2]) grad_weight = at::cat({grad_wx, t.grad_weight_z}, dim);
    } else if (mask[1]) {
      grad_z = at::zeros_like(z, at::MemoryFormat::Contiguous);  // no latent channels
    }
  }
  if (mask[2] && s.cz == 0) grad_weight = grad_wx;
  if (grad_weight.defined()) grad_weight = grad_weight.contiguous();
  return {grad_x, grad_z, grad_weight, grad_bias};
}

}  // namespace i2i_fast::latent_conv
