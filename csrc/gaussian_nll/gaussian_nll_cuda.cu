// CUDA kernels of the Gaussian NLL operators, forward and backward.
//
// The definitions (per-element value and gradients, reductions) are in common.h, shared with the
// CPU kernels (gaussian_nll_cpu.cpp). Accumulation is in float32 for float16 / bfloat16 / float32
// inputs (float64 for float64); partial sums are merged in float64. The inputs are read as
// contiguous memory (other layouts are copied first); the gradients are contiguous.
//
// Forward: each block sums the element losses of a chunk of kChunk elements (16-byte loads when
//   the pointers and the element count allow) with a fixed-order block reduction. A call of one
//   chunk (MISO's codes: 8 x 8 values) is one launch: its block writes the loss. Larger calls
//   write one partial per block, and one finalize block adds them in float64 in a fixed order and
//   divides. No atomics: the result is identical from run to run.
// Backward: one grid-stride launch, elementwise, writing dz, dmu = -dz and dlogvar; grad_loss is
//   read on the device (no host synchronisation).
//
// Every kernel runs on the current stream, uses 64-bit offsets and is checked with
// C10_CUDA_KERNEL_LAUNCH_CHECK.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "../common/cuda_utils.cuh"
#include "common.h"
#include "device_kernels.h"

namespace i2i_fast::gaussian_nll::cuda {
namespace {

using namespace i2i_fast::cuda;  // cuda_utils.cuh: packs, reductions, launch geometry

constexpr int kBlock = 256;  // threads per block of every kernel
constexpr int64_t kElemsPerThread = 16;
constexpr int64_t kChunk = kBlock * kElemsPerThread;  // forward: elements per block
// Loop unrolling of the items of a thread: all of them, except in float64.
template <typename A, int items>
constexpr int kUnrollItems = sizeof(A) == 8 ? 1 : items;

// One block per chunk: the chunk's sum of element losses, into partials[block]; with a single
// chunk, the loss itself (the sum divided by `divisor`) into out.
template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    nll_chunk_sums(const T* __restrict__ z, const T* __restrict__ mu,
                   const T* __restrict__ logvar, int64_t numel, A* __restrict__ partials,
                   double divisor, A* __restrict__ out) {
  constexpr int ITEMS = static_cast<int>(kElemsPerThread) / VEC;
  __shared__ A scratch[kBlock / kWarpSize];
  const int64_t start = static_cast<int64_t>(blockIdx.x) * kChunk;
  A sum = 0;
  // float64's exp is a long software routine: unrolled over the items it spills registers.
#pragma unroll(kUnrollItems<A, ITEMS>)
  for (int i = 0; i < ITEMS; ++i) {
    const int64_t e = start + (static_cast<int64_t>(i) * kBlock + threadIdx.x) * VEC;
    if (e < numel) {  // numel is a multiple of VEC
      const Pack<T, VEC> zp = load_pack<T, VEC>(z + e);
      const Pack<T, VEC> mp = load_pack<T, VEC>(mu + e);
      const Pack<T, VEC> lp = load_pack<T, VEC>(logvar + e);
#pragma unroll(kUnrollItems<A, VEC>)
      for (int u = 0; u < VEC; ++u) {
        sum += nll_element<A>(static_cast<A>(zp.v[u]), static_cast<A>(mp.v[u]),
                              static_cast<A>(lp.v[u]));
      }
    }
  }
  sum = team_sum(sum, kBlock, scratch);
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1) {
    *out = static_cast<A>(static_cast<double>(sum) / divisor);
  } else {
    partials[blockIdx.x] = sum;
  }
}

// One block: out = (sum of the partials in float64, in a fixed order) / divisor.
template <typename A>
__global__ void __launch_bounds__(kBlock)
    nll_finalize(const A* __restrict__ partials, int64_t count, double divisor,
                 A* __restrict__ out) {
  __shared__ double scratch[kBlock / kWarpSize];
  double sum = 0;
  for (int64_t k = threadIdx.x; k < count; k += kBlock) sum += static_cast<double>(partials[k]);
  sum = team_sum(sum, kBlock, scratch);
  if (threadIdx.x == 0) *out = static_cast<A>(sum / divisor);
}

// dz, dmu = -dz, dlogvar of every element, g = grad_loss / divisor.
template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    nll_grads(const T* __restrict__ z, const T* __restrict__ mu, const T* __restrict__ logvar,
              int64_t numel, const A* __restrict__ grad_loss, double divisor, T* __restrict__ dz,
              T* __restrict__ dmu, T* __restrict__ dlogvar) {
  const A g = static_cast<A>(static_cast<double>(*grad_loss) / divisor);
  const int64_t packs = numel / VEC;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < packs;
       p += stride) {
    const int64_t e = p * VEC;
    const Pack<T, VEC> zp = load_pack<T, VEC>(z + e);
    const Pack<T, VEC> mp = load_pack<T, VEC>(mu + e);
    const Pack<T, VEC> lp = load_pack<T, VEC>(logvar + e);
    Pack<T, VEC> oz, om, ol;
#pragma unroll(kUnrollItems<A, VEC>)
    for (int u = 0; u < VEC; ++u) {
      const NllElementGrad<A> d = nll_element_grad<A>(
          static_cast<A>(zp.v[u]), static_cast<A>(mp.v[u]), static_cast<A>(lp.v[u]), g);
      oz.v[u] = static_cast<T>(d.dz);
      om.v[u] = static_cast<T>(-d.dz);
      ol.v[u] = static_cast<T>(d.dlogvar);
    }
    store_pack<T, VEC>(dz + e, oz);
    store_pack<T, VEC>(dmu + e, om);
    store_pack<T, VEC>(dlogvar + e, ol);
  }
}

