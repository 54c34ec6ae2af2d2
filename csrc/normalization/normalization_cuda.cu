// CUDA kernels for AdaIN, InstanceNorm and LayerNorm (both styles), forward and backward.
//
// The math is the CPU kernels' (normalization_cpu.cpp; the pieces both use live in common.h):
//   forward   y = act((x - mean_g) * rstd_g * w[n, c] + b[n, c])
//   backward  dx = k_g * g + k_x * (x - mean_g) + k_0,  g = the gradient after the activation,
//             k_g = rstd_g * w[n, c], and k_x, k_0 from the group sums of w * g and
//             w * g * xhat (input_grad_terms); grad_bias / grad_weight are the per-(n, c) sums of
//             g and g * xhat.
// Statistics and sums accumulate in float32 (float64 for float64 inputs); partial results of
// different blocks are merged in float64. Never E[x^2] - E[x]^2: every tile computes its exact
// mean first and then its sum of squared deviations from the values it holds in registers.
//
// Layouts. x is read in its own memory order, never copied into another:
//   NCS (contiguous):    row r = n * C + c holds the S values of channel c of sample n;
//   NSC (channels-last): sample n is an S x C row-major block; channel c is its column c.
// Other strides are copied to NCS first (to_dense_layout, as on the CPU).
//
// Two ways through the work:
//  * fused: contiguous x, instance statistics, and rows short enough that one team of threads
//    holds a whole row in registers. One kernel: each team loads its row once (16-byte loads),
//    reduces it, and writes y (forward) or dx plus the per-(n, c) gradient sums (backward).
//    x and dy are read from memory exactly once.
//  * split: everything else (channels-last, layer statistics, long rows, too few rows to fill
//    the GPU). The reduction is cut into fixed tiles; each tile is reduced to a partial result
//    per (n, c); a second, tiny stage merges the partials of each (n, c), then of each sample for
//    layer statistics, in a fixed order; a last kernel applies the result elementwise. Tiles
//    depend only on the shape and dtype, so results are identical from run to run and GPU to GPU.
//    x (and dy) are read twice; to make the second read an L2 hit, the samples are processed in
//    batches whose bytes fit in half of the L2 cache.
//
// Every kernel runs on the current stream, indexes memory with 64-bit offsets, and is checked
// with C10_CUDA_KERNEL_LAUNCH_CHECK. The activation is a kernel argument (a branch that is the
// same for every thread) rather than a template parameter: it costs nothing in these
// memory-bound loops and divides the number of compiled kernels by three.
//
// Environment (read at each call, for tests and tuning):
//   I2I_FAST_CUDA_NORM_PATH=fused|split  force a path (fused falls back to split where a row does
//                                        not fit); anything else: automatic.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <tuple>
#include <type_traits>

#include "../common/activation.h"
#include "../common/cuda_utils.cuh"
#include "common.h"
#include "device_kernels.h"
#include "row_tiling.h"

namespace i2i_fast::normalization::cuda {
namespace {

using namespace i2i_fast::cuda;  // cuda_utils.cuh: packs, reductions, launch geometry
// The row kernels' tiling (row_tiling.h).
using row_tiling::fused_row_fits;
using row_tiling::fused_row_tiling;
using row_tiling::kBlock;  // also the block of the column kernels and of the merges
using row_tiling::kMaxFusedTeamBackward;
using row_tiling::kMaxFusedTeamForward;
using row_tiling::kMaxSplitTeam;
using row_tiling::pack_offset;
using row_tiling::row_elems_per_thread;
using row_tiling::RowChunk;
using row_tiling::RowTiling;
using row_tiling::split_row_tiling;

// Elements each thread of a column tile holds in registers (per tensor read).
constexpr int kColumnElemsPerThread = 16;

// Elements, and packs of VEC elements, each thread of a row team holds in registers (per tensor
// read).
template <typename T, int VEC>
constexpr int kRowElems = row_elems_per_thread(static_cast<int>(sizeof(T)), VEC);
template <typename T, int VEC>
constexpr int kRowItems = kRowElems<T, VEC> / VEC;

// ---------------------------------------------------------------------------------------------
// Per-element math.

template <typename A>
struct NormMath {
  StdKind std_kind;
  double eps;
  Activation activation;
  A slope;
};

template <typename A>
__device__ __forceinline__ A activate_runtime(Activation a, A z, A slope) {
  if (a == Activation::kRelu) return activate<Activation::kRelu>(z, slope);
  if (a == Activation::kLeakyRelu) return activate<Activation::kLeakyRelu>(z, slope);
  return z;
}

template <typename A>
__device__ __forceinline__ A activation_grad_runtime(Activation a, A z, A g, A slope) {
  if (a == Activation::kRelu) return activation_grad<Activation::kRelu>(z, g, slope);
  if (a == Activation::kLeakyRelu) return activation_grad<Activation::kLeakyRelu>(z, g, slope);
  return g;
}

// z = (x - mean) * scale + shift, with scale = rstd * w and shift = b, for one (n, c).
template <typename A>
struct Coefficients {
  A mean;
  A rstd;
  A scale;
  A shift;
};

// Where the statistics and the modulation of (n, c) are. n counts from the first sample of the
// current batch (the host offsets the pointers).
template <typename A>
struct Modulation {
  const A* mean;  // statistics of group (n, c): index n * stat_sn + c * stat_sc
  const A* rstd;
  int64_t stat_sn;  // instance statistics: C; layer statistics: 1
  int64_t stat_sc;  // instance statistics: 1; layer statistics: 0
  const A* weight;  // weight of (n, c): weight[n * weight_sn + c]; nullptr means 1
  int64_t weight_sn;  // per-sample (N, C): C; per-channel (C,): 0
  const A* bias;      // nullptr means 0
  int64_t bias_sn;

