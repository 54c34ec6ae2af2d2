// A convolution whose weight is large next to its data, as one matrix product over the batch
// (CPU).
//
// At the innermost levels of a U-Net or an encoder (outputs of 1x1 to 4x4 at a batch of 1 to 8)
// a convolution's weight is far larger than its data: a 4x4 conv from 264 to 256 channels holds
// 1.1 M weights for 4 x 1 output positions. ATen (oneDNN) took 7 to 11 ms for the forward and
// backward of such a layer on a 2-core AVX2 VM, where one matrix product over the
// batch takes about 2. Here the convolution is the product of the im2col patches of all samples
// at once with the weight read in place as an (O, C kh kw) matrix, its backward two more
// products (col2im for the input gradient); a transposed convolution is the same products the
// other way round (the weight as (C_in, C_out kh kw), col2im for the output).
//
// `worthwhile`: float32/float64 on the CPU with at least kWeightPerColumn weights per column of
// the product (output positions x batch; input positions x batch for a transposed conv).
// Measured forward+backward against ATen at the methods' shapes on an AVX2 VM (README, "Latent
// injection"): 1.1x to 5x faster from 16K weights per column up, 0.66x to 1.0x below 9K.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <tuple>

namespace i2i_fast::latent_conv::gemm {

constexpr int64_t kWeightPerColumn = 16384;

// A convolution's geometry: square stride, zero padding (the caller pads reflect itself) and
// output padding; the kernel size is the weight's.
struct Geometry {
  int64_t stride, padding, output_padding;
  bool transposed;
};

// The output's (H, W).
inline std::array<int64_t, 2> output_size(const at::Tensor& input, const at::Tensor& weight,
                                          const Geometry& g) {
  std::array<int64_t, 2> size{};
  for (int d = 0; d < 2; ++d) {
    const int64_t in = input.size(2 + d), k = weight.size(2 + d);
    size[d] = g.transposed ? (in - 1) * g.stride - 2 * g.padding + k + g.output_padding
                           : (in + 2 * g.padding - k) / g.stride + 1;
  }
  return size;
}

// The matrix product's columns: output positions x batch (conv), input positions x batch
// (transposed conv).
inline int64_t columns(const at::Tensor& input, const at::Tensor& weight, const Geometry& g) {
  if (g.transposed) return input.size(0) * input.size(2) * input.size(3);
  const auto [ho, wo] = output_size(input, weight, g);
  return input.size(0) * ho * wo;
}

inline bool worthwhile(const at::Tensor& input, const at::Tensor& weight, const Geometry& g) {
  const auto dtype = input.scalar_type();
  return input.is_cpu() && (dtype == at::kFloat || dtype == at::kDouble) &&
         weight.numel() >= kWeightPerColumn * columns(input, weight, g);
}

// The products are arranged with one row per position (N H W or N L rows, few) and the channels
// or patches along the rows (many): MKL's sgemm was up to 7x slower with the long dimension
// down the columns of a skinny output (0.29 vs 2.07 ms for 4 x 256 by 256 x 4096, measured on
// an AVX2 VM).

// The layout ATen's CPU convolution gives its output and its input gradient, which the
// operators' fakes compute with ATen's meta convolution: channels-last when the input or the
// weight is.
inline at::MemoryFormat output_format(const at::Tensor& input, const at::Tensor& weight) {
  const auto cl = at::MemoryFormat::ChannelsLast;
  return input.suggest_memory_format() == cl || weight.suggest_memory_format() == cl
             ? cl
             : at::MemoryFormat::Contiguous;
}

// `t` with exactly the strides of a tensor of its sizes made in `format` (contiguous() keeps
// other strides on size-1 dims, which the fakes' strides would not match).
inline at::Tensor laid_out(const at::Tensor& t, at::MemoryFormat format) {
  at::Tensor out = at::empty(t.sizes(), t.options().memory_format(format));
  if (out.strides() == t.strides()) return t;
  return out.copy_(t);
}

// (N, C, H, W) as the (N H W, C) matrix (a view for a channels-last tensor), and back in
// `format`.
inline at::Tensor position_rows(const at::Tensor& t) {
  return t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)});
}

