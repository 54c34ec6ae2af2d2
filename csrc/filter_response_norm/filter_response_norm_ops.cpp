// The filter response normalization operators: schemas and autograd.
//
//   i2i_fast::filter_response_norm           the public operator; differentiable (twice)
//   i2i_fast::filter_response_norm_forward   returns (out, rstd); one kernel per device
//   i2i_fast::filter_response_norm_backward  returns (grad_x, grad_weight, grad_bias, grad_tau);
//                                            one kernel per device
// The public operator's autograd kernel calls the device operators through the dispatcher (host
// cost in C++; torch.compile traces to the device operators, whose fakes are registered from
// i2i_fast/ops/filter_response_norm/fake.py). Below autograd (inference mode) it runs the
// forward operator and returns `out`.
//
// Double backward (TUNIT's R1 penalty differentiates the discriminator's input gradient): when
// the backward runs with grad mode on (create_graph=True), the gradient is computed by
// `differentiable_backward`, ATen operations that autograd records, so it can be differentiated
// again to any order; otherwise by the fused backward operator. The backward operator itself is
// not differentiable (autogradNotImplementedFallback: differentiating it raises an error that
// names it).
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../common/operator_handle.h"
#include "../common/registration.h"

namespace i2i_fast {
namespace {

using at::Tensor;

using FrnForward = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                              const Tensor&, double);
using FrnBackward = std::tuple<Tensor, Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                               const Tensor&, const Tensor&,
                                                               const Tensor&, const Tensor&,
                                                               double);

I2I_FAST_OPERATOR_HANDLE(frn_forward_op, FrnForward, "i2i_fast::filter_response_norm_forward")
I2I_FAST_OPERATOR_HANDLE(frn_backward_op, FrnBackward, "i2i_fast::filter_response_norm_backward")

// The gradient of filter_response_norm written with ATen operations (the formula of
// i2i_fast/ops/filter_response_norm/reference.py::filter_response_norm_backward): differentiable.
torch::autograd::variable_list differentiable_backward(const Tensor& grad_out, const Tensor& x,
                                                       const Tensor& weight, const Tensor& bias,
                                                       const Tensor& tau, double eps) {
  const auto dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const std::vector<int64_t> channel{1, -1, 1, 1};
  const Tensor xf = x.to(dtype);
  const Tensor w = weight.to(dtype).view(channel);
  const Tensor t = tau.to(dtype).view(channel);
  const Tensor r = at::rsqrt(xf.pow(2).mean({2, 3}, /*keepdim=*/true) + eps);
  const Tensor xhat = xf * r;
  const Tensor z = w * xhat + bias.to(dtype).view(channel);
  const Tensor tie = (z == t).to(dtype) * 0.5;
  const Tensor g = grad_out.to(dtype) * (1 - (z < t).to(dtype) - tie);
  const Tensor g_tau = grad_out.to(dtype) * (1 - (z > t).to(dtype) - tie);
  const Tensor gx = w * r * (g - xhat * (g * xhat).mean({2, 3}, /*keepdim=*/true));
  return {gx.to(x.scalar_type()), (g * xhat).sum({0, 2, 3}).to(weight.scalar_type()),
          g.sum({0, 2, 3}).to(bias.scalar_type()), g_tau.sum({0, 2, 3}).to(tau.scalar_type())};
}

class FrnFunction : public torch::autograd::Function<FrnFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, const Tensor& tau, double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, rstd] = frn_forward_op().call(x, weight, bias, tau, eps);
    ctx->save_for_backward({x, weight, bias, tau, rstd});
    ctx->saved_data["eps"] = eps;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const Tensor& grad_out = grads[0];
    torch::autograd::variable_list result(5);  // x, weight, bias, tau, eps
    if (!grad_out.defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const double eps = ctx->saved_data["eps"].toDouble();
    torch::autograd::variable_list g;
    if (at::GradMode::is_enabled()) {
      g = differentiable_backward(grad_out, saved[0], saved[1], saved[2], saved[3], eps);
    } else {
      auto [gx, gw, gb, gt] =
          frn_backward_op().call(grad_out, saved[0], saved[1], saved[2], saved[3], saved[4], eps);
      g = {gx, gw, gb, gt};
    }
    for (size_t i = 0; i < 4; ++i) result[i] = g[i];
    return result;
  }
};

Tensor frn_autograd(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& tau,
                    double eps) {
  return FrnFunction::apply(x, weight, bias, tau, eps);
}

Tensor frn_no_grad(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& tau,
                   double eps) {
  return std::get<0>(frn_forward_op().call(x, weight, bias, tau, eps));
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      // FRN + TLU: per-(n, c) mean of squares over (H, W), per-channel weight, bias, tau (C,).
      "filter_response_norm(Tensor x, Tensor weight, Tensor bias, Tensor tau, float eps=1e-06) "
      "-> Tensor",
      "filter_response_norm_forward(Tensor x, Tensor weight, Tensor bias, Tensor tau, float eps) "
      "-> (Tensor, Tensor)",
      "filter_response_norm_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor bias, "
      "Tensor tau, Tensor rstd, float eps) -> (Tensor, Tensor, Tensor, Tensor)",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("filter_response_norm", &i2i_fast::frn_autograd);
  i2i_fast::not_differentiable(m,
                               {"filter_response_norm_forward", "filter_response_norm_backward"});
}

TORCH_LIBRARY_IMPL(i2i_fast, CompositeExplicitAutograd, m) {
  m.impl("filter_response_norm", &i2i_fast::frn_no_grad);
}
