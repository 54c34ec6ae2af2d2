// The gradient of filter_response_norm's backward (its "double backward") in closed form,
// written with ATen operations: what autograd records when the gradient must be differentiable
// again (create_graph=True twice, a third derivative), the remaining terms of the incoming
// gradients of grad_weight, grad_bias and grad_tau, and the CUDA kernel of
// filter_response_norm_double_backward until a fused one is written.
//
// Per (n, c) group of S = H * W elements, with r = rstd, xhat = x r, z = w xhat + b, the mask m
// of the elements where z wins the max (half at a tie, 1 where z or tau is NaN) and m_tau = its
// complement for tau, g = grad_out m, beta = mean(g x), the backward is
//     grad_x = w (r g - r^3 beta x),  grad_w = sum g xhat,  grad_b = sum g,
//     grad_tau = sum grad_out m_tau   (sums over N, H, W).
// The masks are piecewise constant (no derivative, as torch.maximum's), so with the incoming
// gradients a (of grad_x), a_w, a_b, a_tau, and P = mean(a g), Q = mean(a x):
//     d grad_out = m (w r (a - r^2 Q x) + a_w xhat + a_b) + a_tau m_tau
//     d x        = w r^3 (x (3 r^2 beta Q - P) - g Q - beta a) + a_w (r g - r^3 beta x)
//     d w        = sum over n of S r (P - r^2 beta Q)
// and nothing for b and tau. Checked against autograd of reference.filter_response_norm_backward
// (tests/test_filter_response_norm_operators.py).
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace i2i_fast {

// (d grad_out, d x, d weight) for the incoming gradients a, a_w, a_b, a_tau (each may be
// undefined: no such term; an output is undefined when no term reaches it), in the dtypes of
// grad_out, x and weight. rstd: the forward operator's (N, C), or undefined to compute r from x
// (then the result is differentiable in x too, for a higher derivative).
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> frn_double_backward_aten(
    const at::Tensor& a, const at::Tensor& a_w, const at::Tensor& a_b, const at::Tensor& a_tau,
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& tau, const at::Tensor& rstd, double eps) {
  using at::Tensor;
  const auto dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const std::vector<int64_t> channel{1, -1, 1, 1}, spatial{2, 3};
  const Tensor xf = x.to(dtype), gy = grad_out.to(dtype);
  const Tensor w = weight.to(dtype).view(channel);
  const Tensor r = rstd.defined() ? rstd.to(dtype).view({x.size(0), x.size(1), 1, 1})
                                  : at::rsqrt(xf.pow(2).mean(spatial, /*keepdim=*/true) + eps);
  const Tensor xhat = xf * r;
  const Tensor z = w * xhat + bias.to(dtype).view(channel);
  const Tensor t = tau.to(dtype).view(channel);
  const Tensor tie = (z == t).to(dtype) * 0.5;
  const Tensor m = 1 - (z < t).to(dtype) - tie;
  const Tensor g = gy * m;
  const Tensor r2 = r * r;
  const Tensor beta = (a.defined() || a_w.defined()) ? (g * xf).mean(spatial, /*keepdim=*/true)
                                                     : Tensor();
  Tensor d_g, d_x, d_w;  // d_g: the gradient of g = grad_out m
  const auto add = [](Tensor& total, const Tensor& term) {
    total = total.defined() ? total + term : term;
  };
  if (a.defined()) {
    const Tensor af = a.to(dtype);
    const Tensor p = (af * g).mean(spatial, /*keepdim=*/true);
    const Tensor q = (af * xf).mean(spatial, /*keepdim=*/true);
    d_g = w * r * (af - r2 * q * xf);
    d_x = w * r2 * r * (xf * (3 * r2 * beta * q - p) - g * q - beta * af);
    const double count = static_cast<double>(x.size(2) * x.size(3));
    d_w = (count * r * (p - r2 * beta * q)).sum({0, 2, 3});
  }
  if (a_w.defined()) {
    const Tensor aw = a_w.to(dtype).view(channel);
    add(d_g, aw * xhat);
    add(d_x, aw * (r * g - r2 * r * beta * xf));
  }
  if (a_b.defined()) add(d_g, a_b.to(dtype).view(channel).expand_as(xf));
  Tensor d_grad_out = d_g.defined() ? d_g * m : Tensor();
  if (a_tau.defined()) {
    add(d_grad_out, a_tau.to(dtype).view(channel) * (1 - (z > t).to(dtype) - tie));
  }
  const auto cast = [](const Tensor& v, const Tensor& like) {
    return v.defined() ? v.to(like.scalar_type()) : v;
  };
  return {cast(d_grad_out, grad_out), cast(d_x, x), cast(d_w, weight)};
}

}  // namespace i2i_fast
