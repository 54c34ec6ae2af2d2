// latent_conv2d and latent_conv_transpose2d on CUDA: the two passes over the output (common.h has
// the plan, device_kernels.h the operators around them; the convolution of x and its backward
// are ATen's, i.e. cuDNN).
//
//   add_table_kernel: out[n, o, i, j] += Tab[n, o, class(i), class(j)] in place; a grid-stride
//     loop over the output in memory order (j fastest for NCHW, o fastest for channels-last), so
//     loads and stores are coalesced; the table (N x O x a few dozen floats) stays in L1/L2.
//   sum_by_class_kernel: S[n, o, r, c] = the sum of grad over the rows of r x the columns of c
//     (a rectangle for a conv2d; every stride-th row and column of one for a transposed conv's
//     interior phases).
//     NCHW: one block per (n, o, r, c), threads over the class's elements (consecutive j for a
//     conv2d: coalesced), a block reduction. Channels-last: one block per (n, r, c) and a
//     group of 32 channels, the threads of a warp on consecutive channels (coalesced) and the
//     warps over the rectangle's pixels, then a reduction across warps in shared memory.
//   Other layouts are read through a contiguous copy. Sums in float32 (float64 for float64), in
//   an order fixed by the shape: deterministic, no atomics.
//
// Not yet run on a GPU (compiled in CI); the block sizes are first choices to tune.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/cuda_utils.cuh"
#include "device_kernels.h"

namespace i2i_fast::latent_conv::cuda {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t, bool kChannelsLast>
__global__ void add_table_kernel(scalar_t* __restrict__ out,
                                 const AccumulateOf_t<scalar_t>* __restrict__ table, int64_t total,
                                 int64_t channels, AxisPlan rows, AxisPlan cols) {
  using acc_t = AccumulateOf_t<scalar_t>;
  const int64_t kr = rows.classes(), kc = cols.classes();
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, o, i, j, t;
    if (kChannelsLast) {
      o = idx % channels;
      t = idx / channels;
      j = t % cols.out;
      t /= cols.out;
      i = t % rows.out;
      n = t / rows.out;
    } else {
      j = idx % cols.out;
      t = idx / cols.out;
      i = t % rows.out;
      t /= rows.out;
      o = t % channels;
      n = t / channels;
    }
    const acc_t term = table[((n * channels + o) * kr + rows.class_of(i)) * kc + cols.class_of(j)];
    out[idx] = static_cast<scalar_t>(static_cast<acc_t>(out[idx]) + term);
  }
}

}  // namespace

void add_table_cuda(at::Tensor& out, const at::Tensor& table, const LatentConvSpec& s) {
  const bool channels_last =
      !out.is_contiguous() && out.is_contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor target = out.is_contiguous() || channels_last ? out : out.contiguous();
  const int64_t total = target.numel();
  if (total == 0) return;
  const int device = target.get_device();
  const c10::cuda::CUDAGuard guard(target.device());
  const int64_t blocks = std::min<int64_t>(
      i2i_fast::cuda::ceil_div(total, kThreads),
      int64_t(i2i_fast::cuda::multiprocessor_count(device)) * 8);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(target.get_device()).stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, target.scalar_type(), "latent_conv", [&] {
    using acc_t = AccumulateOf_t<scalar_t>;
    if (channels_last) {
      add_table_kernel<scalar_t, true><<<blocks, kThreads, 0, stream>>>(
          target.data_ptr<scalar_t>(), table.data_ptr<acc_t>(), total, s.out_channels, s.rows,
          s.cols);
    } else {
      add_table_kernel<scalar_t, false><<<blocks, kThreads, 0, stream>>>(
          target.data_ptr<scalar_t>(), table.data_ptr<acc_t>(), total, s.out_channels, s.rows,
          s.cols);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (!target.is_same(out)) out.copy_(target);
}

namespace {

template <typename acc_t>
__device__ acc_t block_sum(acc_t v, acc_t* scratch) {
  v = i2i_fast::cuda::warp_sum(v);
  const int lane = threadIdx.x % i2i_fast::cuda::kWarpSize;
  const int warp = threadIdx.x / i2i_fast::cuda::kWarpSize;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  acc_t total = 0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < int(blockDim.x) / i2i_fast::cuda::kWarpSize; ++w) total += scratch[w];
  }
  return total;
}

// grid (N * O, Kr * Kc)
template <typename scalar_t>
__global__ void sum_by_class_nchw_kernel(const scalar_t* __restrict__ grad,
                                         AccumulateOf_t<scalar_t>* __restrict__ sums,
                                         AxisPlan rows, AxisPlan cols) {
  using acc_t = AccumulateOf_t<scalar_t>;
  __shared__ acc_t scratch[kThreads / 32];
  const int64_t plane = blockIdx.x;
  const int64_t kc = cols.classes();
  const int64_t r = blockIdx.y / kc, c = blockIdx.y % kc;
  int64_t i0, ni, si, j0, nj, sj;
  rows.rows_of(r, &i0, &ni, &si);
  cols.rows_of(c, &j0, &nj, &sj);
  const int64_t count = ni * nj;
  const scalar_t* base = grad + plane * rows.out * cols.out;
  acc_t acc = 0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t i = i0 + (e / nj) * si, j = j0 + (e % nj) * sj;
    acc += static_cast<acc_t>(base[i * cols.out + j]);
  }
  const acc_t total = block_sum(acc, scratch);
  if (threadIdx.x == 0) sums[plane * rows.classes() * kc + blockIdx.y] = total;
}