  __device__ __forceinline__ A weight_at(int64_t n, int64_t c) const {
    return weight != nullptr ? weight[n * weight_sn + c] : A(1);
  }
  __device__ __forceinline__ A bias_at(int64_t n, int64_t c) const {
    return bias != nullptr ? bias[n * bias_sn + c] : A(0);
  }
  __device__ __forceinline__ int64_t group(int64_t n, int64_t c) const {
    return n * stat_sn + c * stat_sc;
  }
  // Coefficients from given statistics (the fused kernels compute their own).
  __device__ __forceinline__ Coefficients<A> with_stats(int64_t n, int64_t c, A m, A r) const {
    return {m, r, r * weight_at(n, c), bias_at(n, c)};
  }
  __device__ __forceinline__ Coefficients<A> at(int64_t n, int64_t c) const {
    const int64_t g = group(n, c);
    return with_stats(n, c, mean[g], rstd[g]);
  }
};

template <typename A>
__device__ __forceinline__ A normalize_one(const NormMath<A>& m, const Coefficients<A>& k, A x) {
  return activate_runtime(m.activation, (x - k.mean) * k.scale + k.shift, m.slope);
}

// The gradient after the activation, g, for input x (centred: xc = x - mean) and upstream dy.
template <typename A>
__device__ __forceinline__ A grad_after_activation(const NormMath<A>& m, const Coefficients<A>& k,
                                                   A xc, A dy) {
  return activation_grad_runtime(m.activation, xc * k.scale + k.shift, dy, m.slope);
}

// ---------------------------------------------------------------------------------------------
// Row tiles (NCS), as row_tiling.h describes them: a team of `team` consecutive threads takes
// elements [start, start + length) of one row.

__device__ __forceinline__ RowChunk this_row_chunk(int team, int64_t chunk, int64_t chunks,
                                                   int64_t rows, int64_t S) {
  return row_tiling::row_chunk(blockIdx.x, threadIdx.x, blockDim.x, team, chunk, chunks, rows, S);
}

template <typename T, int VEC, int ITEMS>
__device__ __forceinline__ void load_row_packs(const T* base, int length, int rank, int team,
                                               Pack<T, VEC> (&packs)[ITEMS]) {
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int e = pack_offset<VEC>(rank, i, team);
    if (e < length) packs[i] = load_pack<T, VEC>(base + e);
  }
}

// Mean and sum of squared deviations of the `length` values the team holds (two passes over
// registers: the exact mean first, then the deviations from it).
template <typename A, typename T, int VEC, int ITEMS>
__device__ __forceinline__ void team_moments(const Pack<T, VEC> (&packs)[ITEMS], int length,
                                             int rank, int team, A* scratch, A& mean, A& m2) {
  A sum = 0;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    if (pack_offset<VEC>(rank, i, team) < length) {
#pragma unroll
      for (int u = 0; u < VEC; ++u) sum += static_cast<A>(packs[i].v[u]);
    }
  }
  mean = team_sum(sum, team, scratch) / static_cast<A>(length);
  A sq = 0;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    if (pack_offset<VEC>(rank, i, team) < length) {
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        const A d = static_cast<A>(packs[i].v[u]) - mean;
        sq += d * d;
      }
    }
  }
  m2 = team_sum(sq, team, scratch);
}

// Sums of g and g * xhat over the values the team holds.
template <typename A, typename T, int VEC, int ITEMS>
__device__ __forceinline__ void team_grad_sums(const Pack<T, VEC> (&xs)[ITEMS],
                                               const Pack<T, VEC> (&dys)[ITEMS], int length,
                                               int rank, int team, const NormMath<A>& math,
                                               const Coefficients<A>& k, A* scratch, A& sum_g,
                                               A& sum_gx) {
  A sg = 0, sgx = 0;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    if (pack_offset<VEC>(rank, i, team) < length) {
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        const A xc = static_cast<A>(xs[i].v[u]) - k.mean;
        const A g = grad_after_activation(math, k, xc, static_cast<A>(dys[i].v[u]));
        sg += g;
        sgx += g * (xc * k.rstd);
      }
    }
  }
  sum_g = team_sum(sg, team, scratch);
  sum_gx = team_sum(sgx, team, scratch);
}

template <typename A, typename T, int VEC, int ITEMS>
__device__ __forceinline__ void team_write_normalized(const Pack<T, VEC> (&xs)[ITEMS], T* out,
                                                      int length, int rank, int team,
                                                      const NormMath<A>& math,
                                                      const Coefficients<A>& k) {
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int e = pack_offset<VEC>(rank, i, team);
    if (e < length) {
      Pack<T, VEC> o;
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        o.v[u] = static_cast<T>(normalize_one(math, k, static_cast<A>(xs[i].v[u])));
      }
      store_pack<T, VEC>(out + e, o);
    }
  }
}

template <typename A, typename T, int VEC, int ITEMS>
__device__ __forceinline__ void team_write_input_grad(const Pack<T, VEC> (&xs)[ITEMS],
                                                      const Pack<T, VEC> (&dys)[ITEMS], T* dx,
                                                      int length, int rank, int team,
                                                      const NormMath<A>& math,
                                                      const Coefficients<A>& k, A k_x, A k_0) {
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int e = pack_offset<VEC>(rank, i, team);
    if (e < length) {
      Pack<T, VEC> o;
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        const A xc = static_cast<A>(xs[i].v[u]) - k.mean;
        const A g = grad_after_activation(math, k, xc, static_cast<A>(dys[i].v[u]));
        o.v[u] = static_cast<T>(k.scale * g + k_x * xc + k_0);
      }
      store_pack<T, VEC>(dx + e, o);
    }
  }
}

// ----- fused row kernels (NCS, instance statistics, one row per team) -----
// These and the partial kernels below reduce with team_sum, whose block barriers every thread of
// the block must reach: an idle team (past the last row, length 0) goes through the same steps
// holding nothing, and only the writes are predicated on rc.active.

template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kMaxFusedTeamForward)
    rows_fused_forward(const T* __restrict__ x, T* __restrict__ y, A* __restrict__ mean_out,
                       A* __restrict__ rstd_out, int64_t rows, int64_t C, int64_t S, int team,
                       Modulation<A> mod, NormMath<A> math) {
  constexpr int ITEMS = kRowItems<T, VEC>;
  __shared__ A scratch[kMaxFusedTeamForward / kWarpSize];
  const RowChunk rc = this_row_chunk(team, S, 1, rows, S);  // active: rc.length == S
  const int64_t offset = rc.row * S;
  Pack<T, VEC> xs[ITEMS];
  load_row_packs(x + offset, rc.length, rc.rank, team, xs);
  A mean, m2;
  team_moments(xs, rc.length, rc.rank, team, scratch, mean, m2);
  const A rstd = static_cast<A>(rstd_from_m2(static_cast<double>(m2), S, math.std_kind, math.eps));
  if (rc.active && rc.rank == 0) {
    mean_out[rc.row] = mean;
    rstd_out[rc.row] = rstd;
  }
  const int64_t n = rc.row / C;
  const Coefficients<A> k = mod.with_stats(n, rc.row - n * C, mean, rstd);
  team_write_normalized(xs, y + offset, rc.length, rc.rank, team, math, k);
}

