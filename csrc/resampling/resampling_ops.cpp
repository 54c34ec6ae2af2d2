// The resampling operators: schemas and autograd (the CPU kernels are in resampling_cpu.cpp).
//
//   i2i_fast::block_repeat(x, factor, divisor, out_h, out_w)   nearest upsampling (divisor 1) and
//                                                             the gradient of average pooling
//   i2i_fast::block_sum(x, factor, divisor)                   average pooling (divisor f^2) and
//                                                             the gradient of nearest upsampling
//   i2i_fast::reflection_pad(x, pad)                          "reflect" padding
//   i2i_fast::reflection_pad_backward(grad, pad)              its adjoint
//
// The four are linear, and each pair are each other's adjoints, so each operator's backward is a
// call of its partner through the dispatcher: in an ordinary backward pass (grad mode off) it runs
// the kernel directly; under create_graph=True it records the partner's autograd node, so the
// operators are differentiable any number of times (StarGAN v2's R1 penalty differentiates the
// discriminator's average pooling twice). Forward mode (torch.func.jvp, torch.autograd.forward_ad)
// applies the operator to the input's tangent (common/forward_ad.h). Fake implementations:
// i2i_fast/ops/resampling/fake.py.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../common/forward_ad.h"
#include "../common/operator_handle.h"
#include "../common/registration.h"

namespace i2i_fast {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using BlockRepeatOp = Tensor(const Tensor&, int64_t, double, int64_t, int64_t);
using BlockSumOp = Tensor(const Tensor&, int64_t, double);
using PadOp = Tensor(const Tensor&, int64_t);

I2I_FAST_OPERATOR_HANDLE(block_repeat_op, BlockRepeatOp, "i2i_fast::block_repeat")
I2I_FAST_OPERATOR_HANDLE(block_sum_op, BlockSumOp, "i2i_fast::block_sum")
I2I_FAST_OPERATOR_HANDLE(reflection_pad_op, PadOp, "i2i_fast::reflection_pad")
I2I_FAST_OPERATOR_HANDLE(reflection_pad_backward_op, PadOp, "i2i_fast::reflection_pad_backward")

class BlockRepeatFunction : public torch::autograd::Function<BlockRepeatFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, int64_t factor, double divisor,
                        int64_t out_h, int64_t out_w) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["factor"] = factor;
    ctx->saved_data["divisor"] = divisor;
    return block_repeat_op().call(x, factor, divisor, out_h, out_w);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(5);  // x, factor, divisor, out_h, out_w
    if (grads[0].defined()) {
      result[0] = block_sum_op().call(grads[0], ctx->saved_data["factor"].toInt(),
                                      ctx->saved_data["divisor"].toDouble());
    }
    return result;
  }
};

class BlockSumFunction : public torch::autograd::Function<BlockSumFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, int64_t factor, double divisor) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["factor"] = factor;
    ctx->saved_data["divisor"] = divisor;
    ctx->saved_data["in_h"] = x.size(2);
    ctx->saved_data["in_w"] = x.size(3);
    return block_sum_op().call(x, factor, divisor);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(3);  // x, factor, divisor
    if (grads[0].defined()) {
      result[0] = block_repeat_op().call(grads[0], ctx->saved_data["factor"].toInt(),
                                         ctx->saved_data["divisor"].toDouble(),
                                         ctx->saved_data["in_h"].toInt(),
                                         ctx->saved_data["in_w"].toInt());
    }
    return result;
  }
};

// Padding and its adjoint: the backward of one is the other, with the same pad.
template <bool kPad>
class ReflectionFunction : public torch::autograd::Function<ReflectionFunction<kPad>> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, int64_t pad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["pad"] = pad;
    return (kPad ? reflection_pad_op() : reflection_pad_backward_op()).call(x, pad);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(2);  // x, pad
    if (grads[0].defined()) {
      const int64_t pad = ctx->saved_data["pad"].toInt();
      result[0] = (kPad ? reflection_pad_backward_op() : reflection_pad_op()).call(grads[0], pad);
    }
    return result;
  }
};

// The autograd kernels. Each operator is linear, so its forward-mode derivative is the operator
// itself applied to x's tangent (called through the dispatcher: differentiable in turn).
Tensor block_repeat_autograd(const Tensor& x, int64_t factor, double divisor, int64_t out_h,
                             int64_t out_w) {
  if (const Tensor tangent = forward_tangent(x); tangent.defined()) {
    const auto& op = block_repeat_op();
    return with_forward_tangent(op.call(forward_primal(x), factor, divisor, out_h, out_w),
                                op.call(tangent, factor, divisor, out_h, out_w));
  }
  return call_or_record<BlockRepeatFunction>(recording(x), block_repeat_op(), x, factor, divisor,
                                             out_h, out_w);
}

Tensor block_sum_autograd(const Tensor& x, int64_t factor, double divisor) {
  if (const Tensor tangent = forward_tangent(x); tangent.defined()) {
    const auto& op = block_sum_op();
    return with_forward_tangent(op.call(forward_primal(x), factor, divisor),
                                op.call(tangent, factor, divisor));
  }
  return call_or_record<BlockSumFunction>(recording(x), block_sum_op(), x, factor, divisor);
}

template <bool kPad>
Tensor reflection_autograd(const Tensor& x, int64_t pad) {
  const auto& op = kPad ? reflection_pad_op() : reflection_pad_backward_op();
  if (const Tensor tangent = forward_tangent(x); tangent.defined()) {
    return with_forward_tangent(op.call(forward_primal(x), pad), op.call(tangent, pad));
  }
  return call_or_record<ReflectionFunction<kPad>>(recording(x), op, x, pad);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      "block_repeat(Tensor x, int factor, float divisor, int out_h, int out_w) -> Tensor",
      "block_sum(Tensor x, int factor, float divisor) -> Tensor",
      "reflection_pad(Tensor x, int pad) -> Tensor",
      "reflection_pad_backward(Tensor grad, int pad) -> Tensor",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("block_repeat", &i2i_fast::block_repeat_autograd);
  m.impl("block_sum", &i2i_fast::block_sum_autograd);
  m.impl("reflection_pad", &i2i_fast::reflection_autograd<true>);
  m.impl("reflection_pad_backward", &i2i_fast::reflection_autograd<false>);
}
