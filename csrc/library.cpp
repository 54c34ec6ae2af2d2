// The i2i_fast operator namespace. Each family of operators adds its schemas with
// TORCH_LIBRARY_FRAGMENT(i2i_fast, ...) in its own folder:
//   normalization/normalization_ops.cpp   adain, instance_norm, layer_norm, batch_norm (+ _forward,
//                                         _backward)
//   gan_loss/gan_loss_ops.cpp             gan_loss, r1_penalty (+ _backward)
//   resampling/resampling_ops.cpp         block_repeat, block_sum, reflection_pad (+ _backward)
//   latent_conv/latent_conv_ops.cpp       latent_conv2d, latent_conv_transpose2d (+ _forward,
//                                         _backward)
//   filter_response_norm/filter_response_norm_ops.cpp
//                                         filter_response_norm (+ _forward, _backward)
//   gaussian_nll/gaussian_nll_ops.cpp     gaussian_nll, gaussian_kl (+ _backward)
// and its kernels with TORCH_LIBRARY_IMPL(i2i_fast, CPU / CUDA, ...) next to them
// (<family>_cpu.cpp, <family>_cuda.cu). Every compiled file has a name of its own: the build
// names each object file after its source's base name (CONTRIBUTING.md, "Adding an operator").
//
// Defined here: kernel_threads(), how many threads one at::parallel_for of this library's CPU
// kernels runs on. at::parallel_for is a header template: a library compiled without OpenMP runs
// every such loop on the calling thread, whatever torch.get_num_threads() says. `i2i-fast info`
// prints it and a test checks it.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>

namespace i2i_fast {
namespace {

int64_t kernel_threads() {
  constexpr int64_t kTasks = 256;
  std::atomic<int64_t> seen{0};  // bit t: thread t ran a part of the loop
  at::parallel_for(0, kTasks, 1, [&](int64_t, int64_t) {
    const int64_t t = at::get_thread_num();
    if (t < 63) seen.fetch_or(int64_t(1) << t);
  });
  return __builtin_popcountll(static_cast<unsigned long long>(seen.load()));
}

}  // namespace
}  // namespace i2i_fast

TORCH_LIBRARY(i2i_fast, m) {
  m.def("kernel_threads() -> int", &i2i_fast::kernel_threads);
}
