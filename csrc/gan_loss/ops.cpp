// The GAN loss operators: schemas and autograd (the definitions are in common.h).
//
//   i2i_fast::gan_loss             the loss over every scale; one kernel per device
//   i2i_fast::gan_loss_backward    the gradient of every scale; one kernel per device
//   i2i_fast::r1_penalty           the R1 penalty of given input gradients; one kernel per device
//   i2i_fast::r1_penalty_backward  its gradient 2 * weight * grads * c_n; one kernel per device
//
// The public operators' autograd kernels are C++ autograd::Functions that call the device kernels
// below autograd, so the per-call host cost stays in C++; torch.compile / AOTAutograd trace through
// them to the forward and backward operators (fake implementations in
// i2i_fast/ops/gan_loss/fake.py).
//
// R1 is a double-backward path: r1_penalty's input is itself a gradient computed with
// create_graph=True, and its backward must carry the gradient on into that graph. The backward
// operator r1_penalty_backward therefore has an autograd kernel of its own (R1BackwardFunction),
// whose backward is written with differentiable operators, so gradgradcheck passes.
// gan_loss_backward is not differentiable (no double backward through gan_loss; asking for it
// raises an error naming the operator).
#include <torch/autograd.h>
#include <torch/library.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>

#include <optional>
#include <string>
#include <vector>

#include "common.h"

namespace i2i_fast {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ----- typed handles of the operators -----

using GanLossOp = Tensor(at::TensorList, c10::string_view, c10::string_view, double,
                         const OptTensor&, c10::string_view);
using GanLossBackwardOp = std::vector<Tensor>(const Tensor&, at::TensorList, c10::string_view,
                                              c10::string_view, double, const OptTensor&,
                                              c10::string_view);
using R1Op = Tensor(const Tensor&, double, c10::string_view);
using R1BackwardOp = Tensor(const Tensor&, const Tensor&, double, c10::string_view);

template <typename Signature>
c10::TypedOperatorHandle<Signature> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

const auto& gan_loss_op() {
  static const auto h = op_handle<GanLossOp>("i2i_fast::gan_loss");
  return h;
}
const auto& gan_loss_backward_op() {
  static const auto h = op_handle<GanLossBackwardOp>("i2i_fast::gan_loss_backward");
  return h;
}
const auto& r1_penalty_op() {
  static const auto h = op_handle<R1Op>("i2i_fast::r1_penalty");
  return h;
}
const auto& r1_penalty_backward_op() {
  static const auto h = op_handle<R1BackwardOp>("i2i_fast::r1_penalty_backward");
  return h;
}

bool any_requires_grad(at::TensorList tensors) {
  for (const Tensor& t : tensors) {
    if (t.requires_grad()) return true;
  }
  return false;
}

// ----- gan_loss -----

// The backward operator: below autograd in an ordinary backward pass (grad mode off), where
// there is no graph to record; through autograd under create_graph=True, where the
// not-implemented fallback records a node that raises if a second derivative is asked for.
std::vector<Tensor> call_gan_loss_backward(const Tensor& grad_loss,
                                           const std::vector<Tensor>& outputs,
                                           c10::string_view mode, c10::string_view target,
                                           double label, const OptTensor& domain,
                                           c10::string_view reduction) {
  if (!at::GradMode::is_enabled()) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return gan_loss_backward_op().call(grad_loss, outputs, mode, target, label, domain,
                                       reduction);
  }
  return gan_loss_backward_op().call(grad_loss, outputs, mode, target, label, domain, reduction);
}

class GanLossFunction : public torch::autograd::Function<GanLossFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, at::TensorList outputs, c10::string_view mode,
                        c10::string_view target, double label, const OptTensor& domain,
                        c10::string_view reduction) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor loss = gan_loss_op().call(outputs, mode, target, label, domain, reduction);
    variable_list saved(outputs.begin(), outputs.end());
    saved.push_back(domain.has_value() ? *domain : Tensor());
    ctx->save_for_backward(std::move(saved));
    ctx->saved_data["mode"] = std::string(mode);
    ctx->saved_data["target"] = std::string(target);
    ctx->saved_data["label"] = label;
    ctx->saved_data["reduction"] = std::string(reduction);
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const size_t num_scales = saved.size() - 1;
    // one gradient per scale, then mode, target, label, domain, reduction
    variable_list result(num_scales + 5);
    if (!grads[0].defined()) return result;
    const std::vector<Tensor> outputs(saved.begin(), saved.begin() + num_scales);
    const OptTensor domain = saved.back().defined() ? OptTensor(saved.back()) : std::nullopt;
    std::vector<Tensor> g = call_gan_loss_backward(
        grads[0], outputs, ctx->saved_data["mode"].toStringRef(),
        ctx->saved_data["target"].toStringRef(), ctx->saved_data["label"].toDouble(), domain,
        ctx->saved_data["reduction"].toStringRef());
    for (size_t i = 0; i < num_scales; ++i) result[i] = std::move(g[i]);
    return result;
  }
};

