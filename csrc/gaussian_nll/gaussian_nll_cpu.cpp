// CPU kernels of the Gaussian NLL operators, forward and backward.
//
// The inputs are read as contiguous memory (other layouts are copied first: the codes are small).
// The elements are cut into chunks of kChunk elements, whose boundaries depend only on the number
// of elements. The forward sums each chunk's element losses in blocks of kBlock elements in float
// (double for float64), folded into a double; the chunk sums are added in chunk order on one
// thread, so the result does not depend on the number of threads. Calls with fewer than
// kParallelMinElements elements (MISO's codes: 8 x 8) run on the calling thread, where starting a
// parallel region would cost more than the arithmetic.
#include "gaussian_nll_cpu.h"

#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/cpu_element.h"
#include "../common/cpu_parallel.h"
#include "device_kernels.h"

namespace i2i_fast::gaussian_nll::cpu {
namespace {

using namespace i2i_fast::cpu;  // NOLINT(build/namespaces): the element helpers

constexpr int64_t kBlock = 1024;                   // elements summed in A before a double fold
constexpr int64_t kChunk = 1 << 14;                // elements per task
constexpr int64_t kParallelMinElements = 1 << 16;  // smaller calls stay on the calling thread

// body(chunk index, first element, element count) for every chunk, in parallel for large calls.
template <typename Body>
void for_each_chunk(int64_t numel, const Body& body) {
  const int64_t chunks = (numel + kChunk - 1) / kChunk;
  const auto run = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t begin = c * kChunk;
      body(c, begin, std::min(kChunk, numel - begin));
    }
  };
  if (numel < kParallelMinElements || chunks == 1) {
    run(0, chunks);
  } else {
    at::parallel_for(0, chunks, 1, run);
  }
}

at::Tensor new_output(at::IntArrayRef sizes, at::ScalarType dtype) {
  return at::detail::empty_cpu(sizes, dtype, /*pin_memory=*/false, std::nullopt);
}

template <typename S, typename A>
double sum_of_elements(const S* z, const S* mu, const S* logvar, int64_t count) {
  return blocked_sum<A, kBlock>(count, [z, mu, logvar](int64_t i) {
    return nll_element<A>(static_cast<A>(widen(z[i])), static_cast<A>(widen(mu[i])),
                          static_cast<A>(widen(logvar[i])));
  });
}

// The gradients of `count` elements for the upstream gradient g of each.
template <typename S, typename A>
void element_grads(const S* z, const S* mu, const S* logvar, A g, S* dz, S* dmu, S* dlogvar,
                   int64_t count) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    const NllElementGrad<A> d = nll_element_grad<A>(
        static_cast<A>(widen(z[i])), static_cast<A>(widen(mu[i])),
        static_cast<A>(widen(logvar[i])), g);
    dz[i] = narrow<S>(d.dz);
    dmu[i] = narrow<S>(-d.dz);
    dlogvar[i] = narrow<S>(d.dlogvar);
  }
}

}  // namespace

at::Tensor gaussian_nll_forward(const at::Tensor& z_in, const at::Tensor& mu_in,
                                const at::Tensor& logvar_in, const GaussianNllSpec& spec) {
  const at::Tensor z = z_in.contiguous();
  const at::Tensor mu = mu_in.contiguous();
  const at::Tensor logvar = logvar_in.contiguous();
  const int64_t numel = z.numel();
  std::vector<double> chunk_sums(static_cast<size_t>((numel + kChunk - 1) / kChunk));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(), "gaussian_nll", [&] {
    using S = typename StorageOf<scalar_t>::type;
    using A = typename AccumulateOf<scalar_t>::type;
    const S* zp = reinterpret_cast<const S*>(z.const_data_ptr<scalar_t>());
    const S* mp = reinterpret_cast<const S*>(mu.const_data_ptr<scalar_t>());
    const S* lp = reinterpret_cast<const S*>(logvar.const_data_ptr<scalar_t>());
    for_each_chunk(numel, [&](int64_t c, int64_t begin, int64_t count) {
      chunk_sums[c] = sum_of_elements<S, A>(zp + begin, mp + begin, lp + begin, count);
    });
  });
  double total = 0;
  for (const double s : chunk_sums) total += s;
  total /= nll_divisor(spec.reduction, z.size(0), numel);
  at::Tensor loss = new_output({}, nll_loss_dtype(z.scalar_type()));
  AT_DISPATCH_FLOATING_TYPES(loss.scalar_type(), "gaussian_nll_loss", [&] {
    *loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(total);
  });
  return loss;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_nll_backward(
    const at::Tensor& grad_loss, const at::Tensor& z_in, const at::Tensor& mu_in,
    const at::Tensor& logvar_in, const GaussianNllSpec& spec) {
  const at::Tensor z = z_in.contiguous();
  const at::Tensor mu = mu_in.contiguous();
  const at::Tensor logvar = logvar_in.contiguous();
  const int64_t numel = z.numel();
  const double g = grad_loss.item<double>() / nll_divisor(spec.reduction, z.size(0), numel);
  at::Tensor dz = new_output(z.sizes(), z.scalar_type());
  at::Tensor dmu = new_output(z.sizes(), z.scalar_type());
  at::Tensor dlogvar = new_output(z.sizes(), z.scalar_type());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, z.scalar_type(), "gaussian_nll_backward", [&] {
        using S = typename StorageOf<scalar_t>::type;
        using A = typename AccumulateOf<scalar_t>::type;
        const S* zp = reinterpret_cast<const S*>(z.const_data_ptr<scalar_t>());
        const S* mp = reinterpret_cast<const S*>(mu.const_data_ptr<scalar_t>());
        const S* lp = reinterpret_cast<const S*>(logvar.const_data_ptr<scalar_t>());
        S* dzp = reinterpret_cast<S*>(dz.mutable_data_ptr<scalar_t>());
        S* dmp = reinterpret_cast<S*>(dmu.mutable_data_ptr<scalar_t>());
        S* dlp = reinterpret_cast<S*>(dlogvar.mutable_data_ptr<scalar_t>());
        const A ga = static_cast<A>(g);
        for_each_chunk(numel, [&](int64_t, int64_t begin, int64_t count) {
          element_grads<S, A>(zp + begin, mp + begin, lp + begin, ga, dzp + begin, dmp + begin,
                              dlp + begin, count);
        });
      });
  return {dz, dmu, dlogvar};
}

}  // namespace i2i_fast::gaussian_nll::cpu

// ---------------------------------------------------------------------------------------------
// The CPU kernels of the operators (schemas in gaussian_nll_ops.cpp; each runs its operator's
// checks first, device_kernels.h).

TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  using namespace i2i_fast::gaussian_nll::cpu;
  i2i_fast::register_kernels<
      i2i_fast::GaussianNllKernels<&gaussian_nll_forward, &gaussian_nll_backward>>(m);
}
