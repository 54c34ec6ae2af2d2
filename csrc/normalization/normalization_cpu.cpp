// CPU kernels for AdaIN, InstanceNorm, LayerNorm (both styles) and BatchNorm (training mode),
// forward and backward.
//
// Statistics take one sweep over memory and stay numerically stable: the data is cut into blocks
// that fit in L1 (channels-last per-channel statistics: in L2, moment_block_rows), each block gets
// an exact two-pass mean and sum of squared deviations (float arithmetic; bfloat16/float16 values
// are widened), and blocks are merged in double with Chan's formula. Never E[x^2] - E[x]^2.
//
// Work is organised by "group" (the elements one mean/rstd describes):
//  * contiguous groups: one (n, c) row of an NCHW tensor (instance statistics), or one sample of
//    C*S elements in either layout (layer statistics);
//  * channels-last instance statistics: the C groups of a sample are the columns of its S x C
//    row-major block, swept row by row with per-channel accumulators.
// A thread takes whole groups (whole samples, for channels-last) when there are enough of them,
// computing statistics and output while the data is in cache; otherwise all threads split each
// group (sample) into fixed chunks whose partial results are merged in order. Fixed chunk sizes
// make the results independent of the thread count.
//
// An output larger than the caches (cpu_streaming.h: 16 MiB and up) is written with streaming
// stores through a buffer in L1: no read of the destination before the write, no write-backs
// competing with the next sweep's reads (at the 32-64 MiB floor shapes of the benchmarks x1.1 to
// x1.3 in most cases, forward and backward; AdaIN's NCHW forward between x0.9 and x1.2).
#include "normalization_cpu.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common/activation.h"
#include "../common/cpu_element.h"
#include "../common/cpu_parallel.h"
#include "../common/cpu_streaming.h"
#include "device_kernels.h"

namespace i2i_fast::normalization::cpu {
namespace {

using namespace i2i_fast::cpu;  // NOLINT(build/namespaces): the element helpers

constexpr int64_t kSpanBlock = 1024;  // elements summed in A before folding into a double
constexpr int64_t kRowBlock = 64;     // rows of a column tile summed in A before folding
constexpr int64_t kColumnBlock = 256;  // columns handled at once by the row primitives
constexpr int64_t kChunk = 1 << 15;    // elements per task when one group is split

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Contiguous span primitives.

// Merges a block of nb values into m from the sums of their deviations d = x - center and d * d,
// where center approximates the block's mean (from a first pass): the block's mean is
// center + sum_d / nb and its M2 is sum_d2 - sum_d^2 / nb. Both come from the deviations, not from
// the first pass's rounded sum, so a constant block gets exactly its value as mean and M2 = 0;
// M2 is clamped at 0 against rounding (a negative M2 made MUNIT's std NaN for constant samples).
inline void merge_block(Moments& m, double nb, double center, double sum_d, double sum_d2) {
  const double offset = sum_d / nb;
  m.merge(nb, center + offset, std::max(0.0, sum_d2 - sum_d * offset));
}

// Moments of a contiguous span: exact two-pass per L1 block, blocks merged in double.
template <typename T, typename A>
Moments span_moments(const T* p, int64_t n) {
  Moments m;
  for (int64_t b = 0; b < n; b += kSpanBlock) {
    const int64_t e = std::min(n, b + kSpanBlock);
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += static_cast<A>(widen(p[i]));
    const double nb = static_cast<double>(e - b);
    const A center = static_cast<A>(static_cast<double>(s) / nb);
    A sd = 0, q = 0;
#pragma omp simd reduction(+ : sd, q)
    for (int64_t i = b; i < e; ++i) {
      const A d = static_cast<A>(widen(p[i])) - center;
      sd += d;
      q += d * d;
    }
    merge_block(m, nb, center, sd, q);
  }
  return m;
}

template <Activation act, typename T, typename A>
void span_normalize(const T* x, T* y, int64_t n, A mean, A scale, A shift, A slope) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const A z = (static_cast<A>(widen(x[i])) - mean) * scale + shift;
    y[i] = narrow<T>(activate<act>(z, slope));
  }
}

// The elements a streamed stretch is computed in before stream_copy writes it out.
template <typename T>
constexpr int64_t kStreamChunk = kStreamChunkBytes / static_cast<int64_t>(sizeof(T));

// write(buffer, j, len) computes elements [j, j + len) of a stretch of n outputs into buffer;
// stream_out writes the stretch to out through the L1 buffer with streaming stores
// (cpu_streaming.h). The task that writes it fences at its end (parallel_write).
template <typename T, typename Write>
void stream_out(T* out, int64_t n, const Write& write) {
  alignas(64) T buffer[kStreamChunk<T>];
  for (int64_t j = 0; j < n; j += kStreamChunk<T>) {
    const int64_t len = std::min(kStreamChunk<T>, n - j);
    write(buffer, j, len);
    stream_copy(out + j, buffer, static_cast<size_t>(len) * sizeof(T));
  }
}

// span_normalize, written with streaming stores when `stream`.
template <Activation act, typename T, typename A>
void span_normalize_out(const T* x, T* y, int64_t n, A mean, A scale, A shift, A slope,
                        bool stream) {
  if (!stream) return span_normalize<act>(x, y, n, mean, scale, shift, slope);
  stream_out(y, n, [&](T* buffer, int64_t j, int64_t len) {
    span_normalize<act>(x + j, buffer, len, mean, scale, shift, slope);
  });
}

// Adds Σ g and Σ g * xhat over the span to sum_g / sum_gx (g: gradient after the activation).
template <Activation act, typename T, typename A>
void span_grad_sums(const T* x, const T* dy, int64_t n, A mean, A rstd, A scale, A shift, A slope,
                    double& sum_g, double& sum_gx) {
  for (int64_t b = 0; b < n; b += kSpanBlock) {
    const int64_t e = std::min(n, b + kSpanBlock);
    A sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t i = b; i < e; ++i) {
      const A xc = static_cast<A>(widen(x[i])) - mean;
      const A g = activation_grad<act>(xc * scale + shift, static_cast<A>(widen(dy[i])), slope);
      sg += g;
      sgx += g * (xc * rstd);
    }
    sum_g += sg;
    sum_gx += sgx;
  }
}

template <Activation act, typename T, typename A>
void span_input_grad(const T* x, const T* dy, T* dx, int64_t n, A mean, A scale, A shift, A slope,
                     A k_g, A k_x, A k_0) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const A xc = static_cast<A>(widen(x[i])) - mean;
    const A g = activation_grad<act>(xc * scale + shift, static_cast<A>(widen(dy[i])), slope);
    dx[i] = narrow<T>(k_g * g + k_x * xc + k_0);
  }
}

template <Activation act, typename T, typename A>
void span_input_grad_out(const T* x, const T* dy, T* dx, int64_t n, A mean, A scale, A shift,
                         A slope, A k_g, A k_x, A k_0, bool stream) {
  if (!stream) return span_input_grad<act>(x, dy, dx, n, mean, scale, shift, slope, k_g, k_x, k_0);
  stream_out(dx, n, [&](T* buffer, int64_t j, int64_t len) {
    span_input_grad<act>(x + j, dy + j, buffer, len, mean, scale, shift, slope, k_g, k_x, k_0);
  });
}

