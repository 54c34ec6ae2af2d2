// CPU kernels of the resampling family, for (N, C, H, W) tensors, contiguous or channels-last:
//
//   block_repeat(x, f, divisor, out_h, out_w)  out[h, w] = x[h / f, w / f] / divisor, zero where
//                                              h / f or w / f falls outside x (out_h may exceed
//                                              f * H by less than f: the adjoint of a floor pool)
//   block_sum(x, f, divisor)                   out[h, w] = (sum of the f x f block at (f h, f w))
//                                              / divisor, over the H / f x W / f whole blocks
//   reflection_pad(x, p)                       PyTorch's "reflect" padding by p on all four sides
//   reflection_pad_backward(g, p)              its adjoint: each input pixel gathers the gradient
//                                              of every padded position that copies it
//
// Nearest upsampling by f is block_repeat(x, f, 1, fH, fW), whose gradient is block_sum(g, f, 1);
// average pooling by f is block_sum(x, f, f * f), whose gradient is block_repeat(g, f, f * f, H,
// W). Every kernel writes each output element once (a gather: no zero fill, no atomics), sums in
// float (double for double) in a fixed order, and divides like PyTorch's avg_pool2d (sum / f^2).
// The output has the layout of the input: channels-last when the input is channels-last and not
// contiguous, else contiguous (other strides are made contiguous first).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../common/checks.h"
#include "../common/cpu_element.h"
#include "../common/cpu_parallel.h"

namespace i2i_fast::resampling::cpu {
namespace {

using at::Tensor;
using namespace i2i_fast::cpu;  // NOLINT(build/namespaces): the element helpers

constexpr int64_t kChannelTile = 256;                    // channels-last accumulators at once

// ----- layout -----

struct Input {
  Tensor x;            // dense in `channels_last` layout
  bool channels_last;  // else contiguous NCHW
  int64_t N, C, H, W;
};

Input dense_input(const char* op, const Tensor& x, const char* name = "x") {
  // The words of i2i_fast/ops/resampling/checks.py (`image`).
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": ", name, ": expected shape (N, C, H, W), got ", x.dim(),
                    " dims with shape ", checks::shape_text(x.sizes()));
  checks::floating(op, name, x);
  Input in{x, false, x.size(0), x.size(1), x.size(2), x.size(3)};
  if (x.is_contiguous()) return in;
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    in.channels_last = true;
    return in;
  }
  in.x = x.contiguous();
  return in;
}

// An uninitialised output in the input's layout, from the process's CPU allocator.
Tensor empty_output(const Input& in, int64_t H, int64_t W) {
  const int64_t C = in.C;
  const std::array<int64_t, 4> sizes{in.N, C, H, W};
  const std::array<int64_t, 4> strides =
      in.channels_last ? std::array<int64_t, 4>{H * W * C, 1, W * C, C}
                       : std::array<int64_t, 4>{C * H * W, H * W, W, 1};
  return at::empty_strided(sizes, strides, in.x.options());
}

// Each kernel's rows: (plane, row) pairs of an NCHW tensor, rows of W elements; or (sample, row)
// pairs of a channels-last tensor, rows of W * C elements ("lanes" = C per pixel).

// ----- block_repeat -----