at::Tensor gaussian_nll_forward(const at::Tensor& z_in, const at::Tensor& mu_in,
                                const at::Tensor& logvar_in, const GaussianNllSpec& spec) {
  const c10::cuda::CUDAGuard guard(z_in.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(z_in.get_device()).stream();
  const at::Tensor z = z_in.contiguous();
  const at::Tensor mu = mu_in.contiguous();
  const at::Tensor logvar = logvar_in.contiguous();
  const int64_t numel = z.numel();
  const double divisor = nll_divisor(spec.reduction, z.size(0), numel);
  const int64_t chunks = ceil_div(numel, kChunk);
  const auto loss_options = z.options().dtype(nll_loss_dtype(z.scalar_type()));
  at::Tensor loss = at::empty({}, loss_options);
  at::Tensor partials = chunks > 1 ? at::empty({chunks}, loss_options) : loss;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(), "gaussian_nll_cuda",
                                  [&] {
    using T = scalar_t;
    using A = typename AccumulateOf<T>::type;
    A* part = partials.mutable_data_ptr<A>();
    A* out = loss.mutable_data_ptr<A>();
    dispatch_pack_width<T>({z.const_data_ptr(), mu.const_data_ptr(), logvar.const_data_ptr()},
                           numel, [&](auto vec_constant) {
      constexpr int VEC = decltype(vec_constant)::value;
      nll_chunk_sums<T, A, VEC><<<grid(chunks), kBlock, 0, stream>>>(
          z.const_data_ptr<T>(), mu.const_data_ptr<T>(), logvar.const_data_ptr<T>(), numel, part,
          divisor, out);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    if (chunks > 1) {
      nll_finalize<A><<<1, kBlock, 0, stream>>>(part, chunks, divisor, out);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return loss;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_nll_backward(
    const at::Tensor& grad_loss, const at::Tensor& z_in, const at::Tensor& mu_in,
    const at::Tensor& logvar_in, const GaussianNllSpec& spec) {
  const c10::cuda::CUDAGuard guard(z_in.device());
  const int device = z_in.get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  const at::Tensor z = z_in.contiguous();
  const at::Tensor mu = mu_in.contiguous();
  const at::Tensor logvar = logvar_in.contiguous();
  const int64_t numel = z.numel();
  const at::Tensor g = grad_loss.to(nll_loss_dtype(z.scalar_type()));
  at::Tensor dz = at::empty_like(z);
  at::Tensor dmu = at::empty_like(z);
  at::Tensor dlogvar = at::empty_like(z);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(),
                                  "gaussian_nll_backward_cuda", [&] {
    using T = scalar_t;
    using A = typename AccumulateOf<T>::type;
    dispatch_pack_width<T>({z.const_data_ptr(), mu.const_data_ptr(), logvar.const_data_ptr(),
                            dz.const_data_ptr(), dmu.const_data_ptr(), dlogvar.const_data_ptr()},
                           numel, [&](auto vec_constant) {
      constexpr int VEC = decltype(vec_constant)::value;
      const dim3 blocks = grid(stride_blocks(numel / VEC, kBlock, device));
      nll_grads<T, A, VEC><<<blocks, kBlock, 0, stream>>>(
          z.const_data_ptr<T>(), mu.const_data_ptr<T>(), logvar.const_data_ptr<T>(), numel,
          g.const_data_ptr<A>(), nll_divisor(spec.reduction, z.size(0), numel),
          dz.mutable_data_ptr<T>(), dmu.mutable_data_ptr<T>(), dlogvar.mutable_data_ptr<T>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {dz, dmu, dlogvar};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The CUDA kernels of the operators (schemas in gaussian_nll_ops.cpp; each runs its operator's
// checks first, device_kernels.h).

TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
  register_kernels<GaussianNllKernels<&gaussian_nll_forward, &gaussian_nll_backward>>(m);
}

}  // namespace i2i_fast::gaussian_nll::cuda
