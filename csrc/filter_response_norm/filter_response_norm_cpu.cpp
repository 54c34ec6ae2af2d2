// CPU kernels of filter response normalization + TLU, forward and backward.
//
// Work is cut by (n, c) group, a fixed function of the shape, so results do not depend on the
// thread count:
//  * contiguous x (NCHW): a task takes whole groups; each group is one contiguous row of H * W
//    elements, read once for its mean of squares and again (from cache) for the output;
//  * channels-last x: a task takes one sample and a block of up to kColumns channels, sweeping
//    the sample's H * W rows with per-channel accumulators.
// Sums accumulate in the accumulation type (float for float16/bfloat16/float32) over blocks of at
// most kBlock elements (rows), folded into double. The backward reads x and grad_out once for
// its three sums per group and once more (from cache) for grad_x; the per-channel parameter
// gradients add the per-group sums over the batch in order.
#include "filter_response_norm_cpu.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common/cpu_element.h"
#include "../common/cpu_parallel.h"
#include "../normalization/common.h"
#include "device_kernels.h"

namespace i2i_fast::filter_response_norm::cpu {
namespace {

using namespace i2i_fast::cpu;  // NOLINT(build/namespaces): the element helpers

constexpr int64_t kBlock = 1024;   // elements of a row summed in A before folding into double
constexpr int64_t kRowBlock = 64;  // channels-last rows summed in A before folding
constexpr int64_t kColumns = 64;   // channels per channels-last task
// The per-channel parameters in the accumulation type, contiguous.
struct Params {
  at::Tensor weight, bias, tau;
  Params(const at::Tensor& w, const at::Tensor& b, const at::Tensor& t, at::ScalarType acc)
      : weight(w.to(acc).contiguous()), bias(b.to(acc).contiguous()), tau(t.to(acc).contiguous()) {}
};

template <typename A>
A rstd_of(double sum_squares, int64_t count, double eps) {
  return static_cast<A>(1.0 / std::sqrt(sum_squares / static_cast<double>(count) + eps));
}

// ----- contiguous (NCHW): one group is a row of S elements -----

template <typename T, typename A>
double row_sum_squares(const T* x, int64_t n) {
  return blocked_sum<A, kBlock>(n, [x](int64_t i) {
    const A v = static_cast<A>(widen(x[i]));
    return v * v;
  });
}

template <typename T, typename A>
void row_forward(const T* x, T* y, int64_t n, A scale, A shift, A tau) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    y[i] = narrow<T>(tlu(static_cast<A>(widen(x[i])) * scale + shift, tau));
  }
}

// Adds the group's Σ g, Σ g x and Σ grad_out * share_tau to sums[kSumG...].
template <typename T, typename A>
void row_grad_sums(const T* x, const T* dy, int64_t n, A scale, A shift, A tau, double* sums) {
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    A sg = 0, sgx = 0, st = 0;
#pragma omp simd reduction(+ : sg, sgx, st)
    for (int64_t i = b; i < e; ++i) {
      const A v = static_cast<A>(widen(x[i]));
      const A d = static_cast<A>(widen(dy[i]));
      const A z = v * scale + shift;
      const A g = d * tlu_share_z(z, tau);
      sg += g;
      sgx += g * v;
      st += d * tlu_share_tau(z, tau);
    }
    sums[kSumG] += sg;
    sums[kSumGX] += sgx;
    sums[kSumGTau] += st;
  }
}

// grad_x = scale * g - k * x, k = w r³ Σ(g x) / S.
template <typename T, typename A>
void row_input_grad(const T* x, const T* dy, T* dx, int64_t n, A scale, A shift, A tau, A k) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const A v = static_cast<A>(widen(x[i]));
    const A g = static_cast<A>(widen(dy[i])) * tlu_share_z(v * scale + shift, tau);
    dx[i] = narrow<T>(scale * g - k * v);
  }
}

// ----- channels-last: a task is (sample n, channels [c0, c0 + cw)) over S rows of C -----

struct ColumnTask {
  int64_t n, c0, cw;
};

ColumnTask column_task(int64_t task, int64_t channels) {
  const int64_t blocks = (channels + kColumns - 1) / kColumns;
  const int64_t c0 = (task % blocks) * kColumns;
  return {task / blocks, c0, std::min(kColumns, channels - c0)};
}