template <typename T, int F>
void block_repeat_kernel(const Input& in, Tensor& out, int64_t factor, double divisor) {
  using S = typename StorageOf<T>::type;
  using A = typename AccumulateOf<T>::type;
  const int64_t f = F > 0 ? F : factor;
  const int64_t H = in.H, W = in.W, OH = out.size(2), OW = out.size(3);
  const int64_t lanes = in.channels_last ? in.C : 1;  // elements per pixel in a row
  const int64_t outer = in.channels_last ? in.N : in.N * in.C;
  const int64_t out_row = OW * lanes, in_row = W * lanes;
  const S* src = reinterpret_cast<const S*>(in.x.data_ptr());
  S* dst = reinterpret_cast<S*>(out.data_ptr());
  const bool plain = divisor == 1.0;  // a copy: bit-exact for every dtype
  const A div = static_cast<A>(divisor);
  at::parallel_for(0, outer * OH, grain_for(out_row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / OH, ho = r % OH, hi = ho / f;
      S* orow = dst + r * out_row;
      if (hi >= H) {
        std::memset(static_cast<void*>(orow), 0, sizeof(S) * out_row);
        continue;
      }
      if (ho % f != 0 && r > r0) {  // the same source row as the row above
        std::memcpy(static_cast<void*>(orow), orow - out_row, sizeof(S) * out_row);
        continue;
      }
      const S* irow = src + (o * H + hi) * in_row;
      if (lanes == 1 && plain) {
        for (int64_t wi = 0; wi < W; ++wi) {
          const S v = irow[wi];
          for (int64_t j = 0; j < f; ++j) orow[wi * f + j] = v;
        }
      } else if (lanes == 1) {
        for (int64_t wi = 0; wi < W; ++wi) {
          const S v = narrow<S>(widen(irow[wi]) / div);
          for (int64_t j = 0; j < f; ++j) orow[wi * f + j] = v;
        }
      } else {
        for (int64_t wi = 0; wi < W; ++wi) {
          const S* p = irow + wi * lanes;
          for (int64_t j = 0; j < f; ++j) {
            S* q = orow + (wi * f + j) * lanes;
            if (plain) {
              std::memcpy(static_cast<void*>(q), p, sizeof(S) * lanes);
            } else {
              for (int64_t c = 0; c < lanes; ++c) q[c] = narrow<S>(widen(p[c]) / div);
            }
          }
        }
      }
      const int64_t filled = W * f * lanes;
      if (filled < out_row) {
        std::memset(static_cast<void*>(orow + filled), 0, sizeof(S) * (out_row - filled));
      }
    }
  });
}

// ----- block_sum -----

template <typename T, int F>
void block_sum_kernel(const Input& in, Tensor& out, int64_t factor, double divisor) {
  using S = typename StorageOf<T>::type;
  using A = typename AccumulateOf<T>::type;
  const int64_t f = F > 0 ? F : factor;
  const int64_t W = in.W, OH = out.size(2), OW = out.size(3);
  const int64_t lanes = in.channels_last ? in.C : 1;
  const int64_t outer = in.channels_last ? in.N : in.N * in.C;
  const int64_t out_row = OW * lanes, in_row = W * lanes;
  const S* src = reinterpret_cast<const S*>(in.x.data_ptr());
  S* dst = reinterpret_cast<S*>(out.data_ptr());
  const A div = static_cast<A>(divisor);
  at::parallel_for(0, outer * OH, grain_for(out_row * f * f), [&](int64_t r0, int64_t r1) {
    A acc[kChannelTile];
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / OH, ho = r % OH;
      S* orow = dst + r * out_row;
      const S* block_rows = src + (o * in.H + ho * f) * in_row;
      if (lanes == 1) {
        for (int64_t wo = 0; wo < OW; ++wo) {
          A sum = A(0);
          for (int64_t i = 0; i < f; ++i) {
            const S* p = block_rows + i * in_row + wo * f;
            for (int64_t j = 0; j < f; ++j) sum += widen(p[j]);
          }
          orow[wo] = narrow<S>(sum / div);
        }
        continue;
      }
      for (int64_t wo = 0; wo < OW; ++wo) {
        for (int64_t c0 = 0; c0 < lanes; c0 += kChannelTile) {
          const int64_t cn = std::min(kChannelTile, lanes - c0);
          for (int64_t c = 0; c < cn; ++c) acc[c] = A(0);
          for (int64_t i = 0; i < f; ++i) {
            for (int64_t j = 0; j < f; ++j) {
              const S* p = block_rows + i * in_row + (wo * f + j) * lanes + c0;
              for (int64_t c = 0; c < cn; ++c) acc[c] += widen(p[c]);
            }
          }
          S* q = orow + wo * lanes + c0;
          for (int64_t c = 0; c < cn; ++c) q[c] = narrow<S>(acc[c] / div);
        }
      }
    }
  });
}

