// The device kernels of the GAN loss operators, written once for every device: each runs its
// operator's checks (checks.h), then the device's implementation. A device file registers them
// with its own implementation, e.g. in gan_loss_cpu.cpp:
//
//   TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
//     register_kernels<GanLossKernels<&gan_loss_forward, &gan_loss_backward, &r1_penalty_forward,
//                                     &r1_penalty_backward>>(m);
//   }
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>
#include <vector>

#include "../common/registration.h"
#include "checks.h"
#include "common.h"

namespace i2i_fast {

// (outputs, domain, spec) -> the loss.
using GanLossForwardFn = at::Tensor (*)(at::TensorList, const std::optional<at::Tensor>&,
                                        const GanLossSpec&);
// (grad_loss, outputs, domain, spec) -> one gradient per output.
using GanLossBackwardFn = std::vector<at::Tensor> (*)(const at::Tensor&, at::TensorList,
                                                      const std::optional<at::Tensor>&,
                                                      const GanLossSpec&);
// (grads, weight, reduction) -> the penalty.
using R1ForwardFn = at::Tensor (*)(const at::Tensor&, double, Reduction);
// (grad_loss, grads, weight, reduction) -> its gradient.
using R1BackwardFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, double, Reduction);

template <GanLossForwardFn gan_loss_forward, GanLossBackwardFn gan_loss_backward,
          R1ForwardFn r1_forward, R1BackwardFn r1_backward>
struct GanLossKernels {
  using OptTensor = std::optional<at::Tensor>;

  static at::Tensor gan_loss(at::TensorList outputs, c10::string_view mode,
                             c10::string_view target, double label, const OptTensor& domain,
                             c10::string_view reduction) {
    const GanLossSpec spec =
        check_gan_loss("gan_loss", outputs, mode, target, label, domain, reduction);
    return gan_loss_forward(outputs, domain, spec);
  }

  static std::vector<at::Tensor> gan_loss_grads(const at::Tensor& grad_loss,
                                                at::TensorList outputs, c10::string_view mode,
                                                c10::string_view target, double label,
                                                const OptTensor& domain,
                                                c10::string_view reduction) {
    const char* op = "gan_loss_backward";
    const GanLossSpec spec = check_gan_loss(op, outputs, mode, target, label, domain, reduction);
    checks::loss_grad(op, grad_loss, reduction, outputs[0].size(0), outputs[0].device(),
                      "outputs[0]");
    return gan_loss_backward(grad_loss, outputs, domain, spec);
  }

  static at::Tensor r1_penalty(const at::Tensor& grads, double weight,
                               c10::string_view reduction) {
    return r1_forward(grads, weight, check_r1_penalty("r1_penalty", grads, weight, reduction));
  }

  static at::Tensor r1_penalty_grads(const at::Tensor& grad_loss, const at::Tensor& grads,
                                     double weight, c10::string_view reduction) {
    const char* op = "r1_penalty_backward";
    const Reduction red = check_r1_penalty(op, grads, weight, reduction);
    checks::loss_grad(op, grad_loss, reduction, grads.size(0), grads.device(), "grads");
    return r1_backward(grad_loss, grads, weight, red);
  }

  // The device operators (schemas in gan_loss_ops.cpp) and their kernels; a device file
  // registers them with register_kernels<...>(m) (common/registration.h).
  static constexpr std::tuple kernels{
      Kernel<&gan_loss>{"gan_loss"}, Kernel<&gan_loss_grads>{"gan_loss_backward"},
      Kernel<&r1_penalty>{"r1_penalty"}, Kernel<&r1_penalty_grads>{"r1_penalty_backward"},
  };
};

}  // namespace i2i_fast
