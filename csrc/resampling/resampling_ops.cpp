// The resampling operators: schemas and autograd (the CPU kernels are in resampling_cpu.cpp).
//
//   i2i_fast::block_repeat(x, factor, divisor, out_h, out_w)   nearest upsampling (divisor 1) and
//                                                             the gradient of average pooling
//   i2i_fast::block_sum(x, factor, divisor)                   average pooling (divisor f^2) and
//                                                             the gradient of nearest upsampling
//   i2i_fast::reflection_pad(x, pad)                          "reflect" padding
//   i2i_fast::reflection_pad_backward(grad, pad)              its adjoint
//   i2i_fast::block_max(x, factor)                            max pooling (F.max_pool2d(x, f))
//   i2i_fast::block_max_forward(x, factor)                    -> (out, index): the window
//                                                             position of each maximum
//   i2i_fast::block_max_scatter(grad, index, factor, h, w)    block_max's gradient: each
//                                                             output's to its window position
//   i2i_fast::block_max_gather(x, index, factor, h, w)        the scatter's adjoint
//
// The four are linear, and each pair are each other's adjoints, so each operator's backward is a
// call of its partner through the dispatcher: in an ordinary backward pass (grad mode off) it runs
// the kernel directly; under create_graph=True it records the partner's autograd node, so the
// operators are differentiable any number of times (StarGAN v2's R1 penalty differentiates the
// discriminator's average pooling twice). Forward mode (torch.func.jvp, torch.autograd.forward_ad)
// applies the operator to the input's tangent (common/forward_ad.h). Fake implementations:
// i2i_fast/ops/resampling/fake.py.
//
// block_max is linear once its window positions are known: its backward is the scatter by the
// saved index (one byte per output for f <= 16), the scatter and the gather are each other's
// adjoints as the pairs above, and block_max's forward-mode tangent is the gather of x's tangent.
// The second derivative of block_max with respect to x is zero, as aten's (the positions are
// constant where they are differentiable). block_max_forward is not differentiable (its outputs
// are reached only through block_max).
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>

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
using BlockMaxOp = Tensor(const Tensor&, int64_t);
using BlockMaxForwardOp = std::tuple<Tensor, Tensor>(const Tensor&, int64_t);
using RouteOp = Tensor(const Tensor&, const Tensor&, int64_t, int64_t, int64_t);

I2I_FAST_OPERATOR_HANDLE(block_repeat_op, BlockRepeatOp, "i2i_fast::block_repeat")
I2I_FAST_OPERATOR_HANDLE(block_sum_op, BlockSumOp, "i2i_fast::block_sum")
I2I_FAST_OPERATOR_HANDLE(reflection_pad_op, PadOp, "i2i_fast::reflection_pad")
I2I_FAST_OPERATOR_HANDLE(reflection_pad_backward_op, PadOp, "i2i_fast::reflection_pad_backward")
I2I_FAST_OPERATOR_HANDLE(block_max_op, BlockMaxOp, "i2i_fast::block_max")
I2I_FAST_OPERATOR_HANDLE(block_max_forward_op, BlockMaxForwardOp, "i2i_fast::block_max_forward")
I2I_FAST_OPERATOR_HANDLE(block_max_scatter_op, RouteOp, "i2i_fast::block_max_scatter")
I2I_FAST_OPERATOR_HANDLE(block_max_gather_op, RouteOp, "i2i_fast::block_max_gather")

const c10::TypedOperatorHandle<RouteOp>& route_op(bool scatter) {
  return scatter ? block_max_scatter_op() : block_max_gather_op();
}

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

class BlockMaxFunction : public torch::autograd::Function<BlockMaxFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, int64_t factor) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, index] = block_max_forward_op().call(x, factor);
    ctx->save_for_backward({index});
    ctx->saved_data["factor"] = factor;
    ctx->saved_data["in_h"] = x.size(2);
    ctx->saved_data["in_w"] = x.size(3);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(2);  // x, factor
    if (grads[0].defined()) {
      result[0] = block_max_scatter_op().call(
          grads[0], ctx->get_saved_variables()[0], ctx->saved_data["factor"].toInt(),
          ctx->saved_data["in_h"].toInt(), ctx->saved_data["in_w"].toInt());
    }
    return result;
  }
};