// ----- block_max -----

// The window position (i * f + j, row i and column j of the f x f block) of each output: the one
// aten's max_pool2d picks, since the gradient goes there alone. aten scans the window in row-major
// order and moves to an element when it is greater than the maximum so far or NaN
// (`val > max || isnan(val)`): the first maximum wins a tie, a NaN wins over every number, and the
// LAST NaN of a window over an earlier one. The index is uint8 for f <= 16 (f^2 <= 256 positions),
// int32 above: one byte per output at f = 2, an eighth of aten's int64 indices.
// Branch-free (`|`, and selects in the kernels), which vectorises; with random data a branch
// per element would mispredict half the time.
template <typename A>
C10_ALWAYS_INLINE bool takes_over(A value, A best) {
  return (value > best) | (value != value);
}

at::ScalarType index_dtype(int64_t factor) { return factor <= 16 ? at::kByte : at::kInt; }

// One row of block_max's outputs: OW pixels of `lanes` elements (1 in NCHW, C in channels-last),
// each the maximum of its f x f block (block_rows: the block's first input row, rows in_row
// apart) and its window position. A function of its own, with restrict pointers and its sizes by
// value: the uint8 stores of the positions may alias anything, and the lambda's captured
// references, reloaded after every store, kept the loops from vectorising (15x slower). The
// position is selected as an A (the width of the comparison's mask) and converted once.
// Window position k's values p[0, n) against the maxima so far (channels-last: n channels).
// `omp simd`: without it GCC left the loop scalar (and branching) for 16 channels, 17x slower.
template <typename S, typename A>
C10_ALWAYS_INLINE void block_max_step(const S* __restrict__ p, A* __restrict__ best,
                                      A* __restrict__ pos, int64_t n, A k) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    const A v = widen(p[c]);
    const bool take = takes_over(v, best[c]);
    best[c] = take ? v : best[c];
    pos[c] = take ? k : pos[c];
  }
}

// N consecutive outputs of an NCHW row (p: the first one's block). N a constant: GCC vectorises
// the loop for a run-time count only from 32 outputs up, and its scalar remainder branches on
// every comparison (15-20x slower on random data); with N = 16 TUNIT's 16-column rows vectorise.
constexpr int64_t kMaxRun = 16;

template <typename S, typename A, typename I, int F, int64_t N>
C10_ALWAYS_INLINE void block_max_run(const S* __restrict__ p, S* __restrict__ orow,
                                     I* __restrict__ wrow, int64_t in_row, int64_t f) {
  for (int64_t u = 0; u < N; ++u) {
    const S* q = p + u * f;
    A m = widen(q[0]), pos = A(0);
    for (int64_t k = 1; k < f * f; ++k) {
      const A v = widen(q[(k / f) * in_row + k % f]);
      const bool take = takes_over(v, m);
      m = take ? v : m;
      pos = take ? A(k) : pos;
    }
    orow[u] = narrow<S>(m);  // exact: m is one of the block's values
    wrow[u] = static_cast<I>(pos);
  }
}

template <typename S, typename A, typename I, int F>
void block_max_row(const S* __restrict__ block_rows, S* __restrict__ orow, I* __restrict__ wrow,
                   int64_t OW, int64_t in_row, int64_t lanes, int64_t factor) {
  const int64_t f = F > 0 ? F : factor;
  if (lanes == 1) {
    int64_t wo = 0;
    for (; wo + kMaxRun <= OW; wo += kMaxRun) {
      block_max_run<S, A, I, F, kMaxRun>(block_rows + wo * f, orow + wo, wrow + wo, in_row, f);
    }
    for (; wo < OW; ++wo) {
      block_max_run<S, A, I, F, 1>(block_rows + wo * f, orow + wo, wrow + wo, in_row, f);
    }
    return;
  }
  A best[kChannelTile], pos[kChannelTile];
  for (int64_t wo = 0; wo < OW; ++wo) {
    for (int64_t c0 = 0; c0 < lanes; c0 += kChannelTile) {
      const int64_t cn = std::min(kChannelTile, lanes - c0);
      const S* first = block_rows + wo * f * lanes + c0;
      for (int64_t c = 0; c < cn; ++c) best[c] = widen(first[c]), pos[c] = A(0);
      for (int64_t k = 1; k < f * f; ++k) {
        block_max_step<S, A>(first + (k / f) * in_row + (k % f) * lanes, best, pos, cn, A(k));
      }
      S* q = orow + wo * lanes + c0;
      I* w = wrow + wo * lanes + c0;
      for (int64_t c = 0; c < cn; ++c) q[c] = narrow<S>(best[c]), w[c] = static_cast<I>(pos[c]);
    }
  }
}

