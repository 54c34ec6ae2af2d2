// output_conv2d on the CPU: a stride-1 convolution to a few output channels (a generator's last
// layer), its padding read in place, vectorised over the width.
//
// oneDNN's convolutions block output channels by 16: with 3 of them most of each vector is idle
// (MUNIT's 7x7 conv from 64 channels to RGB at 256^2 runs at about a third of the machine's
// multiply-add rate, and its backward is slower still). Here every vector holds neighbouring
// output columns of one channel instead (one native register: 16 float32 with AVX-512, 8 with
// AVX2):
//
//   forward      one task per output row (n, i): the C x k_h padded input rows it reads are built
//                once (reflection or zeros applied, converted to the accumulation type), then
//                the row's O outputs accumulate in registers over (c, tap row, tap column), up to
//                four vectors wide per pass, each input vector loaded once for the O outputs and
//                each weight broadcast once for the pass's vectors.
//   grad x       the same correlation run the other way: the gradient before the activation,
//                zero-extended by the kernel, correlated with the flipped kernel gives the
//                gradient of the padded input, which is folded back onto x (a reflected border
//                adds to the row or column it mirrors). One task per (sample, block of 8 input
//                channels).
//   grad weight  one task per input channel: per sample its padded plane built once, then per
//                block of 8 output rows and tap row the O x k_w sums held in registers (k_w in
//                {1, 3, 5, 7}, O <= 4; in windows of taps that fit 16 registers on AVX2; other
//                shapes take a loop with the sums in memory), lanes folded into float64 per
//                sample.
//   grad bias    float64 sums of the gradient before the activation, per (sample, channel).
//
// The activation tanh runs on the output afterwards (ATen's vectorised tanh, in place; the output
// has O channels only), and its derivative 1 - y^2 while the gradient is extended. Every sum has
// an order fixed by the shape: results do not depend on the thread count. Accumulation in float32
// (float64 for float64); float16 and bfloat16 are converted on load and rounded once on store.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/cpu_vector_width.h"
#include "device_kernels.h"

