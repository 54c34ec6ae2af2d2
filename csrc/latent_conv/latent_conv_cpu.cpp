// latent_conv2d and latent_conv_transpose2d on the CPU: the two passes over the output
// (common.h has the plan; device_kernels.h the operators around them).
//
//   add_table_cpu: out[n, o, i, j] += Tab[n, o, class(i), class(j)], in place, one pass.
//     NCHW: one task per (n, o) plane; within a row the interior columns of a conv2d add one
//     value (a loop the compiler vectorises), those of a transposed conv one value per phase. Channels-last: one task per (n, i) row of pixels; the table is
//     transposed to (N, Kr, Kc, O) first so each pixel adds a contiguous vector over o.
//   sum_by_class_cpu: S[n, o, r, c] = sum of grad over the rectangle (rows of r) x (cols of c).
//     NCHW: per plane; channels-last: per (n, block of 64 channels), vectors over o.
//     Other layouts (an expanded gradient, a slice) are read through a contiguous copy.
//
// Sums accumulate in float32 (float64 for float64) in a fixed order set by the shape, so results
// do not depend on the thread count.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

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

template <typename scalar_t>
void add_table_nchw(scalar_t* out, const AccumulateOf_t<scalar_t>* tab, const LatentConvSpec& s) {
  using acc_t = AccumulateOf_t<scalar_t>;
  const int64_t kr = s.rows.classes(), kc = s.cols.classes(), ho = s.rows.out, wo = s.cols.out;
  const int64_t head = s.cols.head, tail = s.cols.tail, period = s.cols.period;
  at::parallel_for(0, s.n * s.out_channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      for (int64_t i = 0; i < ho; ++i) {
        const acc_t* t = tab + (plane * kr + s.rows.class_of(i)) * kc;
        scalar_t* row = out + (plane * ho + i) * wo;
        for (int64_t j = 0; j < head; ++j) row[j] = static_cast<acc_t>(row[j]) + t[j];
        if (period == 1) {
          const acc_t interior = t[head];
          for (int64_t j = head; j < tail; ++j) row[j] = static_cast<acc_t>(row[j]) + interior;
        } else {
          for (int64_t j = head; j < tail; ++j) {
            row[j] = static_cast<acc_t>(row[j]) + t[head + (j - head) % period];
          }
        }
        for (int64_t j = tail; j < wo; ++j) {
          row[j] = static_cast<acc_t>(row[j]) + t[head + period + (j - tail)];
        }
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
  at::parallel_for(0, s.n * ho, 1, [&](int64_t begin, int64_t end) {
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
  at::parallel_for(0, s.n * s.out_channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      acc_t* out = sums + plane * kr * kc;  // zero-filled by the caller
      for (int64_t i = 0; i < ho; ++i) {
        acc_t* o = out + s.rows.class_of(i) * kc;
        const scalar_t* row = grad + (plane * ho + i) * wo;
        for (int64_t c = 0; c < kc; ++c) {
          int64_t first = 0, count = 0, step = 0;
          s.cols.rows_of(c, &first, &count, &step);
          acc_t total = 0;
          for (int64_t e = 0; e < count; ++e) total += static_cast<acc_t>(row[first + e * step]);
          o[c] += total;
        }
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

// The CPU kernels of the latent_conv operators (schemas in latent_conv_ops.cpp; each runs its
// operator's checks first, device_kernels.h).
TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  register_kernels<LatentConvKernels<&add_table_cpu, &sum_by_class_cpu>>(m);
}

}  // namespace i2i_fast::latent_conv::cpu
