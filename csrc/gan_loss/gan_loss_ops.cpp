// The GAN loss operators: schemas and autograd (the definitions are in common.h, the argument
// checks in checks.h, the kernels in gan_loss_cpu.cpp and gan_loss_cuda.cu).
//
//   i2i_fast::gan_loss             the loss over every scale; one kernel per device
//   i2i_fast::gan_loss_backward    the gradient of every scale; one kernel per device
//   i2i_fast::r1_penalty           the R1 penalty of given input gradients; one kernel per device
//   i2i_fast::r1_penalty_backward  its gradient 2 * weight * grads * c_n; one kernel per device
//
// The public operators' autograd kernels call the device kernels below autograd and record the
// backward in C++, so the per-call host cost stays in C++: gan_loss with a hand-written autograd
// Node (GanLossBackward, the leanest there is: a loss is called several times per step on tiny
// tensors), r1_penalty with torch::autograd::Functions. torch.compile / AOTAutograd trace through
// them to the forward and backward operators (fake implementations in
// i2i_fast/ops/gan_loss/fake.py).
//
// R1 is a double-backward path: r1_penalty's input is itself a gradient computed with
// create_graph=True, and its backward must carry the gradient on into that graph. The backward
// operator r1_penalty_backward therefore has an autograd kernel of its own (R1BackwardFunction),
// whose backward is written with differentiable operators, so gradgradcheck passes.
// gan_loss_backward is not differentiable (no double backward through gan_loss; asking for it
// raises an error naming the operator).
//
// Forward mode (torch.func.jvp, torch.autograd.forward_ad; common/forward_ad.h): the autograd
// kernels of gan_loss, r1_penalty and r1_penalty_backward attach the derivative of their result
// along the inputs' tangents (gan_loss's from its backward kernel; the others are quadratic or
// bilinear, with closed forms).
#include <torch/autograd.h>
#include <torch/library.h>

#include <ATen/FuncTorchTLS.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/csrc/dynamo/compiled_autograd.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "../common/forward_ad.h"
#include "../common/operator_handle.h"
#include "../common/registration.h"
#include "checks.h"
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

I2I_FAST_OPERATOR_HANDLE(gan_loss_op, GanLossOp, "i2i_fast::gan_loss")
I2I_FAST_OPERATOR_HANDLE(gan_loss_backward_op, GanLossBackwardOp, "i2i_fast::gan_loss_backward")
I2I_FAST_OPERATOR_HANDLE(r1_penalty_op, R1Op, "i2i_fast::r1_penalty")
I2I_FAST_OPERATOR_HANDLE(r1_penalty_backward_op, R1BackwardOp, "i2i_fast::r1_penalty_backward")

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

// The gradients of every scale, one per output tensor; all undefined when grad_loss is.
variable_list gan_loss_grads(const Tensor& grad_loss, const std::vector<Tensor>& outputs,
                             const OptTensor& domain, c10::string_view mode,
                             c10::string_view target, double label, c10::string_view reduction) {
  variable_list result(outputs.size());
  if (!grad_loss.defined()) return result;
  std::vector<Tensor> g =
      call_gan_loss_backward(grad_loss, outputs, mode, target, label, domain, reduction);
  for (size_t i = 0; i < result.size(); ++i) result[i] = std::move(g[i]);
  return result;
}

// The same gradients from compiled autograd's packed arguments (outputs, domain, mode, target,
// label, reduction; see GanLossBackward::apply_with_saved).
variable_list gan_loss_grads_from_packed(const variable_list& grads,
                                         const std::vector<c10::IValue>& args) {
  torch::dynamo::autograd::PackedArgs packed(args);
  const auto outputs = packed.unpack<std::vector<Tensor>>();
  const auto domain = packed.unpack<OptTensor>();
  const auto mode = packed.unpack<std::string>();
  const auto target = packed.unpack<std::string>();
  const auto label = packed.unpack<double>();
  const auto reduction = packed.unpack<std::string>();
  return gan_loss_grads(grads[0], outputs, domain, mode, target, label, reduction);
}

// The autograd node of gan_loss: what its backward needs (the outputs of every scale and the
// domain, saved, and the loss's other arguments) and nothing else. A hand-written Node rather than
// a torch::autograd::Function: gan_loss is called several times per training step on tiny
// tensors, and the generic Function machinery (metadata of every input and output, saved data
// in a map of IValues, the type name demangled on every backward) costs more host time per call
// than the kernels themselves.
struct GanLossBackward : public torch::autograd::Node {
  std::vector<torch::autograd::SavedVariable> outputs;  // one per scale (the next edges)
  torch::autograd::SavedVariable domain;                // undefined without a domain
  bool has_domain = false;
  std::string mode;  // short strings: no heap allocation
  std::string target;
  double label = 0.0;
  std::string reduction;
  bool released = false;  // the saved tensors were freed after a backward pass

