// The Gaussian NLL operators: schemas and autograd (the definitions are in common.h, the argument
// checks in checks.h, the kernels in gaussian_nll_cpu.cpp and gaussian_nll_cuda.cu).
//
//   i2i_fast::gaussian_nll            the reduced NLL of z under N(mu, exp(logvar)); one kernel
//                                     per device
//   i2i_fast::gaussian_nll_backward   its gradients (dz, dmu, dlogvar); one kernel per device
//
// The public operator's autograd kernel (a torch::autograd::Function) calls the device kernels
// below autograd, so the host cost stays in C++; torch.compile / AOTAutograd trace through it to
// the two operators (fake implementations in i2i_fast/ops/gaussian_nll/fake.py).
// gaussian_nll_backward is not differentiable: a double backward raises an error naming it.
//
// Forward mode (torch.func.jvp, torch.autograd.forward_ad; common/forward_ad.h): the loss is a
// sum of per-element terms, so its derivative along the tangents (tz, tmu, tlogvar) is
// sum(dz tz + dmu tmu + dlogvar tlogvar), with (dz, dmu, dlogvar) the backward kernel's output
// for an upstream gradient of one.
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>
#include <tuple>
#include <vector>

#include "../common/forward_ad.h"
#include "../common/operator_handle.h"
#include "../common/registration.h"
#include "common.h"

namespace i2i_fast {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using NllOp = Tensor(const Tensor&, const Tensor&, const Tensor&, c10::string_view);
using NllBackwardOp = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                         const Tensor&, const Tensor&,
                                                         c10::string_view);

I2I_FAST_OPERATOR_HANDLE(gaussian_nll_op, NllOp, "i2i_fast::gaussian_nll")
I2I_FAST_OPERATOR_HANDLE(gaussian_nll_backward_op, NllBackwardOp,
                         "i2i_fast::gaussian_nll_backward")

class GaussianNllFunction : public torch::autograd::Function<GaussianNllFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& z, const Tensor& mu,
                        const Tensor& logvar, c10::string_view reduction) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor loss = gaussian_nll_op().call(z, mu, logvar, reduction);
    ctx->save_for_backward({z, mu, logvar});
    ctx->saved_data["reduction"] = std::string(reduction);
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list result(4);  // z, mu, logvar, reduction
    if (!grad_outputs[0].defined()) return result;
    const variable_list saved = ctx->get_saved_variables();
    // Through the dispatcher with autograd: under create_graph the not-implemented fallback
    // records a node that refuses a second derivative, naming gaussian_nll_backward.
    auto [dz, dmu, dlogvar] = gaussian_nll_backward_op().call(
        grad_outputs[0], saved[0], saved[1], saved[2], ctx->saved_data["reduction"].toStringRef());
    if (ctx->needs_input_grad(0)) result[0] = std::move(dz);
    if (ctx->needs_input_grad(1)) result[1] = std::move(dmu);
    if (ctx->needs_input_grad(2)) result[2] = std::move(dlogvar);
    return result;
  }
};

Tensor gaussian_nll_autograd(const Tensor& z, const Tensor& mu, const Tensor& logvar,
                             c10::string_view reduction) {
  const Tensor tangents[3] = {forward_tangent(z), forward_tangent(mu), forward_tangent(logvar)};
  if (tangents[0].defined() || tangents[1].defined() || tangents[2].defined()) {
    const Tensor zp = forward_primal(z);
    const Tensor mp = forward_primal(mu);
    const Tensor lp = forward_primal(logvar);
    const Tensor loss = gaussian_nll_op().call(zp, mp, lp, reduction);
    const auto grads =
        gaussian_nll_backward_op().call(at::ones_like(loss), zp, mp, lp, reduction);
    const Tensor g[3] = {std::get<0>(grads), std::get<1>(grads), std::get<2>(grads)};
    Tensor tangent;
    for (int i = 0; i < 3; ++i) {
      if (!tangents[i].defined()) continue;
      const auto dtype = loss.scalar_type();
      const Tensor term = (g[i].to(dtype) * tangents[i].to(dtype)).sum();
      tangent = tangent.defined() ? tangent + term : term;
    }
    return with_forward_tangent(loss, tangent);
  }
  return call_or_record<GaussianNllFunction>(recording(z, mu, logvar), gaussian_nll_op(), z, mu,
                                             logvar, reduction);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      // z, mu, logvar: one shape (N, ...); reduction "batch_sum", "sum" or "mean".
      "gaussian_nll(Tensor z, Tensor mu, Tensor logvar, str reduction=\"batch_sum\") -> Tensor",
      "gaussian_nll_backward(Tensor grad_loss, Tensor z, Tensor mu, Tensor logvar, "
      "str reduction) -> (Tensor, Tensor, Tensor)",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("gaussian_nll", &i2i_fast::gaussian_nll_autograd);
  i2i_fast::not_differentiable(m, {"gaussian_nll_backward"});
}