template <typename T, typename I, int F>
void block_max_kernel(const Input& in, Tensor& out, Tensor& index, int64_t factor) {
  using S = typename StorageOf<T>::type;
  using A = typename AccumulateOf<T>::type;
  const int64_t f = F > 0 ? F : factor;
  const int64_t OH = out.size(2), OW = out.size(3), H = in.H;
  const int64_t lanes = in.channels_last ? in.C : 1;
  const int64_t outer = in.channels_last ? in.N : in.N * in.C;
  const int64_t out_row = OW * lanes, in_row = in.W * lanes;
  const S* src = reinterpret_cast<const S*>(in.x.data_ptr());
  S* dst = reinterpret_cast<S*>(out.data_ptr());
  I* where = index.data_ptr<I>();
  at::parallel_for(0, outer * OH, grain_for(out_row * f * f), [=](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      block_max_row<S, A, I, F>(src + ((r / OH) * H + (r % OH) * f) * in_row, dst + r * out_row,
                                where + r * out_row, OW, in_row, lanes, factor);
    }
  });
}

// One input row of block_max_scatter's output (row i of its blocks): each element gets its
// block's gradient when it is the block's saved position, else 0; restrict pointers and values,
// as block_max_row.
template <typename S, typename I, int F>
void block_max_scatter_row(const S* __restrict__ grow, const I* __restrict__ wrow,
                           S* __restrict__ orow, int64_t OW, int64_t lanes, int64_t i,
                           int64_t factor) {
  const int64_t f = F > 0 ? F : factor;
  if (lanes == 1) {
#pragma omp simd
    for (int64_t wo = 0; wo < OW; ++wo) {
      const int64_t k = wrow[wo];
      const S g = grow[wo];
      for (int64_t j = 0; j < f; ++j) orow[wo * f + j] = k == i * f + j ? g : S(0);
    }
    return;
  }
  // channels-last: zero the row, then each block whose winner is in row i writes its gradient
  // there, the others to a sink (a select of addresses, no branch: the winners are random, and
  // the select of values per element ran 20x slower than aten).
  std::memset(static_cast<void*>(orow), 0, sizeof(S) * OW * f * lanes);
  S sink;
  for (int64_t wo = 0; wo < OW; ++wo) {
    for (int64_t c = 0; c < lanes; ++c) {
      const int64_t k = wrow[wo * lanes + c];
      S* target = k / f == i ? orow + (wo * f + k % f) * lanes + c : &sink;
      *target = grow[wo * lanes + c];
    }
  }
}