// Runs fn(task, base, g0) for every channels-last task of an (N, C, S) tensor, in parallel: base
// is the task's first element, g0 its first (n, c) group; `passes` over the task's data set the
// grain.
template <typename Fn>
void for_each_column_task(int64_t N, int64_t C, int64_t S, int64_t passes, Fn&& fn) {
  const int64_t tasks = N * ((C + kColumns - 1) / kColumns);
  at::parallel_for(0, tasks, grain_for(passes * S * kColumns), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const ColumnTask task = column_task(k, C);
      fn(task, task.n * S * C + task.c0, task.n * C + task.c0);
    }
  });
}

// A task's per-channel scale (w r of its sample), shift (b) and tau, from rstd r of its groups.
template <typename A>
struct ColumnParams {
  A scale[kColumns], shift[kColumns], tau[kColumns];
};

template <typename A>
ColumnParams<A> column_params(const ColumnTask& task, const A* w, const A* b, const A* t,
                              const A* r) {
  ColumnParams<A> q;
  for (int64_t c = 0; c < task.cw; ++c) {
    q.scale[c] = w[task.c0 + c] * r[c];
    q.shift[c] = b[task.c0 + c];
    q.tau[c] = t[task.c0 + c];
  }
  return q;
}

// K per-channel sums over `rows` rows of a channels-last block of cw columns: add_row(r, part)
// adds row r's K terms of every column c < cw to part[k][c]; the rows are summed in A over blocks
// of kRowBlock, each block folded into sums[c * K + k] (double).
template <typename A, int K, typename AddRow>
void columns_sums(int64_t rows, int64_t cw, AddRow&& add_row, double* sums) {
  A part[K][kColumns];
  for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
    for (int k = 0; k < K; ++k) std::fill(part[k], part[k] + cw, A(0));
    for (int64_t r = r0; r < std::min(rows, r0 + kRowBlock); ++r) add_row(r, part);
    for (int64_t c = 0; c < cw; ++c) {
      for (int k = 0; k < K; ++k) sums[c * K + k] += part[k][c];
    }
  }
}

template <typename T, typename A>
void columns_sum_squares(const T* x, int64_t rows, int64_t ld, int64_t cw, double* out) {
  columns_sums<A, 1>(rows, cw, [&](int64_t r, A (&part)[1][kColumns]) {
    const T* row = x + r * ld;
#pragma omp simd
    for (int64_t c = 0; c < cw; ++c) {
      const A v = static_cast<A>(widen(row[c]));
      part[0][c] += v * v;
    }
  }, out);
}

template <typename T, typename A>
void columns_grad_sums(const T* x, const T* dy, int64_t rows, int64_t ld, int64_t cw,
                       const A* scale, const A* shift, const A* tau, double* sums) {
  columns_sums<A, kFrnSums>(rows, cw, [&](int64_t r, A (&part)[kFrnSums][kColumns]) {
    const T* xr = x + r * ld;
    const T* dr = dy + r * ld;
#pragma omp simd
    for (int64_t c = 0; c < cw; ++c) {
      const A v = static_cast<A>(widen(xr[c]));
      const A d = static_cast<A>(widen(dr[c]));
      const A z = v * scale[c] + shift[c];
      const A g = d * tlu_share_z(z, tau[c]);
      part[kSumG][c] += g;
      part[kSumGX][c] += g * v;
      part[kSumGTau][c] += d * tlu_share_tau(z, tau[c]);
    }
  }, sums);
}

// ----- double backward (the gradient of grad_x for an incoming gradient a; common.h) -----

// Per group, with g = grad_out * share_z: Σ g x, Σ a g, Σ a x, in this order.
enum SecondSum : int { kSumGXSecond = 0, kSumAG = 1, kSumAX = 2, kSecondSums = 3 };

// The per-group coefficients of the double backward's outputs (the accumulation type):
//   d grad_out = share_z (ga a - q x),   d x = xx x - q g - xa a,   q = w r^3 Q in both.
template <typename A>
struct SecondCoefs {
  A ga, q, xx, xa;
};

