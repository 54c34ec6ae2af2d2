// CPU implementation of the Gaussian latent terms (see common.h for the definitions).
#pragma once

#include <ATen/ATen.h>

#include "common.h"
#include "device_kernels.h"

namespace i2i_fast::gaussian_nll::cpu {

// The Device of LatentTermKernels (device_kernels.h) on the CPU, for any term of common.h
// (defined in gaussian_nll_cpu.cpp, which instantiates it for each).
struct CpuTerms {
  // The loss: a float32 scalar (float64 for float64 inputs).
  template <typename Term>
  static at::Tensor forward(const TermTensors<Term::kInputs>& inputs, const LatentTermSpec& spec);

  // The inputs' gradients: contiguous, their shape and dtype.
  template <typename Term>
  static TermTensors<Term::kInputs> backward(const at::Tensor& grad_loss,
                                             const TermTensors<Term::kInputs>& inputs,
                                             const LatentTermSpec& spec);
};

}  // namespace i2i_fast::gaussian_nll::cpu
