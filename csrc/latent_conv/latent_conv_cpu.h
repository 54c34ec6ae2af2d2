// The CPU passes of the latent_conv operators (latent_conv_cpu.cpp), registered through
// device_kernels.h.
#pragma once

#include <ATen/ATen.h>

#include <array>

#include "common.h"

namespace i2i_fast::latent_conv::cpu {

// out[n, o, i, j] += table[n, o, class(i), class(j)], in place.
void add_table_cpu(at::Tensor& out, const at::Tensor& table, const LatentConvSpec& s);
// S (N, O, Kr, Kc): the sums of grad over the rows x columns of each class pair.
at::Tensor sum_by_class_cpu(const at::Tensor& grad, const LatentConvSpec& s);
// Tab (N, O, Kr, Kc) and the backward's tap gradients, as loops (common.h: the same as
// class_table_matmul and tap_gradients_matmul).
at::Tensor class_table_cpu(const at::Tensor& x, const at::Tensor& z, const at::Tensor& weight,
                           const LatentConvSpec& s);
TapGradients tap_gradients_cpu(const at::Tensor& sums, const at::Tensor& x, const at::Tensor& z,
                               const at::Tensor& weight, const LatentConvSpec& s,
                               std::array<bool, 3> mask);

}  // namespace i2i_fast::latent_conv::cpu
