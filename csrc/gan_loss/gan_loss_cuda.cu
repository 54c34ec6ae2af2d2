// CUDA kernels of the GAN loss family: gan_loss and r1_penalty, forward and backward.
//
// The definitions (per-element function, labels, reductions) are in common.h, shared with the CPU
// kernels (gan_loss_cpu.cpp). Accumulation is in float32 for float16 / bfloat16 / float32 inputs (float64
// for float64); partial sums are merged in float64.
//
// gan_loss forward: every scale in one launch, then one tiny launch for the result.
//   The selected elements of a call are cut into tiles of at most kLossTile elements, each inside
//   one (scale, sample) segment: sample n of scale s contributes the R_s elements of its head
//   domain[n], a contiguous run at n * K_s * R_s + domain[n] * R_s of the (contiguous) scale. The
//   scales' pointers and sizes travel in a small struct (ScaleTable, up to kMaxScales scales per
//   launch; more scales are processed in groups whose results are added). One warp sums one tile
//   (coalesced loads, lane-strided) and writes one partial. The finalize kernel (one block) adds
//   each segment's partials in float64 in a fixed order, then the segments into the per-sample
//   values (reduction "none") or the scalar (mean / sum) with a fixed tree. Tiles depend only on
//   the shapes, so the result is identical from run to run (no atomics).
// gan_loss backward: one grid-stride launch over the concatenated elements of every scale (all
//   heads): the selected head gets f'(x) * upstream(scale, sample), the others 0. grad_loss is read
//   on the device (no host synchronisation).
// r1_penalty forward: per-sample sums of squares. Each block reduces a chunk of kR1Chunk elements
//   of one sample (16-byte loads when the pointer and the per-sample size allow), a finalize
//   kernel merges the chunks per sample in float64 and reduces over samples.
// r1_penalty backward: dx = 2 * weight * c_n * x, elementwise with 16-byte loads and stores, in
//   x's layout (contiguous, channels-last, any batch-major dense layout; others are copied to
//   contiguous first, as on the CPU).
//
// Discriminator outputs are small (MUNIT: 2,688 values per call), so gan_loss is bound by launch
// latency, not bandwidth: its kernels use scalar loads and few launches. R1's gradients are large
// ((8, 3, 256, 256)): its kernels are written for bandwidth.
//
// Domain indices are read on the device only. The Python layer checks their range before the call
// (a host sync); a direct operator call or a compiled graph skips that check, and then a sample
// whose index is outside [0, K) gets a NaN loss and NaN gradients at that scale -- never a read
// outside the tensor.
//
// Every kernel runs on the current stream, uses 64-bit offsets and is checked with
// C10_CUDA_KERNEL_LAUNCH_CHECK.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <optional>
#include <vector>

#include "../common/cuda_utils.cuh"
#include "common.h"
#include "device_kernels.h"

namespace i2i_fast::gan_loss::cuda {
namespace {

using namespace i2i_fast::cuda;  // cuda_utils.cuh: packs, reductions, launch geometry

constexpr int kBlock = 256;                       // threads per block of every kernel
constexpr int kWarpsPerBlock = kBlock / kWarpSize;
constexpr int kMaxScales = 8;                     // scales per launch (kernel-argument struct)
constexpr int64_t kLossTile = kWarpSize * 16;     // gan_loss: elements per warp tile
constexpr int64_t kR1ElemsPerThread = 32;
constexpr int64_t kR1Chunk = kBlock * kR1ElemsPerThread;  // r1: elements per block

template <typename A>
__device__ __forceinline__ A quiet_nan() {
  return std::numeric_limits<A>::quiet_NaN();
}

// ---------------------------------------------------------------------------------------------
// The scales of one launch.

template <typename T>
struct ScaleArgs {
  const T* data;   // contiguous (N, K, R) (K = 1 without a domain)
  T* grad;         // backward: the gradient, same shape
  int64_t heads;   // K
  int64_t per_head;  // R: selected elements per sample
  int64_t tiles_per_sample;  // forward: ceil(R / kLossTile)
  int64_t tile_base;         // forward: index of the scale's first tile
  int64_t elem_base;         // backward: offset of the scale in the concatenated elements
};

template <typename T>
struct ScaleTable {
  ScaleArgs<T> scale[kMaxScales];
  int count;
  int64_t n;              // N, the batch size
  const void* domain;     // nullptr: no heads (every sample uses head 0 of K = 1)
  int64_t domain_stride;  // in elements
  bool domain_int32;      // int32 indices (else int64)