// grid (N * Kr * Kc, ceil(O / 32)); block (32 channels) x (kThreads / 32 pixel lanes)
template <typename scalar_t>
__global__ void sum_by_class_nhwc_kernel(const scalar_t* __restrict__ grad,
                                         AccumulateOf_t<scalar_t>* __restrict__ sums,
                                         int64_t channels, AxisPlan rows, AxisPlan cols) {
  using acc_t = AccumulateOf_t<scalar_t>;
  constexpr int kLanes = kThreads / 32;
  __shared__ acc_t scratch[kLanes][32];
  const int64_t kr = rows.classes(), kc = cols.classes();
  const int64_t n = blockIdx.x / (kr * kc), rc = blockIdx.x % (kr * kc);
  const int64_t r = rc / kc, c = rc % kc;
  const int64_t o = int64_t(blockIdx.y) * 32 + threadIdx.x % 32;
  const int lane = threadIdx.x / 32;
  int64_t i0, ni, si, j0, nj, sj;
  rows.rows_of(r, &i0, &ni, &si);
  cols.rows_of(c, &j0, &nj, &sj);
  const int64_t count = ni * nj;
  acc_t acc = 0;
  if (o < channels) {
    for (int64_t e = lane; e < count; e += kLanes) {
      const int64_t i = i0 + (e / nj) * si, j = j0 + (e % nj) * sj;
      acc += static_cast<acc_t>(grad[((n * rows.out + i) * cols.out + j) * channels + o]);
    }
  }
  scratch[lane][threadIdx.x % 32] = acc;
  __syncthreads();
  if (lane == 0 && o < channels) {
    acc_t total = 0;
    for (int l = 0; l < kLanes; ++l) total += scratch[l][threadIdx.x % 32];
    sums[((n * channels + o) * kr + r) * kc + c] = total;
  }
}

}  // namespace

at::Tensor sum_by_class_cuda(const at::Tensor& grad_in, const LatentConvSpec& s) {
  const bool channels_last =
      !grad_in.is_contiguous() && grad_in.is_contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor grad = grad_in.is_contiguous() || channels_last ? grad_in : grad_in.contiguous();
  const c10::cuda::CUDAGuard guard(grad.device());
  const int64_t kr = s.rows.classes(), kc = s.cols.classes();
  at::Tensor sums = at::empty({s.n, s.out_channels, kr, kc},
                              grad.options().dtype(accumulate_type(grad)));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(grad.get_device()).stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "latent_conv", [&] {
    using acc_t = AccumulateOf_t<scalar_t>;
    if (channels_last) {
      const dim3 blocks(static_cast<unsigned>(s.n * kr * kc),
                        static_cast<unsigned>(i2i_fast::cuda::ceil_div(s.out_channels, 32)));
      sum_by_class_nhwc_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
          grad.data_ptr<scalar_t>(), sums.data_ptr<acc_t>(), s.out_channels, s.rows, s.cols);
    } else {
      const dim3 blocks(static_cast<unsigned>(s.n * s.out_channels),
                        static_cast<unsigned>(kr * kc));
      sum_by_class_nchw_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
          grad.data_ptr<scalar_t>(), sums.data_ptr<acc_t>(), s.rows, s.cols);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return sums;
}

// The CUDA kernels of the latent_conv operators (schemas in latent_conv_ops.cpp; each runs its
// operator's checks first, device_kernels.h).
TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
  register_kernels<LatentConvKernels<&add_table_cuda, &sum_by_class_cuda>>(m);
}

}  // namespace i2i_fast::latent_conv::cuda
