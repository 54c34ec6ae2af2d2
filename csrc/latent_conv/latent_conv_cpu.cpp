// latent_conv2d and latent_conv_transpose2d on the CPU: the two passes over the output and the
// small table products between them (common.h has the plan; device_kernels.h the operators
// around them).
//
//   add_table_cpu: out[n, o, i, j] += Tab[n, o, class(i), class(j)], in place, one pass.
//     NCHW: one task per few (n, o) planes; each plane's row classes are first spread to full
//     rows (Kr x W values), so every output row adds one contiguous vector. Channels-last: one
//     task per (n, i) row of pixels; the table is transposed to (N, Kr, Kc, O) first so each
//     pixel adds a contiguous vector over o.
//   sum_by_class_cpu: S[n, o, r, c] = sum of grad over the rectangle (rows of r) x (cols of c).
//     NCHW: per plane, each row added to its row class's accumulator row (contiguous vectors),
//     then each accumulator row's columns summed into their classes; channels-last: per
//     (n, block of 64 channels), vectors over o. Other layouts (an expanded gradient, a slice)
//     are read through a contiguous copy.
//   class_table_cpu, tap_gradients_cpu: V, Tab, G, grad_z, grad_W_z, grad_bias as plain loops
//     over the tables (N * O * a few dozen values), reading the weight's z channels in place.
//     They replace about a dozen ATen matmuls and tensor constructions whose fixed costs were
//     larger than both passes together at DRIT's and BicycleGAN's sizes.
//
// Sums accumulate in float32 (float64 for float64) in a fixed order set by the shape, so results
// do not depend on the thread count.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <vector>

#include "device_kernels.h"
#include "latent_conv_cpu.h"

namespace i2i_fast::latent_conv::cpu {
namespace {

enum class Layout { kContiguous, kChannelsLast, kOther };

Layout layout_of(const at::Tensor& t) {
  if (t.is_contiguous()) return Layout::kContiguous;
  if (t.is_contiguous(at::MemoryFormat::ChannelsLast)) return Layout::kChannelsLast;
  return Layout::kOther;
}

// Each task handles at least this many output elements (smaller calls run on one thread).
constexpr int64_t kGrainElements = 16384;

int64_t plane_grain(const LatentConvSpec& s) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, s.rows.out * s.cols.out));
}

std::vector<int64_t> column_classes(const LatentConvSpec& s) {
  std::vector<int64_t> classes(static_cast<size_t>(s.cols.out));
  for (int64_t j = 0; j < s.cols.out; ++j) classes[static_cast<size_t>(j)] = s.cols.class_of(j);
  return classes;
}

template <typename scalar_t>
void add_table_nchw(scalar_t* out, const AccumulateOf_t<scalar_t>* tab, const LatentConvSpec& s) {
  using acc_t = AccumulateOf_t<scalar_t>;
  const int64_t kr = s.rows.classes(), kc = s.cols.classes(), ho = s.rows.out, wo = s.cols.out;
  const std::vector<int64_t> col_class = column_classes(s);
  at::parallel_for(0, s.n * s.out_channels, plane_grain(s), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> spread(static_cast<size_t>(kr * wo));  // the plane's classes as rows
    for (int64_t plane = begin; plane < end; ++plane) {
      const acc_t* t = tab + plane * kr * kc;
      for (int64_t r = 0; r < kr; ++r) {
        for (int64_t j = 0; j < wo; ++j) spread[r * wo + j] = t[r * kc + col_class[j]];
      }
      for (int64_t i = 0; i < ho; ++i) {
        const acc_t* add = spread.data() + s.rows.class_of(i) * wo;
        scalar_t* row = out + (plane * ho + i) * wo;
        for (int64_t j = 0; j < wo; ++j) row[j] = static_cast<acc_t>(row[j]) + add[j];
      }
    }
  });
}