// ---------------------------------------------------------------------------------------------
// Row primitives for channels-last data: `rows` rows of leading dimension ld, columns [0, cw).
// Per-column parameters are arrays indexed by column.
//
// Channel counts are often small (16 to 64 floats: one to four vectors per row), and a column loop
// that short spends most of its time on its own bookkeeping. When the rows are dense (ld == cw),
// `period` rows are therefore processed as one flat run of L = cw * period elements, with the
// per-channel coefficients repeated to length L (and sums kept per position of the run, folded
// into channels in a fixed order): one long vectorised loop per L elements. Wide rows, strided
// rows and the rows left over at the end take the per-row loops.
constexpr int64_t kMaxPeriodLength = 512;
constexpr int64_t kLanes = 16;  // run positions summed together in registers (L is a multiple)

// Rows per flat run for rows of cw elements (1: per-row loops).
int64_t period_rows(int64_t cw) {
  if (cw >= 128) return 1;
  int64_t m = 1;
  while ((cw * m) % 16 != 0) ++m;  // whole 64-byte vectors of float
  while (cw * m < 128) m *= 2;
  return cw * m <= kMaxPeriodLength ? m : 1;
}

// dst[j] = src[j % cw] for j in [0, length), length a multiple of cw (no integer division: it
// would cost more than the data loops at these sizes).
template <typename A>
void repeat_columns(const A* src, int64_t cw, int64_t length, A* dst) {
  for (int64_t j0 = 0; j0 < length; j0 += cw) std::copy(src, src + cw, dst + j0);
}

// out[c] += Σ_k run[k * cw + c] for the length / cw rows of a run, in order of k.
template <typename A, typename S>
void fold_columns(const A* run, int64_t cw, int64_t length, S* out) {
  for (int64_t j0 = 0; j0 < length; j0 += cw) {
    for (int64_t c = 0; c < cw; ++c) out[c] += run[j0 + c];
  }
}

// dev[j] += x[j] - center[j], sq[j] += (x[j] - center[j])^2 for j in [0, n).
template <typename T, typename A>
C10_ALWAYS_INLINE void add_deviations(const T* x, const A* center, int64_t n, A* dev, A* sq) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const A d = static_cast<A>(widen(x[j])) - center[j];
    dev[j] += d;
    sq[j] += d * d;
  }
}

// The rows of one block of the per-column moments, for rows read `width` elements at a time
// (a row, or a flat run of `m` rows): as many as fit in kMomentBlockBytes counted in floats, a
// whole number of runs, and at most kSpanBlock values of any column (summed in A, as
// span_moments' blocks). The block's second pass reads it from L2; each block costs a merge in
// double per column (divisions: with 16 KiB blocks of 256 channels the merges took more time than
// the data passes).
constexpr int64_t kMomentBlockBytes = 128 << 10;
int64_t moment_block_rows(int64_t width, int64_t m) {
  const int64_t runs = std::max<int64_t>(
      1, std::min(kMomentBlockBytes / static_cast<int64_t>(sizeof(float)) / width, kSpanBlock / m));
  return runs * m;
}

// Per-column moments of `rows` rows, merged into moments[c] (c in [0, cw)): exact two-pass per
// block of rows (moment_block_rows), blocks merged in double.
template <typename T, typename A>
void rows_moments(const T* x, int64_t rows, int64_t ld, int64_t cw, Moments* moments) {
  const int64_t m = ld == cw ? period_rows(cw) : 1;
  if (m > 1) {
    const int64_t L = cw * m;
    const int64_t block_rows = moment_block_rows(L, m);
    A acc[kMaxPeriodLength];
    A center[kMaxPeriodLength];
    A sum[kMaxPeriodLength];
    A dev[kMaxPeriodLength];  // sums of x - center
    A sq[kMaxPeriodLength];   // sums of (x - center)^2
    for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
      const int64_t r1 = std::min(rows, r0 + block_rows);
      const int64_t runs = (r1 - r0) / m;
      const T* xb = x + r0 * cw;
      const T* tail = xb + runs * L;
      const int64_t tail_rows = r1 - r0 - runs * m;
      const double nb = static_cast<double>(r1 - r0);
      for (int64_t j0 = 0; j0 < L; j0 += kLanes) {
        A a[kLanes] = {};
        for (int64_t k = 0; k < runs; ++k) {
          const T* v = xb + k * L + j0;
#pragma omp simd
          for (int64_t j = 0; j < kLanes; ++j) a[j] += static_cast<A>(widen(v[j]));
        }
        std::copy(a, a + kLanes, acc + j0);
      }
      std::fill(sum, sum + cw, A(0));
      fold_columns(acc, cw, L, sum);
      for (int64_t r = 0; r < tail_rows; ++r) {
        for (int64_t c = 0; c < cw; ++c) sum[c] += static_cast<A>(widen(tail[r * cw + c]));
      }
      for (int64_t c = 0; c < cw; ++c) {
        center[c] = static_cast<A>(static_cast<double>(sum[c]) / nb);
      }
      repeat_columns(center, cw, L, acc);  // acc holds the repeated centers for this pass
      for (int64_t j0 = 0; j0 < L; j0 += kLanes) {
        A sd[kLanes] = {}, q[kLanes] = {};
        A ctr[kLanes];
        std::copy(acc + j0, acc + j0 + kLanes, ctr);
        for (int64_t k = 0; k < runs; ++k) add_deviations(xb + k * L + j0, ctr, kLanes, sd, q);
        std::copy(sd, sd + kLanes, dev + j0);
        std::copy(q, q + kLanes, sq + j0);
      }
      fold_columns(dev + cw, cw, L - cw, dev);
      fold_columns(sq + cw, cw, L - cw, sq);
      for (int64_t r = 0; r < tail_rows; ++r) add_deviations(tail + r * cw, center, cw, dev, sq);
      for (int64_t c = 0; c < cw; ++c) merge_block(moments[c], nb, center[c], dev[c], sq[c]);
    }
    return;
  }
  A sum[kColumnBlock];
  A center[kColumnBlock];
  A dev[kColumnBlock];  // sums of x - center
  A sq[kColumnBlock];   // sums of (x - center)^2
  for (int64_t c0 = 0; c0 < cw; c0 += kColumnBlock) {
    const int64_t w = std::min(cw - c0, kColumnBlock);
    const int64_t block_rows = moment_block_rows(w, 1);
    // Each pass runs down the block one vector of kLanes columns at a time, its sums in
    // registers (a loop over the whole row kept them in memory, a store per vector per row);
    // the columns past the last whole vector take a loop of their own. Every column is summed
    // over the rows in order either way.
    const int64_t whole = w / kLanes * kLanes;
    for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
      const int64_t r1 = std::min(rows, r0 + block_rows);
      const double nb = static_cast<double>(r1 - r0);
      const T* xb = x + c0;
      for (int64_t j0 = 0; j0 < whole; j0 += kLanes) {
        A a[kLanes] = {};
        for (int64_t r = r0; r < r1; ++r) {
          const T* v = xb + r * ld + j0;
#pragma omp simd
          for (int64_t j = 0; j < kLanes; ++j) a[j] += static_cast<A>(widen(v[j]));
        }
        std::copy(a, a + kLanes, sum + j0);
      }
      std::fill(sum + whole, sum + w, A(0));
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = whole; c < w; ++c) sum[c] += static_cast<A>(widen(xb[r * ld + c]));
      }
      for (int64_t c = 0; c < w; ++c) center[c] = static_cast<A>(static_cast<double>(sum[c]) / nb);
      for (int64_t j0 = 0; j0 < whole; j0 += kLanes) {
        A sd[kLanes] = {}, q[kLanes] = {};
        A ctr[kLanes];
        std::copy(center + j0, center + j0 + kLanes, ctr);
        for (int64_t r = r0; r < r1; ++r) add_deviations(xb + r * ld + j0, ctr, kLanes, sd, q);
        std::copy(sd, sd + kLanes, dev + j0);
        std::copy(q, q + kLanes, sq + j0);
      }
      std::fill(dev + whole, dev + w, A(0));
      std::fill(sq + whole, sq + w, A(0));
      for (int64_t r = r0; r < r1; ++r) {
        add_deviations(xb + r * ld + whole, center + whole, w - whole, dev + whole, sq + whole);
      }
      for (int64_t c = 0; c < w; ++c) merge_block(moments[c0 + c], nb, center[c], dev[c], sq[c]);
    }
  }
}

