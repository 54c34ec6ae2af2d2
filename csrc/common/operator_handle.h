// A device-independent kernel (an autograd kernel, a CompositeExplicitAutograd kernel) calls the
// device operators through the dispatcher, so that torch.compile traces to them and each device
// runs its own kernel. The typed handle of an operator is looked up once, on the first call:
//
//   I2I_FAST_OPERATOR_HANDLE(adain_forward_op, AdainForward, "i2i_fast::adain_forward")
//   ... adain_forward_op().call(x, weight, bias, eps, activation, negative_slope) ...
//
// defines `adain_forward_op()`, returning the handle of the schema "i2i_fast::adain_forward"
// typed by the function type `AdainForward` (a mismatch with the schema throws on first use).
#pragma once

#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>

#define I2I_FAST_OPERATOR_HANDLE(function, Signature, name)                                   \
  const c10::TypedOperatorHandle<Signature>& function() {                                    \
    static const c10::TypedOperatorHandle<Signature> handle =                                 \
        c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();          \
    return handle;                                                                            \
  }

namespace i2i_fast {

// Whether autograd records a graph for a call on these inputs: grad mode is on and one of them
// requires grad (an undefined tensor, an absent optional argument, requires none). When it does
// not, the autograd kernel calls the device operator below autograd
// (at::AutoDispatchBelowADInplaceOrView) instead of its torch::autograd::Function.
template <typename... Tensors>
bool recording(const Tensors&... inputs) {
  return at::GradMode::is_enabled() && ((inputs.defined() && inputs.requires_grad()) || ...);
}

// The last step of an autograd kernel: Function::apply(args...), which records the graph, when
// `record` (recording() of the differentiable inputs); otherwise the device operator's
// op.call(args...) below autograd, without the Function's bookkeeping (less host time).
template <typename Function, typename Op, typename... Args>
auto call_or_record(bool record, const Op& op, const Args&... args) -> decltype(op.call(args...)) {
  if (!record) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(args...);
  }
  return Function::apply(args...);
}

}  // namespace i2i_fast