// tab_t: the table as (N, Kr, Kc, O).
template <typename scalar_t>
void add_table_nhwc(scalar_t* out, const AccumulateOf_t<scalar_t>* tab_t,
                    const LatentConvSpec& s) {
  using acc_t = AccumulateOf_t<scalar_t>;
  const int64_t kr = s.rows.classes(), kc = s.cols.classes(), ho = s.rows.out, wo = s.cols.out;
  const int64_t c = s.out_channels;
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, wo * c));
  at::parallel_for(0, s.n * ho, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / ho, i = row % ho;
      const acc_t* t_row = tab_t + (n * kr + s.rows.class_of(i)) * kc * c;
      for (int64_t j = 0; j < wo; ++j) {
        const acc_t* t = t_row + s.cols.class_of(j) * c;
        scalar_t* px = out + (row * wo + j) * c;
        for (int64_t o = 0; o < c; ++o) px[o] = static_cast<acc_t>(px[o]) + t[o];
      }
    }
  });
}

}  // namespace

void add_table_cpu(at::Tensor& out, const at::Tensor& table, const LatentConvSpec& s) {
  const Layout layout = layout_of(out);
  at::Tensor target = layout == Layout::kOther ? out.contiguous() : out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "latent_conv", [&] {
    if (layout == Layout::kChannelsLast) {
      const at::Tensor tab_t = table.permute({0, 2, 3, 1}).contiguous();
      add_table_nhwc(target.data_ptr<scalar_t>(),
                     tab_t.data_ptr<AccumulateOf_t<scalar_t>>(), s);
    } else {
      add_table_nchw(target.data_ptr<scalar_t>(), table.data_ptr<AccumulateOf_t<scalar_t>>(), s);
    }
  });
  if (layout == Layout::kOther) out.copy_(target);
}

namespace {

template <typename scalar_t>
void sum_by_class_nchw(const scalar_t* grad, AccumulateOf_t<scalar_t>* sums,
                       const LatentConvSpec& s) {
  using acc_t = AccumulateOf_t<scalar_t>;
  const int64_t kr = s.rows.classes(), kc = s.cols.classes(), ho = s.rows.out, wo = s.cols.out;
  const std::vector<int64_t> col_class = column_classes(s);
  at::parallel_for(0, s.n * s.out_channels, plane_grain(s), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> by_row_class(static_cast<size_t>(kr * wo));
    for (int64_t plane = begin; plane < end; ++plane) {
      std::fill(by_row_class.begin(), by_row_class.end(), acc_t(0));
      for (int64_t i = 0; i < ho; ++i) {
        acc_t* acc = by_row_class.data() + s.rows.class_of(i) * wo;
        const scalar_t* row = grad + (plane * ho + i) * wo;
        for (int64_t j = 0; j < wo; ++j) acc[j] += static_cast<acc_t>(row[j]);
      }
      acc_t* out = sums + plane * kr * kc;  // zero-filled by the caller
      for (int64_t r = 0; r < kr; ++r) {
        for (int64_t j = 0; j < wo; ++j) out[r * kc + col_class[j]] += by_row_class[r * wo + j];
      }
    }
  });
}

template <typename scalar_t>
void sum_by_class_nhwc(const scalar_t* grad, AccumulateOf_t<scalar_t>* sums,
                       const LatentConvSpec& s) {
  using acc_t = AccumulateOf_t<scalar_t>;
  constexpr int64_t kBlock = 64;
  const int64_t kr = s.rows.classes(), kc = s.cols.classes(), ho = s.rows.out, wo = s.cols.out;
  const int64_t c = s.out_channels, blocks = (c + kBlock - 1) / kBlock;
  at::parallel_for(0, s.n * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> local(static_cast<size_t>(kr * kc * kBlock));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, o0 = (task % blocks) * kBlock;
      const int64_t width = std::min(kBlock, c - o0);
      std::fill(local.begin(), local.end(), acc_t(0));
      for (int64_t i = 0; i < ho; ++i) {
        acc_t* row_sums = local.data() + s.rows.class_of(i) * kc * kBlock;
        for (int64_t j = 0; j < wo; ++j) {
          acc_t* acc = row_sums + s.cols.class_of(j) * kBlock;
          const scalar_t* px = grad + ((n * ho + i) * wo + j) * c + o0;
          for (int64_t o = 0; o < width; ++o) acc[o] += static_cast<acc_t>(px[o]);
        }
      }
      for (int64_t o = 0; o < width; ++o) {
        for (int64_t rc = 0; rc < kr * kc; ++rc) {
          sums[((n * c + o0 + o) * kr * kc) + rc] = local[static_cast<size_t>(rc * kBlock + o)];
        }
      }
    }
  });
}

}  // namespace