// Coefficients of one group from its sums (in double), with S its size, w its channel's weight
// and r its rstd: beta = Σgx / S, P = Σag / S, Q = Σax / S.
template <typename A>
SecondCoefs<A> second_coefs(const double* sums, int64_t S, double w, double r) {
  const double count = static_cast<double>(S);
  const double beta = sums[kSumGXSecond] / count, p = sums[kSumAG] / count,
               q = sums[kSumAX] / count;
  const double wr3 = w * r * r * r;
  return {static_cast<A>(w * r), static_cast<A>(wr3 * q),
          static_cast<A>(wr3 * (3 * r * r * beta * q - p)), static_cast<A>(wr3 * beta)};
}

// Adds the group's Σ g x, Σ a g and Σ a x to sums[kSumGXSecond...] (the shape of row_grad_sums,
// other sums).
template <typename T, typename A>
void row_second_sums(const T* x, const T* dy, const T* a, int64_t n, A scale, A shift, A tau,
                     double* sums) {
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    A sgx = 0, sag = 0, sax = 0;
#pragma omp simd reduction(+ : sgx, sag, sax)
    for (int64_t i = b; i < e; ++i) {
      const A v = static_cast<A>(widen(x[i]));
      const A g = static_cast<A>(widen(dy[i])) * tlu_share_z(v * scale + shift, tau);
      const A av = static_cast<A>(widen(a[i]));
      sgx += g * v;
      sag += av * g;
      sax += av * v;
    }
    sums[kSumGXSecond] += sgx;
    sums[kSumAG] += sag;
    sums[kSumAX] += sax;
  }
}

template <typename T, typename A>
void row_second_grads(const T* x, const T* dy, const T* a, T* d_dy, T* d_x, int64_t n, A scale,
                      A shift, A tau, const SecondCoefs<A>& k) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const A v = static_cast<A>(widen(x[i]));
    const A share = tlu_share_z(v * scale + shift, tau);
    const A g = static_cast<A>(widen(dy[i])) * share;
    const A av = static_cast<A>(widen(a[i]));
    d_dy[i] = narrow<T>(share * (k.ga * av - k.q * v));
    d_x[i] = narrow<T>(k.xx * v - k.q * g - k.xa * av);
  }
}

template <typename T, typename A>
void columns_second_sums(const T* x, const T* dy, const T* a, int64_t rows, int64_t ld,
                         int64_t cw, const A* scale, const A* shift, const A* tau,
                         double* sums) {
  columns_sums<A, kSecondSums>(rows, cw, [&](int64_t r, A (&part)[kSecondSums][kColumns]) {
    const T* xr = x + r * ld;
    const T* dr = dy + r * ld;
    const T* ar = a + r * ld;
#pragma omp simd
    for (int64_t c = 0; c < cw; ++c) {
      const A v = static_cast<A>(widen(xr[c]));
      const A g = static_cast<A>(widen(dr[c])) * tlu_share_z(v * scale[c] + shift[c], tau[c]);
      const A av = static_cast<A>(widen(ar[c]));
      part[kSumGXSecond][c] += g * v;
      part[kSumAG][c] += av * g;
      part[kSumAX][c] += av * v;
    }
  }, sums);
}

// ----- the operators -----

template <typename scalar_t>
void forward_impl(const at::Tensor& xd, at::Tensor& y, at::Tensor& rstd, const Params& p,
                  double eps, Layout layout) {
  using T = typename StorageOf<scalar_t>::type;
  using A = typename AccumulateOf<scalar_t>::type;
  const int64_t N = xd.size(0), C = xd.size(1), S = xd.size(2) * xd.size(3);
  const T* x = reinterpret_cast<const T*>(xd.const_data_ptr<scalar_t>());
  T* out = reinterpret_cast<T*>(y.mutable_data_ptr<scalar_t>());
  A* r = rstd.mutable_data_ptr<A>();
  const A* w = p.weight.const_data_ptr<A>();
  const A* b = p.bias.const_data_ptr<A>();
  const A* t = p.tau.const_data_ptr<A>();
  if (layout == Layout::kNCS) {
    at::parallel_for(0, N * C, grain_for(S), [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t c = g % C;
        r[g] = rstd_of<A>(row_sum_squares<T, A>(x + g * S, S), S, eps);
        row_forward<T, A>(x + g * S, out + g * S, S, w[c] * r[g], b[c], t[c]);
      }
    });
    return;
  }
  for_each_column_task(N, C, S, 1, [&](const ColumnTask& task, int64_t base, int64_t g0) {
    double squares[kColumns] = {};
    columns_sum_squares<T, A>(x + base, S, C, task.cw, squares);
    A scale[kColumns], shift[kColumns], tau[kColumns];
    for (int64_t c = 0; c < task.cw; ++c) {
      const int64_t ch = task.c0 + c;
      const A rc = rstd_of<A>(squares[c], S, eps);
      r[g0 + c] = rc;
      scale[c] = w[ch] * rc;
      shift[c] = b[ch];
      tau[c] = t[ch];
    }
    for (int64_t s = 0; s < S; ++s) {
      const T* xr = x + base + s * C;
      T* yr = out + base + s * C;
#pragma omp simd
      for (int64_t c = 0; c < task.cw; ++c) {
        yr[c] = narrow<T>(tlu(static_cast<A>(widen(xr[c])) * scale[c] + shift[c], tau[c]));
      }
    }
  });
}

