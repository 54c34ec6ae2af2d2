// The device kernels of the Gaussian NLL operators, written once for every device: each runs its
// operator's checks (checks.h), then the device's implementation. A device file registers them
// with its own implementation, e.g. in gaussian_nll_cpu.cpp:
//
//   TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
//     register_kernels<GaussianNllKernels<&gaussian_nll_forward, &gaussian_nll_backward>>(m);
//   }
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "../common/registration.h"
#include "checks.h"
#include "common.h"

namespace i2i_fast {

// (z, mu, logvar, spec) -> the loss.
using NllForwardFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                    const GaussianNllSpec&);
// (grad_loss, z, mu, logvar, spec) -> (dz, dmu, dlogvar).
using NllBackwardFn = std::tuple<at::Tensor, at::Tensor, at::Tensor> (*)(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const GaussianNllSpec&);

template <NllForwardFn forward, NllBackwardFn backward>
struct GaussianNllKernels {
  static at::Tensor gaussian_nll(const at::Tensor& z, const at::Tensor& mu,
                                 const at::Tensor& logvar, c10::string_view reduction) {
    return forward(z, mu, logvar, check_gaussian_nll("gaussian_nll", z, mu, logvar, reduction));
  }

  static std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_nll_grads(
      const at::Tensor& grad_loss, const at::Tensor& z, const at::Tensor& mu,
      const at::Tensor& logvar, c10::string_view reduction) {
    return backward(grad_loss, z, mu, logvar,
                    check_gaussian_nll_backward(grad_loss, z, mu, logvar, reduction));
  }

  // The device operators (schemas in gaussian_nll_ops.cpp) and their kernels; a device file
  // registers them with register_kernels<...>(m) (common/registration.h).
  static constexpr std::tuple kernels{
      Kernel<&gaussian_nll>{"gaussian_nll"}, Kernel<&gaussian_nll_grads>{"gaussian_nll_backward"},
  };
};

}  // namespace i2i_fast