at::Tensor sum_by_class_cpu(const at::Tensor& grad_in, const LatentConvSpec& s) {
  Layout layout = layout_of(grad_in);
  const at::Tensor grad = layout == Layout::kOther ? grad_in.contiguous() : grad_in;
  if (layout == Layout::kOther) layout = Layout::kContiguous;
  at::Tensor sums = at::zeros({s.n, s.out_channels, s.rows.classes(), s.cols.classes()},
                              grad.options().dtype(accumulate_type(grad)));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "latent_conv", [&] {
    using acc_t = AccumulateOf_t<scalar_t>;
    if (layout == Layout::kChannelsLast) {
      sum_by_class_nhwc(grad.data_ptr<scalar_t>(), sums.data_ptr<acc_t>(), s);
    } else {
      sum_by_class_nchw(grad.data_ptr<scalar_t>(), sums.data_ptr<acc_t>(), s);
    }
  });
  return sums;
}

namespace {

// The weight's z channels in place: W_z[c, o, a, b] at wz[c * c_step + o * o_step + a * a_step +
// b * b_step] (a conv2d weight is (O, C_x + C_z, kh, kw), a transposed one (C_x + C_z, O, kh, kw)).
struct ZWeight {
  int64_t c_step, o_step, a_step, b_step;
  ZWeight(const at::Tensor& weight, const LatentConvSpec& s)
      : c_step(weight.stride(s.transposed ? 0 : 1)),
        o_step(weight.stride(s.transposed ? 1 : 0)),
        a_step(weight.stride(2)),
        b_step(weight.stride(3)) {}
  int64_t offset(const LatentConvSpec& s, int64_t c, int64_t o) const {
    return (s.cx + c) * c_step + o * o_step;
  }
};

template <typename scalar_t>
void class_table_loops(const scalar_t* weight, const ZWeight& wz,
                       const AccumulateOf_t<scalar_t>* z, AccumulateOf_t<scalar_t>* tab,
                       const std::vector<double>& rows, const std::vector<double>& cols,
                       const LatentConvSpec& s) {
  using acc_t = AccumulateOf_t<scalar_t>;
  const int64_t kr = s.rows.classes(), kc = s.cols.classes(), kh = s.kh, kw = s.kw;
  const int64_t work = s.cz * kh * kw + kr * kc * kh * kw;
  at::parallel_for(0, s.n * s.out_channels, std::max<int64_t>(1, kGrainElements / work),
                   [&](int64_t begin, int64_t end) {
    std::vector<acc_t> v(static_cast<size_t>(kh * kw));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / s.out_channels, o = task % s.out_channels;
      std::fill(v.begin(), v.end(), acc_t(0));  // V[n, o, :, :]
      for (int64_t c = 0; c < s.cz; ++c) {
        const acc_t zc = z[n * s.cz + c];
        const scalar_t* w = weight + wz.offset(s, c, o);
        for (int64_t a = 0; a < kh; ++a) {
          for (int64_t b = 0; b < kw; ++b) {
            v[a * kw + b] += zc * static_cast<acc_t>(w[a * wz.a_step + b * wz.b_step]);
          }
        }
      }
      acc_t* out = tab + task * kr * kc;
      for (int64_t r = 0; r < kr; ++r) {
        for (int64_t cc = 0; cc < kc; ++cc) {
          acc_t total = 0;
          for (int64_t a = 0; a < kh; ++a) {
            if (rows[r * kh + a] == 0.0) continue;
            for (int64_t b = 0; b < kw; ++b) {
              if (cols[cc * kw + b] != 0.0) total += v[a * kw + b];
            }
          }
          out[r * kc + cc] = total;
        }
      }
    }
  });
}

}  // namespace

