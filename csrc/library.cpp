// The i2i_fast operator namespace. Each family of operators adds its schemas with
// TORCH_LIBRARY_FRAGMENT(i2i_fast, ...) in its own folder:
//   normalization/ops.cpp   adain, instance_norm, layer_norm (+ _forward, _backward)
//   gan_loss/ops.cpp        gan_loss, r1_penalty (+ _backward)
//   resampling/ops.cpp      block_repeat, block_sum, reflection_pad (+ _backward)
// and its kernels with TORCH_LIBRARY_IMPL(i2i_fast, CPU / CUDA, ...) next to them.
#include <torch/library.h>

TORCH_LIBRARY(i2i_fast, m) {}
