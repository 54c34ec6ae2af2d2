// The device kernels of the filter response normalization operators, written once for every
// device: each runs its operator's checks (checks.h), then the device's implementation. A device
// file registers them with its own implementation, e.g. in filter_response_norm_cpu.cpp:
//
//   TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
//     register_kernels<FilterResponseNormKernels<&frn_forward, &frn_backward,
//                                                 &frn_double_backward>>(m);
//   }
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "../common/registration.h"
#include "checks.h"
#include "common.h"

namespace i2i_fast {

using FrnForwardResult = std::tuple<at::Tensor, at::Tensor>;
using FrnBackwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
// (x, weight, bias, tau, spec) -> (out, rstd).
using FrnForwardFn = FrnForwardResult (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                          const at::Tensor&, const FrnSpec&);
// (grad_out, x, weight, bias, tau, rstd, spec) -> (grad_x, grad_weight, grad_bias, grad_tau).
using FrnBackwardFn = FrnBackwardResult (*)(const at::Tensor&, const at::Tensor&,
                                            const at::Tensor&, const at::Tensor&,
                                            const at::Tensor&, const at::Tensor&, const FrnSpec&);

using FrnDoubleBackwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
// (grad_grad_x, grad_out, x, weight, bias, tau, rstd, spec) -> the gradients of grad_x's
// inner product with grad_grad_x w.r.t. (grad_out, x, weight) (common.h).
using FrnDoubleBackwardFn = FrnDoubleBackwardResult (*)(const at::Tensor&, const at::Tensor&,
                                                        const at::Tensor&, const at::Tensor&,
                                                        const at::Tensor&, const at::Tensor&,
                                                        const at::Tensor&, const FrnSpec&);

template <FrnForwardFn forward, FrnBackwardFn backward, FrnDoubleBackwardFn double_backward>
struct FilterResponseNormKernels {
  using Tensor = at::Tensor;

  static FrnForwardResult frn_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                      const Tensor& tau, double eps) {
    const FrnSpec spec =
        check_filter_response_norm("filter_response_norm", x, weight, bias, tau, eps);
    return forward(x, weight, bias, tau, spec);
  }

  static FrnBackwardResult frn_backward(const Tensor& grad_out, const Tensor& x,
                                        const Tensor& weight, const Tensor& bias,
                                        const Tensor& tau, const Tensor& rstd, double eps) {
    const FrnSpec spec =
        check_filter_response_norm_backward(grad_out, x, weight, bias, tau, rstd, eps);
    return backward(grad_out, x, weight, bias, tau, rstd, spec);
  }

  static FrnDoubleBackwardResult frn_double_backward(const Tensor& grad_grad_x,
                                                     const Tensor& grad_out, const Tensor& x,
                                                     const Tensor& weight, const Tensor& bias,
                                                     const Tensor& tau, const Tensor& rstd,
                                                     double eps) {
    const FrnSpec spec = check_filter_response_norm_double_backward(grad_grad_x, grad_out, x,
                                                                    weight, bias, tau, rstd, eps);
    return double_backward(grad_grad_x, grad_out, x, weight, bias, tau, rstd, spec);
  }

  // The device operators (schemas in filter_response_norm_ops.cpp) and their kernels; a device file
  // registers them with register_kernels<...>(m) (common/registration.h).
  static constexpr std::tuple kernels{
      Kernel<&frn_forward>{"filter_response_norm_forward"},
      Kernel<&frn_backward>{"filter_response_norm_backward"},
      Kernel<&frn_double_backward>{"filter_response_norm_double_backward"},
  };
};

}  // namespace i2i_fast