at::Tensor class_table_cpu(const at::Tensor& x, const at::Tensor& z, const at::Tensor& weight,
                           const LatentConvSpec& s) {
  const auto acc = accumulate_type(x);
  const at::Tensor zr = z_rounded(x, z, acc).contiguous();
  at::Tensor tab = at::empty({s.n, s.out_channels, s.rows.classes(), s.cols.classes()},
                             x.options().dtype(acc));
  const std::vector<double> rows = tap_flags(s.rows, s.h, s.kh, s);
  const std::vector<double> cols = tap_flags(s.cols, s.w, s.kw, s);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "latent_conv", [&] {
    using acc_t = AccumulateOf_t<scalar_t>;
    class_table_loops(weight.data_ptr<scalar_t>(), ZWeight(weight, s), zr.data_ptr<acc_t>(),
                      tab.data_ptr<acc_t>(), rows, cols, s);
  });
  return tab;
}

namespace {

template <typename scalar_t>
void tap_gradient_loops(const AccumulateOf_t<scalar_t>* sums, const scalar_t* weight,
                        const ZWeight& wz, const AccumulateOf_t<scalar_t>* z,
                        const std::vector<double>& rows, const std::vector<double>& cols,
                        const LatentConvSpec& s, AccumulateOf_t<scalar_t>* grad_z,
                        AccumulateOf_t<scalar_t>* grad_wz, AccumulateOf_t<scalar_t>* grad_bias) {
  using acc_t = AccumulateOf_t<scalar_t>;
  const int64_t kr = s.rows.classes(), kc = s.cols.classes(), kh = s.kh, kw = s.kw;
  const int64_t taps = kh * kw, no = s.n * s.out_channels;
  if (grad_bias != nullptr) {
    for (int64_t o = 0; o < s.out_channels; ++o) {
      acc_t total = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const acc_t* sn = sums + (n * s.out_channels + o) * kr * kc;
        for (int64_t rc = 0; rc < kr * kc; ++rc) total += sn[rc];
      }
      grad_bias[o] = total;
    }
  }
  if (grad_z == nullptr && grad_wz == nullptr) return;
  // G[n, o, a, b]: the sums of the classes whose taps include (a, b)
  std::vector<acc_t> g(static_cast<size_t>(no * taps), acc_t(0));
  at::parallel_for(0, no, std::max<int64_t>(1, kGrainElements / (kr * kc * taps)),
                   [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const acc_t* st = sums + task * kr * kc;
      acc_t* gt = g.data() + task * taps;
      for (int64_t r = 0; r < kr; ++r) {
        for (int64_t a = 0; a < kh; ++a) {
          if (rows[r * kh + a] == 0.0) continue;
          for (int64_t cc = 0; cc < kc; ++cc) {
            const acc_t value = st[r * kc + cc];
            for (int64_t b = 0; b < kw; ++b) {
              if (cols[cc * kw + b] != 0.0) gt[a * kw + b] += value;
            }
          }
        }
      }
    }
  });
  const int64_t per_pair = s.out_channels * taps;
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, per_pair));
  if (grad_z != nullptr) {  // grad_z[n, c] = sum_{o, a, b} W_z[c, o, a, b] G[n, o, a, b]
    at::parallel_for(0, s.n * s.cz, grain, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / s.cz, c = task % s.cz;
        acc_t total = 0;
        for (int64_t o = 0; o < s.out_channels; ++o) {
          const scalar_t* w = weight + wz.offset(s, c, o);
          const acc_t* gt = g.data() + (n * s.out_channels + o) * taps;
          for (int64_t a = 0; a < kh; ++a) {
            for (int64_t b = 0; b < kw; ++b) {
              total += static_cast<acc_t>(w[a * wz.a_step + b * wz.b_step]) * gt[a * kw + b];
            }
          }
        }
        grad_z[task] = total;
      }
    });
  }
  if (grad_wz != nullptr) {
    // grad_W_z[c, o, a, b] = sum_n z[n, c] G[n, o, a, b], written in the weight's layout:
    // (O, C_z, kh, kw) for a conv2d, (C_z, O, kh, kw) for a transposed conv
    at::parallel_for(0, s.cz * s.out_channels, std::max<int64_t>(1, kGrainElements / (s.n * taps)),
                     [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t c = task / s.out_channels, o = task % s.out_channels;
        acc_t* out = grad_wz + (s.transposed ? c * s.out_channels + o : o * s.cz + c) * taps;
        for (int64_t t = 0; t < taps; ++t) {
          acc_t total = 0;
          for (int64_t n = 0; n < s.n; ++n) {
            total += z[n * s.cz + c] * g[(n * s.out_channels + o) * taps + t];
          }
          out[t] = total;
        }
      }
    });
  }
}

}  // namespace