// The routing of block_max's gradient and its adjoint, by the saved window positions:
//   scatter (kScatter): out (N, C, H, W): out[f ho + i, f wo + j] = t[ho, wo] where
//                       index[ho, wo] == i f + j, else 0 (0 in the remainder rows and columns)
//   gather:             out (N, C, H / f, W / f): out[ho, wo] = t[f ho + i, f wo + j] for
//                       i f + j = index[ho, wo]
// `t` and `index` in t's layout; each output element is written once.
template <bool kScatter, typename T, typename I, int F>
void block_max_route_kernel(const Input& t, const Tensor& index, Tensor& out, int64_t factor) {
  using S = typename StorageOf<T>::type;
  const int64_t f = F > 0 ? F : factor;
  const int64_t lanes = t.channels_last ? t.C : 1;
  const int64_t outer = t.channels_last ? t.N : t.N * t.C;
  // the full-size (H, W) and pooled (OH, OW) sides
  const Tensor& pooled = kScatter ? t.x : out;
  const int64_t H = kScatter ? out.size(2) : t.H, W = kScatter ? out.size(3) : t.W;
  const int64_t OH = pooled.size(2), OW = pooled.size(3);
  const int64_t row = W * lanes, pooled_row = OW * lanes;
  const S* src = reinterpret_cast<const S*>(t.x.data_ptr());
  S* dst = reinterpret_cast<S*>(out.data_ptr());
  const I* where = index.data_ptr<I>();
  if constexpr (kScatter) {
    at::parallel_for(0, outer * H, grain_for(row), [=](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t o = r / H, hi = r % H, ho = hi / f;
        S* orow = dst + r * row;
        int64_t filled = 0;
        if (ho < OH) {
          const int64_t offset = (o * OH + ho) * pooled_row;
          block_max_scatter_row<S, I, F>(src + offset, where + offset, orow, OW, lanes, hi % f,
                                         factor);
          filled = OW * f * lanes;
        }
        std::memset(static_cast<void*>(orow + filled), 0, sizeof(S) * (row - filled));
      }
    });
    return;
  }
  at::parallel_for(0, outer * OH, grain_for(pooled_row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const S* block_rows = src + ((r / OH) * H + (r % OH) * f) * row;
      const I* wrow = where + r * pooled_row;
      S* orow = dst + r * pooled_row;
      for (int64_t e = 0; e < pooled_row; ++e) {
        const int64_t k = wrow[e], wo = e / lanes, c = e % lanes;
        orow[e] = block_rows[(k / f) * row + (wo * f + k % f) * lanes + c];
      }
    }
  });
}

// ----- reflection padding -----

// The source index of padded position r (0 <= r < n + 2p), PyTorch's "reflect" (no edge repeat).
inline int64_t reflect(int64_t r, int64_t n, int64_t p) {
  const int64_t i = r - p;
  return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
}

template <typename T>
void reflection_pad_kernel(const Input& in, Tensor& out, int64_t p) {
  using S = typename StorageOf<T>::type;
  const int64_t H = in.H, W = in.W, OH = H + 2 * p, OW = W + 2 * p;
  const S* src = reinterpret_cast<const S*>(in.x.data_ptr());
  S* dst = reinterpret_cast<S*>(out.data_ptr());
  if (!in.channels_last) {
    at::parallel_for(0, in.N * in.C, grain_for(OH * OW), [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {
        const S* plane = src + q * H * W;
        S* o = dst + q * OH * OW;
        for (int64_t ho = 0; ho < OH; ++ho, o += OW) {
          const S* irow = plane + reflect(ho, H, p) * W;
          for (int64_t j = 0; j < p; ++j) o[j] = irow[p - j];
          std::memcpy(static_cast<void*>(o + p), irow, sizeof(S) * W);
          for (int64_t k = 0; k < p; ++k) o[p + W + k] = irow[W - 2 - k];
        }
      }
    });
    return;
  }
  const int64_t C = in.C;
  at::parallel_for(0, in.N * OH, grain_for(OW * C), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / OH, ho = r % OH;
      const S* irow = src + (n * H + reflect(ho, H, p)) * W * C;
      S* orow = dst + r * OW * C;
      for (int64_t j = 0; j < p; ++j) {
        std::memcpy(static_cast<void*>(orow + j * C), irow + (p - j) * C, sizeof(S) * C);
        std::memcpy(static_cast<void*>(orow + (p + W + j) * C), irow + (W - 2 - j) * C,
                    sizeof(S) * C);
      }
      std::memcpy(static_cast<void*>(orow + p * C), irow, sizeof(S) * W * C);
    }
  });
}