// The scatter and the gather by block_max's window positions: the backward of one is the other,
// to the size of the first one's input. The index is not differentiable.
template <bool kScatter>
class RouteFunction : public torch::autograd::Function<RouteFunction<kScatter>> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& t, const Tensor& index,
                        int64_t factor, int64_t out_h, int64_t out_w) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({index});
    ctx->saved_data["factor"] = factor;
    ctx->saved_data["in_h"] = t.size(2);
    ctx->saved_data["in_w"] = t.size(3);
    return route_op(kScatter).call(t, index, factor, out_h, out_w);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(5);  // t, index, factor, out_h, out_w
    if (grads[0].defined()) {
      result[0] = route_op(!kScatter).call(
          grads[0], ctx->get_saved_variables()[0], ctx->saved_data["factor"].toInt(),
          ctx->saved_data["in_h"].toInt(), ctx->saved_data["in_w"].toInt());
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

// block_max's tangent is x's tangent at each output's window position: the gather by the index of
// a second, non-differentiable forward of the primal (forward mode only).
Tensor block_max_autograd(const Tensor& x, int64_t factor) {
  if (const Tensor tangent = forward_tangent(x); tangent.defined()) {
    const Tensor primal = forward_primal(x);
    const Tensor out = block_max_op().call(primal, factor);
    Tensor index;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      index = std::get<1>(block_max_forward_op().call(primal, factor));
    }
    return with_forward_tangent(out, block_max_gather_op().call(tangent, index, factor,
                                                                out.size(2), out.size(3)));
  }
  return call_or_record<BlockMaxFunction>(recording(x), block_max_op(), x, factor);
}

Tensor block_max_no_grad(const Tensor& x, int64_t factor) {
  return std::get<0>(block_max_forward_op().call(x, factor));
}

template <bool kScatter>
Tensor route_autograd(const Tensor& t, const Tensor& index, int64_t factor, int64_t out_h,
                      int64_t out_w) {
  const auto& op = route_op(kScatter);
  if (const Tensor tangent = forward_tangent(t); tangent.defined()) {
    return with_forward_tangent(op.call(forward_primal(t), index, factor, out_h, out_w),
                                op.call(tangent, index, factor, out_h, out_w));
  }
  return call_or_record<RouteFunction<kScatter>>(recording(t), op, t, index, factor, out_h,
                                                 out_w);
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  i2i_fast::define_operators(m, {
      "block_repeat(Tensor x, int factor, float divisor, int out_h, int out_w) -> Tensor",
      "block_sum(Tensor x, int factor, float divisor) -> Tensor",
      "reflection_pad(Tensor x, int pad) -> Tensor",
      "reflection_pad_backward(Tensor grad, int pad) -> Tensor",
      "block_max(Tensor x, int factor) -> Tensor",
      "block_max_forward(Tensor x, int factor) -> (Tensor, Tensor)",
      "block_max_scatter(Tensor grad, Tensor index, int factor, int out_h, int out_w) -> Tensor",
      "block_max_gather(Tensor x, Tensor index, int factor, int out_h, int out_w) -> Tensor",
  });
}

TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
  m.impl("block_repeat", &i2i_fast::block_repeat_autograd);
  m.impl("block_sum", &i2i_fast::block_sum_autograd);
  m.impl("reflection_pad", &i2i_fast::reflection_autograd<true>);
  m.impl("reflection_pad_backward", &i2i_fast::reflection_autograd<false>);
  m.impl("block_max", &i2i_fast::block_max_autograd);
  m.impl("block_max_scatter", &i2i_fast::route_autograd<true>);
  m.impl("block_max_gather", &i2i_fast::route_autograd<false>);
  i2i_fast::not_differentiable(m, {"block_max_forward"});
}

TORCH_LIBRARY_IMPL(i2i_fast, CompositeExplicitAutograd, m) {
  m.impl("block_max", &i2i_fast::block_max_no_grad);
}
