// latent_conv2d and latent_conv_transpose2d: schemas, autograd and forward-mode AD (the kernels:
// device_kernels.h with latent_conv_cpu.cpp, latent_conv_cuda.cu; the math: common.h; the checks:
// checks.h; fakes: i2i_fast/ops/latent_conv/fake.py).
//
//   i2i_fast::latent_conv2d(x, z, weight, bias, stride, padding, padding_mode)   public, autograd
//   i2i_fast::latent_conv2d_forward(...)                     device operator: conv + z term
//   i2i_fast::latent_conv2d_backward(grad, x, z, weight, stride, padding, padding_mode, mask)
//       -> (grad_x, grad_z, grad_weight, grad_bias), each undefined where mask says not needed
//   i2i_fast::latent_conv_transpose2d(x, z, weight, bias, stride, padding, output_padding)
//   (and its _forward, _backward): the same with output_padding in place of padding_mode.
//
// The two operators share their autograd code (LatentConvAutograd, over the operator's handles
// and its last argument). The backward is not differentiable again (a double backward names the
// backward operator). Forward mode: each operator is bilinear in ((x, z), weight) and affine in
// bias, so the output's tangent is op(tx, tz, weight) + op(x, z, tweight, tbias) (a missing
// tangent counts as zero), computed through the dispatcher on the primals.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <string>

#include "../common/forward_ad.h"
#include "../common/operator_handle.h"
#include "../common/registration.h"

namespace i2i_fast {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename Last>
using LatentOp = Tensor(const Tensor&, const Tensor&, const Tensor&, const std::optional<Tensor>&,
                        int64_t, int64_t, Last);
template <typename Last>
using LatentBackwardOp = std::tuple<Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, Last,
    std::array<bool, 4>);

I2I_FAST_OPERATOR_HANDLE(latent_conv2d_op, LatentOp<c10::string_view>, "i2i_fast::latent_conv2d")
I2I_FAST_OPERATOR_HANDLE(latent_conv2d_forward_op, LatentOp<c10::string_view>,
                         "i2i_fast::latent_conv2d_forward")
I2I_FAST_OPERATOR_HANDLE(latent_conv2d_backward_op, LatentBackwardOp<c10::string_view>,
                         "i2i_fast::latent_conv2d_backward")
I2I_FAST_OPERATOR_HANDLE(latent_conv_transpose2d_op, LatentOp<int64_t>,
                         "i2i_fast::latent_conv_transpose2d")
I2I_FAST_OPERATOR_HANDLE(latent_conv_transpose2d_forward_op, LatentOp<int64_t>,
                         "i2i_fast::latent_conv_transpose2d_forward")
I2I_FAST_OPERATOR_HANDLE(latent_conv_transpose2d_backward_op, LatentBackwardOp<int64_t>,
                         "i2i_fast::latent_conv_transpose2d_backward")

// What differs between the two operators: their handles and their last argument.
struct Conv2d {
  using Last = c10::string_view;  // padding_mode
  static const auto& op() { return latent_conv2d_op(); }
  static const auto& forward_op() { return latent_conv2d_forward_op(); }
  static const auto& backward_op() { return latent_conv2d_backward_op(); }
  static c10::IValue save(Last v) { return std::string(v); }
  static Last load(const c10::IValue& v) { return v.toStringRef(); }
};

struct ConvTranspose2d {
  using Last = int64_t;  // output_padding
  static const auto& op() { return latent_conv_transpose2d_op(); }
  static const auto& forward_op() { return latent_conv_transpose2d_forward_op(); }
  static const auto& backward_op() { return latent_conv_transpose2d_backward_op(); }
  static c10::IValue save(Last v) { return v; }
  static Last load(const c10::IValue& v) { return v.toInt(); }
};

template <typename Ops>
class LatentConvFunction : public torch::autograd::Function<LatentConvFunction<Ops>> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& z,
                        const Tensor& weight, const std::optional<Tensor>& bias, int64_t stride,
                        int64_t padding, typename Ops::Last last) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({x, z, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["last"] = Ops::save(last);
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return Ops::forward_op().call(x, z, weight, bias, stride, padding, last);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(7);  // x, z, weight, bias, stride, padding, padding_mode/output_padding
    if (!grads[0].defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const std::array<bool, 4> mask{
        ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2),
        ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(3)};
    const c10::IValue last = ctx->saved_data["last"];
    auto [gx, gz, gw, gb] = Ops::backward_op().call(
        grads[0], saved[0], saved[1], saved[2], ctx->saved_data["stride"].toInt(),
        ctx->saved_data["padding"].toInt(), Ops::load(last), mask);
    result[0] = gx;
    result[1] = gz;
    result[2] = gw;
    result[3] = gb;
    return result;
  }
};

