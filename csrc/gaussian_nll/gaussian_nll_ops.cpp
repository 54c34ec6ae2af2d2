// The Gaussian latent terms: schemas and autograd (the definitions are in common.h, the argument
// checks in checks.h, the kernels in gaussian_nll_cpu.cpp and gaussian_nll_cuda.cu).
//
//   i2i_fast::gaussian_nll            the reduced NLL of z under N(mu, exp(logvar)) (MISO's MILO);
//                                     one kernel per device
//   i2i_fast::gaussian_nll_backward   its gradients (dz, dmu, dlogvar); one kernel per device
//   i2i_fast::gaussian_kl             the reduced KL(N(mu, exp(logvar)) || N(0, I)) (DRIT's,
//                                     BicycleGAN's, MISO's); one kernel per device
//   i2i_fast::gaussian_kl_backward    its gradients (dmu, dlogvar); one kernel per device
//
// Each public operator's autograd kernel (one torch::autograd::Function, written once over the
// operator's inputs) calls the device kernels below autograd, so the host cost stays in C++;
// torch.compile / AOTAutograd trace through it to the device operators (fake implementations in
// i2i_fast/ops/gaussian_nll/fake.py). The backward operators are not differentiable: a double
// backward raises an error naming them.
//
// Forward mode (torch.func.jvp, torch.autograd.forward_ad; common/forward_ad.h): a loss is a sum
// of per-element terms, so its derivative along the inputs' tangents is the sum over the inputs
// of sum(d_input * tangent), with the d_input the backward kernel's output for an upstream
// gradient of one.
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <string>
#include <tuple>
#include <utility>
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
using KlOp = Tensor(const Tensor&, const Tensor&, c10::string_view);
using KlBackwardOp = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                c10::string_view);

I2I_FAST_OPERATOR_HANDLE(gaussian_nll_op, NllOp, "i2i_fast::gaussian_nll")
I2I_FAST_OPERATOR_HANDLE(gaussian_nll_backward_op, NllBackwardOp,
                         "i2i_fast::gaussian_nll_backward")
I2I_FAST_OPERATOR_HANDLE(gaussian_kl_op, KlOp, "i2i_fast::gaussian_kl")
I2I_FAST_OPERATOR_HANDLE(gaussian_kl_backward_op, KlBackwardOp, "i2i_fast::gaussian_kl_backward")

// An operator's device operators, and the number of its tensor inputs.
struct NllOperators {
  static constexpr size_t kInputs = 3;
  static const auto& forward() { return gaussian_nll_op(); }
  static const auto& backward() { return gaussian_nll_backward_op(); }
};

struct KlOperators {
  static constexpr size_t kInputs = 2;
  static const auto& forward() { return gaussian_kl_op(); }
  static const auto& backward() { return gaussian_kl_backward_op(); }
};

// ops.forward()(inputs..., reduction) and ops.backward()(grad, inputs..., reduction) of K inputs
// held in an array; the backward's gradients as an array.
template <typename Ops, size_t... I>
Tensor call_forward(const std::array<Tensor, Ops::kInputs>& inputs, c10::string_view reduction,
                    std::index_sequence<I...>) {
  return Ops::forward().call(inputs[I]..., reduction);
}

template <typename Ops, size_t... I>
std::array<Tensor, Ops::kInputs> call_backward(const Tensor& grad,
                                               const std::array<Tensor, Ops::kInputs>& inputs,
                                               c10::string_view reduction,
                                               std::index_sequence<I...>) {
  auto grads = Ops::backward().call(grad, inputs[I]..., reduction);
  return {std::move(std::get<I>(grads))...};
}

template <typename Ops>
class LatentTermFunction : public torch::autograd::Function<LatentTermFunction<Ops>> {
  static constexpr size_t K = Ops::kInputs;