// y[j] = act((x[j] - mean[j]) * scale[j] + shift[j]) for j in [0, n): one row (coefficients per
// channel) or one flat run of rows (coefficients repeated).
template <Activation act, typename T, typename A>
void normalize_run(const T* x, T* y, int64_t n, const A* mean, const A* scale, const A* shift,
                   A slope) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const A z = (static_cast<A>(widen(x[j])) - mean[j]) * scale[j] + shift[j];
    y[j] = narrow<T>(activate<act>(z, slope));
  }
}

// stream: write y with streaming stores (cpu_streaming.h).
template <Activation act, typename T, typename A>
void rows_normalize(const T* x, T* y, int64_t rows, int64_t ld, int64_t cw, const A* mean,
                    const A* scale, const A* shift, A slope, bool stream) {
  const auto run = [&](const T* xr, T* yr, int64_t n, const A* mn, const A* sc, const A* sh) {
    if (!stream) return normalize_run<act>(xr, yr, n, mn, sc, sh, slope);
    stream_out(yr, n, [&](T* buffer, int64_t j, int64_t len) {
      normalize_run<act>(xr + j, buffer, len, mn + j, sc + j, sh + j, slope);
    });
  };
  int64_t r = 0;
  const int64_t m = ld == cw ? period_rows(cw) : 1;
  if (m > 1) {
    const int64_t L = cw * m;
    A mn[kMaxPeriodLength], sc[kMaxPeriodLength], sh[kMaxPeriodLength];
    repeat_columns(mean, cw, L, mn);
    repeat_columns(scale, cw, L, sc);
    repeat_columns(shift, cw, L, sh);
    for (; r + m <= rows; r += m) run(x + r * cw, y + r * cw, L, mn, sc, sh);
  }
  for (; r < rows; ++r) run(x + r * ld, y + r * ld, cw, mean, scale, shift);
}

// acc_g[j] += g, acc_gx[j] += g * xhat for j in [0, n), g the gradient after the activation: one
// row (coefficients per channel) or kLanes positions of a flat run (coefficients repeated).
template <Activation act, typename T, typename A>
void add_grad_terms(const T* x, const T* dy, int64_t n, const A* mean, const A* rstd,
                    const A* scale, const A* shift, A slope, A* acc_g, A* acc_gx) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const A xc = static_cast<A>(widen(x[j])) - mean[j];
    const A g = activation_grad<act>(xc * scale[j] + shift[j], static_cast<A>(widen(dy[j])), slope);
    acc_g[j] += g;
    acc_gx[j] += g * (xc * rstd[j]);
  }
}

template <Activation act, typename T, typename A>
void rows_grad_sums(const T* x, const T* dy, int64_t rows, int64_t ld, int64_t cw, const A* mean,
                    const A* rstd, const A* scale, const A* shift, A slope, double* sum_g,
                    double* sum_gx) {
  const int64_t m = ld == cw ? period_rows(cw) : 1;
  if (m > 1) {
    const int64_t L = cw * m;
    A mn[kMaxPeriodLength], rs[kMaxPeriodLength], sc[kMaxPeriodLength], sh[kMaxPeriodLength];
    A acc_g[kMaxPeriodLength], acc_gx[kMaxPeriodLength];
    repeat_columns(mean, cw, L, mn);
    repeat_columns(rstd, cw, L, rs);
    repeat_columns(scale, cw, L, sc);
    repeat_columns(shift, cw, L, sh);
    // Each position of the run adds one value per run: kRowBlock runs per float partial sum
    // before it is folded into the double sums, as the per-row loops do with kRowBlock rows.
    const int64_t runs_per_block = kRowBlock;
    const int64_t runs = rows / m;
    for (int64_t k0 = 0; k0 < runs; k0 += runs_per_block) {
      const int64_t k1 = std::min(runs, k0 + runs_per_block);
      for (int64_t j0 = 0; j0 < L; j0 += kLanes) {
        A ag[kLanes] = {}, agx[kLanes] = {};
        A mn_j[kLanes], sc_j[kLanes], sh_j[kLanes], rs_j[kLanes];
        std::copy(mn + j0, mn + j0 + kLanes, mn_j);
        std::copy(sc + j0, sc + j0 + kLanes, sc_j);
        std::copy(sh + j0, sh + j0 + kLanes, sh_j);
        std::copy(rs + j0, rs + j0 + kLanes, rs_j);
        for (int64_t k = k0; k < k1; ++k) {
          add_grad_terms<act>(x + k * L + j0, dy + k * L + j0, kLanes, mn_j, rs_j, sc_j, sh_j,
                              slope, ag, agx);
        }
        std::copy(ag, ag + kLanes, acc_g + j0);
        std::copy(agx, agx + kLanes, acc_gx + j0);
      }
      fold_columns(acc_g, cw, L, sum_g);
      fold_columns(acc_gx, cw, L, sum_gx);
    }
    const int64_t done = runs * m;
    x += done * cw;
    dy += done * cw;
    rows -= done;
  }
  A acc_g[kColumnBlock];
  A acc_gx[kColumnBlock];
  for (int64_t c0 = 0; c0 < cw; c0 += kColumnBlock) {
    const int64_t w = std::min(cw - c0, kColumnBlock);
    const A* mn = mean + c0;
    const A* rs = rstd + c0;
    const A* sc = scale + c0;
    const A* sh = shift + c0;
    for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      const int64_t r1 = std::min(rows, r0 + kRowBlock);
      std::fill(acc_g, acc_g + w, A(0));
      std::fill(acc_gx, acc_gx + w, A(0));
      for (int64_t r = r0; r < r1; ++r) {
        add_grad_terms<act>(x + r * ld + c0, dy + r * ld + c0, w, mn, rs, sc, sh, slope, acc_g,
                            acc_gx);
      }
      for (int64_t c = 0; c < w; ++c) {
        sum_g[c0 + c] += acc_g[c];
        sum_gx[c0 + c] += acc_gx[c];
      }
    }
  }
}

// dx[j] = k_g[j] * g + k_x[j] * (x[j] - mean[j]) + k_0[j], g the gradient after the activation,
// for j in [0, n): one row or one flat run of rows, as normalize_run.
template <Activation act, typename T, typename A>
void input_grad_run(const T* x, const T* dy, T* dx, int64_t n, const A* mean, const A* scale,
                    const A* shift, A slope, const A* k_g, const A* k_x, const A* k_0) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const A xc = static_cast<A>(widen(x[j])) - mean[j];
    const A g = activation_grad<act>(xc * scale[j] + shift[j], static_cast<A>(widen(dy[j])), slope);
    dx[j] = narrow<T>(k_g[j] * g + k_x[j] * xc + k_0[j]);
  }
}