// Also writes the per-(n, c) sums of g (sums[row]) and g * xhat (sums[plane + row]).
template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kMaxFusedTeamBackward)
    rows_fused_backward(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx,
                        double* __restrict__ sums, int64_t plane, int64_t rows, int64_t C,
                        int64_t S, int team, Modulation<A> mod, NormMath<A> math) {
  constexpr int ITEMS = kRowItems<T, VEC>;
  __shared__ A scratch[kMaxFusedTeamBackward / kWarpSize];
  const RowChunk rc = this_row_chunk(team, S, 1, rows, S);  // active: rc.length == S
  const int64_t offset = rc.row * S;
  Pack<T, VEC> xs[ITEMS];
  Pack<T, VEC> dys[ITEMS];
  load_row_packs(x + offset, rc.length, rc.rank, team, xs);
  load_row_packs(dy + offset, rc.length, rc.rank, team, dys);
  const int64_t n = rc.row / C;
  const int64_t c = rc.row - n * C;
  const Coefficients<A> k = mod.at(n, c);
  A sum_g, sum_gx;
  team_grad_sums(xs, dys, rc.length, rc.rank, team, math, k, scratch, sum_g, sum_gx);
  const double w = static_cast<double>(mod.weight_at(n, c));
  const InputGradTerms terms = input_grad_terms(w * sum_g, w * sum_gx, S, k.rstd, math.std_kind,
                                                math.eps);
  if (rc.active && rc.rank == 0) {
    sums[rc.row] = sum_g;
    sums[plane + rc.row] = sum_gx;
  }
  team_write_input_grad(xs, dys, dx + offset, rc.length, rc.rank, team, math, k,
                        static_cast<A>(terms.k_x), static_cast<A>(terms.k_0));
}

// ----- split row kernels (NCS): chunks of `chunk` elements, partial result per (row, chunk) ---

template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kMaxSplitTeam)
    rows_partial_moments(const T* __restrict__ x, A* __restrict__ part_mean,
                         A* __restrict__ part_m2, int64_t rows, int64_t S, int team,
                         int64_t chunk, int64_t chunks) {
  constexpr int ITEMS = kRowItems<T, VEC>;
  __shared__ A scratch[kMaxSplitTeam / kWarpSize];
  const RowChunk rc = this_row_chunk(team, chunk, chunks, rows, S);
  Pack<T, VEC> xs[ITEMS];
  load_row_packs(x + rc.row * S + rc.start, rc.length, rc.rank, team, xs);
  A mean, m2;
  team_moments(xs, rc.length, rc.rank, team, scratch, mean, m2);
  if (rc.active && rc.rank == 0) {
    const int64_t p = rc.row * chunks + rc.start / chunk;
    part_mean[p] = mean;
    part_m2[p] = m2;
  }
}

template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kMaxSplitTeam)
    rows_partial_grad_sums(const T* __restrict__ x, const T* __restrict__ dy,
                           A* __restrict__ part_g, A* __restrict__ part_gx, int64_t rows,
                           int64_t C, int64_t S, int team, int64_t chunk, int64_t chunks,
                           Modulation<A> mod, NormMath<A> math) {
  constexpr int ITEMS = kRowItems<T, VEC>;
  __shared__ A scratch[kMaxSplitTeam / kWarpSize];
  const RowChunk rc = this_row_chunk(team, chunk, chunks, rows, S);
  const int64_t offset = rc.row * S + rc.start;
  Pack<T, VEC> xs[ITEMS];
  Pack<T, VEC> dys[ITEMS];
  load_row_packs(x + offset, rc.length, rc.rank, team, xs);
  load_row_packs(dy + offset, rc.length, rc.rank, team, dys);
  const int64_t n = rc.row / C;
  const Coefficients<A> k = mod.at(n, rc.row - n * C);
  A sum_g, sum_gx;
  team_grad_sums(xs, dys, rc.length, rc.rank, team, math, k, scratch, sum_g, sum_gx);
  if (rc.active && rc.rank == 0) {
    const int64_t p = rc.row * chunks + rc.start / chunk;
    part_g[p] = sum_g;
    part_gx[p] = sum_gx;
  }
}

template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kMaxSplitTeam)
    rows_apply_forward(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t C,
                       int64_t S, int team, int64_t chunk, int64_t chunks, Modulation<A> mod,
                       NormMath<A> math) {
  constexpr int ITEMS = kRowItems<T, VEC>;
  const RowChunk rc = this_row_chunk(team, chunk, chunks, rows, S);
  if (!rc.active) return;  // no block barrier in this kernel
  const int64_t offset = rc.row * S + rc.start;
  Pack<T, VEC> xs[ITEMS];
  load_row_packs(x + offset, rc.length, rc.rank, team, xs);
  const int64_t n = rc.row / C;
  const Coefficients<A> k = mod.at(n, rc.row - n * C);
  team_write_normalized(xs, y + offset, rc.length, rc.rank, team, math, k);
}

// k_x / k_0 of group (n, c): terms[group] / terms[terms_plane + group] (group as in mod).
template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kMaxSplitTeam)
    rows_apply_backward(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx,
                        const A* __restrict__ terms, int64_t terms_plane, int64_t rows,
                        int64_t C, int64_t S, int team, int64_t chunk, int64_t chunks,
                        Modulation<A> mod, NormMath<A> math) {
  constexpr int ITEMS = kRowItems<T, VEC>;
  const RowChunk rc = this_row_chunk(team, chunk, chunks, rows, S);
  if (!rc.active) return;  // no block barrier in this kernel
  const int64_t offset = rc.row * S + rc.start;
  Pack<T, VEC> xs[ITEMS];
  Pack<T, VEC> dys[ITEMS];
  load_row_packs(x + offset, rc.length, rc.rank, team, xs);
  load_row_packs(dy + offset, rc.length, rc.rank, team, dys);
  const int64_t n = rc.row / C;
  const int64_t c = rc.row - n * C;
  const Coefficients<A> k = mod.at(n, c);
  const int64_t g = mod.group(n, c);
  team_write_input_grad(xs, dys, dx + offset, rc.length, rc.rank, team, math, k, terms[g],
                        terms[terms_plane + g]);
}

// ---------------------------------------------------------------------------------------------
// Column tiles (NSC). A block of kBlock threads is a grid of tx_count x ty_count threads
// (tx fastest); thread (tx, ty) holds the VEC channels [c0, c0 + VEC), c0 = ct * tx_count * VEC
// + tx * VEC, of the rows s_begin + ty + i * ty_count, i < ITEMS. A tile is one sample n, one
// channel tile ct and one chunk k of rows_per_tile = ty_count * ITEMS rows; tiles are numbered
// (n, k, ct) with ct fastest, so neighbouring blocks read neighbouring memory.

struct ColTile {
  int64_t n;
  int64_t k;
  int64_t c0;
  int64_t s_begin;
  int64_t rows;  // rows of this tile (the last one may be short)
  int tx;
  int ty;
  bool channels_valid;
};

__device__ __forceinline__ ColTile col_tile(int tx_count, int64_t ctiles, int64_t chunks,
                                            int64_t rows_per_tile, int64_t C, int64_t S, int vec) {
  ColTile t;
  const int64_t tile = blockIdx.x;
  const int64_t ct = tile % ctiles;
  const int64_t nk = tile / ctiles;
  t.k = nk % chunks;
  t.n = nk / chunks;
  t.tx = threadIdx.x % tx_count;
  t.ty = threadIdx.x / tx_count;
  t.c0 = (ct * tx_count + t.tx) * vec;
  t.channels_valid = t.c0 < C;  // with vec > 1, C % vec == 0: the whole pack is valid
  t.s_begin = t.k * rows_per_tile;
  t.rows = min(rows_per_tile, S - t.s_begin);
  return t;
}