// acc[w * lanes + c] (+)= the gradient row `grow` folded onto the W source columns: column w
// gathers padded column w + p, plus p - w when 1 <= w <= p, plus 2 (W - 1) - w + p when
// W - 1 - p <= w <= W - 2.
template <typename S, typename A>
C10_ALWAYS_INLINE void fold_row(const S* __restrict__ grow, A* __restrict__ acc, int64_t W,
                                int64_t p, int64_t lanes, bool first) {
  const S* __restrict__ interior = grow + p * lanes;
  if (first) {
    for (int64_t e = 0; e < W * lanes; ++e) acc[e] = widen(interior[e]);
  } else {
    for (int64_t e = 0; e < W * lanes; ++e) acc[e] += widen(interior[e]);
  }
  for (int64_t w = 1; w <= p; ++w) {
    for (int64_t c = 0; c < lanes; ++c) acc[w * lanes + c] += widen(grow[(p - w) * lanes + c]);
  }
  for (int64_t w = std::max<int64_t>(W - 1 - p, 0); w <= W - 2; ++w) {
    const S* g = grow + (2 * (W - 1) - w + p) * lanes;
    for (int64_t c = 0; c < lanes; ++c) acc[w * lanes + c] += widen(g[c]);
  }
}

template <typename T>
void reflection_pad_backward_kernel(const Input& g, Tensor& out, int64_t p) {
  using S = typename StorageOf<T>::type;
  using A = typename AccumulateOf<T>::type;
  constexpr bool kInPlace = std::is_same_v<S, A>;  // float/double: accumulate in the output
  const int64_t H = out.size(2), W = out.size(3), GH = g.H, GW = g.W;
  const int64_t lanes = g.channels_last ? g.C : 1;
  // NCHW: a task is a run of whole planes; channels-last: a run of (sample, row) pairs.
  const int64_t outer = g.channels_last ? g.N : g.N * g.C;
  const int64_t out_row = W * lanes, g_row = GW * lanes;
  const S* src = reinterpret_cast<const S*>(g.x.data_ptr());
  S* dst = reinterpret_cast<S*>(out.data_ptr());
  at::parallel_for(0, outer * H, grain_for(out_row * 2), [&](int64_t r0, int64_t r1) {
    std::vector<A> buffer(kInPlace ? 0 : static_cast<size_t>(out_row));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / H, hi = r % H;
      S* orow = dst + r * out_row;
      A* acc = kInPlace ? reinterpret_cast<A*>(orow) : buffer.data();
      const S* plane = src + o * GH * g_row;
      fold_row(plane + (hi + p) * g_row, acc, W, p, lanes, true);
      if (hi >= 1 && hi <= p) fold_row(plane + (p - hi) * g_row, acc, W, p, lanes, false);
      if (hi >= H - 1 - p && hi <= H - 2) {
        fold_row(plane + (2 * (H - 1) - hi + p) * g_row, acc, W, p, lanes, false);
      }
      if constexpr (!kInPlace) {
        for (int64_t e = 0; e < out_row; ++e) orow[e] = narrow<S>(acc[e]);
      }
    }
  });
}

// ----- the operators -----

#define I2I_FAST_RESAMPLING_TYPES(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, TYPE, NAME, __VA_ARGS__)

// Calls f(std::integral_constant<int, F>{}): F = 2 for factor 2 (the kernels' unrolled case), 0
// (the factor read at run time) otherwise.
template <typename Fn>
void dispatch_factor(int64_t factor, Fn&& f) {
  if (factor == 2) {
    f(std::integral_constant<int, 2>{});
  } else {
    f(std::integral_constant<int, 0>{});
  }
}

void check_factor(const char* op, int64_t factor) {
  TORCH_CHECK(factor >= 1, op, ": factor: expected an integer >= 1, got ", factor);
}