template <Activation act, typename T, typename A>
void rows_input_grad(const T* x, const T* dy, T* dx, int64_t rows, int64_t ld, int64_t cw,
                     const A* mean, const A* scale, const A* shift, A slope, const A* k_g,
                     const A* k_x, const A* k_0, bool stream) {
  const auto run = [&](const T* xr, const T* dyr, T* dxr, int64_t n, const A* mn, const A* sc,
                       const A* sh, const A* kg, const A* kx, const A* k0) {
    if (!stream) return input_grad_run<act>(xr, dyr, dxr, n, mn, sc, sh, slope, kg, kx, k0);
    stream_out(dxr, n, [&](T* buffer, int64_t j, int64_t len) {
      input_grad_run<act>(xr + j, dyr + j, buffer, len, mn + j, sc + j, sh + j, slope, kg + j,
                          kx + j, k0 + j);
    });
  };
  int64_t r = 0;
  const int64_t m = ld == cw ? period_rows(cw) : 1;
  if (m > 1) {
    const int64_t L = cw * m;
    A mn[kMaxPeriodLength], sc[kMaxPeriodLength], sh[kMaxPeriodLength];
    A kg[kMaxPeriodLength], kx[kMaxPeriodLength], k0[kMaxPeriodLength];
    repeat_columns(mean, cw, L, mn);
    repeat_columns(scale, cw, L, sc);
    repeat_columns(shift, cw, L, sh);
    repeat_columns(k_g, cw, L, kg);
    repeat_columns(k_x, cw, L, kx);
    repeat_columns(k_0, cw, L, k0);
    for (; r + m <= rows; r += m) {
      const int64_t off = r * cw;
      run(x + off, dy + off, dx + off, L, mn, sc, sh, kg, kx, k0);
    }
  }
  for (; r < rows; ++r) {
    const int64_t off = r * ld;
    run(x + off, dy + off, dx + off, cw, mean, scale, shift, k_g, k_x, k_0);
  }
}

// ---------------------------------------------------------------------------------------------
// The problem as the kernels see it.

template <typename T, typename A>
struct Problem {
  const T* x;
  const T* dy;  // backward only
  T* out;       // y (forward) or dx (backward)
  int64_t N, C, S;
  Layout layout;
  // Modulation of sample n, channel c: weight[n * weight_sn + c] (weight_sn 0 for per-channel).
  const A* weight;
  int64_t weight_sn;
  const A* bias;
  int64_t bias_sn;
  StdKind std_kind;
  double eps;
  A slope;
  bool stream;  // out is written with streaming stores (an output larger than the caches)
};

// at::parallel_for for the sweeps of a problem: each task ends with a fence when the output is
// streamed, so that its streaming stores are visible when the loop returns (a fence per task,
// not per stretch: a fence waits for the stores in flight).
template <typename T, typename A, typename F>
void parallel_write(const Problem<T, A>& p, int64_t begin, int64_t end, int64_t grain,
                    const F& f) {
  at::parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
    f(b, e);
    if (p.stream) stream_fence();
  });
}

// Contiguous groups: group g covers `channels` x S elements starting at g * channels * S, laid
// out as `inner` (NCS: channel rows of S; NSC: S rows of `channels`). Instance statistics on NCS
// data: groups are the N*C rows (channels = 1); layer statistics: groups are the N samples.
template <typename T, typename A>
struct GroupView {
  const Problem<T, A>& p;
  int64_t groups;
  int64_t channels;
  bool instance;  // group g is the (n, c) row g; else group g is sample g

  int64_t size() const { return channels * p.S; }
  int64_t sample(int64_t g) const { return instance ? g / p.C : g; }
  int64_t first_channel(int64_t g) const { return instance ? g % p.C : 0; }
  A weight(int64_t g, int64_t c) const {
    return p.weight[sample(g) * p.weight_sn + first_channel(g) + c];
  }
  A bias(int64_t g, int64_t c) const { return p.bias[sample(g) * p.bias_sn + first_channel(g) + c]; }
};

// Group g's coefficients as per-channel columns, for the row kernels of NSC data: the group's
// mean, rstd and input-gradient terms k_x, k_0 repeated, and its scale (rstd * weight) and shift
// (bias) per channel; each `channels` long, stored in scratch.
template <typename A>
struct ChannelColumns {
  const A* mean;
  const A* rstd;
  const A* scale;
  const A* shift;
  const A* k_x;
  const A* k_0;
};

template <typename T, typename A>
ChannelColumns<A> channel_columns(const GroupView<T, A>& v, int64_t g, A mean, A rstd, A k_x,
                                  A k_0, std::vector<A>& scratch) {
  const int64_t cw = v.channels;
  scratch.resize(6 * cw);
  A* col = scratch.data();
  for (int64_t c = 0; c < cw; ++c) {
    col[c] = mean;
    col[cw + c] = rstd;
    col[2 * cw + c] = rstd * v.weight(g, c);
    col[3 * cw + c] = v.bias(g, c);
    col[4 * cw + c] = k_x;
    col[5 * cw + c] = k_0;
  }
  return {col, col + cw, col + 2 * cw, col + 3 * cw, col + 4 * cw, col + 5 * cw};
}

// Whether to give whole groups to threads (true) or split every group across threads (false).
bool whole_groups_per_thread(int64_t groups, int64_t group_bytes) {
  const int64_t threads = at::get_num_threads();
  if (threads <= 1) return true;
  if (groups < threads) return false;
  return groups >= 4 * threads || group_bytes <= (int64_t(1) << 20);
}

// ----- forward, contiguous groups -----

template <Activation act, typename T, typename A>
void normalize_group_part(const GroupView<T, A>& v, int64_t g, A mean, A rstd, int64_t c0,
                          int64_t c1, int64_t s0, int64_t s1, std::vector<A>& scratch) {
  const Problem<T, A>& p = v.p;
  const int64_t base = g * v.size();
  if (p.layout == Layout::kNCS) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t off = base + c * p.S + s0;
      span_normalize_out<act>(p.x + off, p.out + off, s1 - s0, mean, rstd * v.weight(g, c),
                              v.bias(g, c), p.slope, p.stream);
    }
  } else {
    const int64_t cw = v.channels;
    const ChannelColumns<A> col = channel_columns(v, g, mean, rstd, A(0), A(0), scratch);
    const int64_t off = base + s0 * cw;
    rows_normalize<act>(p.x + off, p.out + off, s1 - s0, cw, cw, col.mean, col.scale, col.shift,
                        p.slope, p.stream);
  }
}

template <Activation act, typename T, typename A>
void forward_contiguous_groups(const GroupView<T, A>& v, A* mean_out, A* rstd_out) {
  const Problem<T, A>& p = v.p;
  const int64_t M = v.size();
  if (whole_groups_per_thread(v.groups, M * static_cast<int64_t>(sizeof(T)))) {
    parallel_write(p, 0, v.groups, grain_for(M), [&](int64_t g0, int64_t g1) {
      std::vector<A> scratch;
      for (int64_t g = g0; g < g1; ++g) {
        const Moments m = span_moments<T, A>(p.x + g * M, M);
        const A mean = static_cast<A>(m.mean);
        const A rstd = static_cast<A>(rstd_from_m2(m.m2, M, p.std_kind, p.eps));
        normalize_group_part<act>(v, g, mean, rstd, 0, v.channels, 0, p.S, scratch);
        mean_out[g] = mean;
        rstd_out[g] = rstd;
      }
    });
    return;
  }
  // Few large groups: every group is split into fixed chunks across all threads: one sweep for
  // the statistics, one for the output (from cache for groups up to a few MiB).
  const int64_t chunks = ceil_div(M, kChunk);
  std::vector<Moments> partial(chunks);
  for (int64_t g = 0; g < v.groups; ++g) {
    const T* xg = p.x + g * M;
    parallel_write(p, 0, chunks, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        partial[i] = span_moments<T, A>(xg + i * kChunk, std::min(kChunk, M - i * kChunk));
      }
    });
    Moments m;
    for (const Moments& part : partial) m.merge(part);
    const A mean = static_cast<A>(m.mean);
    const A rstd = static_cast<A>(rstd_from_m2(m.m2, M, p.std_kind, p.eps));
    mean_out[g] = mean;
    rstd_out[g] = rstd;
    if (p.layout == Layout::kNCS) {
      const int64_t per_row = ceil_div(p.S, kChunk);
      parallel_write(p, 0, v.channels * per_row, 1, [&](int64_t t0, int64_t t1) {
        std::vector<A> scratch;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t c = t / per_row;
          const int64_t s0 = (t % per_row) * kChunk;
          normalize_group_part<act>(v, g, mean, rstd, c, c + 1, s0, std::min(p.S, s0 + kChunk),
                                    scratch);
        }
      });
    } else {
      const int64_t rows = std::max<int64_t>(1, kChunk / v.channels);
      parallel_write(p, 0, ceil_div(p.S, rows), 1, [&](int64_t t0, int64_t t1) {
        std::vector<A> scratch;
        for (int64_t t = t0; t < t1; ++t) {
          normalize_group_part<act>(v, g, mean, rstd, 0, v.channels, t * rows,
                                    std::min(p.S, (t + 1) * rows), scratch);
        }
      });
    }
  }
}