namespace i2i_fast::output_conv {
namespace {

// A vector of A as wide as one register of the build's target (GCC's vector extension: 64 bytes
// with AVX-512, 32 with AVX2, 16 with SSE or NEON).
template <typename A>
struct Lanes {
  static constexpr int64_t kCount =
      static_cast<int64_t>(cpu::kKernelVectorBytes) / static_cast<int64_t>(sizeof(A));
  typedef A Vec __attribute__((vector_size(cpu::kKernelVectorBytes)));
};

// Sums held in registers: a kernel's accumulators plus the vectors it loads per step fit the
// register file (kVectorRegisters), or they spill.
constexpr bool fits_registers(int accumulators, int loads) {
  return accumulators + loads <= cpu::kVectorRegisters;
}

template <typename A>
inline typename Lanes<A>::Vec load(const A* p) {
  typename Lanes<A>::Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename A>
inline void store(A* p, typename Lanes<A>::Vec v) {
  std::memcpy(p, &v, sizeof(v));
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

inline int64_t reflect_index(int64_t i, int64_t size) {
  if (i < 0) return -i;
  if (i >= size) return 2 * (size - 1) - i;
  return i;
}

// A tensor's base pointer and its four strides.
template <typename T>
struct View4 {
  T* data;
  int64_t s0, s1, s2, s3;
  explicit View4(const at::Tensor& t)
      : data(t.data_ptr<std::remove_const_t<T>>()), s0(t.stride(0)), s1(t.stride(1)),
        s2(t.stride(2)),
        s3(t.stride(3)) {}
  T* row(int64_t n, int64_t c, int64_t i) const { return data + n * s0 + c * s1 + i * s2; }
};

// The padded rows [r, r + count) of plane (n, c) of x, each `row` long, zeros past the padded
// width.
template <typename T, typename A>
void padded_rows(const View4<const T>& x, const OutputConvSpec& s, int64_t n, int64_t c,
                 int64_t r, int64_t count, A* dst, int64_t row) {
  const int64_t p = s.padding, wp = s.w + 2 * p;
  for (int64_t k = 0; k < count; ++k, dst += row) {
    int64_t i = r + k - p;
    if ((i < 0 || i >= s.h) && !s.reflect) {
      std::fill(dst, dst + row, A(0));
      continue;
    }
    i = reflect_index(i, s.h);
    const T* src = x.row(n, c, i);
    A* mid = dst + p;
    if (x.s3 == 1) {
      for (int64_t j = 0; j < s.w; ++j) mid[j] = static_cast<A>(src[j]);
    } else {
      for (int64_t j = 0; j < s.w; ++j) mid[j] = static_cast<A>(src[j * x.s3]);
    }
    for (int64_t d = 1; d <= p; ++d) {
      dst[p - d] = s.reflect ? mid[d] : A(0);
      mid[s.w - 1 + d] = s.reflect ? mid[s.w - 1 - d] : A(0);
    }
    std::fill(dst + wp, dst + row, A(0));
  }
}

// out[o][j] for j < width (in passes of kChunks vectors) = sum over input channel c < cin, tap
// (a, b) of wt[c][a][b][o] * rows[c * plane + a * row + j + b]: one output row of O channels.
template <typename A, int O, int kChunks>
void correlate_row(const A* rows, int64_t plane, int64_t row, const A* wt, int64_t cin,
                   int64_t kh, int64_t kw, int64_t width, A* out, int64_t out_stride) {
  using V = typename Lanes<A>::Vec;
  constexpr int64_t L = Lanes<A>::kCount;
  for (int64_t j0 = 0; j0 < width; j0 += kChunks * L) {
    V acc[O][kChunks];
    for (int o = 0; o < O; ++o)
      for (int q = 0; q < kChunks; ++q) acc[o][q] = V{};
    for (int64_t c = 0; c < cin; ++c) {
      for (int64_t a = 0; a < kh; ++a) {
        const A* r = rows + c * plane + a * row + j0;
        const A* wr = wt + (c * kh + a) * kw * O;
        for (int64_t b = 0; b < kw; ++b) {
          V v[kChunks];
          for (int q = 0; q < kChunks; ++q) {
            v[q] = load(r + b + q * L);
            cpu::hold_in_register(v[q]);  // loaded once for the O outputs
          }
          for (int o = 0; o < O; ++o) {
            const A wv = wr[b * O + o];
            for (int q = 0; q < kChunks; ++q) acc[o][q] += wv * v[q];
          }
        }
      }
    }
    for (int o = 0; o < O; ++o)
      for (int q = 0; q < kChunks; ++q) store(out + o * out_stride + j0 + q * L, acc[o][q]);
  }
}

// The passes are up to 4 vectors wide for up to 3 outputs and up to 2 from 4 to 8 (8 blocks the
// gradient's input channels) with 32 vector registers; half that with 16 (2 and 1: the O x pass
// sums and the pass's loads then take at most 9 registers). No pass is wider than the row needs
// (a 6-column row takes one vector): a row buffer rounded to 4 vectors serves all.
constexpr int64_t kPassVectors = 4;

template <typename A>
using CorrelateRowFn = void (*)(const A*, int64_t, int64_t, const A*, int64_t, int64_t, int64_t,
                                int64_t, A*, int64_t);

template <typename A, int O>
CorrelateRowFn<A> correlate_row_for_width(int64_t width) {
  constexpr int64_t L = Lanes<A>::kCount;
  constexpr int kMost = cpu::kVectorRegisters >= 32 ? (O <= 3 ? 4 : 2) : (O <= 3 ? 2 : 1);
  if (width <= L || kMost == 1) return &correlate_row<A, O, 1>;
  if (width <= 2 * L || kMost == 2) return &correlate_row<A, O, 2>;
  return &correlate_row<A, O, 4>;
}

template <typename A>
CorrelateRowFn<A> correlate_row_fn(int64_t outputs, int64_t width) {
  switch (outputs) {
    case 1: return correlate_row_for_width<A, 1>(width);
    case 2: return correlate_row_for_width<A, 2>(width);
    case 3: return correlate_row_for_width<A, 3>(width);
    case 4: return correlate_row_for_width<A, 4>(width);
    case 5: return correlate_row_for_width<A, 5>(width);
    case 6: return correlate_row_for_width<A, 6>(width);
    case 7: return correlate_row_for_width<A, 7>(width);
    default: return correlate_row_for_width<A, 8>(width);
  }
}

// Output channels in blocks of at most `max_block`; the weights of each block laid out as
// [in][a][b][out within the block] so that a tap's weights for the block are contiguous.
template <typename A>
struct WeightBlocks {
  std::vector<int64_t> start, size, offset;
  std::vector<A> weights;
};

// w(o, c, a, b): the weight of output o, input c, tap (a, b).
template <typename A, typename WeightOf>
WeightBlocks<A> block_weights(int64_t outs, int64_t ins, int64_t kh, int64_t kw,
                              int64_t max_block, const WeightOf& w) {
  WeightBlocks<A> blocks;
  for (int64_t first = 0; first < outs; first += max_block) {
    const int64_t size = std::min(max_block, outs - first);
    blocks.start.push_back(first);
    blocks.size.push_back(size);
    blocks.offset.push_back(static_cast<int64_t>(blocks.weights.size()));
    for (int64_t c = 0; c < ins; ++c)
      for (int64_t a = 0; a < kh; ++a)
        for (int64_t b = 0; b < kw; ++b)
          for (int64_t o = 0; o < size; ++o)
            blocks.weights.push_back(static_cast<A>(w(first + o, c, a, b)));
  }
  return blocks;
}

template <typename T>
void forward_kernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor* bias,
                    const at::Tensor& y, const OutputConvSpec& s) {
  using A = at::opmath_type<T>;
  constexpr int64_t L = Lanes<A>::kCount;
  const View4<const T> xv(x);
  const View4<T> yv(y);
  const T* w = weight.data_ptr<T>();  // contiguous
  const T* b = bias != nullptr ? bias->data_ptr<T>() : nullptr;
  const int64_t b_sample = s.per_sample_bias ? s.o : 0;
  const int64_t ho = s.out_h(), wo = s.out_w(), width = round_up(wo, kPassVectors * L);
  const int64_t row = round_up(width + s.kw - 1 + L, L);
  const auto blocks = block_weights<A>(s.o, s.c, s.kh, s.kw, 4,
                                       [&](int64_t o, int64_t c, int64_t a, int64_t bb) {
                                         return w[((o * s.c + c) * s.kh + a) * s.kw + bb];
                                       });
  at::parallel_for(0, s.n * ho, 1, [&](int64_t begin, int64_t end) {
    std::vector<A> out(4 * width), rows(s.c * s.kh * row);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / ho, i = t % ho;
      for (int64_t c = 0; c < s.c; ++c) {
        padded_rows<T, A>(xv, s, n, c, i, s.kh, rows.data() + c * s.kh * row, row);
      }
      for (size_t k = 0; k < blocks.start.size(); ++k) {
        correlate_row_fn<A>(blocks.size[k], wo)(rows.data(), s.kh * row, row,
                                            blocks.weights.data() + blocks.offset[k], s.c, s.kh,
                                            s.kw, wo, out.data(), width);
        for (int64_t oo = 0; oo < blocks.size[k]; ++oo) {
          const int64_t o = blocks.start[k] + oo;
          const A shift = b != nullptr ? static_cast<A>(b[n * b_sample + o]) : A(0);
          T* dst = yv.row(n, o, i);
          const A* acc = out.data() + oo * width;
          for (int64_t j = 0; j < wo; ++j) dst[j * yv.s3] = static_cast<T>(acc[j] + shift);
        }
      }
    }
  });
}

// The gradient before the activation, zero-extended by (k_h - 1, k_w - 1) on every side:
// ge (N, O, ho + 2 (k_h - 1), row); and its float64 sums per (sample, channel).
template <typename T, typename A>
void extended_grad(const View4<const T>& grad, const View4<const T>* out, const OutputConvSpec& s,
                   A* ge, int64_t row, double* sums) {
  const int64_t ho = s.out_h(), wo = s.out_w(), he = ho + 2 * (s.kh - 1);
  at::parallel_for(0, s.n * s.o, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / s.o, o = t % s.o;
      A* plane = ge + t * he * row;
      std::fill(plane, plane + (s.kh - 1) * row, A(0));
      std::fill(plane + (s.kh - 1 + ho) * row, plane + he * row, A(0));
      double total = 0;
      for (int64_t i = 0; i < ho; ++i) {
        A* dst = plane + (s.kh - 1 + i) * row;
        std::fill(dst, dst + s.kw - 1, A(0));
        A* mid = dst + s.kw - 1;
        const T* g = grad.row(n, o, i);
        A sum = 0;
        if (out != nullptr) {  // tanh: d/dv tanh(v) = 1 - y^2
          const T* y = out->row(n, o, i);
          for (int64_t j = 0; j < wo; ++j) {
            const A yj = static_cast<A>(y[j * out->s3]);
            mid[j] = static_cast<A>(g[j * grad.s3]) * (A(1) - yj * yj);
            sum += mid[j];
          }
        } else {
          for (int64_t j = 0; j < wo; ++j) {
            mid[j] = static_cast<A>(g[j * grad.s3]);
            sum += mid[j];
          }
        }
        total += static_cast<double>(sum);
        std::fill(mid + wo, dst + row, A(0));
      }
      sums[t] = total;
    }
  });
}

