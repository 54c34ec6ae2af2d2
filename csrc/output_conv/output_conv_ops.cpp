// output_conv2d: schemas, autograd and forward-mode AD (the kernels: device_kernels.h with
// output_conv_cpu.cpp and output_conv_cuda.cu; the checks: checks.h; fakes:
// i2i_fast/ops/output_conv/fake.py).
//
//   i2i_fast::output_conv2d(x, weight, bias, padding, padding_mode, activation)   public, autograd
//   i2i_fast::output_conv2d_forward(...)                 device operator
//   i2i_fast::output_conv2d_backward(grad, x, weight, out, padding, padding_mode, activation,
//       per_sample_bias, mask) -> (grad_x, grad_weight, grad_bias), each undefined where mask
//       says not needed; out is the forward's output when the activation is tanh, else None.
//
// The backward is not differentiable again (a double backward names the backward operator).
// Forward mode: before its activation the operator is bilinear in (x, weight) and affine in bias,
// so the output's tangent is act'(out) (op(tx, weight) + op(x, tweight, tbias)) with the
// operators run without activation (a missing tangent counts as zero), through the dispatcher on
// the primals.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>

#include "../common/forward_ad.h"
#include "../common/operator_handle.h"
#include "../common/registration.h"

namespace i2i_fast {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using OutputConvOp = Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&, int64_t,
                            c10::string_view, c10::string_view);
using OutputConvBackwardOp = std::tuple<Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const std::optional<Tensor>&, int64_t,
    c10::string_view, c10::string_view, bool, std::array<bool, 3>);

I2I_FAST_OPERATOR_HANDLE(output_conv2d_op, OutputConvOp, "i2i_fast::output_conv2d")
I2I_FAST_OPERATOR_HANDLE(output_conv2d_forward_op, OutputConvOp,
                         "i2i_fast::output_conv2d_forward")
I2I_FAST_OPERATOR_HANDLE(output_conv2d_backward_op, OutputConvBackwardOp,
                         "i2i_fast::output_conv2d_backward")

class OutputConvFunction : public torch::autograd::Function<OutputConvFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                        const std::optional<Tensor>& bias, int64_t padding,
                        c10::string_view padding_mode, c10::string_view activation) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor out =
        output_conv2d_forward_op().call(x, weight, bias, padding, padding_mode, activation);
    const bool tanh = activation == "tanh";
    ctx->save_for_backward({x, weight, tanh ? out : Tensor()});
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["padding_mode"] = std::string(padding_mode);
    ctx->saved_data["activation"] = std::string(activation);
    const bool has_bias = bias.has_value() && bias->defined();
    ctx->saved_data["has_bias"] = has_bias;
    ctx->saved_data["per_sample_bias"] = has_bias && bias->dim() == 2;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(6);  // x, weight, bias, padding, padding_mode, activation
    if (!grads[0].defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                   ctx->saved_data["has_bias"].toBool() &&
                                       ctx->needs_input_grad(2)};
    const std::optional<Tensor> out =
        saved[2].defined() ? std::optional<Tensor>(saved[2]) : std::nullopt;
    auto [gx, gw, gb] = output_conv2d_backward_op().call(
        grads[0], saved[0], saved[1], out, ctx->saved_data["padding"].toInt(),
        ctx->saved_data["padding_mode"].toStringRef(),
        ctx->saved_data["activation"].toStringRef(),
        ctx->saved_data["per_sample_bias"].toBool(), mask);
    result[0] = gx;
    result[1] = gw;
    result[2] = gb;
    return result;
  }
};

Tensor output_conv2d_autograd(const Tensor& x, const Tensor& weight,
                              const std::optional<Tensor>& bias, int64_t padding,
                              c10::string_view padding_mode, c10::string_view activation) {
  const Tensor b = bias.has_value() ? *bias : Tensor();
  const Tensor tx = forward_tangent(x), tw = forward_tangent(weight), tb = forward_tangent(b);
  if (tx.defined() || tw.defined() || tb.defined()) {
    const auto& op = output_conv2d_op();
    const Tensor px = forward_primal(x), pw = forward_primal(weight);
    const std::optional<Tensor> pb =
        b.defined() ? std::optional<Tensor>(forward_primal(b)) : std::nullopt;
    const Tensor out = op.call(px, pw, pb, padding, padding_mode, activation);
    Tensor tangent;
    if (tx.defined()) tangent = op.call(tx, pw, std::nullopt, padding, padding_mode, "none");
    if (tw.defined()) {
      const Tensor t = op.call(px, tw, tb.defined() ? std::optional<Tensor>(tb) : std::nullopt,
                               padding, padding_mode, "none");
      tangent = tangent.defined() ? tangent + t : t;
    } else if (tb.defined()) {
      const Tensor t = (tb.dim() == 2 ? tb.view({tb.size(0), tb.size(1), 1, 1})
                                      : tb.view({1, -1, 1, 1}))
                           .expand_as(out);
      tangent = tangent.defined() ? tangent + t : t.clone();
    }
    if (activation == "tanh") tangent = tangent * (1 - out * out);
    return with_forward_tangent(out, tangent);
  }
  return call_or_record<OutputConvFunction>(recording(x, weight, b), output_conv2d_forward_op(),
                                            x, weight, bias, padding, padding_mode, activation);
}

// Below autograd (inference mode, torch.no_grad under functionalization): the forward operator.
Tensor output_conv2d_no_grad(const Tensor& x, const Tensor& weight,
                             const std::optional<Tensor>& bias, int64_t padding,
                             c10::string_view padding_mode, c10::string_view activation) {
  return output_conv2d_forward_op().call(x, weight, bias, padding, padding_mode, activation);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      "output_conv2d(Tensor x, Tensor weight, Tensor? bias=None, int padding=0, "
      "str padding_mode=\"zeros\", str activation=\"none\") -> Tensor",
      "output_conv2d_forward(Tensor x, Tensor weight, Tensor? bias, int padding, "
      "str padding_mode, str activation) -> Tensor",
      "output_conv2d_backward(Tensor grad, Tensor x, Tensor weight, Tensor? out, int padding, "
      "str padding_mode, str activation, bool per_sample_bias, bool[3] output_mask) -> "
      "(Tensor, Tensor, Tensor)",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("output_conv2d", &i2i_fast::output_conv2d_autograd);
  i2i_fast::not_differentiable(m, {"output_conv2d_forward", "output_conv2d_backward"});
}

TORCH_LIBRARY_IMPL(i2i_fast, CompositeExplicitAutograd, m) {
  m.impl("output_conv2d", &i2i_fast::output_conv2d_no_grad);
}