// ----- backward, contiguous groups -----

// Per-channel sums of g and g * xhat over channels [c0, c1) x spatial [s0, s1) of group g, added
// to sum_g[c - c0], sum_gx[c - c0].
template <Activation act, typename T, typename A>
void group_grad_sums(const GroupView<T, A>& v, int64_t g, A mean, A rstd, int64_t c0, int64_t c1,
                     int64_t s0, int64_t s1, double* sum_g, double* sum_gx,
                     std::vector<A>& scratch) {
  const Problem<T, A>& p = v.p;
  const int64_t base = g * v.size();
  if (p.layout == Layout::kNCS) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t off = base + c * p.S + s0;
      span_grad_sums<act>(p.x + off, p.dy + off, s1 - s0, mean, rstd, rstd * v.weight(g, c),
                          v.bias(g, c), p.slope, sum_g[c - c0], sum_gx[c - c0]);
    }
  } else {
    const int64_t cw = v.channels;
    const ChannelColumns<A> col = channel_columns(v, g, mean, rstd, A(0), A(0), scratch);
    const int64_t off = base + s0 * cw;
    rows_grad_sums<act>(p.x + off, p.dy + off, s1 - s0, cw, cw, col.mean, col.rstd, col.scale,
                        col.shift, p.slope, sum_g, sum_gx);
  }
}

template <Activation act, typename T, typename A>
void group_input_grad(const GroupView<T, A>& v, int64_t g, A mean, A rstd, InputGradTerms k,
                      int64_t c0, int64_t c1, int64_t s0, int64_t s1, std::vector<A>& scratch) {
  const Problem<T, A>& p = v.p;
  const int64_t base = g * v.size();
  const A k_x = static_cast<A>(k.k_x);
  const A k_0 = static_cast<A>(k.k_0);
  if (p.layout == Layout::kNCS) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t off = base + c * p.S + s0;
      const A scale = rstd * v.weight(g, c);
      span_input_grad_out<act>(p.x + off, p.dy + off, p.out + off, s1 - s0, mean, scale,
                               v.bias(g, c), p.slope, scale, k_x, k_0, p.stream);
    }
  } else {
    const int64_t cw = v.channels;
    const ChannelColumns<A> col = channel_columns(v, g, mean, rstd, k_x, k_0, scratch);
    const int64_t off = base + s0 * cw;
    rows_input_grad<act>(p.x + off, p.dy + off, p.out + off, s1 - s0, cw, cw, col.mean,
                         col.scale, col.shift, p.slope, col.scale, col.k_x, col.k_0, p.stream);
  }
}

template <typename T, typename A>
InputGradTerms group_terms(const GroupView<T, A>& v, int64_t g, A rstd, const double* sum_g,
                           const double* sum_gx) {
  double sum_dxhat = 0, sum_dxhat_xhat = 0;
  for (int64_t c = 0; c < v.channels; ++c) {
    const double w = v.weight(g, c);
    sum_dxhat += w * sum_g[c];
    sum_dxhat_xhat += w * sum_gx[c];
  }
  return input_grad_terms(sum_dxhat, sum_dxhat_xhat, v.size(), rstd, v.p.std_kind, v.p.eps);
}

// sum_g / sum_gx: (N * C) per-(n, c) sums, written here (they give the parameter gradients).
template <Activation act, typename T, typename A>
void backward_contiguous_groups(const GroupView<T, A>& v, const A* mean, const A* rstd,
                                double* sum_g, double* sum_gx) {
  const Problem<T, A>& p = v.p;
  const int64_t M = v.size();
  const int64_t cg = v.channels;
  if (whole_groups_per_thread(v.groups, 2 * M * static_cast<int64_t>(sizeof(T)))) {
    parallel_write(p, 0, v.groups, grain_for(2 * M), [&](int64_t g0, int64_t g1) {
      std::vector<A> scratch;
      for (int64_t g = g0; g < g1; ++g) {
        double* sg = sum_g + g * cg;
        double* sgx = sum_gx + g * cg;
        std::fill(sg, sg + cg, 0.0);
        std::fill(sgx, sgx + cg, 0.0);
        group_grad_sums<act>(v, g, mean[g], rstd[g], 0, cg, 0, p.S, sg, sgx, scratch);
        const InputGradTerms k = group_terms(v, g, rstd[g], sg, sgx);
        group_input_grad<act>(v, g, mean[g], rstd[g], k, 0, cg, 0, p.S, scratch);
      }
    });
    return;
  }
  // Few large groups: fixed tasks per group, partial sums per task, reduced in order.
  // NCS tasks: (channel, spatial chunk); NSC tasks: chunks of whole rows.
  const bool ncs = p.layout == Layout::kNCS;
  const int64_t per_row = ceil_div(p.S, kChunk);
  const int64_t rows = std::max<int64_t>(1, kChunk / cg);
  const int64_t tasks = ncs ? cg * per_row : ceil_div(p.S, rows);
  const int64_t width = ncs ? 1 : cg;  // channels covered by one task's partial sums
  std::vector<double> part_g(tasks * width), part_gx(tasks * width);
  for (int64_t g = 0; g < v.groups; ++g) {
    const A mn = mean[g], rs = rstd[g];
    std::fill(part_g.begin(), part_g.end(), 0.0);
    std::fill(part_gx.begin(), part_gx.end(), 0.0);
    parallel_write(p, 0, tasks, 1, [&](int64_t t0, int64_t t1) {
      std::vector<A> scratch;
      for (int64_t t = t0; t < t1; ++t) {
        double* pg = part_g.data() + t * width;
        double* pgx = part_gx.data() + t * width;
        if (ncs) {
          const int64_t c = t / per_row, s0 = (t % per_row) * kChunk;
          group_grad_sums<act>(v, g, mn, rs, c, c + 1, s0, std::min(p.S, s0 + kChunk), pg, pgx,
                               scratch);
        } else {
          group_grad_sums<act>(v, g, mn, rs, 0, cg, t * rows, std::min(p.S, (t + 1) * rows), pg,
                               pgx, scratch);
        }
      }
    });
    double* sg = sum_g + g * cg;
    double* sgx = sum_gx + g * cg;
    std::fill(sg, sg + cg, 0.0);
    std::fill(sgx, sgx + cg, 0.0);
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t j = 0; j < width; ++j) {
        const int64_t c = ncs ? t / per_row : j;
        sg[c] += part_g[t * width + j];
        sgx[c] += part_gx[t * width + j];
      }
    }
    const InputGradTerms k = group_terms(v, g, rs, sg, sgx);
    parallel_write(p, 0, tasks, 1, [&](int64_t t0, int64_t t1) {
      std::vector<A> scratch;
      for (int64_t t = t0; t < t1; ++t) {
        if (ncs) {
          const int64_t c = t / per_row, s0 = (t % per_row) * kChunk;
          group_input_grad<act>(v, g, mn, rs, k, c, c + 1, s0, std::min(p.S, s0 + kChunk),
                                scratch);
        } else {
          group_input_grad<act>(v, g, mn, rs, k, 0, cg, t * rows, std::min(p.S, (t + 1) * rows),
                                scratch);
        }
      }
    });
  }
}