  // domain[sample], or 0 without a domain.
  __device__ __forceinline__ int64_t head_of(int64_t sample) const {
    if (domain == nullptr) return 0;
    const int64_t i = sample * domain_stride;
    return domain_int32 ? static_cast<int64_t>(static_cast<const int32_t*>(domain)[i])
                        : static_cast<const int64_t*>(domain)[i];
  }
  // The last scale whose range (by `base` of member) starts at or before `index`.
  __device__ __forceinline__ int scale_of_tile(int64_t tile) const {
    int s = 0;
    for (int i = 1; i < count; ++i) s = scale[i].tile_base <= tile ? i : s;
    return s;
  }
  __device__ __forceinline__ int scale_of_element(int64_t e) const {
    int s = 0;
    for (int i = 1; i < count; ++i) s = scale[i].elem_base <= e ? i : s;
    return s;
  }
};

// What the finalize kernel needs about one scale's segments.
struct SegmentScale {
  int64_t tile_base;
  int64_t tiles_per_sample;
  double divisor;  // per-sample value = segment sum / divisor (gan_loss: R; r1: 1)
};

struct SegmentTable {
  SegmentScale scale[kMaxScales];
  int count;
  int64_t n;
};

// ---------------------------------------------------------------------------------------------
// Kernels.

// One warp per tile: the sum of f(x) over the tile's elements, written to partials[tile].
template <ElementLoss kind, typename T, typename A>
__global__ void __launch_bounds__(kBlock)
    gan_loss_tile_sums(ScaleTable<T> table, int64_t total_tiles, A label, A sign,
                       A* __restrict__ partials) {
  const int64_t tile =
      static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (tile >= total_tiles) return;  // whole warps
  const int lane = threadIdx.x % kWarpSize;
  const ScaleArgs<T>& sc = table.scale[table.scale_of_tile(tile)];
  const int64_t local = tile - sc.tile_base;
  const int64_t sample = local / sc.tiles_per_sample;
  const int64_t start = (local - sample * sc.tiles_per_sample) * kLossTile;
  const int64_t length = min(kLossTile, sc.per_head - start);
  const int64_t head = table.head_of(sample);
  if (head < 0 || head >= sc.heads) {
    if (lane == 0) partials[tile] = quiet_nan<A>();
    return;
  }
  const T* x = sc.data + (sample * sc.heads + head) * sc.per_head + start;
  A sum = 0;
#pragma unroll 4
  for (int64_t i = lane; i < length; i += kWarpSize) {
    sum += element_loss<kind, A>(static_cast<A>(x[i]), label, sign);
  }
  sum = warp_sum(sum);
  if (lane == 0) partials[tile] = sum;
}

// One block. Segment (s, n) = the partials of sample n at scale s, summed in float64 by one warp
// into seg[s * N + n]; then per sample, sum over s of seg / divisor_s, times `weight`:
//   none: out[n];  sum: out = sum over n;  mean: out = sum over n and s of seg / (N divisor_s).
template <typename A>
__global__ void __launch_bounds__(kBlock)
    finalize_segments(const A* __restrict__ partials, SegmentTable table, double weight,
                      Reduction reduction, double* __restrict__ seg, A* __restrict__ out) {
  __shared__ double scratch[kBlock];
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t n = table.n;
  for (int64_t q = warp; q < table.count * n; q += kWarpsPerBlock) {
    const int64_t s = q / n;
    const int64_t sample = q - s * n;
    const SegmentScale& sc = table.scale[s];
    const A* p = partials + sc.tile_base + sample * sc.tiles_per_sample;
    double sum = 0;
    for (int64_t k = lane; k < sc.tiles_per_sample; k += kWarpSize) {
      sum += static_cast<double>(p[k]);
    }
    sum = warp_sum(sum);
    if (lane == 0) seg[q] = sum;
  }
  __syncthreads();  // seg is written by this block only: visible after the barrier
  double total = 0;
  for (int64_t sample = threadIdx.x; sample < n; sample += kBlock) {
    double v = 0;
    for (int s = 0; s < table.count; ++s) {
      const double divisor = table.scale[s].divisor;
      const double segment = seg[s * n + sample];
      v += reduction == Reduction::kMean ? segment / (static_cast<double>(n) * divisor)
           : reduction == Reduction::kSum ? segment
                                          : segment / divisor;
    }
    if (reduction == Reduction::kNone) {
      out[sample] = static_cast<A>(weight * v);
    } else {
      total += v;
    }
  }
  if (reduction == Reduction::kNone) return;  // the whole block: no barrier follows
  scratch[threadIdx.x] = total;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) scratch[threadIdx.x] += scratch[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = static_cast<A>(weight * scratch[0]);
}

// The upstream gradient of one element of (scale, sample): d loss / d f(x).
template <typename A>
__device__ __forceinline__ A loss_upstream(const A* grad_loss, Reduction reduction, int64_t n,
                                           int64_t sample, int64_t per_head) {
  // In float64 first, as the CPU kernels compute it.
  switch (reduction) {
    case Reduction::kMean:
      return static_cast<A>(static_cast<double>(grad_loss[0]) /
                            (static_cast<double>(n) * static_cast<double>(per_head)));
    case Reduction::kSum:
      return grad_loss[0];
    default:
      return static_cast<A>(static_cast<double>(grad_loss[sample]) /
                            static_cast<double>(per_head));
  }
}

// Grid-stride over the concatenated elements of every scale of the launch.
template <ElementLoss kind, typename T, typename A>
__global__ void __launch_bounds__(kBlock)
    gan_loss_grads(ScaleTable<T> table, int64_t total, const A* __restrict__ grad_loss,
                   Reduction reduction, A label, A sign) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const ScaleArgs<T>& sc = table.scale[table.scale_of_element(e)];
    const int64_t local = e - sc.elem_base;
    const int64_t block = sc.heads * sc.per_head;
    const int64_t sample = local / block;
    const int64_t head = (local - sample * block) / sc.per_head;
    const int64_t wanted = table.head_of(sample);
    A g;
    if (wanted < 0 || wanted >= sc.heads) {
      g = quiet_nan<A>();
    } else if (head != wanted) {
      g = A(0);
    } else {
      const A up = loss_upstream(grad_loss, reduction, table.n, sample, sc.per_head);
      g = element_loss_grad<kind, A>(static_cast<A>(sc.data[local]), label, sign, up);
    }
    sc.grad[local] = static_cast<T>(g);
  }
}