template <typename T, int VEC, int ITEMS>
__device__ __forceinline__ void load_col_packs(const T* x, const ColTile& t, int ty_count,
                                               int64_t C, int64_t S, Pack<T, VEC> (&packs)[ITEMS]) {
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int r = t.ty + i * ty_count;
    if (t.channels_valid && r < t.rows) {
      packs[i] = load_pack<T, VEC>(x + (t.n * S + t.s_begin + r) * C + t.c0);
    }
  }
}

__device__ __forceinline__ bool col_pack_valid(const ColTile& t, int i, int ty_count) {
  return t.channels_valid && t.ty + i * ty_count < t.rows;
}

// Sums v[j] over the ty_count threads of each column tx (a tree, in a fixed order); every thread
// gets its column's totals. red holds VALUES * kBlock values.
template <typename A, int VALUES>
__device__ __forceinline__ void column_sums(A (&v)[VALUES], const ColTile& t, int tx_count,
                                            int ty_count, A* red) {
#pragma unroll
  for (int j = 0; j < VALUES; ++j) red[j * kBlock + threadIdx.x] = v[j];
  __syncthreads();
  for (int stride = ty_count / 2; stride > 0; stride /= 2) {
    if (t.ty < stride) {
#pragma unroll
      for (int j = 0; j < VALUES; ++j) {
        red[j * kBlock + threadIdx.x] += red[j * kBlock + threadIdx.x + stride * tx_count];
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < VALUES; ++j) v[j] = red[j * kBlock + t.tx];
  __syncthreads();  // red may be reused right after
}

// Partial (n, c, k) lands at (n * chunks + k) * C + c.
template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    cols_partial_moments(const T* __restrict__ x, A* __restrict__ part_mean,
                         A* __restrict__ part_m2, int64_t C, int64_t S, int tx_count,
                         int64_t ctiles, int64_t chunks, int64_t rows_per_tile) {
  constexpr int ITEMS = kColumnElemsPerThread / VEC;
  __shared__ A red[VEC * kBlock];
  const int ty_count = kBlock / tx_count;
  const ColTile t = col_tile(tx_count, ctiles, chunks, rows_per_tile, C, S, VEC);
  Pack<T, VEC> xs[ITEMS];
  load_col_packs(x, t, ty_count, C, S, xs);
  A acc[VEC];
#pragma unroll
  for (int u = 0; u < VEC; ++u) acc[u] = 0;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    if (col_pack_valid(t, i, ty_count)) {
#pragma unroll
      for (int u = 0; u < VEC; ++u) acc[u] += static_cast<A>(xs[i].v[u]);
    }
  }
  column_sums(acc, t, tx_count, ty_count, red);
  A mean[VEC];
#pragma unroll
  for (int u = 0; u < VEC; ++u) {
    mean[u] = acc[u] / static_cast<A>(t.rows);
    acc[u] = 0;
  }
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    if (col_pack_valid(t, i, ty_count)) {
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        const A d = static_cast<A>(xs[i].v[u]) - mean[u];
        acc[u] += d * d;
      }
    }
  }
  column_sums(acc, t, tx_count, ty_count, red);
  if (t.ty == 0 && t.channels_valid) {
    const int64_t p = (t.n * chunks + t.k) * C + t.c0;
#pragma unroll
    for (int u = 0; u < VEC; ++u) {
      part_mean[p + u] = mean[u];
      part_m2[p + u] = acc[u];
    }
  }
}

template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    cols_partial_grad_sums(const T* __restrict__ x, const T* __restrict__ dy,
                           A* __restrict__ part_g, A* __restrict__ part_gx, int64_t C, int64_t S,
                           int tx_count, int64_t ctiles, int64_t chunks, int64_t rows_per_tile,
                           Modulation<A> mod, NormMath<A> math) {
  constexpr int ITEMS = kColumnElemsPerThread / VEC;
  __shared__ A red[2 * VEC * kBlock];
  const int ty_count = kBlock / tx_count;
  const ColTile t = col_tile(tx_count, ctiles, chunks, rows_per_tile, C, S, VEC);
  Pack<T, VEC> xs[ITEMS];
  Pack<T, VEC> dys[ITEMS];
  load_col_packs(x, t, ty_count, C, S, xs);
  load_col_packs(dy, t, ty_count, C, S, dys);
  Coefficients<A> k[VEC];
#pragma unroll
  for (int u = 0; u < VEC; ++u) k[u] = t.channels_valid ? mod.at(t.n, t.c0 + u) : Coefficients<A>{};
  A acc[2 * VEC];  // sums of g for the VEC channels, then sums of g * xhat
#pragma unroll
  for (int j = 0; j < 2 * VEC; ++j) acc[j] = 0;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    if (col_pack_valid(t, i, ty_count)) {
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        const A xc = static_cast<A>(xs[i].v[u]) - k[u].mean;
        const A g = grad_after_activation(math, k[u], xc, static_cast<A>(dys[i].v[u]));
        acc[u] += g;
        acc[VEC + u] += g * (xc * k[u].rstd);
      }
    }
  }
  column_sums(acc, t, tx_count, ty_count, red);
  if (t.ty == 0 && t.channels_valid) {
    const int64_t p = (t.n * chunks + t.k) * C + t.c0;
#pragma unroll
    for (int u = 0; u < VEC; ++u) {
      part_g[p + u] = acc[u];
      part_gx[p + u] = acc[VEC + u];
    }
  }
}

template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    cols_apply_forward(const T* __restrict__ x, T* __restrict__ y, int64_t C, int64_t S,
                       int tx_count, int64_t ctiles, int64_t chunks, int64_t rows_per_tile,
                       Modulation<A> mod, NormMath<A> math) {
  constexpr int ITEMS = kColumnElemsPerThread / VEC;
  const int ty_count = kBlock / tx_count;
  const ColTile t = col_tile(tx_count, ctiles, chunks, rows_per_tile, C, S, VEC);
  if (!t.channels_valid) return;  // no block barrier in this kernel
  Pack<T, VEC> xs[ITEMS];
  load_col_packs(x, t, ty_count, C, S, xs);
  Coefficients<A> k[VEC];
#pragma unroll
  for (int u = 0; u < VEC; ++u) k[u] = mod.at(t.n, t.c0 + u);
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int r = t.ty + i * ty_count;
    if (r < t.rows) {
      Pack<T, VEC> o;
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        o.v[u] = static_cast<T>(normalize_one(math, k[u], static_cast<A>(xs[i].v[u])));
      }
      store_pack<T, VEC>(y + (t.n * S + t.s_begin + r) * C + t.c0, o);
    }
  }
}