// ----- channels-last instance statistics -----
// Sample n is an S x C row-major block; channel c's group is its column c. Tasks are whole
// samples, or chunks of rows of one sample when there are fewer samples than threads.

template <typename T, typename A>
struct ChannelsLastSample {
  const Problem<T, A>& p;
  int64_t rows_per_task;  // split mode: rows per chunk
  int64_t tasks;          // split mode: chunks per sample

  explicit ChannelsLastSample(const Problem<T, A>& problem)
      : p(problem),
        rows_per_task(std::max<int64_t>(1, kChunk / problem.C)),
        tasks(ceil_div(problem.S, rows_per_task)) {}

  bool whole_samples() const {
    return whole_groups_per_thread(p.N, p.S * p.C * static_cast<int64_t>(sizeof(T)));
  }
  int64_t base(int64_t n) const { return n * p.S * p.C; }
  int64_t row0(int64_t t) const { return t * rows_per_task; }
  int64_t rows(int64_t t) const { return std::min(p.S, row0(t) + rows_per_task) - row0(t); }
};

// Per-channel arrays describing sample n: mean, rstd, scale = rstd * w, shift = b.
template <typename T, typename A>
struct ChannelCoefficients {
  std::vector<A> mean, rstd, scale, shift, k_x, k_0;
  explicit ChannelCoefficients(int64_t C)
      : mean(C), rstd(C), scale(C), shift(C), k_x(C), k_0(C) {}

  void set(const Problem<T, A>& p, int64_t n, int64_t c, A mean_c, A rstd_c) {
    mean[c] = mean_c;
    rstd[c] = rstd_c;
    scale[c] = rstd_c * p.weight[n * p.weight_sn + c];
    shift[c] = p.bias[n * p.bias_sn + c];
  }
};

template <Activation act, typename T, typename A>
void forward_instance_channels_last(const Problem<T, A>& p, A* mean_out, A* rstd_out) {
  const int64_t C = p.C, S = p.S;
  const ChannelsLastSample<T, A> cl(p);
  const auto finish = [&](int64_t n, const Moments* moments, ChannelCoefficients<T, A>& k) {
    for (int64_t c = 0; c < C; ++c) {
      const A mean = static_cast<A>(moments[c].mean);
      const A rstd = static_cast<A>(rstd_from_m2(moments[c].m2, S, p.std_kind, p.eps));
      k.set(p, n, c, mean, rstd);
      mean_out[n * C + c] = mean;
      rstd_out[n * C + c] = rstd;
    }
  };
  if (cl.whole_samples()) {
    parallel_write(p, 0, p.N, grain_for(S * C), [&](int64_t n0, int64_t n1) {
      std::vector<Moments> moments(C);
      ChannelCoefficients<T, A> k(C);
      for (int64_t n = n0; n < n1; ++n) {
        std::fill(moments.begin(), moments.end(), Moments{});
        rows_moments<T, A>(p.x + cl.base(n), S, C, C, moments.data());
        finish(n, moments.data(), k);
        rows_normalize<act>(p.x + cl.base(n), p.out + cl.base(n), S, C, C, k.mean.data(),
                            k.scale.data(), k.shift.data(), p.slope, p.stream);
      }
    });
    return;
  }
  std::vector<Moments> partial(cl.tasks * C);
  std::vector<Moments> moments(C);
  ChannelCoefficients<T, A> k(C);
  for (int64_t n = 0; n < p.N; ++n) {
    const T* xn = p.x + cl.base(n);
    std::fill(partial.begin(), partial.end(), Moments{});
    parallel_write(p, 0, cl.tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        rows_moments<T, A>(xn + cl.row0(t) * C, cl.rows(t), C, C, partial.data() + t * C);
      }
    });
    std::fill(moments.begin(), moments.end(), Moments{});
    for (int64_t t = 0; t < cl.tasks; ++t) {
      for (int64_t c = 0; c < C; ++c) moments[c].merge(partial[t * C + c]);
    }
    finish(n, moments.data(), k);
    parallel_write(p, 0, cl.tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t off = cl.base(n) + cl.row0(t) * C;
        rows_normalize<act>(p.x + off, p.out + off, cl.rows(t), C, C, k.mean.data(),
                            k.scale.data(), k.shift.data(), p.slope, p.stream);
      }
    });
  }
}

template <Activation act, typename T, typename A>
void backward_instance_channels_last(const Problem<T, A>& p, const A* mean_in, const A* rstd_in,
                                     double* sum_g, double* sum_gx) {
  const int64_t C = p.C, S = p.S;
  const ChannelsLastSample<T, A> cl(p);
  const auto load = [&](int64_t n, ChannelCoefficients<T, A>& k) {
    for (int64_t c = 0; c < C; ++c) k.set(p, n, c, mean_in[n * C + c], rstd_in[n * C + c]);
  };
  // k_x, k_0 of each channel (an instance group) from its sums of g and g * xhat.
  const auto terms = [&](int64_t n, ChannelCoefficients<T, A>& k) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t nc = n * C + c;
      const double w = p.weight[n * p.weight_sn + c];
      const InputGradTerms t =
          input_grad_terms(w * sum_g[nc], w * sum_gx[nc], S, k.rstd[c], p.std_kind, p.eps);
      k.k_x[c] = static_cast<A>(t.k_x);
      k.k_0[c] = static_cast<A>(t.k_0);
    }
  };
  if (cl.whole_samples()) {
    parallel_write(p, 0, p.N, grain_for(2 * S * C), [&](int64_t n0, int64_t n1) {
      ChannelCoefficients<T, A> k(C);
      for (int64_t n = n0; n < n1; ++n) {
        const int64_t off = cl.base(n);
        load(n, k);
        std::fill(sum_g + n * C, sum_g + (n + 1) * C, 0.0);
        std::fill(sum_gx + n * C, sum_gx + (n + 1) * C, 0.0);
        rows_grad_sums<act>(p.x + off, p.dy + off, S, C, C, k.mean.data(), k.rstd.data(),
                            k.scale.data(), k.shift.data(), p.slope, sum_g + n * C,
                            sum_gx + n * C);
        terms(n, k);
        rows_input_grad<act>(p.x + off, p.dy + off, p.out + off, S, C, C, k.mean.data(),
                             k.scale.data(), k.shift.data(), p.slope, k.scale.data(),
                             k.k_x.data(), k.k_0.data(), p.stream);
      }
    });
    return;
  }
  std::vector<double> part_g(cl.tasks * C), part_gx(cl.tasks * C);
  ChannelCoefficients<T, A> k(C);
  for (int64_t n = 0; n < p.N; ++n) {
    load(n, k);
    std::fill(part_g.begin(), part_g.end(), 0.0);
    std::fill(part_gx.begin(), part_gx.end(), 0.0);
    parallel_write(p, 0, cl.tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t off = cl.base(n) + cl.row0(t) * C;
        rows_grad_sums<act>(p.x + off, p.dy + off, cl.rows(t), C, C, k.mean.data(),
                            k.rstd.data(), k.scale.data(), k.shift.data(), p.slope,
                            part_g.data() + t * C, part_gx.data() + t * C);
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      double sg = 0, sgx = 0;
      for (int64_t t = 0; t < cl.tasks; ++t) {
        sg += part_g[t * C + c];
        sgx += part_gx[t * C + c];
      }
      sum_g[n * C + c] = sg;
      sum_gx[n * C + c] = sgx;
    }
    terms(n, k);
    parallel_write(p, 0, cl.tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t off = cl.base(n) + cl.row0(t) * C;
        rows_input_grad<act>(p.x + off, p.dy + off, p.out + off, cl.rows(t), C, C,
                             k.mean.data(), k.scale.data(), k.shift.data(), p.slope,
                             k.scale.data(), k.k_x.data(), k.k_0.data(), p.stream);
      }
    });
  }
}