  std::string name() const override { return "GanLossBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& saved : outputs) saved.reset_data();
    domain.reset_data();
    released = true;
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    TORCH_CHECK(!released, torch::autograd::ERR_BACKWARD_TWICE);
    std::vector<Tensor> xs;
    xs.reserve(outputs.size());
    for (const auto& saved : outputs) xs.push_back(saved.unpack());
    const OptTensor d = has_domain ? OptTensor(domain.unpack()) : std::nullopt;
    return gan_loss_grads(grads[0], xs, d, mode, target, label, reduction);
  }

  // Compiled autograd (torch._dynamo.compiled_autograd), as PyTorch's own nodes do it: the saved
  // tensors become graph inputs, the other arguments part of the cache key, and the backward a
  // call of gan_loss_grads_from_packed in the traced graph.
  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& args) const override {
    args.collect(outputs, /*is_output=*/false);
    args.collect(domain, /*is_output=*/false);
    args.collect(has_domain);
    args.collect(mode);
    args.collect(target);
    args.collect(label);
    args.collect(reduction);
  }

  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& saved) override {
    using torch::dynamo::autograd::IValuePacker;
    saved.before(outputs);
    saved.before(domain);
    const auto& python = torch::dynamo::autograd::getPyCompilerInterface();
    static bool bound = false;  // once per process, as PyTorch's generated nodes do
    if (!bound) {
      bound = true;
      const std::vector<at::TypePtr> schema = {
          IValuePacker<std::vector<Tensor>>::packed_type(),  // outputs
          IValuePacker<OptTensor>::packed_type(),            // domain
          IValuePacker<std::string>::packed_type(),          // mode
          IValuePacker<std::string>::packed_type(),          // target
          IValuePacker<double>::packed_type(),               // label
          IValuePacker<std::string>::packed_type(),          // reduction
      };
      python->bind_function(saved.get_py_compiler(), name(), gan_loss_grads_from_packed, schema);
    }
    torch::dynamo::autograd::PackedArgs packed;
    std::vector<Tensor> xs;
    xs.reserve(outputs.size());
    for (const auto& sv : outputs) xs.push_back(sv.unpack());
    packed.pack(xs);
    packed.pack(has_domain ? OptTensor(domain.unpack()) : std::nullopt);
    packed.pack(mode);
    packed.pack(target);
    packed.pack(label);
    packed.pack(reduction);
    const auto output_metadata =
        IValuePacker<std::vector<std::optional<torch::autograd::InputMetadata>>>::pack(
            torch::dynamo::autograd::get_input_metadata(next_edges()));
    variable_list result = python->call_function(saved.get_py_compiler(), "apply_functional",
                                                 name(), grads, packed.vec(), output_metadata);
    saved.after(outputs);
    saved.after(domain);
    return result;
  }
};

// gan_loss's value and its autograd node.
Tensor gan_loss_with_history(at::TensorList outputs, c10::string_view mode,
                             c10::string_view target, double label, const OptTensor& domain,
                             c10::string_view reduction) {
  const bool differentiable = at::GradMode::is_enabled() && any_requires_grad(outputs);
  if (differentiable) {
    // What torch::autograd::Function refuses, refused here too.
    if (const auto& functorch_tls = at::functorch::functorchTLSAccessor()) {
      functorch_tls->checkSupportsCppAutogradFunction();
    }
  }
  Tensor loss;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    loss = gan_loss_op().call(outputs, mode, target, label, domain, reduction);
  }
  // Nothing to differentiate (e.g. under torch.no_grad()): no graph.
  if (!differentiable) return loss;
  auto node = c10::make_intrusive<GanLossBackward>();
  node->set_next_edges(torch::autograd::collect_next_edges(outputs));
  node->outputs.reserve(outputs.size());
  for (const Tensor& x : outputs) node->outputs.emplace_back(x, /*is_output=*/false);
  node->has_domain = domain.has_value() && domain->defined();
  if (node->has_domain) node->domain = torch::autograd::SavedVariable(*domain, false);
  node->mode = std::string(mode);
  node->target = std::string(target);
  node->label = label;
  node->reduction = std::string(reduction);
  torch::autograd::set_history(loss, node);
  torch::autograd::fire_node_creation_hooks(node);
  return loss;
}

// sum(a * b) in `dtype`, per sample ((N,), a and b being (N, ...)) or over everything (a scalar).
Tensor inner_product(const Tensor& a, const Tensor& b, at::ScalarType dtype, bool per_sample) {
  const Tensor product = a.to(dtype) * b.to(dtype);
  return per_sample ? product.reshape({a.size(0), -1}).sum(1) : product.sum();
}