// acc[(o k_h + a) k_w + b0 + b] (b < KB) += sum over the `rows` output rows i and columns j of
// g_o[i, j] x[i, j + b0 + b] (g_o = g0 + o g_plane, rows g_row and x_row apart): the taps
// [b0, b0 + KB) of a k_w-wide kernel, their O x KB sums held in registers across the rows.
template <typename A, int O, int KB>
void weight_rows(const A* g0, int64_t g_plane, int64_t g_row, const A* x0, int64_t x_row,
                 int64_t rows, int64_t wo, typename Lanes<A>::Vec* acc, int64_t kh, int64_t a,
                 int64_t kw, int64_t b0) {
  using V = typename Lanes<A>::Vec;
  constexpr int64_t L = Lanes<A>::kCount;
  V r[O][KB];
  for (int o = 0; o < O; ++o)
    for (int b = 0; b < KB; ++b) r[o][b] = V{};
  for (int64_t i = 0; i < rows; ++i) {
    const A* g = g0 + i * g_row;
    const A* xr = x0 + i * x_row + b0;
    for (int64_t j0 = 0; j0 < wo; j0 += L) {
      V gv[O];
      for (int o = 0; o < O; ++o) gv[o] = load(g + o * g_plane + j0);
      for (int b = 0; b < KB; ++b) {
        V xv = load(xr + j0 + b);
        cpu::hold_in_register(xv);  // loaded once for the O outputs
        for (int o = 0; o < O; ++o) r[o][b] += gv[o] * xv;
      }
    }
  }
  for (int o = 0; o < O; ++o)
    for (int b = 0; b < KB; ++b) acc[(o * kh + a) * kw + b0 + b] += r[o][b];
}