// One block per chunk of kR1Chunk elements of one sample: the chunk's sum of squares.
template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    r1_chunk_sums(const T* __restrict__ x, int64_t per_sample, int64_t chunks,
                  A* __restrict__ partials) {
  constexpr int ITEMS = static_cast<int>(kR1ElemsPerThread) / VEC;
  __shared__ A scratch[kWarpsPerBlock];
  const int64_t b = blockIdx.x;
  const int64_t sample = b / chunks;
  const int64_t start = (b - sample * chunks) * kR1Chunk;
  const int64_t length = min(kR1Chunk, per_sample - start);  // a multiple of VEC
  const T* base = x + sample * per_sample + start;
  A sums[ITEMS];
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    sums[i] = 0;
    const int64_t e = (static_cast<int64_t>(i) * kBlock + threadIdx.x) * VEC;
    if (e < length) {
      const Pack<T, VEC> p = load_pack<T, VEC>(base + e);
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        const A v = static_cast<A>(p.v[u]);
        sums[i] += v * v;
      }
    }
  }
  A sum = 0;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) sum += sums[i];
  sum = team_sum(sum, kBlock, scratch);
  if (threadIdx.x == 0) partials[b] = sum;
}

// dx = 2 * weight * c_n * x over packs of VEC elements (per_sample is a multiple of VEC).
template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    r1_grads(const T* __restrict__ x, T* __restrict__ dx, int64_t numel, int64_t per_sample,
             int64_t n, const A* __restrict__ grad_loss, Reduction reduction, double two_weight) {
  const int64_t packs = numel / VEC;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < packs;
       p += stride) {
    const int64_t e = p * VEC;
    const int64_t sample = e / per_sample;
    const double g = reduction == Reduction::kNone ? static_cast<double>(grad_loss[sample])
                     : reduction == Reduction::kMean
                         ? static_cast<double>(grad_loss[0]) / static_cast<double>(n)
                         : static_cast<double>(grad_loss[0]);
    const A factor = static_cast<A>(two_weight * g);
    const Pack<T, VEC> in = load_pack<T, VEC>(x + e);
    Pack<T, VEC> o;
#pragma unroll
    for (int u = 0; u < VEC; ++u) o.v[u] = static_cast<T>(factor * static_cast<A>(in.v[u]));
    store_pack<T, VEC>(dx + e, o);
  }
}