template <typename T, typename A, int VEC>
__global__ void __launch_bounds__(kBlock)
    cols_apply_backward(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx,
                        const A* __restrict__ terms, int64_t terms_plane, int64_t C, int64_t S,
                        int tx_count, int64_t ctiles, int64_t chunks, int64_t rows_per_tile,
                        Modulation<A> mod, NormMath<A> math) {
  constexpr int ITEMS = kColumnElemsPerThread / VEC;
  const int ty_count = kBlock / tx_count;
  const ColTile t = col_tile(tx_count, ctiles, chunks, rows_per_tile, C, S, VEC);
  if (!t.channels_valid) return;  // no block barrier in this kernel
  Pack<T, VEC> xs[ITEMS];
  Pack<T, VEC> dys[ITEMS];
  load_col_packs(x, t, ty_count, C, S, xs);
  load_col_packs(dy, t, ty_count, C, S, dys);
  Coefficients<A> k[VEC];
  A k_x[VEC], k_0[VEC];
#pragma unroll
  for (int u = 0; u < VEC; ++u) {
    k[u] = mod.at(t.n, t.c0 + u);
    const int64_t g = mod.group(t.n, t.c0 + u);
    k_x[u] = terms[g];
    k_0[u] = terms[terms_plane + g];
  }
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int r = t.ty + i * ty_count;
    if (r < t.rows) {
      Pack<T, VEC> o;
#pragma unroll
      for (int u = 0; u < VEC; ++u) {
        const A xc = static_cast<A>(xs[i].v[u]) - k[u].mean;
        const A g = grad_after_activation(math, k[u], xc, static_cast<A>(dys[i].v[u]));
        o.v[u] = static_cast<T>(k[u].scale * g + k_x[u] * xc + k_0[u]);
      }
      store_pack<T, VEC>(dx + (t.n * S + t.s_begin + r) * C + t.c0, o);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Merges of the partial results (split path). Partial (n, c, k) of a batch of N samples is at
// n * stride_n + c * stride_c + k * stride_k and covers min(chunk_len, S - k * chunk_len)
// values of group (n, c).

struct PartialLayout {
  int64_t stride_n;
  int64_t stride_c;
  int64_t stride_k;
  int64_t chunks;
  int64_t chunk_len;
};

__device__ __forceinline__ Moments shfl_down_moments(const Moments& m, int offset) {
  Moments o;
  o.count = __shfl_down_sync(i2i_fast::cuda::kFullWarpMask, m.count, offset);
  o.mean = __shfl_down_sync(i2i_fast::cuda::kFullWarpMask, m.mean, offset);
  o.m2 = __shfl_down_sync(i2i_fast::cuda::kFullWarpMask, m.m2, offset);
  return o;
}

// One warp per (n, c): merges the partial moments of the group in double (each lane a fixed
// subset in order, then a fixed tree). Instance statistics: writes mean/rstd of (n, c).
// Layer statistics: writes the (n, c) moments for merge_moments_per_sample.
template <typename A>
__global__ void __launch_bounds__(kBlock)
    merge_moments_per_channel(const A* __restrict__ part_mean, const A* __restrict__ part_m2,
                              PartialLayout layout, int64_t N, int64_t C, int64_t S,
                              bool instance, StdKind std_kind, double eps,
                              A* __restrict__ mean_out, A* __restrict__ rstd_out,
                              double* __restrict__ nc_mean, double* __restrict__ nc_m2) {
  const int64_t group =
      (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  if (group >= N * C) return;  // whole warps
  const int lane = threadIdx.x % kWarpSize;
  const int64_t n = group / C;
  const int64_t c = group - n * C;
  const int64_t base = n * layout.stride_n + c * layout.stride_c;
  Moments m;
  for (int64_t k = lane; k < layout.chunks; k += kWarpSize) {
    const int64_t p = base + k * layout.stride_k;
    const double count =
        static_cast<double>(min(layout.chunk_len, S - k * layout.chunk_len));
    m.merge(count, static_cast<double>(part_mean[p]), static_cast<double>(part_m2[p]));
  }
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const Moments other = shfl_down_moments(m, offset);
    if (lane < offset) m.merge(other);
  }
  if (lane != 0) return;
  if (instance) {
    mean_out[group] = static_cast<A>(m.mean);
    rstd_out[group] = static_cast<A>(rstd_from_m2(m.m2, S, std_kind, eps));
  } else {
    nc_mean[group] = m.mean;
    nc_m2[group] = m.m2;
  }
}

// One block per sample: merges the C per-channel moments (S values each) into the layer
// statistics of the sample.
template <typename A>
__global__ void __launch_bounds__(kBlock)
    merge_moments_per_sample(const double* __restrict__ nc_mean, const double* __restrict__ nc_m2,
                             int64_t C, int64_t S, StdKind std_kind, double eps,
                             A* __restrict__ mean_out, A* __restrict__ rstd_out) {
  __shared__ double red_count[kBlock];
  __shared__ double red_mean[kBlock];
  __shared__ double red_m2[kBlock];
  const int64_t n = blockIdx.x;
  Moments m;
  for (int64_t c = threadIdx.x; c < C; c += kBlock) {
    m.merge(static_cast<double>(S), nc_mean[n * C + c], nc_m2[n * C + c]);
  }
  red_count[threadIdx.x] = m.count;
  red_mean[threadIdx.x] = m.mean;
  red_m2[threadIdx.x] = m.m2;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      Moments a{red_count[threadIdx.x], red_mean[threadIdx.x], red_m2[threadIdx.x]};
      a.merge(red_count[threadIdx.x + stride], red_mean[threadIdx.x + stride],
              red_m2[threadIdx.x + stride]);
      red_count[threadIdx.x] = a.count;
      red_mean[threadIdx.x] = a.mean;
      red_m2[threadIdx.x] = a.m2;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    mean_out[n] = static_cast<A>(red_mean[0]);
    rstd_out[n] = static_cast<A>(rstd_from_m2(red_m2[0], C * S, std_kind, eps));
  }
}

// One warp per (n, c): sums the partial gradient sums in double and writes them to
// sums[group] (of g) and sums[plane + group] (of g * xhat). Instance statistics: also the input
// gradient terms of (n, c), terms[group] = k_x and terms[terms_plane + group] = k_0.
template <typename A>
__global__ void __launch_bounds__(kBlock)
    sum_grads_per_channel(const A* __restrict__ part_g, const A* __restrict__ part_gx,
                          PartialLayout layout, int64_t N, int64_t C, int64_t S,
                          double* __restrict__ sums, int64_t plane, bool instance,
                          Modulation<A> mod, StdKind std_kind, double eps, A* __restrict__ terms,
                          int64_t terms_plane) {
  const int64_t group =
      (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  if (group >= N * C) return;  // whole warps
  const int lane = threadIdx.x % kWarpSize;
  const int64_t n = group / C;
  const int64_t c = group - n * C;
  const int64_t base = n * layout.stride_n + c * layout.stride_c;
  double sg = 0, sgx = 0;
  for (int64_t k = lane; k < layout.chunks; k += kWarpSize) {
    sg += static_cast<double>(part_g[base + k * layout.stride_k]);
    sgx += static_cast<double>(part_gx[base + k * layout.stride_k]);
  }
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const double og = __shfl_down_sync(i2i_fast::cuda::kFullWarpMask, sg, offset);
    const double ogx = __shfl_down_sync(i2i_fast::cuda::kFullWarpMask, sgx, offset);
    if (lane < offset) {
      sg += og;
      sgx += ogx;
    }
  }
  if (lane != 0) return;
  sums[group] = sg;
  sums[plane + group] = sgx;
  if (instance) {
    const double w = static_cast<double>(mod.weight_at(n, c));
    const InputGradTerms t = input_grad_terms(w * sg, w * sgx, S,
                                              static_cast<double>(mod.rstd[group]), std_kind, eps);
    terms[group] = static_cast<A>(t.k_x);
    terms[terms_plane + group] = static_cast<A>(t.k_0);
  }
}

// One block per sample (layer statistics): the input gradient terms of the sample from the
// weighted per-channel sums.
template <typename A>
__global__ void __launch_bounds__(kBlock)
    grad_terms_per_sample(const double* __restrict__ sums, int64_t plane, int64_t C, int64_t S,
                          Modulation<A> mod, StdKind std_kind, double eps, A* __restrict__ terms,
                          int64_t terms_plane) {
  __shared__ double red_g[kBlock];
  __shared__ double red_gx[kBlock];
  const int64_t n = blockIdx.x;
  double sg = 0, sgx = 0;
  for (int64_t c = threadIdx.x; c < C; c += kBlock) {
    const double w = static_cast<double>(mod.weight_at(n, c));
    sg += w * sums[n * C + c];
    sgx += w * sums[plane + n * C + c];
  }
  red_g[threadIdx.x] = sg;
  red_gx[threadIdx.x] = sgx;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      red_g[threadIdx.x] += red_g[threadIdx.x + stride];
      red_gx[threadIdx.x] += red_gx[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const InputGradTerms t = input_grad_terms(red_g[0], red_gx[0], C * S,
                                              static_cast<double>(mod.rstd[n]), std_kind, eps);
    terms[n] = static_cast<A>(t.k_x);
    terms[terms_plane + n] = static_cast<A>(t.k_0);
  }
}

// ---------------------------------------------------------------------------------------------
// Host side: choosing the path and the tiles, launching.

enum class Path { kFused, kSplit };

// I2I_FAST_CUDA_NORM_PATH, read at each call (tests switch it inside one process).
std::optional<Path> forced_path() {
  const char* v = std::getenv("I2I_FAST_CUDA_NORM_PATH");
  if (v == nullptr) return std::nullopt;
  if (std::strcmp(v, "fused") == 0) return Path::kFused;
  if (std::strcmp(v, "split") == 0) return Path::kSplit;
  return std::nullopt;
}

template <int VEC>
struct ColTiling {
  int tx_count;
  int64_t ctiles;
  int64_t chunks;
  int64_t rows_per_tile;
  int64_t N;

  ColTiling(int64_t n, int64_t C, int64_t S) : N(n) {
    const int64_t packs = ceil_div(C, VEC);
    tx_count = static_cast<int>(std::min<int64_t>(kWarpSize, i2i_fast::cuda::next_power_of_two(packs)));
    ctiles = ceil_div(C, static_cast<int64_t>(tx_count) * VEC);
    rows_per_tile = static_cast<int64_t>(kBlock / tx_count) * (kColumnElemsPerThread / VEC);
    chunks = ceil_div(S, rows_per_tile);
  }
  int64_t blocks() const { return N * chunks * ctiles; }
  // Partial (n, c, k) at (n * chunks + k) * C + c.
  PartialLayout partial_layout(int64_t C) const {
    return {chunks * C, 1, C, chunks, rows_per_tile};
  }
};

PartialLayout row_partial_layout(const RowTiling& t, int64_t C) {
  // Partial (n, c, k) at (n * C + c) * chunks + k.
  return {C * t.chunks, t.chunks, 1, t.chunks, t.chunk};
}

// Everything a launch needs about one call, for a batch of samples [n0, n0 + N) of the tensors.
template <typename T, typename A>
struct Problem {
  const T* x;
  const T* dy;  // backward only
  T* out;       // y or dx
  int64_t N, C, S;
  Layout layout;
  Grouping grouping;
  Modulation<A> mod;
  NormMath<A> math;
  A* mean_out;  // forward: where the statistics go (indexed like mod.mean)
  A* rstd_out;
  double* sums;  // backward: (2, N_total, C) per-(n, c) sums of g and g * xhat
  int64_t sums_plane;

  int64_t group_count() const { return grouping == Grouping::kInstance ? N * C : N; }

  // The same problem restricted to samples [n0, n0 + count).
  Problem batch(int64_t n0, int64_t count) const {
    Problem b = *this;
    const int64_t elements = n0 * C * S;
    b.x = x + elements;
    b.dy = dy != nullptr ? dy + elements : nullptr;
    b.out = out + elements;
    b.N = count;
    const int64_t stat_offset = n0 * mod.stat_sn;
    b.mod.mean = mod.mean != nullptr ? mod.mean + stat_offset : nullptr;
    b.mod.rstd = mod.rstd != nullptr ? mod.rstd + stat_offset : nullptr;
    b.mod.weight = mod.weight != nullptr ? mod.weight + n0 * mod.weight_sn : nullptr;
    b.mod.bias = mod.bias != nullptr ? mod.bias + n0 * mod.bias_sn : nullptr;
    b.mean_out = mean_out != nullptr ? mean_out + stat_offset : nullptr;
    b.rstd_out = rstd_out != nullptr ? rstd_out + stat_offset : nullptr;
    b.sums = sums != nullptr ? sums + n0 * C : nullptr;
    return b;
  }
};

// Whether the fused kernel takes this call (contiguous x, instance statistics, a row fits).
template <typename T, typename A, int VEC>
bool use_fused(const Problem<T, A>& p, int max_team, int device) {
  if (p.layout != Layout::kNCS || p.grouping != Grouping::kInstance) return false;
  if (!fused_row_fits(p.S, kRowElems<T, VEC>, max_team)) return false;
  if (const auto forced = forced_path()) return *forced == Path::kFused;
  // Enough rows to give every SM a block, or so little data that one launch beats three.
  const RowTiling t = fused_row_tiling(p.N * p.C, p.S, kRowElems<T, VEC>, max_team);
  const int64_t bytes = p.N * p.C * p.S * static_cast<int64_t>(sizeof(T));
  return t.blocks() >= i2i_fast::cuda::multiprocessor_count(device) || bytes <= (int64_t(1) << 22);
}

// Samples per batch of the split path: the bytes read twice must fit in half the L2 cache.
int64_t samples_per_batch(int64_t N, int64_t bytes_per_sample, int device) {
  const int64_t budget = i2i_fast::cuda::l2_cache_bytes(device) / 2;
  return std::clamp<int64_t>(budget / std::max<int64_t>(bytes_per_sample, 1), 1, N);
}

template <typename T, typename A, int VEC>
void forward_split(const Problem<T, A>& p, cudaStream_t stream, A* part_mean, A* part_m2,
                   double* nc_mean, double* nc_m2) {
  const bool instance = p.grouping == Grouping::kInstance;
  PartialLayout layout;
  if (p.layout == Layout::kNCS) {
    const RowTiling t = split_row_tiling(p.N * p.C, p.S, kRowElems<T, VEC>);
    rows_partial_moments<T, A, VEC><<<grid(t.blocks()), t.threads(), 0, stream>>>(
        p.x, part_mean, part_m2, t.rows, p.S, t.team, t.chunk, t.chunks);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    layout = row_partial_layout(t, p.C);
  } else {
    const ColTiling<VEC> t(p.N, p.C, p.S);
    cols_partial_moments<T, A, VEC><<<grid(t.blocks()), kBlock, 0, stream>>>(
        p.x, part_mean, part_m2, p.C, p.S, t.tx_count, t.ctiles, t.chunks, t.rows_per_tile);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    layout = t.partial_layout(p.C);
  }
  const int64_t warps_per_block = kBlock / kWarpSize;
  merge_moments_per_channel<A><<<grid(ceil_div(p.N * p.C, warps_per_block)), kBlock, 0, stream>>>(
      part_mean, part_m2, layout, p.N, p.C, p.S, instance, p.math.std_kind, p.math.eps,
      p.mean_out, p.rstd_out, nc_mean, nc_m2);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (!instance) {
    merge_moments_per_sample<A><<<grid(p.N), kBlock, 0, stream>>>(nc_mean, nc_m2, p.C, p.S,
                                                            p.math.std_kind, p.math.eps,
                                                            p.mean_out, p.rstd_out);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (p.layout == Layout::kNCS) {
    const RowTiling t = split_row_tiling(p.N * p.C, p.S, kRowElems<T, VEC>);
    rows_apply_forward<T, A, VEC><<<grid(t.blocks()), t.threads(), 0, stream>>>(
        p.x, p.out, t.rows, p.C, p.S, t.team, t.chunk, t.chunks, p.mod, p.math);
  } else {
    const ColTiling<VEC> t(p.N, p.C, p.S);
    cols_apply_forward<T, A, VEC><<<grid(t.blocks()), kBlock, 0, stream>>>(
        p.x, p.out, p.C, p.S, t.tx_count, t.ctiles, t.chunks, t.rows_per_tile, p.mod, p.math);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename A, int VEC>
void backward_split(const Problem<T, A>& p, cudaStream_t stream, A* part_g, A* part_gx,
                    A* terms, int64_t terms_plane) {
  const bool instance = p.grouping == Grouping::kInstance;
  PartialLayout layout;
  if (p.layout == Layout::kNCS) {
    const RowTiling t = split_row_tiling(p.N * p.C, p.S, kRowElems<T, VEC>);
    rows_partial_grad_sums<T, A, VEC><<<grid(t.blocks()), t.threads(), 0, stream>>>(
        p.x, p.dy, part_g, part_gx, t.rows, p.C, p.S, t.team, t.chunk, t.chunks, p.mod, p.math);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    layout = row_partial_layout(t, p.C);
  } else {
    const ColTiling<VEC> t(p.N, p.C, p.S);
    cols_partial_grad_sums<T, A, VEC><<<grid(t.blocks()), kBlock, 0, stream>>>(
        p.x, p.dy, part_g, part_gx, p.C, p.S, t.tx_count, t.ctiles, t.chunks, t.rows_per_tile,
        p.mod, p.math);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    layout = t.partial_layout(p.C);
  }
  const int64_t warps_per_block = kBlock / kWarpSize;
  sum_grads_per_channel<A><<<grid(ceil_div(p.N * p.C, warps_per_block)), kBlock, 0, stream>>>(
      part_g, part_gx, layout, p.N, p.C, p.S, p.sums, p.sums_plane, instance, p.mod,
      p.math.std_kind, p.math.eps, terms, terms_plane);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (!instance) {
    grad_terms_per_sample<A><<<grid(p.N), kBlock, 0, stream>>>(p.sums, p.sums_plane, p.C, p.S, p.mod,
                                                         p.math.std_kind, p.math.eps, terms,
                                                         terms_plane);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (p.layout == Layout::kNCS) {
    const RowTiling t = split_row_tiling(p.N * p.C, p.S, kRowElems<T, VEC>);
    rows_apply_backward<T, A, VEC><<<grid(t.blocks()), t.threads(), 0, stream>>>(
        p.x, p.dy, p.out, terms, terms_plane, t.rows, p.C, p.S, t.team, t.chunk, t.chunks, p.mod,
        p.math);
  } else {
    const ColTiling<VEC> t(p.N, p.C, p.S);
    cols_apply_backward<T, A, VEC><<<grid(t.blocks()), kBlock, 0, stream>>>(
        p.x, p.dy, p.out, terms, terms_plane, p.C, p.S, t.tx_count, t.ctiles, t.chunks,
        t.rows_per_tile, p.mod, p.math);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Number of partial results per (n, c) of the split path for one batch of `batch` samples.
template <typename T, int VEC>
int64_t partials_per_batch(Layout layout, int64_t batch, int64_t C, int64_t S) {
  if (layout == Layout::kNCS) {
    return batch * C * split_row_tiling(batch * C, S, kRowElems<T, VEC>).chunks;
  }
  return batch * C * ColTiling<VEC>(batch, C, S).chunks;
}

// The pack dimension of the layout: rows of S (NCS) or of C channels (NSC).
int64_t contiguous_extent(Layout layout, int64_t C, int64_t S) {
  return layout == Layout::kNCS ? S : C;
}

// ---------------------------------------------------------------------------------------------
// Tensor-level plumbing.

// A parameter as a contiguous tensor of the accumulation type, or undefined when absent (the
// kernels read nullptr as weight 1 / bias 0).
at::Tensor param_in_accumulate_type(const std::optional<at::Tensor>& t, at::ScalarType acc) {
  if (t.has_value() && t->defined()) return t->to(acc).contiguous();
  return at::Tensor();
}

template <typename A>
const A* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<A>() : nullptr;
}

template <typename A>
Modulation<A> make_modulation(const at::Tensor& mean, const at::Tensor& rstd,
                              const at::Tensor& w, const at::Tensor& b, int64_t C,
                              Grouping grouping) {
  const bool instance = grouping == Grouping::kInstance;
  return Modulation<A>{data_or_null<A>(mean),
                       data_or_null<A>(rstd),
                       instance ? C : 1,
                       instance ? 1 : 0,
                       data_or_null<A>(w),
                       w.defined() && w.dim() == 2 ? C : 0,
                       data_or_null<A>(b),
                       b.defined() && b.dim() == 2 ? C : 0};
}

template <typename A>
NormMath<A> make_math(const NormSpec& spec) {
  return {spec.std_kind, spec.eps, spec.activation, static_cast<A>(spec.negative_slope)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_forward(
    const at::Tensor& x_in, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const NormSpec& spec) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = to_dense_layout(x_in);
  const int64_t N = x.size(0), C = x.size(1), S = spatial_size(x);
  const Layout layout = layout_of_dense(x);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  const at::Tensor w = param_in_accumulate_type(weight, acc);
  const at::Tensor b = param_in_accumulate_type(bias, acc);
  at::Tensor y = at::empty_like(x);
  const auto stat_options = x.options().dtype(acc);
  at::Tensor mean = spec.grouping == Grouping::kInstance ? at::empty({N, C}, stat_options)
                                                         : at::empty({N}, stat_options);
  at::Tensor rstd = at::empty_like(mean);
  const int device = x.get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "norm_forward_cuda", [&] {
    using T = scalar_t;
    using A = typename AccumulateOf<T>::type;
    Problem<T, A> p{x.const_data_ptr<T>(),
                    nullptr,
                    y.mutable_data_ptr<T>(),
                    N,
                    C,
                    S,
                    layout,
                    spec.grouping,
                    make_modulation<A>(mean, rstd, w, b, C, spec.grouping),
                    make_math<A>(spec),
                    mean.mutable_data_ptr<A>(),
                    rstd.mutable_data_ptr<A>(),
                    nullptr,
                    0};
    dispatch_pack_width<T>({p.x, p.out}, contiguous_extent(layout, C, S), [&](auto vec_c) {
      constexpr int VEC = decltype(vec_c)::value;
      if (use_fused<T, A, VEC>(p, kMaxFusedTeamForward, device)) {
        const RowTiling t = fused_row_tiling(N * C, S, kRowElems<T, VEC>, kMaxFusedTeamForward);
        rows_fused_forward<T, A, VEC><<<grid(t.blocks()), t.threads(), 0, stream>>>(
            p.x, p.out, p.mean_out, p.rstd_out, t.rows, C, S, t.team, p.mod, p.math);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        return;
      }
      const int64_t per_batch =
          samples_per_batch(N, C * S * static_cast<int64_t>(sizeof(T)), device);
      const int64_t parts = partials_per_batch<T, VEC>(layout, per_batch, C, S);
      const at::Tensor partials = at::empty({2, parts}, stat_options);
      const at::Tensor nc_moments = spec.grouping == Grouping::kLayer
                                        ? at::empty({2, per_batch * C}, x.options().dtype(at::kDouble))
                                        : at::Tensor();
      A* part_mean = partials.mutable_data_ptr<A>();
      double* nc_mean = nc_moments.defined() ? nc_moments.mutable_data_ptr<double>() : nullptr;
      for (int64_t n0 = 0; n0 < N; n0 += per_batch) {
        forward_split<T, A, VEC>(p.batch(n0, std::min(per_batch, N - n0)), stream, part_mean,
                                 part_mean + parts, nc_mean,
                                 nc_mean != nullptr ? nc_mean + per_batch * C : nullptr);
      }
    });
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_backward(
    const at::Tensor& grad_out, const at::Tensor& x_in, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean_in, const at::Tensor& rstd_in,
    const NormSpec& spec) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = to_dense_layout(x_in);
  const int64_t N = x.size(0), C = x.size(1), S = spatial_size(x);
  const Layout layout = layout_of_dense(x);
  const at::Tensor dy = to_layout(grad_out.to(x.scalar_type()), layout);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  const at::Tensor w = param_in_accumulate_type(weight, acc);
  const at::Tensor b = param_in_accumulate_type(bias, acc);
  const at::Tensor mean = mean_in.to(acc).contiguous();
  const at::Tensor rstd = rstd_in.to(acc).contiguous();
  at::Tensor dx = at::empty_like(x);
  // Per-(n, c) sums of g and g * xhat: the parameter gradients before any reduction over n.
  at::Tensor sums = at::empty({2, N, C}, x.options().dtype(at::kDouble));
  const int device = x.get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "norm_backward_cuda", [&] {
    using T = scalar_t;
    using A = typename AccumulateOf<T>::type;
    Problem<T, A> p{x.const_data_ptr<T>(),
                    dy.const_data_ptr<T>(),
                    dx.mutable_data_ptr<T>(),
                    N,
                    C,
                    S,
                    layout,
                    spec.grouping,
                    make_modulation<A>(mean, rstd, w, b, C, spec.grouping),
                    make_math<A>(spec),
                    nullptr,
                    nullptr,
                    sums.mutable_data_ptr<double>(),
                    N * C};
    dispatch_pack_width<T>({p.x, p.dy, p.out}, contiguous_extent(layout, C, S), [&](auto vec_c) {
      constexpr int VEC = decltype(vec_c)::value;
      if (use_fused<T, A, VEC>(p, kMaxFusedTeamBackward, device)) {
        const RowTiling t = fused_row_tiling(N * C, S, kRowElems<T, VEC>, kMaxFusedTeamBackward);
        rows_fused_backward<T, A, VEC><<<grid(t.blocks()), t.threads(), 0, stream>>>(
            p.x, p.dy, p.out, p.sums, p.sums_plane, t.rows, C, S, t.team, p.mod, p.math);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        return;
      }
      const int64_t per_batch =
          samples_per_batch(N, 2 * C * S * static_cast<int64_t>(sizeof(T)), device);
      const int64_t parts = partials_per_batch<T, VEC>(layout, per_batch, C, S);
      const int64_t groups_per_batch =
          spec.grouping == Grouping::kInstance ? per_batch * C : per_batch;
      const at::Tensor partials = at::empty({2, parts}, x.options().dtype(acc));
      const at::Tensor terms = at::empty({2, groups_per_batch}, x.options().dtype(acc));
      A* part_g = partials.mutable_data_ptr<A>();
      A* k_terms = terms.mutable_data_ptr<A>();
      for (int64_t n0 = 0; n0 < N; n0 += per_batch) {
        backward_split<T, A, VEC>(p.batch(n0, std::min(per_batch, N - n0)), stream, part_g,
                                  part_g + parts, k_terms, groups_per_batch);
      }
    });
  });
  // sums[0] = Σ g = grad of bias, sums[1] = Σ g * xhat = grad of weight, per (n, c).
  return {dx, param_grad(weight, sums[1], x.scalar_type()),
          param_grad(bias, sums[0], x.scalar_type())};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The CUDA kernels of the normalization operators (schemas in normalization_ops.cpp; each runs
// its operator's checks first, device_kernels.h).

TORCH_LIBRARY_IMPL(i2i_fast, CUDA, m) {
  register_kernels<NormalizationKernels<&norm_forward, &norm_backward>>(m);
}

}  // namespace i2i_fast::normalization::cuda
