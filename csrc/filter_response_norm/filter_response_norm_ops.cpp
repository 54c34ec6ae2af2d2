// The filter response normalization operators: schemas and autograd.
//
//   i2i_fast::filter_response_norm           the public operator; differentiable (twice)
//   i2i_fast::filter_response_norm_forward   returns (out, rstd); one kernel per device
//   i2i_fast::filter_response_norm_backward  returns (grad_x, grad_weight, grad_bias, grad_tau);
//                                            one kernel per device
//   i2i_fast::filter_response_norm_double_backward
//                                            the backward's gradient for an incoming gradient of
//                                            grad_x: (d grad_out, d x, d weight); one kernel per
//                                            device
// The public operator's autograd kernel calls the device operators through the dispatcher (host
// cost in C++; torch.compile traces to the device operators, whose fakes are registered from
// i2i_fast/ops/filter_response_norm/fake.py). Below autograd (inference mode) it runs the
// forward operator and returns `out`.
//
// Double backward (TUNIT's R1 penalty differentiates the discriminator's input gradient): the
// gradient is always computed by the fused backward operator; when the backward runs with grad
// mode on (create_graph=True), through `FrnBackwardFunction`, whose backward runs the fused
// double backward operator (and is differentiable again, to any order: see the class). The
// device operators called on their own are not differentiable (autogradNotImplementedFallback:
// differentiating one raises an error that names it).
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../common/operator_handle.h"
#include "../common/registration.h"
#include "double_backward_aten.h"

namespace i2i_fast {
namespace {

using at::Tensor;

using FrnForward = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                              const Tensor&, double);
using FrnBackward = std::tuple<Tensor, Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                               const Tensor&, const Tensor&,
                                                               const Tensor&, const Tensor&,
                                                               double);

using FrnDoubleBackward = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                            const Tensor&, const Tensor&,
                                                            const Tensor&, const Tensor&,
                                                            const Tensor&, double);

I2I_FAST_OPERATOR_HANDLE(frn_forward_op, FrnForward, "i2i_fast::filter_response_norm_forward")
I2I_FAST_OPERATOR_HANDLE(frn_backward_op, FrnBackward, "i2i_fast::filter_response_norm_backward")
I2I_FAST_OPERATOR_HANDLE(frn_double_backward_op, FrnDoubleBackward,
                         "i2i_fast::filter_response_norm_double_backward")

// The gradient as a differentiable operation (used when the backward runs with grad mode on,
// i.e. create_graph=True, as TUNIT's R1 penalty does): its forward is the fused backward
// operator; its backward is the fused double backward operator for the gradient of grad_x
// (grad_grad_x), plus the closed form (double_backward_aten.h) for the gradients of grad_weight,
// grad_bias and grad_tau when they come (rarely: R1 differentiates grad_x only). With grad mode
// on again (a third derivative) the whole double backward is the closed form, which autograd
// records in turn, so the operator is differentiable to any order.
class FrnBackwardFunction : public torch::autograd::Function<FrnBackwardFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const Tensor& grad_out, const Tensor& x,
                                                const Tensor& weight, const Tensor& bias,
                                                const Tensor& tau, const Tensor& rstd,
                                                double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [gx, gw, gb, gt] = frn_backward_op().call(grad_out, x, weight, bias, tau, rstd, eps);
    ctx->set_materialize_grads(false);  // the outputs nobody differentiates get no zeros
    ctx->save_for_backward({grad_out, x, weight, bias, tau, rstd});
    ctx->saved_data["eps"] = eps;
    return {gx, gw, gb, gt};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto s = ctx->get_saved_variables();  // grad_out, x, weight, bias, tau, rstd
    const double eps = ctx->saved_data["eps"].toDouble();
    torch::autograd::variable_list result(7);  // grad_out, x, weight, bias, tau, rstd, eps
    const auto add = [&result](size_t i, const Tensor& term) {
      if (term.defined()) result[i] = result[i].defined() ? result[i] + term : term;
    };
    const bool higher = at::GradMode::is_enabled();
    Tensor a = grads[0];
    if (a.defined() && !higher) {
      auto [d_grad_out, d_x, d_w] =
          frn_double_backward_op().call(a, s[0], s[1], s[2], s[3], s[4], s[5], eps);
      add(0, d_grad_out);
      add(1, d_x);
      add(2, d_w);
      a = Tensor();
    }
    if (a.defined() || grads[1].defined() || grads[2].defined() || grads[3].defined()) {
      auto [d_grad_out, d_x, d_w] = frn_double_backward_aten(
          a, grads[1], grads[2], grads[3], s[0], s[1], s[2], s[3], s[4],
          higher ? Tensor() : s[5], eps);
      add(0, d_grad_out);
      add(1, d_x);
      add(2, d_w);
    }
    return result;
  }
};

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
      g = FrnBackwardFunction::apply(grad_out, saved[0], saved[1], saved[2], saved[3], saved[4],
                                     eps);
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
      // The gradients of <grad_x, grad_grad_x> w.r.t. (grad_out, x, weight): the backward's own
      // backward for the gradient of grad_x (double_backward_aten.h has the formula).
      "filter_response_norm_double_backward(Tensor grad_grad_x, Tensor grad_out, Tensor x, "
      "Tensor weight, Tensor bias, Tensor tau, Tensor rstd, float eps) -> (Tensor, Tensor, "
      "Tensor)",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("filter_response_norm", &i2i_fast::frn_autograd);
  i2i_fast::not_differentiable(m, {"filter_response_norm_forward", "filter_response_norm_backward",
                                   "filter_response_norm_double_backward"});
}

TORCH_LIBRARY_IMPL(i2i_fast, CompositeExplicitAutograd, m) {
  m.impl("filter_response_norm", &i2i_fast::frn_no_grad);
}