// ---------------------------------------------------------------------------------------------
// Host side.

// The domain fields of a table (none without a domain).
template <typename T>
void set_domain(ScaleTable<T>& table, const std::optional<at::Tensor>& domain) {
  table.domain = nullptr;
  table.domain_stride = 0;
  table.domain_int32 = false;
  if (domain.has_value() && domain->defined()) {
    table.domain = domain->const_data_ptr();
    table.domain_stride = domain->stride(0);
    table.domain_int32 = domain->scalar_type() == at::kInt;
  }
}

// Scales [first, first + count) of `dense` as one launch's table (forward fields).
template <typename T>
ScaleTable<T> forward_table(const std::vector<at::Tensor>& dense, size_t first, size_t count,
                            bool with_heads, const std::optional<at::Tensor>& domain,
                            int64_t& total_tiles) {
  ScaleTable<T> table{};
  table.count = static_cast<int>(count);
  table.n = dense[0].size(0);
  set_domain(table, domain);
  total_tiles = 0;
  for (size_t i = 0; i < count; ++i) {
    const at::Tensor& x = dense[first + i];
    ScaleArgs<T>& sc = table.scale[i];
    sc.data = x.const_data_ptr<T>();
    sc.grad = nullptr;
    sc.heads = with_heads ? x.size(1) : 1;
    sc.per_head = x.numel() / (table.n * sc.heads);
    sc.tiles_per_sample = ceil_div(sc.per_head, kLossTile);
    sc.tile_base = total_tiles;
    sc.elem_base = 0;
    total_tiles += table.n * sc.tiles_per_sample;
  }
  return table;
}

std::vector<at::Tensor> dense_scales(at::TensorList outputs) {
  std::vector<at::Tensor> dense;
  dense.reserve(outputs.size());
  for (const at::Tensor& x : outputs) dense.push_back(x.contiguous());
  return dense;
}

