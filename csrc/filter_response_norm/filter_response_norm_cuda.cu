// CUDA kernels of filter response normalization + TLU, forward and backward (the math is in
// common.h, shared with the CPU kernels).
//
// Contiguous x (NCHW): one block per (n, c) group; its threads stride over the group's H * W
//   contiguous elements (coalesced), add their sums of squares with team_sum, and write the output
//   in a second sweep (the group is in L2 by then).
// Channels-last x: one block per (sample, 32 channels); lane x of the block is a channel (one warp
//   reads 32 consecutive channels of a row: coalesced), threads y stride over the rows; the
//   kRowThreads partial sums of each channel are added in shared memory in a fixed order.
// Backward: the same two layouts; the first sweep collects Σ g, Σ g x and Σ grad_out * share_tau
//   per group (written to a (N, C, 3) buffer), the second writes grad_x. The per-channel parameter
//   gradients add the group sums over the batch with ATen (a fixed-order reduction).
// Accumulation in float32 (float64 for float64); every reduction has an order fixed by the launch
// configuration (no atomics), so results are identical from run to run. Other layouts are copied
// to contiguous first, as on the CPU.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "../common/cuda_utils.cuh"
#include "../normalization/common.h"
#include "common.h"
#include "device_kernels.h"
#include "double_backward_aten.h"