template <typename A>
using WeightRowFn = void (*)(const A*, int64_t, int64_t, const A*, int64_t, int64_t, int64_t,
                             typename Lanes<A>::Vec*, int64_t, int64_t, int64_t, int64_t);

// The O x KB sums, the O gradient vectors and one input vector in registers: with 32 registers
// the whole odd kernel widths (as tuned on AVX-512; 4 x 7 spills one vector), with 16 the
// windows that fit.
template <typename A, int O, int KB>
constexpr WeightRowFn<A> weight_rows_if_they_fit() {
  if constexpr ((cpu::kVectorRegisters >= 32 && KB % 2 == 1) ||
                fits_registers(O * KB, O + 1)) {
    return &weight_rows<A, O, KB>;
  } else {
    return nullptr;
  }
}

template <typename A, int O>
WeightRowFn<A> weight_rows_of_width(int64_t taps) {
  switch (taps) {
    case 1: return weight_rows_if_they_fit<A, O, 1>();
    case 2: return weight_rows_if_they_fit<A, O, 2>();
    case 3: return weight_rows_if_they_fit<A, O, 3>();
    case 4: return weight_rows_if_they_fit<A, O, 4>();
    case 5: return weight_rows_if_they_fit<A, O, 5>();
    case 6: return weight_rows_if_they_fit<A, O, 6>();
    case 7: return weight_rows_if_they_fit<A, O, 7>();
    default: return nullptr;
  }
}