template <typename Ops>
Tensor latent_autograd(const Tensor& x, const Tensor& z, const Tensor& weight,
                       const std::optional<Tensor>& bias, int64_t stride, int64_t padding,
                       typename Ops::Last last) {
  const Tensor b = bias.has_value() ? *bias : Tensor();
  const Tensor tx = forward_tangent(x), tz = forward_tangent(z), tw = forward_tangent(weight),
               tb = forward_tangent(b);
  if (tx.defined() || tz.defined() || tw.defined() || tb.defined()) {
    const auto& op = Ops::op();
    const Tensor px = forward_primal(x), pz = forward_primal(z), pw = forward_primal(weight);
    const std::optional<Tensor> pb =
        b.defined() ? std::optional<Tensor>(forward_primal(b)) : std::nullopt;
    const Tensor out = op.call(px, pz, pw, pb, stride, padding, last);
    Tensor tangent;
    if (tx.defined() || tz.defined()) {
      tangent = op.call(tx.defined() ? tx : at::zeros_like(px),
                        tz.defined() ? tz : at::zeros_like(pz), pw, std::nullopt, stride, padding,
                        last);
    }
    if (tw.defined()) {
      const Tensor t = op.call(px, pz, tw, tb.defined() ? std::optional<Tensor>(tb) : std::nullopt,
                               stride, padding, last);
      tangent = tangent.defined() ? tangent + t : t;
    } else if (tb.defined()) {
      const Tensor t = tb.view({1, -1, 1, 1}).expand_as(out);
      tangent = tangent.defined() ? tangent + t : t.clone();
    }
    return with_forward_tangent(out, tangent);
  }
  return call_or_record<LatentConvFunction<Ops>>(recording(x, z, weight, b), Ops::forward_op(), x,
                                                 z, weight, bias, stride, padding, last);
}

// Below autograd (inference mode, torch.no_grad under functionalization): the forward operator.
template <typename Ops>
Tensor latent_no_grad(const Tensor& x, const Tensor& z, const Tensor& weight,
                      const std::optional<Tensor>& bias, int64_t stride, int64_t padding,
                      typename Ops::Last last) {
  return Ops::forward_op().call(x, z, weight, bias, stride, padding, last);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      "latent_conv2d(Tensor x, Tensor z, Tensor weight, Tensor? bias=None, int stride=1, "
      "int padding=0, str padding_mode=\"zeros\") -> Tensor",
      "latent_conv2d_forward(Tensor x, Tensor z, Tensor weight, Tensor? bias, int stride, "
      "int padding, str padding_mode) -> Tensor",
      "latent_conv2d_backward(Tensor grad, Tensor x, Tensor z, Tensor weight, int stride, "
      "int padding, str padding_mode, bool[4] output_mask) -> (Tensor, Tensor, Tensor, Tensor)",
      "latent_conv_transpose2d(Tensor x, Tensor z, Tensor weight, Tensor? bias=None, "
      "int stride=1, int padding=0, int output_padding=0) -> Tensor",
      "latent_conv_transpose2d_forward(Tensor x, Tensor z, Tensor weight, Tensor? bias, "
      "int stride, int padding, int output_padding) -> Tensor",
      "latent_conv_transpose2d_backward(Tensor grad, Tensor x, Tensor z, Tensor weight, "
      "int stride, int padding, int output_padding, bool[4] output_mask) -> (Tensor, Tensor, "
      "Tensor, Tensor)",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("latent_conv2d", &i2i_fast::latent_autograd<i2i_fast::Conv2d>);
  m.impl("latent_conv_transpose2d", &i2i_fast::latent_autograd<i2i_fast::ConvTranspose2d>);
  i2i_fast::not_differentiable(m, {"latent_conv2d_forward", "latent_conv2d_backward",
                                   "latent_conv_transpose2d_forward",
                                   "latent_conv_transpose2d_backward"});
}

TORCH_LIBRARY_IMPL(i2i_fast, CompositeExplicitAutograd, m) {
  m.impl("latent_conv2d", &i2i_fast::latent_no_grad<i2i_fast::Conv2d>);
  m.impl("latent_conv_transpose2d", &i2i_fast::latent_no_grad<i2i_fast::ConvTranspose2d>);
}