Tensor gan_loss_autograd(at::TensorList outputs, c10::string_view mode, c10::string_view target,
                         double label, const OptTensor& domain, c10::string_view reduction) {
  if (!at::GradMode::is_enabled() || !any_requires_grad(outputs)) {
    // Nothing to differentiate: skip the autograd::Function machinery (host time per call).
    at::AutoDispatchBelowADInplaceOrView guard;
    return gan_loss_op().call(outputs, mode, target, label, domain, reduction);
  }
  return GanLossFunction::apply(outputs, mode, target, label, domain, reduction);
}

// ----- r1_penalty -----

class R1Function : public torch::autograd::Function<R1Function> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& grads, double weight,
                        c10::string_view reduction) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor loss = r1_penalty_op().call(grads, weight, reduction);
    ctx->save_for_backward({grads});
    ctx->saved_data["weight"] = weight;
    ctx->saved_data["reduction"] = std::string(reduction);
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list result(3);  // grads, weight, reduction
    if (!grad_outputs[0].defined()) return result;
    const Tensor grads = ctx->get_saved_variables()[0];
    // Through the dispatcher with autograd: under create_graph this records R1BackwardFunction.
    result[0] = r1_penalty_backward_op().call(grad_outputs[0], grads,
                                              ctx->saved_data["weight"].toDouble(),
                                              ctx->saved_data["reduction"].toStringRef());
    return result;
  }
};

// out = 2 * weight * grads[n] * c_n(grad_loss), linear in grads and in grad_loss.
class R1BackwardFunction : public torch::autograd::Function<R1BackwardFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& grad_loss, const Tensor& grads,
                        double weight, c10::string_view reduction) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor out = r1_penalty_backward_op().call(grad_loss, grads, weight, reduction);
    ctx->save_for_backward({grad_loss, grads});
    ctx->saved_data["weight"] = weight;
    ctx->saved_data["reduction"] = std::string(reduction);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list result(4);  // grad_loss, grads, weight, reduction
    const Tensor& upstream = grad_outputs[0];
    if (!upstream.defined()) return result;
    const variable_list saved = ctx->get_saved_variables();
    const Tensor& grad_loss = saved[0];
    const Tensor& grads = saved[1];
    const double weight = ctx->saved_data["weight"].toDouble();
    const std::string reduction = ctx->saved_data["reduction"].toStringRef();
    if (ctx->needs_input_grad(1)) {
      // d out / d grads is the same linear map applied to the upstream gradient.
      result[1] = r1_penalty_backward_op().call(grad_loss, upstream, weight, reduction);
    }
    if (ctx->needs_input_grad(0)) {
      // d out / d grad_loss: 2 * weight * <grads[n], upstream[n]> per sample, reduced like the
      // loss. Differentiable operators, so higher derivatives exist too.
      const auto acc = loss_dtype_of(grads.scalar_type());
      const int64_t n = grads.size(0);
      Tensor per_sample =
          (grads.to(acc) * upstream.to(acc)).reshape({n, -1}).sum(1) * (2.0 * weight);
      const Reduction red = parse_reduction("r1_penalty", reduction);
      Tensor dg = red == Reduction::kNone  ? per_sample
                  : red == Reduction::kSum ? per_sample.sum()
                                           : per_sample.sum() / static_cast<double>(n);
      result[0] = dg.to(grad_loss.scalar_type());
    }
    return result;
  }
};

Tensor r1_penalty_autograd(const Tensor& grads, double weight, c10::string_view reduction) {
  if (!at::GradMode::is_enabled() || !grads.requires_grad()) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return r1_penalty_op().call(grads, weight, reduction);
  }
  return R1Function::apply(grads, weight, reduction);
}

Tensor r1_penalty_backward_autograd(const Tensor& grad_loss, const Tensor& grads, double weight,
                                    c10::string_view reduction) {
  if (!at::GradMode::is_enabled() || !(grad_loss.requires_grad() || grads.requires_grad())) {
    // An ordinary backward pass (no create_graph): no graph to record.
    at::AutoDispatchBelowADInplaceOrView guard;
    return r1_penalty_backward_op().call(grad_loss, grads, weight, reduction);
  }
  return R1BackwardFunction::apply(grad_loss, grads, weight, reduction);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  // The discriminator's outputs at every scale (each (N, ...), or (N, K, ...) with `domain`);
  // target: "real", "fake", "generator", or "label" with the value `label` (lsgan/nsgan only).
  m.def(
      "gan_loss(Tensor[] outputs, str mode, str target, float label=0., Tensor? domain=None, "
      "str reduction=\"mean\") -> Tensor",
      tags);
  m.def(
      "gan_loss_backward(Tensor grad_loss, Tensor[] outputs, str mode, str target, float label, "
      "Tensor? domain, str reduction) -> Tensor[]",
      tags);
  m.def("r1_penalty(Tensor grads, float weight=1., str reduction=\"mean\") -> Tensor", tags);
  m.def(
      "r1_penalty_backward(Tensor grad_loss, Tensor grads, float weight, str reduction) -> Tensor",
      tags);
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("gan_loss", &i2i_fast::gan_loss_autograd);
  m.impl("gan_loss_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("r1_penalty", &i2i_fast::r1_penalty_autograd);
  m.impl("r1_penalty_backward", &i2i_fast::r1_penalty_backward_autograd);
}