template <typename A>
WeightRowFn<A> weight_rows_fn(int64_t outputs, int64_t taps) {
  switch (outputs) {
    case 1: return weight_rows_of_width<A, 1>(taps);
    case 2: return weight_rows_of_width<A, 2>(taps);
    case 3: return weight_rows_of_width<A, 3>(taps);
    case 4: return weight_rows_of_width<A, 4>(taps);
    default: return nullptr;
  }
}

template <typename A>
struct WeightRowWindow {
  WeightRowFn<A> fn;
  int64_t b0;  // first tap
};

// The tap windows covering k_w in {1, 3, 5, 7} for O <= 4, each with register-held sums: the
// whole width where it fits (always with 32 registers), else windows as wide as fit (O = 3,
// k_w = 7 with 16 registers: taps 0-3 and 4-6). Empty otherwise (the loop with the sums in
// memory).
template <typename A>
std::vector<WeightRowWindow<A>> weight_row_windows(int64_t outputs, int64_t kw) {
  std::vector<WeightRowWindow<A>> windows;
  if (kw % 2 == 0 || kw > 7) return windows;
  int64_t width = kw;
  while (width > 0 && weight_rows_fn<A>(outputs, width) == nullptr) --width;
  if (width == 0) return windows;
  for (int64_t b0 = 0; b0 < kw; b0 += width) {
    windows.push_back({weight_rows_fn<A>(outputs, std::min(width, kw - b0)), b0});
  }
  return windows;
}