Tensor block_repeat_cpu(const Tensor& x, int64_t factor, double divisor, int64_t out_h,
                        int64_t out_w) {
  const char* op = "block_repeat";
  check_factor(op, factor);
  const Input in = dense_input(op, x);
  TORCH_CHECK(out_h >= in.H * factor && out_h < (in.H + 1) * factor && out_w >= in.W * factor &&
                  out_w < (in.W + 1) * factor,
              op, ": out_h, out_w: expected [", in.H * factor, ", ", (in.H + 1) * factor,
              ") x [", in.W * factor, ", ", (in.W + 1) * factor, ") for x of shape ", x.sizes(),
              " and factor ", factor, ", got ", out_h, " x ", out_w);
  Tensor out = empty_output(in, out_h, out_w);
  if (out.numel() == 0) return out;
  I2I_FAST_RESAMPLING_TYPES(x.scalar_type(), "block_repeat", [&] {
    dispatch_factor(factor, [&](auto F) {
      block_repeat_kernel<scalar_t, decltype(F)::value>(in, out, factor, divisor);
    });
  });
  return out;
}

Tensor block_sum_cpu(const Tensor& x, int64_t factor, double divisor) {
  const char* op = "block_sum";
  check_factor(op, factor);
  const Input in = dense_input(op, x);
  Tensor out = empty_output(in, in.H / factor, in.W / factor);
  if (out.numel() == 0) return out;
  I2I_FAST_RESAMPLING_TYPES(x.scalar_type(), "block_sum", [&] {
    dispatch_factor(factor, [&](auto F) {
      block_sum_kernel<scalar_t, decltype(F)::value>(in, out, factor, divisor);
    });
  });
  return out;
}

// Calls f(std::integral_constant<int, F>{}, I{}) with block_max's index type I (index_dtype).
template <typename Fn>
void dispatch_block_max(int64_t factor, Fn&& f) {
  dispatch_factor(factor, [&](auto F) {
    if (factor <= 16) {
      f(F, uint8_t{});
    } else {
      f(F, int32_t{});
    }
  });
}

// block_max's checks, in the words of i2i_fast/ops/resampling/checks.py (`pool`).
Input pool_input(const char* op, const Tensor& x, int64_t factor) {
  const Input in = dense_input(op, x);
  TORCH_CHECK_VALUE(factor >= 1, op, ": factor: expected an integer >= 1, got ", factor);
  TORCH_CHECK_VALUE(in.H >= factor && in.W >= factor, op, ": x: expected H and W >= factor (",
                    factor, "), got shape ", checks::shape_text(x.sizes()));
  return in;
}

std::tuple<Tensor, Tensor> block_max_forward_cpu(const Tensor& x, int64_t factor) {
  const Input in = pool_input("block_max", x, factor);
  Tensor out = empty_output(in, in.H / factor, in.W / factor);
  Tensor index = at::empty_like(out, out.options().dtype(index_dtype(factor)));
  if (out.numel() == 0) return {out, index};
  I2I_FAST_RESAMPLING_TYPES(x.scalar_type(), "block_max", [&] {
    dispatch_block_max(factor, [&](auto F, auto I) {
      block_max_kernel<scalar_t, decltype(I), decltype(F)::value>(in, out, index, factor);
    });
  });
  return {out, index};
}

