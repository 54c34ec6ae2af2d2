// latent_conv2d: schemas, autograd and forward-mode AD (the kernels: latent_conv_cpu.cpp,
// latent_conv_cuda.cu; the math: latent_conv_common.h; fakes: i2i_fast/ops/latent_conv/fake.py).
//
//   i2i_fast::latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)   public, autograd
//   i2i_fast::latent_conv2d_forward(...)                     device operator: conv + z term
//   i2i_fast::latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode, mask)
//       -> (grad_x, grad_z, grad_weight, grad_bias), each undefined where mask says not needed
//
// The backward is not differentiable again (a double backward names latent_conv2d_backward).
// Forward mode: the operator is bilinear in ((x, z), weight) and affine in bias, so the output's
// tangent is latent_conv2d(tx, tz, weight) + latent_conv2d(x, z, tweight, tbias) (a missing
// tangent counts as zero), computed through the dispatcher on the primals.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include "../common/forward_ad.h"
#include "../common/operator_handle.h"

namespace i2i_fast {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using LatentConvOp = Tensor(const Tensor&, const Tensor&, const Tensor&,
                            const std::optional<Tensor>&, int64_t, int64_t, c10::string_view);
using LatentConvBackwardOp = std::tuple<Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t,
    c10::string_view, std::array<bool, 4>);

I2I_FAST_OPERATOR_HANDLE(latent_conv2d_op, LatentConvOp, "i2i_fast::latent_conv2d")
I2I_FAST_OPERATOR_HANDLE(latent_conv2d_forward_op, LatentConvOp, "i2i_fast::latent_conv2d_forward")
I2I_FAST_OPERATOR_HANDLE(latent_conv2d_backward_op, LatentConvBackwardOp,
                         "i2i_fast::latent_conv2d_backward")

class LatentConvFunction : public torch::autograd::Function<LatentConvFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& z,
                        const Tensor& weight, const std::optional<Tensor>& bias, int64_t stride,
                        int64_t padding, c10::string_view padding_mode) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({x, z, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["padding_mode"] = std::string(padding_mode);
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return latent_conv2d_forward_op().call(x, z, weight, bias, stride, padding, padding_mode);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(7);  // x, z, weight, bias, stride, padding, padding_mode
    if (!grads[0].defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const std::array<bool, 4> mask{
        ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2),
        ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(3)};
    const std::string mode = ctx->saved_data["padding_mode"].toStringRef();
    auto [gx, gz, gw, gb] = latent_conv2d_backward_op().call(
        grads[0], saved[0], saved[1], saved[2], ctx->saved_data["stride"].toInt(),
        ctx->saved_data["padding"].toInt(), mode, mask);
    result[0] = gx;
    result[1] = gz;
    result[2] = gw;
    result[3] = gb;
    return result;
  }
};

bool recording(std::initializer_list<const Tensor*> inputs) {
  if (!at::GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

Tensor latent_conv2d_autograd(const Tensor& x, const Tensor& z, const Tensor& weight,
                              const std::optional<Tensor>& bias, int64_t stride, int64_t padding,
                              c10::string_view padding_mode) {
  const Tensor b = bias.has_value() ? *bias : Tensor();
  const Tensor tx = forward_tangent(x), tz = forward_tangent(z), tw = forward_tangent(weight),
               tb = forward_tangent(b);
  if (tx.defined() || tz.defined() || tw.defined() || tb.defined()) {
    const auto& op = latent_conv2d_op();
    const Tensor px = forward_primal(x), pz = forward_primal(z), pw = forward_primal(weight);
    const std::optional<Tensor> pb =
        b.defined() ? std::optional<Tensor>(forward_primal(b)) : std::nullopt;
    const Tensor out = op.call(px, pz, pw, pb, stride, padding, padding_mode);
    Tensor tangent;
    if (tx.defined() || tz.defined()) {
      tangent = op.call(tx.defined() ? tx : at::zeros_like(px), tz.defined() ? tz : at::zeros_like(pz),
                        pw, std::nullopt, stride, padding, padding_mode);
    }
    if (tw.defined()) {
      const Tensor t = op.call(px, pz, tw, tb.defined() ? std::optional<Tensor>(tb) : std::nullopt,
                               stride, padding, padding_mode);
      tangent = tangent.defined() ? tangent + t : t;
    } else if (tb.defined()) {
      const Tensor t = tb.view({1, -1, 1, 1}).expand_as(out);
      tangent = tangent.defined() ? tangent + t : t.clone();
    }
    return with_forward_tangent(out, tangent);
  }
  if (!recording({&x, &z, &weight, &b})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return latent_conv2d_forward_op().call(x, z, weight, bias, stride, padding, padding_mode);
  }
  return LatentConvFunction::apply(x, z, weight, bias, stride, padding, padding_mode);
}

// Below autograd (inference mode, torch.no_grad under functionalization): the forward operator.
Tensor latent_conv2d_no_grad(const Tensor& x, const Tensor& z, const Tensor& weight,
                             const std::optional<Tensor>& bias, int64_t stride, int64_t padding,
                             c10::string_view padding_mode) {
  return latent_conv2d_forward_op().call(x, z, weight, bias, stride, padding, padding_mode);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  m.def(
      "latent_conv2d(Tensor x, Tensor z, Tensor weight, Tensor? bias=None, int stride=1, "
      "int padding=0, str padding_mode=\"zeros\") -> Tensor",
      tags);
  m.def(
      "latent_conv2d_forward(Tensor x, Tensor z, Tensor weight, Tensor? bias, int stride, "
      "int padding, str padding_mode) -> Tensor",
      tags);
  m.def(
      "latent_conv2d_backward(Tensor grad, Tensor x, Tensor z, Tensor weight, int stride, "
      "int padding, str padding_mode, bool[4] output_mask) -> (Tensor, Tensor, Tensor, Tensor)",
      tags);
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("latent_conv2d", &i2i_fast::latent_conv2d_autograd);
  m.impl("latent_conv2d_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("latent_conv2d_backward", torch::autograd::autogradNotImplementedFallback());
}

TORCH_LIBRARY_IMPL(i2i_fast, CompositeExplicitAutograd, m) {
  m.impl("latent_conv2d", &i2i_fast::latent_conv2d_no_grad);
}