// Fills dx and sums ((N, C, kFrnSums) doubles: Σ g, Σ g x, Σ grad_out * share_tau per group).
template <typename scalar_t>
void backward_impl(const at::Tensor& gd, const at::Tensor& xd, at::Tensor& dx,
                   const at::Tensor& rstd, const Params& p, Layout layout, double* sums) {
  using T = typename StorageOf<scalar_t>::type;
  using A = typename AccumulateOf<scalar_t>::type;
  const int64_t N = xd.size(0), C = xd.size(1), S = xd.size(2) * xd.size(3);
  const T* x = reinterpret_cast<const T*>(xd.const_data_ptr<scalar_t>());
  const T* dy = reinterpret_cast<const T*>(gd.const_data_ptr<scalar_t>());
  T* gx = reinterpret_cast<T*>(dx.mutable_data_ptr<scalar_t>());
  const A* r = rstd.const_data_ptr<A>();
  const A* w = p.weight.const_data_ptr<A>();
  const A* b = p.bias.const_data_ptr<A>();
  const A* t = p.tau.const_data_ptr<A>();
  // k = w r³ Σ(g x) / S of group g (channel c).
  const auto input_grad_k = [&](int64_t g, int64_t c) {
    const double rg = r[g];
    return static_cast<A>(static_cast<double>(w[c]) * rg * rg * rg * sums[g * kFrnSums + kSumGX] /
                          static_cast<double>(S));
  };
  if (layout == Layout::kNCS) {
    at::parallel_for(0, N * C, grain_for(2 * S), [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t c = g % C;
        const A scale = w[c] * r[g];
        row_grad_sums<T, A>(x + g * S, dy + g * S, S, scale, b[c], t[c], sums + g * kFrnSums);
        row_input_grad<T, A>(x + g * S, dy + g * S, gx + g * S, S, scale, b[c], t[c],
                             input_grad_k(g, c));
      }
    });
    return;
  }
  for_each_column_task(N, C, S, 2, [&](const ColumnTask& task, int64_t base, int64_t g0) {
    const ColumnParams<A> q = column_params(task, w, b, t, r + g0);
    const A *scale = q.scale, *shift = q.shift, *tau = q.tau;
    A coef[kColumns];
    columns_grad_sums<T, A>(x + base, dy + base, S, C, task.cw, scale, shift, tau,
                            sums + g0 * kFrnSums);
    for (int64_t c = 0; c < task.cw; ++c) coef[c] = input_grad_k(g0 + c, task.c0 + c);
    for (int64_t s = 0; s < S; ++s) {
      const T* xr = x + base + s * C;
      const T* dr = dy + base + s * C;
      T* gr = gx + base + s * C;
#pragma omp simd
      for (int64_t c = 0; c < task.cw; ++c) {
        const A v = static_cast<A>(widen(xr[c]));
        const A g = static_cast<A>(widen(dr[c])) * tlu_share_z(v * scale[c] + shift[c], tau[c]);
        gr[c] = narrow<T>(scale[c] * g - coef[c] * v);
      }
    }
  });
}

