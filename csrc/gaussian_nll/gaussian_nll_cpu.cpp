// CPU kernels of the Gaussian latent terms (gaussian_nll, gaussian_kl), forward and backward,
// written once over the term (common.h: NllTerm, KlTerm).
//
// The inputs are read as contiguous memory (other layouts are copied first: the codes are small).
// The elements are cut into chunks of kChunk elements, whose boundaries depend only on the number
// of elements. The forward sums each chunk's element values in blocks of kBlock elements in float
// (double for float64), folded into a double; the chunk sums are added in chunk order on one
// thread, so the result does not depend on the number of threads. Calls with fewer than
// kParallelMinElements elements (MISO's, DRIT's and BicycleGAN's codes: 8 x 8) run on the calling
// thread, where starting a parallel region would cost more than the arithmetic.
#include "gaussian_nll_cpu.h"

#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
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

// The values of element i of the K inputs, in A.
template <int K, typename S, typename A>
C10_ALWAYS_INLINE void load(const std::array<const S*, K>& in, int64_t i, A (&x)[K]) {
  for (int k = 0; k < K; ++k) x[k] = static_cast<A>(widen(in[k][i]));
}

template <typename Term, typename S, typename A>
double sum_of_elements(const std::array<const S*, Term::kInputs> in, int64_t count) {
  return blocked_sum<A, kBlock>(count, [in](int64_t i) {
    A x[Term::kInputs];
    load<Term::kInputs>(in, i, x);
    return term_value<Term>(x);
  });
}

// The gradients of `count` elements for the upstream gradient g of each.
template <typename Term, typename S, typename A>
void element_grads(const std::array<const S*, Term::kInputs> in, A g,
                   const std::array<S*, Term::kInputs> out, int64_t count) {
  constexpr int K = Term::kInputs;
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    A x[K];
    A d[K];
    load<K>(in, i, x);
    term_grads<Term>(x, g, d);
    for (int k = 0; k < K; ++k) out[k][i] = narrow<S>(d[k]);
  }
}

template <typename S, int K>
std::array<const S*, K> data(const TermTensors<K>& tensors) {
  std::array<const S*, K> p;
  for (int k = 0; k < K; ++k) p[k] = reinterpret_cast<const S*>(tensors[k].const_data_ptr());
  return p;
}

template <int K>
TermTensors<K> contiguous(const TermTensors<K>& tensors) {
  TermTensors<K> out;
  for (int k = 0; k < K; ++k) out[k] = tensors[k].contiguous();
  return out;
}

}  // namespace

// The reduced loss of a term over its inputs (of one shape, dtype and device).
template <typename Term>
at::Tensor CpuTerms::forward(const TermTensors<Term::kInputs>& inputs_in,
                             const LatentTermSpec& spec) {
  const TermTensors<Term::kInputs> inputs = contiguous<Term::kInputs>(inputs_in);
  const at::Tensor& first = inputs[0];
  const int64_t numel = first.numel();
  std::vector<double> chunk_sums(static_cast<size_t>((numel + kChunk - 1) / kChunk));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, first.scalar_type(), "latent_term",
                                  [&] {
    using S = typename StorageOf<scalar_t>::type;
    using A = typename AccumulateOf<scalar_t>::type;
    const std::array<const S*, Term::kInputs> in = data<S, Term::kInputs>(inputs);
    for_each_chunk(numel, [&](int64_t c, int64_t begin, int64_t count) {
      std::array<const S*, Term::kInputs> chunk = in;
      for (auto& p : chunk) p += begin;
      chunk_sums[c] = sum_of_elements<Term, S, A>(chunk, count);
    });
  });
  double total = 0;
  for (const double s : chunk_sums) total += s;
  total /= latent_divisor(spec.reduction, first.size(0), numel);
  at::Tensor loss = new_output({}, latent_loss_dtype(first.scalar_type()));
  AT_DISPATCH_FLOATING_TYPES(loss.scalar_type(), "latent_term_loss", [&] {
    *loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(total);
  });
  return loss;
}

// The gradients of a term's inputs for the upstream gradient grad_loss of its loss.
template <typename Term>
TermTensors<Term::kInputs> CpuTerms::backward(const at::Tensor& grad_loss,
                                              const TermTensors<Term::kInputs>& inputs_in,
                                              const LatentTermSpec& spec) {
  constexpr int K = Term::kInputs;
  const TermTensors<K> inputs = contiguous<K>(inputs_in);
  const at::Tensor& first = inputs[0];
  const int64_t numel = first.numel();
  const double g = grad_loss.item<double>() / latent_divisor(spec.reduction, first.size(0), numel);
  TermTensors<K> grads;
  for (auto& t : grads) t = new_output(first.sizes(), first.scalar_type());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, first.scalar_type(),
                                  "latent_term_backward", [&] {
    using S = typename StorageOf<scalar_t>::type;
    using A = typename AccumulateOf<scalar_t>::type;
    const std::array<const S*, K> in = data<S, K>(inputs);
    std::array<S*, K> out;
    for (int k = 0; k < K; ++k) out[k] = reinterpret_cast<S*>(grads[k].mutable_data_ptr());
    const A ga = static_cast<A>(g);
    for_each_chunk(numel, [&](int64_t, int64_t begin, int64_t count) {
      std::array<const S*, K> in_at = in;
      std::array<S*, K> out_at = out;
      for (int k = 0; k < K; ++k) {
        in_at[k] += begin;
        out_at[k] += begin;
      }
      element_grads<Term, S, A>(in_at, ga, out_at, count);
    });
  });
  return grads;
}

}  // namespace i2i_fast::gaussian_nll::cpu

// ---------------------------------------------------------------------------------------------
// The CPU kernels of the operators (schemas in gaussian_nll_ops.cpp; each runs its operator's
// checks first, device_kernels.h).

TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  i2i_fast::register_kernels<
      i2i_fast::LatentTermKernels<i2i_fast::gaussian_nll::cpu::CpuTerms>>(m);
}