namespace i2i_fast::filter_response_norm::cuda {
namespace {

using namespace i2i_fast::cuda;  // cuda_utils.cuh: reductions, launch geometry

constexpr int kBlock = 256;      // threads per block of the contiguous kernels
constexpr int kRowThreads = 8;   // channels-last kernels: blockDim = (32 channels, kRowThreads)

template <typename A>
__device__ __forceinline__ A rstd_of(A sum_squares, int64_t count, double eps) {
  return static_cast<A>(1.0 / ::sqrt(static_cast<double>(sum_squares) / count + eps));
}

// ----- contiguous: block = one (n, c) group of S elements -----

template <typename T, typename A>
__global__ void frn_forward_rows(const T* __restrict__ x, const A* __restrict__ w,
                                 const A* __restrict__ b, const A* __restrict__ t,
                                 T* __restrict__ y, A* __restrict__ rstd, int64_t C, int64_t S,
                                 double eps) {
  __shared__ A scratch[kBlock / kWarpSize];
  const int64_t g = blockIdx.x;
  const int64_t c = g % C;
  const T* xr = x + g * S;
  A squares = 0;
  for (int64_t i = threadIdx.x; i < S; i += kBlock) {
    const A v = static_cast<A>(xr[i]);
    squares += v * v;
  }
  const A r = rstd_of(team_sum(squares, kBlock, scratch), S, eps);
  if (threadIdx.x == 0) rstd[g] = r;
  const A scale = w[c] * r, shift = b[c], tau = t[c];
  T* yr = y + g * S;
  for (int64_t i = threadIdx.x; i < S; i += kBlock) {
    yr[i] = static_cast<T>(tlu(static_cast<A>(xr[i]) * scale + shift, tau));
  }
}

template <typename T, typename A>
__global__ void frn_backward_rows(const T* __restrict__ dy, const T* __restrict__ x,
                                  const A* __restrict__ w, const A* __restrict__ b,
                                  const A* __restrict__ t, const A* __restrict__ rstd,
                                  T* __restrict__ dx, A* __restrict__ sums, int64_t C, int64_t S) {
  __shared__ A scratch[kBlock / kWarpSize];
  const int64_t g = blockIdx.x;
  const int64_t c = g % C;
  const A r = rstd[g], scale = w[c] * r, shift = b[c], tau = t[c];
  const T* xr = x + g * S;
  const T* dr = dy + g * S;
  A sg = 0, sgx = 0, st = 0;
  for (int64_t i = threadIdx.x; i < S; i += kBlock) {
    const A v = static_cast<A>(xr[i]);
    const A d = static_cast<A>(dr[i]);
    const A z = v * scale + shift;
    const A gz = d * tlu_share_z(z, tau);
    sg += gz;
    sgx += gz * v;
    st += d * tlu_share_tau(z, tau);
  }
  sg = team_sum(sg, kBlock, scratch);
  sgx = team_sum(sgx, kBlock, scratch);
  st = team_sum(st, kBlock, scratch);
  if (threadIdx.x == 0) {
    sums[g * kFrnSums + kSumG] = sg;
    sums[g * kFrnSums + kSumGX] = sgx;
    sums[g * kFrnSums + kSumGTau] = st;
  }
  const A k = scale * r * r * sgx / static_cast<A>(S);
  T* gr = dx + g * S;
  for (int64_t i = threadIdx.x; i < S; i += kBlock) {
    const A v = static_cast<A>(xr[i]);
    const A gz = static_cast<A>(dr[i]) * tlu_share_z(v * scale + shift, tau);
    gr[i] = static_cast<T>(scale * gz - k * v);
  }
}

// ----- channels-last: block = (sample n, channels c0 .. c0 + 31) over S rows of C -----

struct ColumnBlock {
  int64_t n, c;
  bool active;
};

__device__ __forceinline__ ColumnBlock column_block(int64_t C) {
  const int64_t blocks = (C + kWarpSize - 1) / kWarpSize;
  const int64_t c = (blockIdx.x % blocks) * kWarpSize + threadIdx.x;
  return {static_cast<int64_t>(blockIdx.x) / blocks, c, c < C};
}

// Adds each channel's kRowThreads partials in a fixed order; every thread of the channel gets the
// total. `part` holds kRowThreads x 32 values.
template <typename A>
__device__ __forceinline__ A column_sum(A v, A (*part)[kWarpSize]) {
  part[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  A total = 0;
  for (int j = 0; j < kRowThreads; ++j) total += part[j][threadIdx.x];
  __syncthreads();  // part may be reused right after
  return total;
}

template <typename T, typename A>
__global__ void frn_forward_columns(const T* __restrict__ x, const A* __restrict__ w,
                                    const A* __restrict__ b, const A* __restrict__ t,
                                    T* __restrict__ y, A* __restrict__ rstd, int64_t C, int64_t S,
                                    double eps) {
  __shared__ A part[kRowThreads][kWarpSize];
  const ColumnBlock cb = column_block(C);
  const int64_t base = cb.n * S * C + cb.c;
  A squares = 0;
  if (cb.active) {
    for (int64_t s = threadIdx.y; s < S; s += kRowThreads) {
      const A v = static_cast<A>(x[base + s * C]);
      squares += v * v;
    }
  }
  const A r = rstd_of(column_sum(squares, part), S, eps);
  if (!cb.active) return;  // no block-wide synchronisation below
  if (threadIdx.y == 0) rstd[cb.n * C + cb.c] = r;
  const A scale = w[cb.c] * r, shift = b[cb.c], tau = t[cb.c];
  for (int64_t s = threadIdx.y; s < S; s += kRowThreads) {
    y[base + s * C] = static_cast<T>(tlu(static_cast<A>(x[base + s * C]) * scale + shift, tau));
  }
}

template <typename T, typename A>
__global__ void frn_backward_columns(const T* __restrict__ dy, const T* __restrict__ x,
                                     const A* __restrict__ w, const A* __restrict__ b,
                                     const A* __restrict__ t, const A* __restrict__ rstd,
                                     T* __restrict__ dx, A* __restrict__ sums, int64_t C,
                                     int64_t S) {
  __shared__ A part[kRowThreads][kWarpSize];
  const ColumnBlock cb = column_block(C);
  const int64_t base = cb.n * S * C + cb.c;
  const int64_t g = cb.n * C + cb.c;
  const A r = cb.active ? rstd[g] : A(0);
  const A scale = cb.active ? w[cb.c] * r : A(0);
  const A shift = cb.active ? b[cb.c] : A(0);
  const A tau = cb.active ? t[cb.c] : A(0);
  A sg = 0, sgx = 0, st = 0;
  if (cb.active) {
    for (int64_t s = threadIdx.y; s < S; s += kRowThreads) {
      const A v = static_cast<A>(x[base + s * C]);
      const A d = static_cast<A>(dy[base + s * C]);
      const A z = v * scale + shift;
      const A gz = d * tlu_share_z(z, tau);
      sg += gz;
      sgx += gz * v;
      st += d * tlu_share_tau(z, tau);
    }
  }
  sg = column_sum(sg, part);
  sgx = column_sum(sgx, part);
  st = column_sum(st, part);
  if (!cb.active) return;
  if (threadIdx.y == 0) {
    sums[g * kFrnSums + kSumG] = sg;
    sums[g * kFrnSums + kSumGX] = sgx;
    sums[g * kFrnSums + kSumGTau] = st;
  }
  const A k = scale * r * r * sgx / static_cast<A>(S);
  for (int64_t s = threadIdx.y; s < S; s += kRowThreads) {
    const A v = static_cast<A>(x[base + s * C]);
    const A gz = static_cast<A>(dy[base + s * C]) * tlu_share_z(v * scale + shift, tau);
    dx[base + s * C] = static_cast<T>(scale * gz - k * v);
  }
}

// ----- host side -----

struct Params {
  at::Tensor weight, bias, tau;
  Params(const at::Tensor& w, const at::Tensor& b, const at::Tensor& t, at::ScalarType acc)
      : weight(w.to(acc).contiguous()), bias(b.to(acc).contiguous()), tau(t.to(acc).contiguous()) {}
};

int64_t column_blocks(int64_t n, int64_t c) { return n * ceil_div(c, kWarpSize); }

}  // namespace

std::tuple<at::Tensor, at::Tensor> frn_forward(const at::Tensor& x, const at::Tensor& weight,
                                               const at::Tensor& bias, const at::Tensor& tau,
                                               const FrnSpec& spec) {
  const c10::cuda::CUDAGuard guard(x.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const at::Tensor xd = to_dense_layout(x);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  at::Tensor y = at::empty_like(xd);
  at::Tensor rstd = at::empty({x.size(0), x.size(1)}, x.options().dtype(acc));
  const Params p(weight, bias, tau, acc);
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3);
  const bool rows = layout_of_dense(xd) == Layout::kNCS;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "frn_forward", [&] {
    using A = typename AccumulateOf<scalar_t>::type;
    const auto* xp = xd.const_data_ptr<scalar_t>();
    auto* yp = y.mutable_data_ptr<scalar_t>();
    const A* w = p.weight.const_data_ptr<A>();
    const A* b = p.bias.const_data_ptr<A>();
    const A* t = p.tau.const_data_ptr<A>();
    A* r = rstd.mutable_data_ptr<A>();
    if (rows) {
      frn_forward_rows<scalar_t, A>
          <<<grid(N * C), kBlock, 0, stream>>>(xp, w, b, t, yp, r, C, S, spec.eps);
    } else {
      frn_forward_columns<scalar_t, A><<<grid(column_blocks(N, C)), dim3(kWarpSize, kRowThreads),
                                         0, stream>>>(xp, w, b, t, yp, r, C, S, spec.eps);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {y, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> frn_backward(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& tau, const at::Tensor& rstd, const FrnSpec&) {
  const c10::cuda::CUDAGuard guard(x.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const at::Tensor xd = to_dense_layout(x);
  const Layout layout = layout_of_dense(xd);
  const at::Tensor gd = to_layout(grad_out.to(x.scalar_type()), layout);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  const at::Tensor r = rstd.to(acc).contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3);
  at::Tensor dx = at::empty_like(xd);
  at::Tensor sums = at::empty({N, C, kFrnSums}, x.options().dtype(acc));
  const Params p(weight, bias, tau, acc);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "frn_backward", [&] {
    using A = typename AccumulateOf<scalar_t>::type;
    const auto* gp = gd.const_data_ptr<scalar_t>();
    const auto* xp = xd.const_data_ptr<scalar_t>();
    auto* dxp = dx.mutable_data_ptr<scalar_t>();
    const A* w = p.weight.const_data_ptr<A>();
    const A* b = p.bias.const_data_ptr<A>();
    const A* t = p.tau.const_data_ptr<A>();
    const A* rp = r.const_data_ptr<A>();
    A* sp = sums.mutable_data_ptr<A>();
    if (layout == Layout::kNCS) {
      frn_backward_rows<scalar_t, A>
          <<<grid(N * C), kBlock, 0, stream>>>(gp, xp, w, b, t, rp, dxp, sp, C, S);
    } else {
      frn_backward_columns<scalar_t, A><<<grid(column_blocks(N, C)), dim3(kWarpSize, kRowThreads),
                                          0, stream>>>(gp, xp, w, b, t, rp, dxp, sp, C, S);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Per channel, over the batch: grad_w = Σ_n r Σ g x, grad_b = Σ_n Σ g, grad_tau = Σ_n Σ ...
  const at::Tensor s64 = sums.to(at::kDouble);
  const at::Tensor gw = (s64.select(2, kSumGX) * r.to(at::kDouble)).sum(0);
  return {dx, gw.to(weight.scalar_type()), s64.select(2, kSumG).sum(0).to(bias.scalar_type()),
          s64.select(2, kSumGTau).sum(0).to(tau.scalar_type())};
}

// No fused CUDA kernel yet: the closed form in ATen operations (double_backward_aten.h), which
// runs on the GPU as a few elementwise and reduction kernels.
std::tuple<at::Tensor, at::Tensor, at::Tensor> frn_double_backward(
    const at::Tensor& grad_grad_x, const at::Tensor& grad_out, const at::Tensor& x,
    const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& tau,
    const at::Tensor& rstd, const FrnSpec& spec) {
  const c10::cuda::CUDAGuard guard(x.device());
  return frn_double_backward_aten(grad_grad_x, at::Tensor(), at::Tensor(), at::Tensor(),
                                  grad_out, x, weight, bias, tau, rstd, spec.eps);
}

}  // namespace i2i_fast::filter_response_norm::cuda

TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
  i2i_fast::register_kernels<i2i_fast::FilterResponseNormKernels<
      &i2i_fast::filter_response_norm::cuda::frn_forward,
      &i2i_fast::filter_response_norm::cuda::frn_backward,
      &i2i_fast::filter_response_norm::cuda::frn_double_backward>>(m);
}