template <typename T>
void grad_input_kernel(const std::vector<at::opmath_type<T>>& ge, int64_t ge_row,
                       const at::Tensor& weight, const at::Tensor& grad_x,
                       const OutputConvSpec& s) {
  using A = at::opmath_type<T>;
  constexpr int64_t L = Lanes<A>::kCount;
  const T* w = weight.data_ptr<T>();
  const View4<T> gx(grad_x);
  const int64_t p = s.padding, hp = s.h + 2 * p, wp = s.w + 2 * p;
  const int64_t he = s.out_h() + 2 * (s.kh - 1), width = round_up(wp, kPassVectors * L);
  // gpad[n, c, rp, q] = sum over o, a, b of w[o, c, k_h-1-a, k_w-1-b] ge[n, o, rp + a, q + b]
  const auto blocks = block_weights<A>(s.c, s.o, s.kh, s.kw, 8,
                                       [&](int64_t c, int64_t o, int64_t a, int64_t b) {
                                         return w[((o * s.c + c) * s.kh + (s.kh - 1 - a)) * s.kw +
                                                  (s.kw - 1 - b)];
                                       });
  // Zero padding: only the padded rows and columns over x matter.
  const int64_t r0 = s.reflect ? 0 : p, r1 = s.reflect ? hp : p + s.h;
  const int64_t nb = static_cast<int64_t>(blocks.start.size());
  at::parallel_for(0, s.n * nb, 1, [&](int64_t begin, int64_t end) {
    std::vector<A> out(8 * width), planes(8 * s.h * s.w);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / nb, k = t % nb, cb = blocks.size[k];
      std::fill(planes.begin(), planes.begin() + cb * s.h * s.w, A(0));
      for (int64_t rp = r0; rp < r1; ++rp) {
        const A* rows = ge.data() + (n * s.o * he + rp) * ge_row;
        correlate_row_fn<A>(cb, wp)(rows, he * ge_row, ge_row,
                                    blocks.weights.data() + blocks.offset[k], s.o, s.kh, s.kw, wp,
                                    out.data(), width);
        const int64_t i = reflect_index(rp - p, s.h);  // the row of x this padded row mirrors
        for (int64_t cc = 0; cc < cb; ++cc) {
          const A* r = out.data() + cc * width;
          A* d = planes.data() + (cc * s.h + i) * s.w;
          for (int64_t j = 0; j < s.w; ++j) d[j] += r[p + j];
          if (s.reflect) {
            for (int64_t q = 1; q <= p; ++q) {
              d[q] += r[p - q];
              d[s.w - 1 - q] += r[p + s.w - 1 + q];
            }
          }
        }
      }
      for (int64_t cc = 0; cc < cb; ++cc) {
        const A* src = planes.data() + cc * s.h * s.w;
        for (int64_t i = 0; i < s.h; ++i) {
          T* dst = gx.row(n, blocks.start[k] + cc, i);
          for (int64_t j = 0; j < s.w; ++j) dst[j * gx.s3] = static_cast<T>(src[i * s.w + j]);
        }
      }
    }
  });
}

template <typename T>
void grad_weight_kernel(const std::vector<at::opmath_type<T>>& ge, int64_t ge_row,
                        const at::Tensor& x, const at::Tensor& grad_w, const OutputConvSpec& s) {
  using A = at::opmath_type<T>;
  using V = typename Lanes<A>::Vec;
  constexpr int64_t L = Lanes<A>::kCount;
  const View4<const T> xv(x);
  T* gw = grad_w.data_ptr<T>();  // contiguous
  const int64_t ho = s.out_h(), wo = s.out_w(), he = ho + 2 * (s.kh - 1);
  const int64_t row = round_up(round_up(wo, L) + s.kw - 1 + L, L);
  const int64_t hp = s.h + 2 * s.padding, taps = s.o * s.kh * s.kw;
  constexpr int64_t kRowBlock = 8;
  const std::vector<WeightRowWindow<A>> windows = weight_row_windows<A>(s.o, s.kw);
  at::parallel_for(0, s.c, 1, [&](int64_t begin, int64_t end) {
    std::vector<V> acc(taps);
    std::vector<double> total(taps);
    std::vector<A> plane(hp * row);  // the padded plane (n, c) of x
    for (int64_t c = begin; c < end; ++c) {
      std::fill(total.begin(), total.end(), 0.0);
      for (int64_t n = 0; n < s.n; ++n) {
        std::fill(acc.begin(), acc.end(), V{});
        padded_rows<T, A>(xv, s, n, c, 0, hp, plane.data(), row);
        // Blocks of kRowBlock output rows: their gradient rows stay in cache across the tap rows.
        for (int64_t i0 = 0; i0 < ho; i0 += kRowBlock) {
          const int64_t rows = std::min(kRowBlock, ho - i0);
          const A* g0 = ge.data() + (n * s.o * he + s.kh - 1 + i0) * ge_row + s.kw - 1;
          for (int64_t a = 0; a < s.kh; ++a) {
            const A* x0 = plane.data() + (i0 + a) * row;
            if (!windows.empty()) {
              for (const auto& window : windows) {
                window.fn(g0, he * ge_row, ge_row, x0, row, rows, wo, acc.data(), s.kh, a, s.kw,
                          window.b0);
              }
              continue;
            }
            for (int64_t o = 0; o < s.o; ++o) {
              V* ac = acc.data() + (o * s.kh + a) * s.kw;
              for (int64_t b = 0; b < s.kw; ++b) {
                V sum = ac[b];
                for (int64_t i = 0; i < rows; ++i) {
                  const A* g = g0 + o * he * ge_row + i * ge_row;
                  const A* xr = x0 + i * row;
                  for (int64_t j0 = 0; j0 < wo; j0 += L) sum += load(g + j0) * load(xr + j0 + b);
                }
                ac[b] = sum;
              }
            }
          }
        }
        for (int64_t k = 0; k < taps; ++k) {
          A lanes = 0;
          for (int64_t l = 0; l < L; ++l) lanes += acc[k][l];
          total[k] += static_cast<double>(lanes);
        }
      }
      for (int64_t o = 0; o < s.o; ++o)
        for (int64_t k = 0; k < s.kh * s.kw; ++k)
          gw[(o * s.c + c) * s.kh * s.kw + k] = static_cast<T>(total[o * s.kh * s.kw + k]);
    }
  });
}

