// The CPU passes of the latent_conv operators (latent_conv_cpu.cpp), registered through
// device_kernels.h.
#pragma once

#include <ATen/ATen.h>

#include "common.h"

namespace i2i_fast::latent_conv::cpu {

// out[n, o, i, j] += table[n, o, class(i), class(j)], in place.
void add_table_cpu(at::Tensor& out, const at::Tensor& table, const LatentConvSpec& s);
// S (N, O, Kr, Kc): the sums of grad over the rows x columns of each class pair.
at::Tensor sum_by_class_cpu(const at::Tensor& grad, const LatentConvSpec& s);

}  // namespace i2i_fast::latent_conv::cpu
