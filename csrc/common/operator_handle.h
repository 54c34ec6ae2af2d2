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

#include <ATen/core/dispatch/Dispatcher.h>

#define I2I_FAST_OPERATOR_HANDLE(function, Signature, name)                                   \
  const c10::TypedOperatorHandle<Signature>& function() {                                    \
    static const c10::TypedOperatorHandle<Signature> handle =                                 \
        c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();          \
    return handle;                                                                            \
  }