at::Tensor gan_loss_forward(at::TensorList outputs, const std::optional<at::Tensor>& domain,
                            const GanLossSpec& spec) {
  const c10::cuda::CUDAGuard guard(outputs[0].device());
  const int device = outputs[0].get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  const bool with_heads = domain.has_value() && domain->defined();
  const std::vector<at::Tensor> dense = dense_scales(outputs);
  const int64_t n = dense[0].size(0);
  const at::ScalarType loss_type = loss_dtype_of(dense[0].scalar_type());
  const auto loss_options = dense[0].options().dtype(loss_type);
  at::Tensor result;
  for (size_t first = 0; first < dense.size(); first += kMaxScales) {
    const size_t count = std::min<size_t>(kMaxScales, dense.size() - first);
    at::Tensor loss = spec.reduction == Reduction::kNone ? at::empty({n}, loss_options)
                                                         : at::empty({}, loss_options);
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, dense[0].scalar_type(), "gan_loss_forward_cuda", [&] {
          using T = scalar_t;
          using A = typename AccumulateOf<T>::type;
          int64_t total_tiles = 0;
          const ScaleTable<T> table =
              forward_table<T>(dense, first, count, with_heads, domain, total_tiles);
          SegmentTable segments{};
          segments.count = table.count;
          segments.n = n;
          for (int s = 0; s < table.count; ++s) {
            segments.scale[s] = {table.scale[s].tile_base, table.scale[s].tiles_per_sample,
                                 static_cast<double>(table.scale[s].per_head)};
          }
          at::Tensor partials = at::empty({total_tiles}, loss_options);
          at::Tensor seg = at::empty({table.count * n}, loss_options.dtype(at::kDouble));
          A* part = partials.mutable_data_ptr<A>();
          dispatch_element_loss(spec.loss, [&](auto kind_constant) {
            constexpr ElementLoss kind = decltype(kind_constant)::value;
            gan_loss_tile_sums<kind, T, A>
                <<<grid(ceil_div(total_tiles, kWarpsPerBlock)), kBlock, 0, stream>>>(
                    table, total_tiles, static_cast<A>(spec.label), static_cast<A>(spec.sign),
                    part);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          });
          finalize_segments<A><<<1, kBlock, 0, stream>>>(part, segments, 1.0, spec.reduction,
                                                         seg.mutable_data_ptr<double>(),
                                                         loss.mutable_data_ptr<A>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    result = result.defined() ? result + loss : loss;
  }
  return result;
}

std::vector<at::Tensor> gan_loss_backward(const at::Tensor& grad_loss, at::TensorList outputs,
                                          const std::optional<at::Tensor>& domain,
                                          const GanLossSpec& spec) {
  const c10::cuda::CUDAGuard guard(outputs[0].device());
  const int device = outputs[0].get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  const bool with_heads = domain.has_value() && domain->defined();
  const std::vector<at::Tensor> dense = dense_scales(outputs);
  const int64_t n = dense[0].size(0);
  const at::ScalarType acc = loss_dtype_of(dense[0].scalar_type());
  const at::Tensor g = grad_loss.to(acc).contiguous();
  std::vector<at::Tensor> grads;
  grads.reserve(dense.size());
  for (const at::Tensor& x : dense) grads.push_back(at::empty(x.sizes(), x.options()));
  for (size_t first = 0; first < dense.size(); first += kMaxScales) {
    const size_t count = std::min<size_t>(kMaxScales, dense.size() - first);
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, dense[0].scalar_type(), "gan_loss_backward_cuda", [&] {
          using T = scalar_t;
          using A = typename AccumulateOf<T>::type;
          int64_t unused_tiles = 0;
          ScaleTable<T> table =
              forward_table<T>(dense, first, count, with_heads, domain, unused_tiles);
          int64_t total = 0;
          for (size_t i = 0; i < count; ++i) {
            table.scale[i].grad = grads[first + i].mutable_data_ptr<T>();
            table.scale[i].elem_base = total;
            total += dense[first + i].numel();
          }
          dispatch_element_loss(spec.loss, [&](auto kind_constant) {
            constexpr ElementLoss kind = decltype(kind_constant)::value;
            const dim3 blocks = grid(stride_blocks(total, kBlock, device));
            gan_loss_grads<kind, T, A><<<blocks, kBlock, 0, stream>>>(
                table, total, g.const_data_ptr<A>(), spec.reduction, static_cast<A>(spec.label),
                static_cast<A>(spec.sign));
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          });
        });
  }
  return grads;
}

// ----- r1_penalty -----

// Sample n occupies the memory run [n * numel / N, (n + 1) * numel / N) (the CPU kernels' rule).
bool is_batch_major_dense(const at::Tensor& x) {
  if (!x.is_non_overlapping_and_dense()) return false;
  return x.size(0) == 1 || x.stride(0) == x.numel() / x.size(0);
}

at::Tensor batch_major(const at::Tensor& x) {
  return is_batch_major_dense(x) ? x : x.contiguous();
}

at::Tensor r1_penalty_forward(const at::Tensor& grads, double weight, Reduction reduction) {
  const c10::cuda::CUDAGuard guard(grads.device());
  const int device = grads.get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  const at::Tensor x = batch_major(grads);
  const int64_t n = x.size(0);
  const int64_t per_sample = x.numel() / n;
  const int64_t chunks = ceil_div(per_sample, kR1Chunk);
  const auto loss_options = x.options().dtype(loss_dtype_of(x.scalar_type()));
  at::Tensor loss = reduction == Reduction::kNone ? at::empty({n}, loss_options)
                                                  : at::empty({}, loss_options);
  at::Tensor partials = at::empty({n * chunks}, loss_options);
  at::Tensor seg = at::empty({n}, loss_options.dtype(at::kDouble));
  SegmentTable segments{};
  segments.count = 1;
  segments.n = n;
  segments.scale[0] = {0, chunks, 1.0};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "r1_penalty_cuda",
                                  [&] {
    using T = scalar_t;
    using A = typename AccumulateOf<T>::type;
    A* part = partials.mutable_data_ptr<A>();
    dispatch_pack_width<T>({x.const_data_ptr()}, per_sample, [&](auto vec_constant) {
      constexpr int VEC = decltype(vec_constant)::value;
      r1_chunk_sums<T, A, VEC><<<grid(n * chunks), kBlock, 0, stream>>>(
          x.const_data_ptr<T>(), per_sample, chunks, part);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    finalize_segments<A><<<1, kBlock, 0, stream>>>(part, segments, weight, reduction,
                                                   seg.mutable_data_ptr<double>(),
                                                   loss.mutable_data_ptr<A>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return loss;
}

at::Tensor r1_penalty_backward(const at::Tensor& grad_loss, const at::Tensor& grads, double weight,
                               Reduction reduction) {
  const c10::cuda::CUDAGuard guard(grads.device());
  const int device = grads.get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  const at::Tensor x = batch_major(grads);
  const int64_t n = x.size(0);
  const int64_t per_sample = x.numel() / n;
  const at::Tensor g = grad_loss.to(loss_dtype_of(x.scalar_type())).contiguous();
  at::Tensor dx = at::empty_like(x);  // x's strides (x is dense)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "r1_penalty_backward_cuda", [&] {
    using T = scalar_t;
    using A = typename AccumulateOf<T>::type;
    dispatch_pack_width<T>({x.const_data_ptr(), dx.const_data_ptr()}, per_sample,
                        [&](auto vec_constant) {
      constexpr int VEC = decltype(vec_constant)::value;
      const dim3 blocks = grid(stride_blocks(x.numel() / VEC, kBlock, device));
      r1_grads<T, A, VEC><<<blocks, kBlock, 0, stream>>>(
          x.const_data_ptr<T>(), dx.mutable_data_ptr<T>(), x.numel(), per_sample, n,
          g.const_data_ptr<A>(), reduction, 2.0 * weight);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return dx;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The CUDA kernels of the operators (schemas in gan_loss_ops.cpp; each runs its operator's checks
// first, device_kernels.h, which read no domain values on the host).

TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
  register_kernels<GanLossKernels<&gan_loss_forward, &gan_loss_backward, &r1_penalty_forward,
                                  &r1_penalty_backward>>(m);
}

}  // namespace i2i_fast::gan_loss::cuda
