// The normalization operators: schemas, autograd and the device-independent kernels.
// (batch_norm's public operator returns (y, mean, var) and differentiates y only.)
//
// Every normalization is three operators:
//   i2i_fast::<op>           the public operator (what i2i_fast.ops calls); differentiable
//   i2i_fast::<op>_forward   returns (out, mean, rstd); one kernel per device
//   i2i_fast::<op>_backward  returns (grad_x, grad_weight, grad_bias); one kernel per device
// The public operator's autograd kernel is a C++ autograd::Function that calls the forward and
// backward operators through the dispatcher, so the per-call host cost stays in C++, and
// torch.compile / AOTAutograd trace through it to the forward and backward operators (whose
// fake implementations are registered from Python, i2i_fast/ops/normalization/fake.py). Below autograd
// (inference mode), the public operator runs the forward operator and returns `out`.
//
// The backward operators are not differentiable (no double backward through a normalization);
// asking for it raises an error naming the operator.
#include <torch/autograd.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

#include "../common/operator_handle.h"
#include "../common/registration.h"

namespace i2i_fast {
namespace {

using at::Tensor;
using TensorTriple = std::tuple<Tensor, Tensor, Tensor>;
using OptTensor = std::optional<Tensor>;

// ----- typed handles of the device operators -----

using AdainForward = TensorTriple(const Tensor&, const Tensor&, const Tensor&, double,
                                  c10::string_view, double);
using AdainBackward = TensorTriple(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&, const Tensor&, double, c10::string_view, double);
using InstanceNormForward = TensorTriple(const Tensor&, const OptTensor&, const OptTensor&,
                                         double, c10::string_view, double);
using InstanceNormBackward = TensorTriple(const Tensor&, const Tensor&, const OptTensor&,
                                          const OptTensor&, const Tensor&, const Tensor&, double,
                                          c10::string_view, double);
using LayerNormForward = TensorTriple(const Tensor&, const OptTensor&, const OptTensor&, double,
                                      c10::string_view, c10::string_view, double);
using LayerNormBackward = TensorTriple(const Tensor&, const Tensor&, const OptTensor&,
                                       const OptTensor&, const Tensor&, const Tensor&, double,
                                       c10::string_view, c10::string_view, double);

I2I_FAST_OPERATOR_HANDLE(adain_forward_op, AdainForward, "i2i_fast::adain_forward")
I2I_FAST_OPERATOR_HANDLE(adain_backward_op, AdainBackward, "i2i_fast::adain_backward")
I2I_FAST_OPERATOR_HANDLE(instance_norm_forward_op, InstanceNormForward,
                         "i2i_fast::instance_norm_forward")
I2I_FAST_OPERATOR_HANDLE(instance_norm_backward_op, InstanceNormBackward,
                         "i2i_fast::instance_norm_backward")
I2I_FAST_OPERATOR_HANDLE(layer_norm_forward_op, LayerNormForward, "i2i_fast::layer_norm_forward")
I2I_FAST_OPERATOR_HANDLE(layer_norm_backward_op, LayerNormBackward, "i2i_fast::layer_norm_backward")
// batch_norm's device operators have instance_norm's signatures (mean and var for mean and rstd).
I2I_FAST_OPERATOR_HANDLE(batch_norm_forward_op, InstanceNormForward, "i2i_fast::batch_norm_forward")
I2I_FAST_OPERATOR_HANDLE(batch_norm_backward_op, InstanceNormBackward,
                         "i2i_fast::batch_norm_backward")

// ----- autograd -----

enum class NormOp : int64_t { kAdain = 0, kInstanceNorm = 1, kLayerNorm = 2, kBatchNorm = 3 };

OptTensor optional_of(const Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

// One autograd::Function for the four normalizations: they differ only in which forward and
// backward operators they call and in the arguments they pass along. It returns the forward
// operator's (out, mean, rstd) (batch_norm: (out, mean, var)), the statistics not differentiable:
// batch_norm's public operator returns all three, the others out.
class NormFunction : public torch::autograd::Function<NormFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, int64_t op, const Tensor& x,
                        const OptTensor& weight, const OptTensor& bias, double eps,
                        c10::string_view style, c10::string_view activation,
                        double negative_slope) {
    at::AutoDispatchBelowADInplaceOrView guard;
    TensorTriple result;
    switch (static_cast<NormOp>(op)) {
      case NormOp::kAdain:
        result = adain_forward_op().call(x, *weight, *bias, eps, activation, negative_slope);
        break;
      case NormOp::kInstanceNorm:
        result = instance_norm_forward_op().call(x, weight, bias, eps, activation, negative_slope);
        break;
      case NormOp::kLayerNorm:
        result =
            layer_norm_forward_op().call(x, weight, bias, eps, style, activation, negative_slope);
        break;
      case NormOp::kBatchNorm:
        result = batch_norm_forward_op().call(x, weight, bias, eps, activation, negative_slope);
        break;
    }
    auto& [out, mean, rstd] = result;
    ctx->mark_non_differentiable({mean, rstd});
    ctx->set_materialize_grads(false);  // no zero tensors for mean's and rstd's gradients
    ctx->save_for_backward({x, weight.value_or(Tensor()), bias.value_or(Tensor()), mean, rstd});
    ctx->saved_data["op"] = op;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["style"] = std::string(style);
    ctx->saved_data["activation"] = std::string(activation);
    ctx->saved_data["negative_slope"] = negative_slope;
    return {out, mean, rstd};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const Tensor& grad_out = grads[0];
    // op, x, weight, bias, eps, style, activation, negative_slope
    torch::autograd::variable_list result(8);
    if (!grad_out.defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const OptTensor weight = optional_of(saved[1]);
    const OptTensor bias = optional_of(saved[2]);
    const Tensor& mean = saved[3];
    const Tensor& rstd = saved[4];
    const auto op = static_cast<NormOp>(ctx->saved_data["op"].toInt());
    const double eps = ctx->saved_data["eps"].toDouble();
    const std::string style = ctx->saved_data["style"].toStringRef();
    const std::string activation = ctx->saved_data["activation"].toStringRef();
    const double slope = ctx->saved_data["negative_slope"].toDouble();
    TensorTriple g;
    switch (op) {
      case NormOp::kAdain:
        g = adain_backward_op().call(grad_out, x, *weight, *bias, mean, rstd, eps, activation,
                                     slope);
        break;
      case NormOp::kInstanceNorm:
        g = instance_norm_backward_op().call(grad_out, x, weight, bias, mean, rstd, eps,
                                             activation, slope);
        break;
      case NormOp::kLayerNorm:
        g = layer_norm_backward_op().call(grad_out, x, weight, bias, mean, rstd, eps, style,
                                          activation, slope);
        break;
      case NormOp::kBatchNorm:
        g = batch_norm_backward_op().call(grad_out, x, weight, bias, mean, rstd, eps, activation,
                                          slope);
        break;
    }
    result[1] = std::get<0>(g);
    if (weight.has_value()) result[2] = std::get<1>(g);
    if (bias.has_value()) result[3] = std::get<2>(g);
    return result;
  }
};

Tensor adain_autograd(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                      c10::string_view activation, double negative_slope) {
  return NormFunction::apply(static_cast<int64_t>(NormOp::kAdain), x, OptTensor(weight),
                             OptTensor(bias), eps, "", activation, negative_slope)[0];
}

Tensor instance_norm_autograd(const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                              double eps, c10::string_view activation, double negative_slope) {
  return NormFunction::apply(static_cast<int64_t>(NormOp::kInstanceNorm), x, weight, bias, eps,
                             "", activation, negative_slope)[0];
}

Tensor layer_norm_autograd(const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                           double eps, c10::string_view style, c10::string_view activation,
                           double negative_slope) {
  return NormFunction::apply(static_cast<int64_t>(NormOp::kLayerNorm), x, weight, bias, eps,
                             style, activation, negative_slope)[0];
}

TensorTriple batch_norm_autograd(const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                                 double eps, c10::string_view activation, double negative_slope) {
  if (!recording(x, weight.value_or(Tensor()), bias.value_or(Tensor()))) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return batch_norm_forward_op().call(x, weight, bias, eps, activation, negative_slope);
  }
  const auto out = NormFunction::apply(static_cast<int64_t>(NormOp::kBatchNorm), x, weight, bias,
                                       eps, "", activation, negative_slope);
  return {out[0], out[1], out[2]};
}

// ----- below autograd: the public operators are their forward operator's first output -----
// (batch_norm's all three: y and the batch statistics)

TensorTriple batch_norm_no_grad(const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                                double eps, c10::string_view activation, double negative_slope) {
  return batch_norm_forward_op().call(x, weight, bias, eps, activation, negative_slope);
}

Tensor adain_no_grad(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                     c10::string_view activation, double negative_slope) {
  return std::get<0>(adain_forward_op().call(x, weight, bias, eps, activation, negative_slope));
}

Tensor instance_norm_no_grad(const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                             double eps, c10::string_view activation, double negative_slope) {
  return std::get<0>(
      instance_norm_forward_op().call(x, weight, bias, eps, activation, negative_slope));
}

Tensor layer_norm_no_grad(const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                          double eps, c10::string_view style, c10::string_view activation,
                          double negative_slope) {
  return std::get<0>(
      layer_norm_forward_op().call(x, weight, bias, eps, style, activation, negative_slope));
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      // AdaIN: per-(n, c) instance statistics, per-sample modulation weight/bias (N, C).
      "adain(Tensor x, Tensor weight, Tensor bias, float eps=1e-05, str activation=\"none\", "
      "float negative_slope=0.2) -> Tensor",
      "adain_forward(Tensor x, Tensor weight, Tensor bias, float eps, str activation, "
      "float negative_slope) -> (Tensor, Tensor, Tensor)",
      "adain_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor bias, Tensor mean, "
      "Tensor rstd, float eps, str activation, float negative_slope) -> (Tensor, Tensor, Tensor)",
      // InstanceNorm: per-(n, c) statistics, optional per-channel affine (C,).
      "instance_norm(Tensor x, Tensor? weight=None, Tensor? bias=None, float eps=1e-05, "
      "str activation=\"none\", float negative_slope=0.2) -> Tensor",
      "instance_norm_forward(Tensor x, Tensor? weight, Tensor? bias, float eps, str activation, "
      "float negative_slope) -> (Tensor, Tensor, Tensor)",
      "instance_norm_backward(Tensor grad_out, Tensor x, Tensor? weight, Tensor? bias, "
      "Tensor mean, Tensor rstd, float eps, str activation, float negative_slope) "
      "-> (Tensor, Tensor, Tensor)",
      // BatchNorm in training mode: per-channel statistics over (N, H, W), optional per-channel
      // affine (C,); returns (y, mean, var), the batch statistics (C,) not differentiable.
      "batch_norm(Tensor x, Tensor? weight=None, Tensor? bias=None, float eps=1e-05, "
      "str activation=\"none\", float negative_slope=0.2) -> (Tensor, Tensor, Tensor)",
      "batch_norm_forward(Tensor x, Tensor? weight, Tensor? bias, float eps, str activation, "
      "float negative_slope) -> (Tensor, Tensor, Tensor)",
      "batch_norm_backward(Tensor grad_out, Tensor x, Tensor? weight, Tensor? bias, Tensor mean, "
      "Tensor var, float eps, str activation, float negative_slope) -> (Tensor, Tensor, Tensor)",
      // LayerNorm: per-sample statistics over (C, spatial), optional per-channel affine (C,);
      // style "munit" (unbiased std, divide by std + eps) or "standard" (F.layer_norm).
      "layer_norm(Tensor x, Tensor? weight=None, Tensor? bias=None, float eps=1e-05, "
      "str style=\"munit\", str activation=\"none\", float negative_slope=0.2) -> Tensor",
      "layer_norm_forward(Tensor x, Tensor? weight, Tensor? bias, float eps, str style, "
      "str activation, float negative_slope) -> (Tensor, Tensor, Tensor)",
      "layer_norm_backward(Tensor grad_out, Tensor x, Tensor? weight, Tensor? bias, Tensor mean, "
      "Tensor rstd, float eps, str style, str activation, float negative_slope) "
      "-> (Tensor, Tensor, Tensor)",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("adain", &i2i_fast::adain_autograd);
  m.impl("instance_norm", &i2i_fast::instance_norm_autograd);
  m.impl("layer_norm", &i2i_fast::layer_norm_autograd);
  m.impl("batch_norm", &i2i_fast::batch_norm_autograd);
  i2i_fast::not_differentiable(m, {"adain_forward", "adain_backward", "instance_norm_forward",
                                   "instance_norm_backward", "layer_norm_forward",
                                   "layer_norm_backward", "batch_norm_forward",
                                   "batch_norm_backward"});
}

TORCH_LIBRARY_IMPL(i2i_fast, CompositeExplicitAutograd, m) {
  m.impl("adain", &i2i_fast::adain_no_grad);
  m.impl("instance_norm", &i2i_fast::instance_norm_no_grad);
  m.impl("layer_norm", &i2i_fast::layer_norm_no_grad);
  m.impl("batch_norm", &i2i_fast::batch_norm_no_grad);
}