// Fills d_dy, d_x and sums ((N, C, kSecondSums) doubles) for the incoming gradient a of grad_x.
template <typename scalar_t>
void double_backward_impl(const at::Tensor& ad, const at::Tensor& gd, const at::Tensor& xd,
                          at::Tensor& d_dy, at::Tensor& d_x, const at::Tensor& rstd,
                          const Params& p, Layout layout, double* sums) {
  using T = typename StorageOf<scalar_t>::type;
  using A = typename AccumulateOf<scalar_t>::type;
  const int64_t N = xd.size(0), C = xd.size(1), S = xd.size(2) * xd.size(3);
  const T* x = reinterpret_cast<const T*>(xd.const_data_ptr<scalar_t>());
  const T* dy = reinterpret_cast<const T*>(gd.const_data_ptr<scalar_t>());
  const T* a = reinterpret_cast<const T*>(ad.const_data_ptr<scalar_t>());
  T* out_dy = reinterpret_cast<T*>(d_dy.mutable_data_ptr<scalar_t>());
  T* out_x = reinterpret_cast<T*>(d_x.mutable_data_ptr<scalar_t>());
  const A* r = rstd.const_data_ptr<A>();
  const A* w = p.weight.const_data_ptr<A>();
  const A* b = p.bias.const_data_ptr<A>();
  const A* t = p.tau.const_data_ptr<A>();
  if (layout == Layout::kNCS) {
    at::parallel_for(0, N * C, grain_for(3 * S), [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t c = g % C, o = g * S;
        const A scale = w[c] * r[g];
        double* gs = sums + g * kSecondSums;
        row_second_sums<T, A>(x + o, dy + o, a + o, S, scale, b[c], t[c], gs);
        row_second_grads<T, A>(x + o, dy + o, a + o, out_dy + o, out_x + o, S, scale, b[c],
                               t[c], second_coefs<A>(gs, S, w[c], r[g]));
      }
    });
    return;
  }
  for_each_column_task(N, C, S, 3, [&](const ColumnTask& task, int64_t base, int64_t g0) {
    const ColumnParams<A> q = column_params(task, w, b, t, r + g0);
    const A *scale = q.scale, *shift = q.shift, *tau = q.tau;
    columns_second_sums<T, A>(x + base, dy + base, a + base, S, C, task.cw, scale, shift, tau,
                              sums + g0 * kSecondSums);
    // The coefficients per column, one array each (a unit-stride inner loop).
    A ga[kColumns], qc[kColumns], xx[kColumns], xa[kColumns];
    for (int64_t c = 0; c < task.cw; ++c) {
      const SecondCoefs<A> e =
          second_coefs<A>(sums + (g0 + c) * kSecondSums, S, w[task.c0 + c], r[g0 + c]);
      ga[c] = e.ga, qc[c] = e.q, xx[c] = e.xx, xa[c] = e.xa;
    }
    for (int64_t s = 0; s < S; ++s) {
      const int64_t row = base + s * C;
      const T* xr = x + row;
      const T* dr = dy + row;
      const T* ar = a + row;
      T* odr = out_dy + row;
      T* oxr = out_x + row;
#pragma omp simd
      for (int64_t c = 0; c < task.cw; ++c) {
        const A v = static_cast<A>(widen(xr[c]));
        const A share = tlu_share_z(v * scale[c] + shift[c], tau[c]);
        const A g = static_cast<A>(widen(dr[c])) * share;
        const A av = static_cast<A>(widen(ar[c]));
        odr[c] = narrow<T>(share * (ga[c] * av - qc[c] * v));
        oxr[c] = narrow<T>(xx[c] * v - qc[c] * g - xa[c] * av);
      }
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> frn_forward(const at::Tensor& x, const at::Tensor& weight,
                                               const at::Tensor& bias, const at::Tensor& tau,
                                               const FrnSpec& spec) {
  const at::Tensor xd = to_dense_layout(x);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  at::Tensor y = at::empty_like(xd);
  at::Tensor rstd = at::empty({x.size(0), x.size(1)}, x.options().dtype(acc));
  const Params p(weight, bias, tau, acc);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "frn_forward", [&] {
    forward_impl<scalar_t>(xd, y, rstd, p, spec.eps, layout_of_dense(xd));
  });
  return {y, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> frn_backward(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& tau, const at::Tensor& rstd, const FrnSpec&) {
  const at::Tensor xd = to_dense_layout(x);
  const Layout layout = layout_of_dense(xd);
  const at::Tensor gd = to_layout(grad_out.to(x.scalar_type()), layout);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  const at::Tensor r = rstd.to(acc).contiguous();
  const int64_t N = x.size(0), C = x.size(1);
  at::Tensor dx = at::empty_like(xd);
  std::vector<double> sums(static_cast<size_t>(N * C * kFrnSums), 0.0);
  const Params p(weight, bias, tau, acc);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "frn_backward", [&] {
    backward_impl<scalar_t>(gd, xd, dx, r, p, layout, sums.data());
  });
  // Per channel, over the batch in order: grad_w = Σ_n r Σ g x, grad_b = Σ_n Σ g,
  // grad_tau = Σ_n Σ grad_out * share_tau. The samples are the outer loop, so the sums and r are
  // read in memory order (channel-major, with a stride of C groups per step, made TUNIT's
  // 32 x 1024 x 8 x 8 forward+backward about 4 % slower); every channel still adds its samples
  // in order.
  const auto f64 = x.options().dtype(at::kDouble);
  at::Tensor gw = at::zeros({C}, f64), gb = at::zeros({C}, f64), gt = at::zeros({C}, f64);
  double* sw = gw.mutable_data_ptr<double>();
  double* sb = gb.mutable_data_ptr<double>();
  double* st = gt.mutable_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "frn_parameter_grads", [&] {
    const scalar_t* rr = r.const_data_ptr<scalar_t>();
    for (int64_t n = 0; n < N; ++n) {
      const double* s = sums.data() + n * C * kFrnSums;
      const scalar_t* rn = rr + n * C;
      for (int64_t c = 0; c < C; ++c) {
        sw[c] += static_cast<double>(rn[c]) * s[c * kFrnSums + kSumGX];
        sb[c] += s[c * kFrnSums + kSumG];
        st[c] += s[c * kFrnSums + kSumGTau];
      }
    }
  });
  return {dx, gw.to(weight.scalar_type()), gb.to(bias.scalar_type()), gt.to(tau.scalar_type())};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> frn_double_backward(
    const at::Tensor& grad_grad_x, const at::Tensor& grad_out, const at::Tensor& x,
    const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& tau,
    const at::Tensor& rstd, const FrnSpec&) {
  const at::Tensor xd = to_dense_layout(x);
  const Layout layout = layout_of_dense(xd);
  const at::Tensor gd = to_layout(grad_out.to(x.scalar_type()), layout);
  const at::Tensor ad = to_layout(grad_grad_x.to(x.scalar_type()), layout);
  const at::ScalarType acc = accumulate_type_of(x.scalar_type());
  const at::Tensor r = rstd.to(acc).contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3);
  at::Tensor d_dy = at::empty_like(xd), d_x = at::empty_like(xd);
  std::vector<double> sums(static_cast<size_t>(N * C * kSecondSums), 0.0);
  const Params p(weight, bias, tau, acc);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "frn_double_backward", [&] {
    double_backward_impl<scalar_t>(ad, gd, xd, d_dy, d_x, r, p, layout, sums.data());
  });
  // d weight[c] = Σ_n S r (P - r² beta Q), over the batch in order.
  at::Tensor d_w = at::empty({C}, x.options().dtype(at::kDouble));
  const at::Tensor r64 = r.to(at::kDouble);
  const double* rr = r64.const_data_ptr<double>();
  double* dw = d_w.mutable_data_ptr<double>();
  const double count = static_cast<double>(S);
  for (int64_t c = 0; c < C; ++c) {
    double total = 0;
    for (int64_t n = 0; n < N; ++n) {
      const double* gs = sums.data() + (n * C + c) * kSecondSums;
      const double rg = rr[n * C + c];
      total += rg * (gs[kSumAG] - rg * rg * gs[kSumGXSecond] * gs[kSumAX] / count);
    }
    dw[c] = total;
  }
  return {d_dy.to(grad_out.scalar_type()), d_x, d_w.to(weight.scalar_type())};
}

}  // namespace i2i_fast::filter_response_norm::cpu

TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  i2i_fast::register_kernels<i2i_fast::FilterResponseNormKernels<
      &i2i_fast::filter_response_norm::cpu::frn_forward,
      &i2i_fast::filter_response_norm::cpu::frn_backward,
      &i2i_fast::filter_response_norm::cpu::frn_double_backward>>(m);
}