Tensor gan_loss_autograd(at::TensorList outputs, c10::string_view mode, c10::string_view target,
                         double label, const OptTensor& domain, c10::string_view reduction) {
  bool has_tangent = false;
  for (const Tensor& x : outputs) has_tangent = has_tangent || forward_tangent(x).defined();
  if (!has_tangent) return gan_loss_with_history(outputs, mode, target, label, domain, reduction);
  // Forward mode: the loss is a sum of per-element terms, each a function of one element, so its
  // derivative along the tangents t is sum_i g_i t_i, g the gradient of the loss (per sample with
  // reduction "none", where each element enters its own sample's loss only): the backward
  // kernel's output for a gradient of ones.
  std::vector<Tensor> primals;
  primals.reserve(outputs.size());
  for (const Tensor& x : outputs) primals.push_back(forward_primal(x));
  const Tensor loss = gan_loss_op().call(primals, mode, target, label, domain, reduction);
  const std::vector<Tensor> g = call_gan_loss_backward(at::ones_like(loss), primals, mode, target,
                                                       label, domain, reduction);
  Tensor tangent;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor t = forward_tangent(outputs[i]);
    if (!t.defined()) continue;
    const Tensor term = inner_product(g[i], t, loss.scalar_type(), loss.dim() == 1);
    tangent = tangent.defined() ? tangent + term : term;
  }
  return with_forward_tangent(loss, tangent);
}

// ----- r1_penalty -----

// 2 * weight * <grads[n], other[n]>, reduced over the samples like the loss, in the loss's dtype:
// the derivative of r1_penalty(grads) along `other`, and that of r1_penalty_backward with respect
// to grad_loss. Differentiable operators, so higher derivatives exist too.
Tensor r1_directional(const Tensor& grads, const Tensor& other, double weight,
                      c10::string_view reduction) {
  const Tensor per_sample =
      inner_product(grads, other, loss_dtype_of(grads.scalar_type()), true) * (2.0 * weight);
  switch (check_reduction("r1_penalty", reduction)) {
    case Reduction::kNone:
      return per_sample;
    case Reduction::kSum:
      return per_sample.sum();
    case Reduction::kMean:
      break;
  }
  return per_sample.sum() / static_cast<double>(grads.size(0));
}

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
      // loss.
      result[0] = r1_directional(grads, upstream, weight, reduction).to(grad_loss.scalar_type());
    }
    return result;
  }
};

// Forward mode: r1_penalty's derivative along the tangent t of grads is r1_directional(grads,
// t); r1_penalty_backward is linear in grad_loss and in grads, so its derivative is the sum of
// the operator applied with one of them replaced by its tangent.
Tensor r1_penalty_autograd(const Tensor& grads, double weight, c10::string_view reduction) {
  if (const Tensor tangent = forward_tangent(grads); tangent.defined()) {
    const Tensor primal = forward_primal(grads);
    return with_forward_tangent(r1_penalty_op().call(primal, weight, reduction),
                                r1_directional(primal, tangent, weight, reduction));
  }
  return call_or_record<R1Function>(recording(grads), r1_penalty_op(), grads, weight, reduction);
}

Tensor r1_penalty_backward_autograd(const Tensor& grad_loss, const Tensor& grads, double weight,
                                    c10::string_view reduction) {
  const Tensor loss_tangent = forward_tangent(grad_loss);
  const Tensor grads_tangent = forward_tangent(grads);
  if (loss_tangent.defined() || grads_tangent.defined()) {
    const auto& op = r1_penalty_backward_op();
    const Tensor loss_primal = forward_primal(grad_loss);
    const Tensor grads_primal = forward_primal(grads);
    Tensor tangent;
    if (loss_tangent.defined()) tangent = op.call(loss_tangent, grads_primal, weight, reduction);
    if (grads_tangent.defined()) {
      const Tensor term = op.call(loss_primal, grads_tangent, weight, reduction);
      tangent = tangent.defined() ? tangent + term : term;
    }
    return with_forward_tangent(op.call(loss_primal, grads_primal, weight, reduction), tangent);
  }
  // An ordinary backward pass (no create_graph) records no graph.
  return call_or_record<R1BackwardFunction>(recording(grad_loss, grads), r1_penalty_backward_op(),
                                            grad_loss, grads, weight, reduction);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      // The discriminator's outputs at every scale (each (N, ...), or (N, K, ...) with `domain`);
      // target: "real", "fake", "generator", or "label" with the value `label` (lsgan/nsgan only).
      "gan_loss(Tensor[] outputs, str mode, str target, float label=0., Tensor? domain=None, "
      "str reduction=\"mean\") -> Tensor",
      "gan_loss_backward(Tensor grad_loss, Tensor[] outputs, str mode, str target, float label, "
      "Tensor? domain, str reduction) -> Tensor[]",
      "r1_penalty(Tensor grads, float weight=1., str reduction=\"mean\") -> Tensor",
      "r1_penalty_backward(Tensor grad_loss, Tensor grads, float weight, str reduction) -> Tensor",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("gan_loss", &i2i_fast::gan_loss_autograd);
  i2i_fast::not_differentiable(m, {"gan_loss_backward"});
  m.impl("r1_penalty", &i2i_fast::r1_penalty_autograd);
  m.impl("r1_penalty_backward", &i2i_fast::r1_penalty_backward_autograd);
}