at::Tensor forward_cpu(const at::Tensor& x, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias, const OutputConvSpec& s) {
  const at::Tensor w = weight.contiguous();
  const at::Tensor* b = bias.has_value() && bias->defined() ? &*bias : nullptr;
  const at::Tensor bc = b != nullptr ? b->contiguous() : at::Tensor();
  at::Tensor y = at::empty({s.n, s.o, s.out_h(), s.out_w()},
                           x.options().memory_format(x.suggest_memory_format()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "output_conv2d", [&] {
    forward_kernel<scalar_t>(x, w, b != nullptr ? &bc : nullptr, y, s);
  });
  if (s.tanh) y.tanh_();
  return y;
}

Gradients backward_cpu(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
                       const std::optional<at::Tensor>& out, const OutputConvSpec& s,
                       std::array<bool, 3> mask) {
  at::Tensor grad_x, grad_w, grad_b;
  const at::Tensor w = weight.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "output_conv2d_backward", [&] {
        using A = at::opmath_type<scalar_t>;
        constexpr int64_t L = Lanes<A>::kCount;
        const int64_t wp = s.w + 2 * s.padding;
        // Rows long enough for the gradient's correlation over the padded width (grad x) and
        // for the row sums over the output width (grad weight).
        const int64_t ge_row = round_up(
            std::max(round_up(wp, kPassVectors * L), round_up(s.out_w(), L)) + s.kw - 1 + L, L);
        const int64_t he = s.out_h() + 2 * (s.kh - 1);
        std::vector<A> ge(s.n * s.o * he * ge_row);
        std::vector<double> sums(s.n * s.o);
        const View4<const scalar_t> g(grad);
        std::optional<View4<const scalar_t>> y;
        if (s.tanh) y.emplace(*out);
        extended_grad<scalar_t, A>(g, y ? &*y : nullptr, s, ge.data(), ge_row, sums.data());
        if (mask[0]) {
          grad_x = at::empty_like(x, x.suggest_memory_format());
          grad_input_kernel<scalar_t>(ge, ge_row, w, grad_x, s);
        }
        if (mask[1]) {
          grad_w = at::empty_like(w, at::MemoryFormat::Contiguous);
          grad_weight_kernel<scalar_t>(ge, ge_row, x, grad_w, s);
        }
        if (mask[2]) {
          at::Tensor per_sample = at::from_blob(sums.data(), {s.n, s.o}, at::kDouble);
          // from_blob views `sums`, which ends with this scope: both branches copy.
          grad_b = (s.per_sample_bias ? per_sample.clone() : per_sample.sum(0)).to(x.scalar_type());
        }
      });
  return {grad_x, grad_w, grad_b};
}

}  // namespace
}  // namespace i2i_fast::output_conv

TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  using namespace i2i_fast::output_conv;
  i2i_fast::register_kernels<OutputConvKernels<&forward_cpu, &backward_cpu>>(m);
}
