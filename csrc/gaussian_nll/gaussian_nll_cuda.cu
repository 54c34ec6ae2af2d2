// CUDA kernels of the Gaussian latent terms (gaussian_nll, gaussian_kl), forward and backward,
// written once over the term (common.h: NllTerm, KlTerm).
//
// The definitions (per-element value and gradients, reductions) are in common.h, shared with the
// CPU kernels (gaussian_nll_cpu.cpp). Accumulation is in float32 for float16 / bfloat16 / float32
// inputs (float64 for float64); partial sums are merged in float64. The inputs are read as
// contiguous memory (other layouts are copied first); the gradients are contiguous.
//
// Forward: each block sums the element values of a chunk of kChunk elements (16-byte loads when
//   the pointers and the element count allow) with a fixed-order block reduction. A call of one
//   chunk (the codes of MISO, DRIT, BicycleGAN: 8 x 8 values) is one launch: its block writes the
//   loss. Larger calls write one partial per block, and one finalize block adds them in float64
//   in a fixed order and divides. No atomics: the result is identical from run to run.
// Backward: one grid-stride launch, elementwise, writing the gradient of every input; grad_loss
//   is read on the device (no host synchronisation).
//
// Every kernel runs on the current stream, uses 64-bit offsets and is checked with
// C10_CUDA_KERNEL_LAUNCH_CHECK.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <array>
#include <tuple>
#include <utility>

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

// The K input (or output) pointers of a term, passed by value to a kernel.
template <typename P, int K>
struct Pointers {
  P p[K];
};

// The values of the VEC elements from e of the K inputs, in A: x[u][k].
template <typename T, typename A, int VEC, int K>
__device__ __forceinline__ void load_elements(const Pointers<const T*, K>& in, int64_t e,
                                              A (&x)[VEC][K]) {
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const Pack<T, VEC> pack = load_pack<T, VEC>(in.p[k] + e);
#pragma unroll
    for (int u = 0; u < VEC; ++u) x[u][k] = static_cast<A>(pack.v[u]);
  }
}