// block_max_scatter(grad, index, factor, out_h, out_w) and block_max_gather(x, index, factor,
// out_h, out_w): the output size is given (the scatter's cannot be told from the gradient's when
// H or W leave a remainder); index is block_max_forward's, in any layout. The checks are those of
// i2i_fast/ops/resampling/checks.py (`block_max_route`), in its words.
template <bool kScatter>
Tensor block_max_route_cpu(const Tensor& t, const Tensor& index, int64_t factor, int64_t out_h,
                           int64_t out_w) {
  const char* op = kScatter ? "block_max_scatter" : "block_max_gather";
  const char* name = kScatter ? "grad" : "x";
  const Input in = dense_input(op, t, name);
  TORCH_CHECK_VALUE(factor >= 1, op, ": factor: expected an integer >= 1, got ", factor);
  const int64_t OH = kScatter ? in.H : out_h, OW = kScatter ? in.W : out_w;
  const int64_t H = kScatter ? out_h : in.H, W = kScatter ? out_w : in.W;
  if (H / factor != OH || W / factor != OW) {
    const std::string expected =
        kScatter ? "[" + std::to_string(factor * in.H) + ", " +
                       std::to_string(factor * in.H + factor) + ") x [" +
                       std::to_string(factor * in.W) + ", " +
                       std::to_string(factor * in.W + factor) + ")"
                 : std::to_string(in.H / factor) + " x " + std::to_string(in.W / factor);
    TORCH_CHECK_VALUE(false, op, ": out_h, out_w: expected ", expected, " for ", name,
                      " of shape ", checks::shape_text(t.sizes()), " and factor ", factor,
                      ", got ", out_h, " x ", out_w);
  }
  const std::array<int64_t, 4> shape{in.N, in.C, OH, OW};
  TORCH_CHECK_VALUE(index.sizes() == c10::IntArrayRef(shape) &&
                        index.scalar_type() == index_dtype(factor),
                    op, ": index: expected block_max_forward's window positions of shape ",
                    checks::shape_text(shape), " and dtype ",
                    checks::dtype_text(index_dtype(factor)), ", got shape ",
                    checks::shape_text(index.sizes()), " and dtype ",
                    checks::dtype_text(index.scalar_type()));
  checks::same_device(op, "index", index, t.device(),
                      std::string(" (the device of ") + name + ")");
  const Tensor dense_index = index.contiguous(in.channels_last ? at::MemoryFormat::ChannelsLast
                                                               : at::MemoryFormat::Contiguous);
  Tensor out = empty_output(in, out_h, out_w);
  if (out.numel() == 0) return out;
  I2I_FAST_RESAMPLING_TYPES(t.scalar_type(), "block_max_route", [&] {
    dispatch_block_max(factor, [&](auto F, auto I) {
      block_max_route_kernel<kScatter, scalar_t, decltype(I), decltype(F)::value>(
          in, dense_index, out, factor);
    });
  });
  return out;
}

// reflection_pad's checks of `pad`, in the words of i2i_fast/ops/resampling/checks.py.
void check_pad(const char* op, int64_t pad, const Tensor& x) {
  TORCH_CHECK_VALUE(pad >= 0, op, ": pad: expected an integer >= 0, got ", pad);
  TORCH_CHECK_VALUE(pad < x.size(2) && pad < x.size(3), op,
                    ": pad: expected pad < H and pad < W (reflection does not repeat the edge), "
                    "got pad ", pad, " for x of shape ", checks::shape_text(x.sizes()));
}

Tensor reflection_pad_cpu(const Tensor& x, int64_t pad) {
  const char* op = "reflection_pad";
  const Input in = dense_input(op, x);
  check_pad(op, pad, x);
  Tensor out = empty_output(in, in.H + 2 * pad, in.W + 2 * pad);
  if (out.numel() == 0) return out;
  I2I_FAST_RESAMPLING_TYPES(x.scalar_type(), "reflection_pad",
                            [&] { reflection_pad_kernel<scalar_t>(in, out, pad); });
  return out;
}

Tensor reflection_pad_backward_cpu(const Tensor& grad, int64_t pad) {
  const char* op = "reflection_pad_backward";
  const Input g = dense_input(op, grad);
  TORCH_CHECK(pad >= 0 && g.H > 3 * pad && g.W > 3 * pad, op,
              ": grad: expected a padded gradient of H + 2 pad x W + 2 pad with pad < H, W, got ",
              g.H, " x ", g.W, " and pad ", pad);
  Tensor out = empty_output(g, g.H - 2 * pad, g.W - 2 * pad);
  if (out.numel() == 0) return out;
  I2I_FAST_RESAMPLING_TYPES(grad.scalar_type(), "reflection_pad_backward",
                            [&] { reflection_pad_backward_kernel<scalar_t>(g, out, pad); });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  m.impl("block_repeat", &block_repeat_cpu);
  m.impl("block_sum", &block_sum_cpu);
  m.impl("reflection_pad", &reflection_pad_cpu);
  m.impl("reflection_pad_backward", &reflection_pad_backward_cpu);
  m.impl("block_max_forward", &block_max_forward_cpu);
  m.impl("block_max_scatter", &block_max_route_cpu<true>);
  m.impl("block_max_gather", &block_max_route_cpu<false>);
}

}  // namespace i2i_fast::resampling::cpu