inline at::Tensor from_position_rows(const at::Tensor& m, int64_t n, int64_t h, int64_t w,
                                     at::MemoryFormat format) {
  return laid_out(m.view({n, h, w, m.size(1)}).permute({0, 3, 1, 2}), format);
}

// The im2col patches of `t` for a (kh, kw) kernel, one row per output position: (N L, C kh kw).
inline at::Tensor patch_rows(const at::Tensor& t, int64_t kh, int64_t kw, const Geometry& g) {
  const at::Tensor cols = at::im2col(t.contiguous(), {kh, kw}, {1, 1}, {g.padding, g.padding},
                                     {g.stride, g.stride});  // (N, C kh kw, L)
  return cols.transpose(1, 2).reshape({-1, cols.size(1)});
}

// (N L, C kh kw) patches folded back (col2im: overlapping taps summed) to (N, C, H, W).
inline at::Tensor fold_patch_rows(const at::Tensor& m, int64_t n, int64_t h, int64_t w,
                                  int64_t kh, int64_t kw, const Geometry& g) {
  const at::Tensor cols = m.view({n, -1, m.size(1)}).transpose(1, 2).contiguous();
  return at::col2im(cols, {h, w}, {kh, kw}, {1, 1}, {g.padding, g.padding},
                    {g.stride, g.stride});
}

// The weight as a matrix: (O, C kh kw) for a conv, (C_in, C_out kh kw) for a transposed one.
inline at::Tensor weight_matrix(const at::Tensor& weight) {
  return weight.reshape({weight.size(0), -1});
}

inline at::Tensor forward(const at::Tensor& input, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias, const Geometry& g) {
  const int64_t n = input.size(0);
  const int64_t kh = weight.size(2), kw = weight.size(3);
  const auto format = output_format(input, weight);
  const bool with_bias = bias.has_value() && bias->defined();
  const auto [ho, wo] = output_size(input, weight, g);
  if (!g.transposed) {
    const at::Tensor patches = patch_rows(input, kh, kw, g);  // (N L, C kh kw)
    const at::Tensor wt = weight_matrix(weight).t();
    const at::Tensor out = with_bias ? at::addmm(*bias, patches, wt) : at::mm(patches, wt);
    return from_position_rows(out, n, ho, wo, format);
  }
  const int64_t o = weight.size(1);
  const at::Tensor patches = at::mm(position_rows(input), weight_matrix(weight));
  at::Tensor out = fold_patch_rows(patches, n, ho, wo, kh, kw, g);
  if (with_bias) out.add_(bias->view({1, o, 1, 1}));
  return laid_out(out, format);
}

// (grad_input, grad_weight) as asked; grad_input in output_format's layout, grad_weight
// contiguous in the weight's shape.
inline std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& input,
                                                   const at::Tensor& weight, const Geometry& g,
                                                   bool input_grad, bool weight_grad) {
  const int64_t n = input.size(0), h = input.size(2), w = input.size(3);
  const int64_t kh = weight.size(2), kw = weight.size(3);
  const auto format = output_format(input, weight);
  at::Tensor grad_input, grad_weight;
  if (!g.transposed) {
    const at::Tensor grad_rows = position_rows(grad);  // (N L, O)
    if (weight_grad) {
      grad_weight = at::mm(grad_rows.t(), patch_rows(input, kh, kw, g)).view(weight.sizes());
    }
    if (input_grad) {
      grad_input = laid_out(
          fold_patch_rows(at::mm(grad_rows, weight_matrix(weight)), n, h, w, kh, kw, g), format);
    }
    return {grad_input, grad_weight};
  }
  const at::Tensor grad_patches = patch_rows(grad, kh, kw, g);  // (N H W, C_out kh kw)
  if (weight_grad) {
    grad_weight = at::mm(position_rows(input).t(), grad_patches).view(weight.sizes());
  }
  if (input_grad) {
    grad_input = from_position_rows(at::mm(grad_patches, weight_matrix(weight).t()), n, h, w,
                                    format);
  }
  return {grad_input, grad_weight};
}

}  // namespace i2i_fast::latent_conv::gemm