 public:
  // args: the K tensor inputs, then the reduction.
  template <typename... Args>
  static Tensor forward(AutogradContext* ctx, const Args&... args) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor loss = Ops::forward().call(args...);
    variable_list saved;
    (keep(ctx, saved, args), ...);
    ctx->save_for_backward(saved);
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list result(K + 1);  // the inputs, the reduction
    if (!grad_outputs[0].defined()) return result;
    const variable_list saved = ctx->get_saved_variables();
    std::array<Tensor, K> inputs;
    for (size_t k = 0; k < K; ++k) inputs[k] = saved[k];
    // Through the dispatcher with autograd: under create_graph the not-implemented fallback
    // records a node that refuses a second derivative, naming the backward operator.
    std::array<Tensor, K> grads =
        call_backward<Ops>(grad_outputs[0], inputs, ctx->saved_data["reduction"].toStringRef(),
                           std::make_index_sequence<K>());
    for (size_t k = 0; k < K; ++k) {
      if (ctx->needs_input_grad(k)) result[k] = std::move(grads[k]);
    }
    return result;
  }

 private:
  static void keep(AutogradContext*, variable_list& saved, const Tensor& input) {
    saved.push_back(input);
  }
  static void keep(AutogradContext* ctx, variable_list&, c10::string_view reduction) {
    ctx->saved_data["reduction"] = std::string(reduction);
  }
};

// The autograd kernel of a latent term of the tensor inputs `inputs`.
template <typename Ops, typename... Inputs>
Tensor latent_term_autograd(c10::string_view reduction, const Inputs&... inputs) {
  constexpr size_t K = Ops::kInputs;
  const std::array<Tensor, K> tangents{forward_tangent(inputs)...};
  bool any_tangent = false;
  for (const Tensor& t : tangents) any_tangent = any_tangent || t.defined();
  if (any_tangent) {
    const std::array<Tensor, K> primals{forward_primal(inputs)...};
    const Tensor loss = call_forward<Ops>(primals, reduction, std::make_index_sequence<K>());
    const std::array<Tensor, K> grads = call_backward<Ops>(
        at::ones_like(loss), primals, reduction, std::make_index_sequence<K>());
    Tensor tangent;
    for (size_t k = 0; k < K; ++k) {
      if (!tangents[k].defined()) continue;
      const auto dtype = loss.scalar_type();
      const Tensor term = (grads[k].to(dtype) * tangents[k].to(dtype)).sum();
      tangent = tangent.defined() ? tangent + term : term;
    }
    return with_forward_tangent(loss, tangent);
  }
  return call_or_record<LatentTermFunction<Ops>>(recording(inputs...), Ops::forward(),
                                                 inputs..., reduction);
}

Tensor gaussian_nll_autograd(const Tensor& z, const Tensor& mu, const Tensor& logvar,
                             c10::string_view reduction) {
  return latent_term_autograd<NllOperators>(reduction, z, mu, logvar);
}

Tensor gaussian_kl_autograd(const Tensor& mu, const Tensor& logvar, c10::string_view reduction) {
  return latent_term_autograd<KlOperators>(reduction, mu, logvar);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      // z, mu, logvar: one shape (N, ...); reduction "batch_sum", "sum" or "mean".
      "gaussian_nll(Tensor z, Tensor mu, Tensor logvar, str reduction=\"batch_sum\") -> Tensor",
      "gaussian_nll_backward(Tensor grad_loss, Tensor z, Tensor mu, Tensor logvar, "
      "str reduction) -> (Tensor, Tensor, Tensor)",
      // mu, logvar: one shape (N, ...); reduction "sum", "batch_sum" or "mean".
      "gaussian_kl(Tensor mu, Tensor logvar, str reduction=\"sum\") -> Tensor",
      "gaussian_kl_backward(Tensor grad_loss, Tensor mu, Tensor logvar, str reduction) -> "
      "(Tensor, Tensor)",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("gaussian_nll", &i2i_fast::gaussian_nll_autograd);
  m.impl("gaussian_kl", &i2i_fast::gaussian_kl_autograd);
  i2i_fast::not_differentiable(m, {"gaussian_nll_backward", "gaussian_kl_backward"});
}
