// The device kernels of the normalization operators, written once for every device: each runs
// its operator's checks (checks.h), then the device's implementation of the forward or backward
// computation. A device file registers them with its own implementation, e.g. in
// normalization_cpu.cpp:
//
//   TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
//     register_kernels<NormalizationKernels<&norm_forward, &norm_backward>>(m);
//   }
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "../common/registration.h"
#include "checks.h"
#include "common.h"

namespace i2i_fast {

using NormResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
// (x, weight, bias, spec) -> (out, mean, rstd).
using NormForwardFn = NormResult (*)(const at::Tensor&, const std::optional<at::Tensor>&,
                                     const std::optional<at::Tensor>&, const NormSpec&);
// (grad_out, x, weight, bias, mean, rstd, spec) -> (grad_x, grad_weight, grad_bias).
using NormBackwardFn = NormResult (*)(const at::Tensor&, const at::Tensor&,
                                      const std::optional<at::Tensor>&,
                                      const std::optional<at::Tensor>&, const at::Tensor&,
                                      const at::Tensor&, const NormSpec&);

// What instance_norm's and batch_norm's device kernels differ in: the checks, the names in their
// messages, and the name of the second statistic ("rstd"; batch_norm's is the variance).
struct InstanceNormOp {
  static constexpr auto check = &check_instance_norm;
  static constexpr const char* name = "instance_norm";
  static constexpr const char* backward_name = "instance_norm_backward";
  static constexpr const char* second = "rstd";
};

struct BatchNormOp {
  static constexpr auto check = &check_batch_norm;
  static constexpr const char* name = "batch_norm";
  static constexpr const char* backward_name = "batch_norm_backward";
  static constexpr const char* second = "var";
};

template <NormForwardFn forward, NormBackwardFn backward>
struct NormalizationKernels {
  using OptTensor = std::optional<at::Tensor>;
  using Tensor = at::Tensor;

  static NormResult adain_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                  double eps, c10::string_view activation,
                                  double negative_slope) {
    const NormSpec spec = check_adain("adain", x, weight, bias, eps, activation, negative_slope);
    return forward(x, weight, bias, spec);
  }

  static NormResult adain_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const Tensor& mean, const Tensor& rstd,
                                   double eps, c10::string_view activation,
                                   double negative_slope) {
    const char* op = "adain_backward";
    const NormSpec spec = check_adain(op, x, weight, bias, eps, activation, negative_slope);
    check_norm_backward_inputs(op, grad_out, x, mean, rstd, spec.grouping);
    return backward(grad_out, x, weight, bias, mean, rstd, spec);
  }

  // instance_norm's and batch_norm's kernels (per-channel weight and bias, or none), which differ
  // in their checks (Op: InstanceNormOp, BatchNormOp below).
  template <typename Op>
  static NormResult per_channel_forward(const Tensor& x, const OptTensor& weight,
                                        const OptTensor& bias, double eps,
                                        c10::string_view activation, double negative_slope) {
    return forward(x, weight, bias,
                   Op::check(Op::name, x, weight, bias, eps, activation, negative_slope));
  }

  template <typename Op>
  static NormResult per_channel_backward(const Tensor& grad_out, const Tensor& x,
                                         const OptTensor& weight, const OptTensor& bias,
                                         const Tensor& mean, const Tensor& second, double eps,
                                         c10::string_view activation, double negative_slope) {
    const NormSpec spec =
        Op::check(Op::backward_name, x, weight, bias, eps, activation, negative_slope);
    check_norm_backward_inputs(Op::backward_name, grad_out, x, mean, second, spec.grouping,
                               Op::second);
    return backward(grad_out, x, weight, bias, mean, second, spec);
  }

  static NormResult layer_norm_forward(const Tensor& x, const OptTensor& weight,
                                       const OptTensor& bias, double eps, c10::string_view style,
                                       c10::string_view activation, double negative_slope) {
    const NormSpec spec =
        check_layer_norm("layer_norm", x, weight, bias, eps, style, activation, negative_slope);
    return forward(x, weight, bias, spec);
  }

  static NormResult layer_norm_backward(const Tensor& grad_out, const Tensor& x,
                                        const OptTensor& weight, const OptTensor& bias,
                                        const Tensor& mean, const Tensor& rstd, double eps,
                                        c10::string_view style, c10::string_view activation,
                                        double negative_slope) {
    const char* op = "layer_norm_backward";
    const NormSpec spec =
        check_layer_norm(op, x, weight, bias, eps, style, activation, negative_slope);
    check_norm_backward_inputs(op, grad_out, x, mean, rstd, spec.grouping);
    return backward(grad_out, x, weight, bias, mean, rstd, spec);
  }

  // The device operators (schemas in normalization_ops.cpp) and their kernels; a device file
  // registers them with register_kernels<...>(m) (common/registration.h).
  static constexpr std::tuple kernels{
      Kernel<&adain_forward>{"adain_forward"}, Kernel<&adain_backward>{"adain_backward"},
      Kernel<&per_channel_forward<InstanceNormOp>>{"instance_norm_forward"},
      Kernel<&per_channel_backward<InstanceNormOp>>{"instance_norm_backward"},
      Kernel<&layer_norm_forward>{"layer_norm_forward"},
      Kernel<&layer_norm_backward>{"layer_norm_backward"},
  };
};

// batch_norm's device operators: the per-channel kernels with batch statistics (forward (out,
// mean, var), the backward taking mean and var), (C,) per channel. A list of their own because
// only the CPU implements Grouping::kBatch (the Python backends run triton or the reference on
// CUDA tensors).
template <NormForwardFn forward, NormBackwardFn backward>
struct BatchNormKernels {
  using Norm = NormalizationKernels<forward, backward>;
  static constexpr std::tuple kernels{
      Kernel<&Norm::template per_channel_forward<BatchNormOp>>{"batch_norm_forward"},
      Kernel<&Norm::template per_channel_backward<BatchNormOp>>{"batch_norm_backward"},
  };
};

}  // namespace i2i_fast
