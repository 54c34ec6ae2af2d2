// Forward-mode automatic differentiation (torch.func.jvp, torch.autograd.forward_ad) in the
// operators' autograd kernels.
//
// A tensor's forward-mode tangent is its forward gradient at level 0: the level that
// torch.autograd.forward_ad uses, and the one every torch.func.jvp layer uses on its own wrapped
// tensors. An autograd kernel whose inputs carry tangents does what PyTorch's own kernels do: it
// calls the operator again (through the dispatcher) on the inputs' primals, which are the same
// values without the tangent (views that keep their reverse-mode history, and the tangents of
// any outer torch.func.jvp layer), computes the result's tangent from the primals and the
// tangents, and attaches it to the result. Forward grad mode is never switched off: an outer
// jvp layer would then lose its tangents.
#pragma once

#include <ATen/core/Tensor.h>

namespace i2i_fast {

// The forward-mode tangent of t; undefined when t carries none (or is undefined).
inline at::Tensor forward_tangent(const at::Tensor& t) {
  return t.defined() ? t._fw_grad(/*level=*/0) : at::Tensor();
}

// t without its forward-mode tangent: t itself when it carries none.
inline at::Tensor forward_primal(const at::Tensor& t) {
  return forward_tangent(t).defined() ? t._fw_primal(/*level=*/0) : t;
}

// `out` (computed from primals) with `tangent` attached as its forward-mode tangent.
inline at::Tensor with_forward_tangent(const at::Tensor& out, const at::Tensor& tangent) {
  out._set_fw_grad(tangent, /*level=*/0, /*is_inplace_op=*/false);
  return out;
}

}  // namespace i2i_fast
