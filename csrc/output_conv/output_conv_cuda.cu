// output_conv2d on CUDA: ATen's operators (cuDNN's convolution, with the reflection padding, the
// per-sample bias and tanh around it). cuDNN has kernels for few output channels; there is no
// fused CUDA kernel here, and the operator keeps one schema on every device.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "device_kernels.h"

namespace i2i_fast::output_conv {
namespace {

// The input the convolution reads, and the convolution's own zero padding.
std::pair<at::Tensor, int64_t> conv_input(const at::Tensor& x, const OutputConvSpec& s) {
  if (s.reflect && s.padding > 0) {
    return {at::reflection_pad2d(x, {s.padding, s.padding, s.padding, s.padding}), 0};
  }
  return {x, s.padding};
}

at::Tensor forward_cuda(const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const OutputConvSpec& s) {
  const auto [xp, p] = conv_input(x, s);
  const bool has_bias = bias.has_value() && bias->defined();
  const std::optional<at::Tensor> channel_bias =
      has_bias && !s.per_sample_bias ? bias : std::nullopt;
  at::Tensor y =
      at::convolution(xp, weight, channel_bias, {1, 1}, {p, p}, {1, 1}, false, {0, 0}, 1);
  if (has_bias && s.per_sample_bias) y.add_(bias->view({s.n, s.o, 1, 1}));
  if (s.tanh) y.tanh_();
  return y;
}

Gradients backward_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& out, const OutputConvSpec& s,
                        std::array<bool, 3> mask) {
  const at::Tensor g = s.tanh ? at::tanh_backward(grad, *out) : grad;
  const auto [xp, p] = conv_input(x, s);
  auto [gxp, gw, unused] = at::convolution_backward(g, xp, weight, std::nullopt, {1, 1}, {p, p},
                                                    {1, 1}, false, {0, 0}, 1,
                                                    {mask[0], mask[1], false});
  at::Tensor gx;
  if (mask[0]) {
    gx = xp.is_same(x) ? gxp
                       : at::reflection_pad2d_backward(
                             gxp, x, {s.padding, s.padding, s.padding, s.padding});
  }
  at::Tensor gb;
  if (mask[2]) gb = s.per_sample_bias ? g.sum({2, 3}) : g.sum({0, 2, 3});
  return {gx, gw, gb};
}

}  // namespace
}  // namespace i2i_fast::output_conv

TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
  using namespace i2i_fast::output_conv;
  i2i_fast::register_kernels<OutputConvKernels<&forward_cuda, &backward_cuda>>(m);
}