// ----- batch statistics (batch_norm): channel c's group is its N planes -----
// NCS: task t is a fixed chunk of one (n, c) plane, the tasks ordered by channel, then n, then
// chunk, so that a channel's partial results are consecutive and merge in a fixed order.
// NSC: the N * S rows of C channels are one row-major block, cut into fixed chunks of rows with
// per-channel partial results (the row primitives of channels-last instance statistics).
// Two sweeps: the statistics, then the output (the backward: the gradient sums, then dx).

template <typename T, typename A>
struct BatchTasks {
  const Problem<T, A>& p;
  bool ncs;
  int64_t per_plane;      // NCS: chunks per plane
  int64_t rows_per_task;  // NSC: rows per chunk
  int64_t count;          // tasks
  int64_t elements;       // elements of a channel: N * S

  explicit BatchTasks(const Problem<T, A>& problem)
      : p(problem),
        ncs(problem.layout == Layout::kNCS),
        per_plane(ceil_div(problem.S, kChunk)),
        rows_per_task(std::max<int64_t>(1, kChunk / problem.C)),
        count(ncs ? problem.C * problem.N * per_plane
                  : ceil_div(problem.N * problem.S, rows_per_task)),
        elements(problem.N * problem.S) {}

  int64_t width() const { return ncs ? 1 : p.C; }  // partial results per task
  int64_t grain() const { return grain_for(ncs ? std::min(p.S, kChunk) : rows_per_task * p.C); }
  // NCS task t: its channel, and where its span starts and how long it is.
  int64_t channel(int64_t t) const { return t / (p.N * per_plane); }
  int64_t span_offset(int64_t t) const {
    const int64_t n = (t / per_plane) % p.N;
    return (n * p.C + channel(t)) * p.S + (t % per_plane) * kChunk;
  }
  int64_t span_length(int64_t t) const {
    return std::min(kChunk, p.S - (t % per_plane) * kChunk);
  }
  // NSC task t: its first row and its number of rows.
  int64_t row0(int64_t t) const { return t * rows_per_task; }
  int64_t rows(int64_t t) const {
    return std::min(p.N * p.S, row0(t) + rows_per_task) - row0(t);
  }
  // Channel c's total of a per-task partial result, in task order.
  template <typename R>
  R reduce(const std::vector<R>& partial, int64_t c) const {
    R total{};
    if (ncs) {
      const int64_t per_channel = count / p.C;
      for (int64_t i = c * per_channel; i < (c + 1) * per_channel; ++i) add(total, partial[i]);
    } else {
      for (int64_t t = 0; t < count; ++t) add(total, partial[t * p.C + c]);
    }
    return total;
  }
  static void add(Moments& total, const Moments& part) { total.merge(part); }
  static void add(double& total, double part) { total += part; }
};

// 1 / sqrt(var + eps) from the variance as stored, so that forward and backward agree exactly.
template <typename A>
A batch_rstd(A var, double eps) {
  return static_cast<A>(1.0 / std::sqrt(static_cast<double>(var) + eps));
}

template <Activation act, typename T, typename A>
void forward_batch(const Problem<T, A>& p, A* mean_out, A* var_out) {
  const BatchTasks<T, A> bt(p);
  const int64_t C = p.C;
  std::vector<Moments> partial(bt.count * bt.width());
  parallel_write(p, 0, bt.count, bt.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (bt.ncs) {
        partial[t] = span_moments<T, A>(p.x + bt.span_offset(t), bt.span_length(t));
      } else {
        rows_moments<T, A>(p.x + bt.row0(t) * C, bt.rows(t), C, C, partial.data() + t * C);
      }
    }
  });
  ChannelCoefficients<T, A> k(C);
  for (int64_t c = 0; c < C; ++c) {
    const Moments m = bt.reduce(partial, c);
    mean_out[c] = static_cast<A>(m.mean);
    var_out[c] = static_cast<A>(m.m2 / static_cast<double>(bt.elements));
    k.set(p, 0, c, mean_out[c], batch_rstd(var_out[c], p.eps));
  }
  parallel_write(p, 0, bt.count, bt.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (bt.ncs) {
        const int64_t c = bt.channel(t), off = bt.span_offset(t);
        span_normalize_out<act>(p.x + off, p.out + off, bt.span_length(t), k.mean[c],
                                k.scale[c], k.shift[c], p.slope, p.stream);
      } else {
        const int64_t off = bt.row0(t) * C;
        rows_normalize<act>(p.x + off, p.out + off, bt.rows(t), C, C, k.mean.data(),
                            k.scale.data(), k.shift.data(), p.slope, p.stream);
      }
    }
  });
}

