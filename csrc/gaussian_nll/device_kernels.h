// The device kernels of the Gaussian latent terms (gaussian_nll, gaussian_kl), written once for
// every device: each runs its operator's checks (checks.h), then the device's implementation of
// its term (common.h). A device file registers them with its implementation, e.g. in
// gaussian_nll_cpu.cpp:
//
//   TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
//     register_kernels<LatentTermKernels<CpuTerms>>(m);
//   }
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <array>
#include <tuple>

#include "../common/registration.h"
#include "checks.h"
#include "common.h"

namespace i2i_fast {

// A term's input tensors (or their gradients), in schema order.
template <int K>
using TermTensors = std::array<at::Tensor, K>;

// Device: a struct with the device's implementation of any term,
//   template <typename Term>
//   static at::Tensor forward(const TermTensors<Term::kInputs>& inputs, const LatentTermSpec&);
//     the loss (float32, float64 for float64 inputs)
//   template <typename Term>
//   static TermTensors<Term::kInputs> backward(const at::Tensor& grad_loss,
//                                              const TermTensors<Term::kInputs>& inputs,
//                                              const LatentTermSpec&);
//     the inputs' gradients (contiguous, their shape and dtype)
// called with inputs that passed the operator's checks.
template <typename Device>
struct LatentTermKernels {
  static at::Tensor gaussian_nll(const at::Tensor& z, const at::Tensor& mu,
                                 const at::Tensor& logvar, c10::string_view reduction) {
    const LatentTermSpec spec =
        check_latent_term("gaussian_nll", {{"z", z}, {"mu", mu}, {"logvar", logvar}}, reduction);
    return Device::template forward<NllTerm>({z, mu, logvar}, spec);
  }

  static std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_nll_grads(
      const at::Tensor& grad_loss, const at::Tensor& z, const at::Tensor& mu,
      const at::Tensor& logvar, c10::string_view reduction) {
    const LatentTermSpec spec = check_latent_term_backward(
        "gaussian_nll_backward", grad_loss, {{"z", z}, {"mu", mu}, {"logvar", logvar}},
        reduction);
    auto [dz, dmu, dlogvar] = Device::template backward<NllTerm>(grad_loss, {z, mu, logvar}, spec);
    return {dz, dmu, dlogvar};
  }

  static at::Tensor gaussian_kl(const at::Tensor& mu, const at::Tensor& logvar,
                                c10::string_view reduction) {
    const LatentTermSpec spec =
        check_latent_term("gaussian_kl", {{"mu", mu}, {"logvar", logvar}}, reduction);
    return Device::template forward<KlTerm>({mu, logvar}, spec);
  }

  static std::tuple<at::Tensor, at::Tensor> gaussian_kl_grads(const at::Tensor& grad_loss,
                                                              const at::Tensor& mu,
                                                              const at::Tensor& logvar,
                                                              c10::string_view reduction) {
    const LatentTermSpec spec = check_latent_term_backward(
        "gaussian_kl_backward", grad_loss, {{"mu", mu}, {"logvar", logvar}}, reduction);
    auto [dmu, dlogvar] = Device::template backward<KlTerm>(grad_loss, {mu, logvar}, spec);
    return {dmu, dlogvar};
  }

  // The device operators (schemas in gaussian_nll_ops.cpp) and their kernels; a device file
  // registers them with register_kernels<...>(m) (common/registration.h).
  static constexpr std::tuple kernels{
      Kernel<&gaussian_nll>{"gaussian_nll"}, Kernel<&gaussian_nll_grads>{"gaussian_nll_backward"},
      Kernel<&gaussian_kl>{"gaussian_kl"}, Kernel<&gaussian_kl_grads>{"gaussian_kl_backward"},
  };
};

}  // namespace i2i_fast