TapGradients tap_gradients_cpu(const at::Tensor& sums, const at::Tensor& x, const at::Tensor& z,
                               const at::Tensor& weight, const LatentConvSpec& s,
                               std::array<bool, 3> mask) {
  const auto acc = sums.scalar_type();
  const auto options = sums.options();
  const at::Tensor s_c = sums.contiguous();
  const at::Tensor zr = mask[1] ? z_rounded(x, z, acc).contiguous() : at::Tensor();
  at::Tensor grad_z = mask[0] ? at::empty({s.n, s.cz}, options) : at::Tensor();
  at::Tensor grad_wz;
  if (mask[1]) {
    grad_wz = s.transposed ? at::empty({s.cz, s.out_channels, s.kh, s.kw}, options)
                           : at::empty({s.out_channels, s.cz, s.kh, s.kw}, options);
  }
  at::Tensor grad_bias = mask[2] ? at::empty({s.out_channels}, options) : at::Tensor();
  const std::vector<double> rows = tap_flags(s.rows, s.h, s.kh, s);
  const std::vector<double> cols = tap_flags(s.cols, s.w, s.kw, s);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "latent_conv", [&] {
    using acc_t = AccumulateOf_t<scalar_t>;
    tap_gradient_loops(s_c.data_ptr<acc_t>(), weight.data_ptr<scalar_t>(), ZWeight(weight, s),
                       mask[1] ? zr.data_ptr<acc_t>() : nullptr, rows, cols, s,
                       mask[0] ? grad_z.data_ptr<acc_t>() : nullptr,
                       mask[1] ? grad_wz.data_ptr<acc_t>() : nullptr,
                       mask[2] ? grad_bias.data_ptr<acc_t>() : nullptr);
  });
  TapGradients out;
  if (mask[0]) out.grad_z = grad_z.to(z.scalar_type());
  if (mask[1]) out.grad_weight_z = grad_wz.to(weight.scalar_type());
  if (mask[2]) out.grad_bias = grad_bias.to(weight.scalar_type());
  return out;
}

// The CPU kernels of the latent_conv operators (schemas in latent_conv_ops.cpp; each runs its
// operator's checks first, device_kernels.h).
TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  register_kernels<
      LatentConvKernels<&add_table_cpu, &sum_by_class_cpu, &class_table_cpu, &tap_gradients_cpu>>(m);
}

}  // namespace i2i_fast::latent_conv::cpu