// sum_g / sum_gx: (C) per-channel sums of g and g * xhat, written here.
template <Activation act, typename T, typename A>
void backward_batch(const Problem<T, A>& p, const A* mean_in, const A* var_in, double* sum_g,
                    double* sum_gx) {
  const BatchTasks<T, A> bt(p);
  const int64_t C = p.C;
  ChannelCoefficients<T, A> k(C);
  for (int64_t c = 0; c < C; ++c) k.set(p, 0, c, mean_in[c], batch_rstd(var_in[c], p.eps));
  std::vector<double> part_g(bt.count * bt.width(), 0.0), part_gx(bt.count * bt.width(), 0.0);
  parallel_write(p, 0, bt.count, bt.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (bt.ncs) {
        const int64_t c = bt.channel(t), off = bt.span_offset(t);
        span_grad_sums<act>(p.x + off, p.dy + off, bt.span_length(t), k.mean[c], k.rstd[c],
                            k.scale[c], k.shift[c], p.slope, part_g[t], part_gx[t]);
      } else {
        const int64_t off = bt.row0(t) * C;
        rows_grad_sums<act>(p.x + off, p.dy + off, bt.rows(t), C, C, k.mean.data(),
                            k.rstd.data(), k.scale.data(), k.shift.data(), p.slope,
                            part_g.data() + t * C, part_gx.data() + t * C);
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    sum_g[c] = bt.reduce(part_g, c);
    sum_gx[c] = bt.reduce(part_gx, c);
    const double w = p.weight[c];
    const InputGradTerms terms = input_grad_terms(w * sum_g[c], w * sum_gx[c], bt.elements,
                                                  k.rstd[c], StdKind::kBiasedVar, p.eps);
    k.k_x[c] = static_cast<A>(terms.k_x);
    k.k_0[c] = static_cast<A>(terms.k_0);
  }
  parallel_write(p, 0, bt.count, bt.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (bt.ncs) {
        const int64_t c = bt.channel(t), off = bt.span_offset(t);
        span_input_grad_out<act>(p.x + off, p.dy + off, p.out + off, bt.span_length(t),
                                 k.mean[c], k.scale[c], k.shift[c], p.slope, k.scale[c],
                                 k.k_x[c], k.k_0[c], p.stream);
      } else {
        const int64_t off = bt.row0(t) * C;
        rows_input_grad<act>(p.x + off, p.dy + off, p.out + off, bt.rows(t), C, C,
                             k.mean.data(), k.scale.data(), k.shift.data(), p.slope,
                             k.scale.data(), k.k_x.data(), k.k_0.data(), p.stream);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Tensor-level plumbing.

// A parameter as a contiguous tensor of the accumulation type; absent → ones/zeros of shape (C,),
// made once per thread and size and reused (the kernels only read them; an instance norm without
// affine paid two at::full per call, forward and backward).
at::Tensor param_in_accumulate_type(const std::optional<at::Tensor>& t, int64_t C, double fill,
                                    at::ScalarType acc) {
  if (t.has_value() && t->defined()) {
    // The common case needs no dispatcher round trip.
    if (t->scalar_type() == acc && t->is_contiguous()) return *t;
    return t->to(acc).contiguous();
  }
  struct Key {
    int64_t channels;
    double fill;
    at::ScalarType dtype;
  };
  constexpr size_t kCached = 16;  // a network's distinct widths; beyond it, the oldest goes
  thread_local std::vector<std::pair<Key, at::Tensor>> cache;
  for (const auto& [key, tensor] : cache) {
    if (key.channels == C && key.fill == fill && key.dtype == acc) return tensor;
  }
  if (cache.size() == kCached) cache.erase(cache.begin());
  cache.emplace_back(Key{C, fill, acc}, at::full({C}, fill, at::TensorOptions().dtype(acc)));
  return cache.back().second;
}

// T: the storage type of the tensors' elements (see cpu_element.h).
template <typename T, typename A>
Problem<T, A> make_problem(const at::Tensor& x, const at::Tensor* dy, at::Tensor& out,
                           const at::Tensor& w, const at::Tensor& b, const NormSpec& spec) {
  const int64_t C = x.size(1);
  const auto data = [](const at::Tensor& t) { return static_cast<const T*>(t.const_data_ptr()); };
  return Problem<T, A>{data(x),
                       dy ? data(*dy) : nullptr,
                       static_cast<T*>(out.mutable_data_ptr()),
                       x.size(0),
                       C,
                       spatial_size(x),
                       layout_of_dense(x),
                       w.const_data_ptr<A>(),
                       w.dim() == 2 ? C : 0,
                       b.const_data_ptr<A>(),
                       b.dim() == 2 ? C : 0,
                       spec.std_kind,
                       spec.eps,
                       static_cast<A>(spec.negative_slope),
                       streams(out.numel() * static_cast<int64_t>(sizeof(T)))};
}

template <typename T, typename A>
GroupView<T, A> contiguous_groups(const Problem<T, A>& p, Grouping grouping) {
  if (grouping == Grouping::kInstance) return GroupView<T, A>{p, p.N * p.C, 1, true};
  return GroupView<T, A>{p, p.N, p.C, false};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_forward(
    const at::Tensor& x_in, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const NormSpec& spec) {
  const at::Tensor x = to_dense_layout(x_in);
  const int64_t N = x.size(0), C = x.size(1);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  const at::Tensor w = param_in_accumulate_type(weight, C, 1.0, acc);
  const at::Tensor b = param_in_accumulate_type(bias, C, 0.0, acc);
  at::Tensor y = at::empty_strided(x.sizes(), x.strides(), x.options());
  const auto stat_options = x.options().dtype(acc);
  // (N, C) instance, (N,) layer, (C,) batch statistics; for batch statistics `rstd` is the var.
  at::Tensor mean = spec.grouping == Grouping::kInstance ? at::empty({N, C}, stat_options)
                    : spec.grouping == Grouping::kLayer  ? at::empty({N}, stat_options)
                                                         : at::empty({C}, stat_options);
  at::Tensor rstd = at::empty_like(mean);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "norm_forward", [&] {
    using A = typename AccumulateOf<scalar_t>::type;
    using S = typename StorageOf<scalar_t>::type;
    const auto p = make_problem<S, A>(x, nullptr, y, w, b, spec);
    A* mean_out = mean.mutable_data_ptr<A>();
    A* rstd_out = rstd.mutable_data_ptr<A>();
    dispatch_activation(spec.activation, [&](auto act_c) {
      constexpr Activation act = decltype(act_c)::value;
      if (spec.grouping == Grouping::kBatch) {
        forward_batch<act>(p, mean_out, rstd_out);
      } else if (spec.grouping == Grouping::kInstance && p.layout == Layout::kNSC) {
        forward_instance_channels_last<act>(p, mean_out, rstd_out);
      } else {
        forward_contiguous_groups<act>(contiguous_groups(p, spec.grouping), mean_out, rstd_out);
      }
    });
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_backward(
    const at::Tensor& grad_out, const at::Tensor& x_in, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    const NormSpec& spec) {
  const at::Tensor x = to_dense_layout(x_in);
  const int64_t N = x.size(0), C = x.size(1);
  const Layout layout = layout_of_dense(x);
  const at::Tensor dy = to_layout(grad_out.to(x.scalar_type()), layout);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  const at::Tensor w = param_in_accumulate_type(weight, C, 1.0, acc);
  const at::Tensor b = param_in_accumulate_type(bias, C, 0.0, acc);
  const at::Tensor mean_acc = mean.to(acc).contiguous();
  const at::Tensor rstd_acc = rstd.to(acc).contiguous();
  at::Tensor dx = at::empty_strided(x.sizes(), x.strides(), x.options());
  // Per-(n, c) sums of g and g * xhat: the parameter gradients before any reduction over n
  // (per channel, one row, for batch statistics).
  const int64_t rows = spec.grouping == Grouping::kBatch ? 1 : N;
  at::Tensor sums = at::empty({2, rows, C}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "norm_backward", [&] {
    using A = typename AccumulateOf<scalar_t>::type;
    using S = typename StorageOf<scalar_t>::type;
    const auto p = make_problem<S, A>(x, &dy, dx, w, b, spec);
    const A* mn = mean_acc.const_data_ptr<A>();
    const A* rs = rstd_acc.const_data_ptr<A>();
    double* sum_g = sums.mutable_data_ptr<double>();
    double* sum_gx = sum_g + rows * C;
    dispatch_activation(spec.activation, [&](auto act_c) {
      constexpr Activation act = decltype(act_c)::value;
      if (spec.grouping == Grouping::kBatch) {
        backward_batch<act>(p, mn, rs, sum_g, sum_gx);
      } else if (spec.grouping == Grouping::kInstance && p.layout == Layout::kNSC) {
        backward_instance_channels_last<act>(p, mn, rs, sum_g, sum_gx);
      } else {
        backward_contiguous_groups<act>(contiguous_groups(p, spec.grouping), mn, rs, sum_g,
                                        sum_gx);
      }
    });
  });
  // sums[0] = Σ g = grad of bias, sums[1] = Σ g * xhat = grad of weight, per (n, c).
  return {dx, param_grad(weight, sums[1], x.scalar_type()),
          param_grad(bias, sums[0], x.scalar_type())};
}

}  // namespace i2i_fast::normalization::cpu

// ---------------------------------------------------------------------------------------------
// The CPU kernels of the normalization operators (schemas in normalization_ops.cpp; each runs its
// operator's checks first, device_kernels.h).

TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  i2i_fast::register_kernels<
      i2i_fast::NormalizationKernels<&i2i_fast::normalization::cpu::norm_forward,
                                     &i2i_fast::normalization::cpu::norm_backward>>(m);
  i2i_fast::register_kernels<
      i2i_fast::BatchNormKernels<&i2i_fast::normalization::cpu::norm_forward,
                                 &i2i_fast::normalization::cpu::norm_backward>>(m);
}