// One block per chunk: the chunk's sum of element values, into partials[block]; with a single
// chunk, the loss itself (the sum divided by `divisor`) into out.
template <typename Term, typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    term_chunk_sums(Pointers<const T*, Term::kInputs> in, int64_t numel,
                    A* __restrict__ partials, double divisor, A* __restrict__ out) {
  constexpr int ITEMS = static_cast<int>(kElemsPerThread) / VEC;
  __shared__ A scratch[kBlock / kWarpSize];
  const int64_t start = static_cast<int64_t>(blockIdx.x) * kChunk;
  A sum = 0;
  // float64's exp is a long software routine: unrolled over the items it spills registers.
#pragma unroll(kUnrollItems<A, ITEMS>)
  for (int i = 0; i < ITEMS; ++i) {
    const int64_t e = start + (static_cast<int64_t>(i) * kBlock + threadIdx.x) * VEC;
    if (e < numel) {  // numel is a multiple of VEC
      A x[VEC][Term::kInputs];
      load_elements<T, A, VEC>(in, e, x);
#pragma unroll(kUnrollItems<A, VEC>)
      for (int u = 0; u < VEC; ++u) sum += term_value<Term>(x[u]);
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
    term_finalize(const A* __restrict__ partials, int64_t count, double divisor,
                  A* __restrict__ out) {
  __shared__ double scratch[kBlock / kWarpSize];
  double sum = 0;
  for (int64_t k = threadIdx.x; k < count; k += kBlock) sum += static_cast<double>(partials[k]);
  sum = team_sum(sum, kBlock, scratch);
  if (threadIdx.x == 0) *out = static_cast<A>(sum / divisor);
}

// The gradient of every input of every element, g = grad_loss / divisor. Each thread's packs of
// the inputs are overwritten by the gradients, then stored.
template <typename Term, typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    term_element_grads(Pointers<const T*, Term::kInputs> in, int64_t numel,
                       const A* __restrict__ grad_loss, double divisor,
                       Pointers<T*, Term::kInputs> out) {
  constexpr int K = Term::kInputs;
  const A g = static_cast<A>(static_cast<double>(*grad_loss) / divisor);
  const int64_t packs = numel / VEC;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  // Not unrolled: float64's exp holds many registers, and two iterations in flight spill them.
#pragma unroll 1
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < packs;
       p += stride) {
    const int64_t e = p * VEC;
    Pack<T, VEC> pack[K];
#pragma unroll
    for (int k = 0; k < K; ++k) pack[k] = load_pack<T, VEC>(in.p[k] + e);
#pragma unroll(kUnrollItems<A, VEC>)
    for (int u = 0; u < VEC; ++u) {
      A x[K];
      A d[K];
#pragma unroll
      for (int k = 0; k < K; ++k) x[k] = static_cast<A>(pack[k].v[u]);
      term_grads<Term>(x, g, d);
#pragma unroll
      for (int k = 0; k < K; ++k) pack[k].v[u] = static_cast<T>(d[k]);
    }
#pragma unroll
    for (int k = 0; k < K; ++k) store_pack<T, VEC>(out.p[k] + e, pack[k]);
  }
}

template <int K>
TermTensors<K> contiguous(const TermTensors<K>& tensors) {
  TermTensors<K> out;
  for (int k = 0; k < K; ++k) out[k] = tensors[k].contiguous();
  return out;
}

template <typename T, int K>
Pointers<const T*, K> inputs_of(const TermTensors<K>& tensors) {
  Pointers<const T*, K> in;
  for (int k = 0; k < K; ++k) in.p[k] = tensors[k].template const_data_ptr<T>();
  return in;
}

// f(VEC) with the pack width that every pointer of `a` and `b` and numel allow.
template <typename T, int K, typename F, size_t... I>
void dispatch_term_pack_width(const TermTensors<K>& a, const TermTensors<K>* b, int64_t numel,
                              F&& f, std::index_sequence<I...>) {
  if (b == nullptr) {
    dispatch_pack_width<T>({a[I].const_data_ptr()...}, numel, f);
  } else {
    dispatch_pack_width<T>({a[I].const_data_ptr()..., (*b)[I].const_data_ptr()...}, numel, f);
  }
}

// What every call of a term's kernels sets up: the inputs' device made current (first, so that
// the copies below are made there), its current stream, and the inputs as contiguous tensors.
template <int K>
struct TermCall {
  explicit TermCall(const TermTensors<K>& inputs_in)
      : guard(inputs_in[0].device()),
        device(inputs_in[0].get_device()),
        stream(c10::cuda::getCurrentCUDAStream(device).stream()),
        inputs(contiguous<K>(inputs_in)),
        numel(inputs[0].numel()) {}

  const c10::cuda::CUDAGuard guard;
  const int device;
  const cudaStream_t stream;
  const TermTensors<K> inputs;
  const int64_t numel;
};

// The Device of LatentTermKernels (device_kernels.h) on CUDA, for any term of common.h.
struct CudaTerms {
  // forward: the reduced loss of a term over its inputs (of one shape, dtype and device).
  template <typename Term>
  static at::Tensor forward(const TermTensors<Term::kInputs>& inputs_in,
                            const LatentTermSpec& spec) {
    constexpr int K = Term::kInputs;
    const TermCall<K> call(inputs_in);
    const TermTensors<K>& inputs = call.inputs;
    const at::Tensor& first = inputs[0];
    const int64_t numel = call.numel;
    const cudaStream_t stream = call.stream;
    const double divisor = latent_divisor(spec.reduction, first.size(0), numel);
    const int64_t chunks = ceil_div(numel, kChunk);
    const auto loss_options = first.options().dtype(latent_loss_dtype(first.scalar_type()));
    at::Tensor loss = at::empty({}, loss_options);
    at::Tensor partials = chunks > 1 ? at::empty({chunks}, loss_options) : loss;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, first.scalar_type(),
                                    "latent_term_cuda", [&] {
      using T = scalar_t;
      using A = typename AccumulateOf<T>::type;
      A* part = partials.mutable_data_ptr<A>();
      A* out = loss.mutable_data_ptr<A>();
      dispatch_term_pack_width<T, K>(inputs, nullptr, numel, [&](auto vec_constant) {
        constexpr int VEC = decltype(vec_constant)::value;
        term_chunk_sums<Term, T, A, VEC><<<grid(chunks), kBlock, 0, stream>>>(
            inputs_of<T, K>(inputs), numel, part, divisor, out);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }, std::make_index_sequence<K>());
      if (chunks > 1) {
        term_finalize<A><<<1, kBlock, 0, stream>>>(part, chunks, divisor, out);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    });
    return loss;
  }

  // backward: the gradients of the term's inputs, for the upstream gradient grad_loss of its loss.
  template <typename Term>
  static TermTensors<Term::kInputs> backward(const at::Tensor& grad_loss,
                                             const TermTensors<Term::kInputs>& inputs_in,
                                             const LatentTermSpec& spec) {
    constexpr int K = Term::kInputs;
    const TermCall<K> call(inputs_in);
    const at::Tensor& first = call.inputs[0];
    const at::Tensor g = grad_loss.to(latent_loss_dtype(first.scalar_type()));
    TermTensors<K> grads;
    for (auto& t : grads) t = at::empty_like(first);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, first.scalar_type(),
                                    "latent_term_backward_cuda", [&] {
      using T = scalar_t;
      using A = typename AccumulateOf<T>::type;
      Pointers<T*, K> out;
      for (int k = 0; k < K; ++k) out.p[k] = grads[k].template mutable_data_ptr<T>();
      const int64_t numel = call.numel;
      dispatch_term_pack_width<T, K>(call.inputs, &grads, numel, [&](auto vec_constant) {
        constexpr int VEC = decltype(vec_constant)::value;
        const dim3 blocks = grid(stride_blocks(numel / VEC, kBlock, call.device));
        term_element_grads<Term, T, A, VEC><<<blocks, kBlock, 0, call.stream>>>(
            inputs_of<T, K>(call.inputs), numel, g.const_data_ptr<A>(),
            latent_divisor(spec.reduction, first.size(0), numel), out);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }, std::make_index_sequence<K>());
    });
    return grads;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The CUDA kernels of the operators (schemas in gaussian_nll_ops.cpp; each runs its operator's
// checks first, device_kernels.h).

TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
  register_kernels<LatentTermKernels<CudaTerms>>(m);
}

}  // namespace i2i_fast::gaussian_nll::cuda
