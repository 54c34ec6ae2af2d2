// What the normalization kernels share across devices: the description of one normalization
// (which statistics, which modulation, which activation), the statistics and backward
// coefficients, and the memory layouts the kernels read directly. The argument checks, which make
// a NormSpec from an operator's arguments, are in checks.h.
//
// All three public normalizations are one computation:
//   y = act((x - mean_g) * rstd_g * w[n, c] + b[n, c])
// where the group g is (n, c) for instance statistics (AdaIN, InstanceNorm) or n for layer
// statistics (LayerNorm), and rstd_g is
//   kBiasedVar:        1 / sqrt(var_biased + eps)      (IN, AdaIN, F.layer_norm)
//   kUnbiasedStdPlusEps: 1 / (std_unbiased + eps)      (MUNIT's LayerNorm)
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cmath>
#include <optional>
#include <vector>

#include "../common/activation.h"

namespace i2i_fast {

// kBatch: batch_norm's per-channel statistics over (N, spatial) (its own CPU kernels,
// normalization_cpu.cpp; the instance/layer kernels never see it).
enum class Grouping { kInstance, kLayer, kBatch };
enum class StdKind { kBiasedVar, kUnbiasedStdPlusEps };

struct NormSpec {
  Grouping grouping;
  StdKind std_kind;
  double eps;
  Activation activation;
  double negative_slope;
};

// ----- the statistics and the backward coefficients (host and device code) -----

// 1 / std of a group from its sum of squared deviations m2 over `count` elements.
C10_HOST_DEVICE inline double rstd_from_m2(double m2, int64_t count, StdKind kind, double eps) {
  if (kind == StdKind::kBiasedVar) return 1.0 / ::sqrt(m2 / static_cast<double>(count) + eps);
  // Unbiased std of one element is 0/0 = NaN, as torch.std.
  return 1.0 / (::sqrt(m2 / static_cast<double>(count - 1)) + eps);
}

// dx = k_g * g + k_x * (x - mean) + k_0, with g the gradient after the activation and
// k_g = rstd * w (per channel). These give k_x and k_0 from the group sums of dxhat = g * w and
// dxhat * xhat over the group's `count` elements.
struct InputGradTerms {
  double k_x;
  double k_0;
};

C10_HOST_DEVICE inline InputGradTerms input_grad_terms(double sum_dxhat, double sum_dxhat_xhat,
                                                       int64_t count, double rstd, StdKind kind,
                                                       double eps) {
  const double m1 = sum_dxhat / static_cast<double>(count);
  double c2;
  if (kind == StdKind::kBiasedVar) {
    c2 = rstd * sum_dxhat_xhat / static_cast<double>(count);
  } else {
    // MUNIT: the gradient through the unbiased std sigma = 1/rstd - eps. Where sigma is 0 (a
    // constant group) torch's std backward defines that gradient as 0, and so does this (instead
    // of 0/0 = NaN). A NaN rstd still gives NaN terms (k_x = -rstd * 0).
    // Accuracy: rstd is rounded to the accumulation type, so sigma has an absolute error of about
    // 6e-8 * (sigma + eps) in float32; the term it scales, k_x * (x - mean), is about sigma / eps
    // times the main term rstd * w * g, so its error stays at float rounding of the gradient, and
    // where the rounding leaves sigma <= 0 (sigma below ~6e-8 * eps) the dropped term is below it.
    const double sigma = 1.0 / rstd - eps;
    c2 = sigma > 0 ? sum_dxhat_xhat / (static_cast<double>(count - 1) * sigma) : 0.0;
  }
  return {-rstd * c2, -rstd * m1};
}

// Count, mean and sum of squared deviations of a set of values, mergeable (Chan et al.).
struct Moments {
  double count = 0;
  double mean = 0;
  double m2 = 0;

  C10_HOST_DEVICE void merge(double n_b, double mean_b, double m2_b) {
    if (n_b == 0) return;
    const double total = count + n_b;
    const double delta = mean_b - mean;
    mean += delta * (n_b / total);
    m2 += m2_b + delta * delta * (count * n_b / total);
    count = total;
  }
  C10_HOST_DEVICE void merge(const Moments& o) { merge(o.count, o.mean, o.m2); }
};

// Memory layouts read directly: (N, C, S...) contiguous ("NCS") or channels-last ("NSC"), for
// any number of spatial dims. Anything else is copied to NCS first.
enum class Layout { kNCS, kNSC };

inline bool is_channels_last_dense(const at::Tensor& x) {
  int64_t expected = 1;
  if (x.size(1) != 1 && x.stride(1) != expected) return false;
  expected *= x.size(1);
  for (int64_t d = x.dim() - 1; d >= 2; --d) {
    if (x.size(d) != 1 && x.stride(d) != expected) return false;
    expected *= x.size(d);
  }
  return x.size(0) == 1 || x.stride(0) == expected;
}

inline Layout layout_of_dense(const at::Tensor& x) {
  return x.is_contiguous() ? Layout::kNCS : Layout::kNSC;
}

// x itself when a kernel can read it directly, else a contiguous copy.
inline at::Tensor to_dense_layout(const at::Tensor& x) {
  if (x.is_contiguous() || is_channels_last_dense(x)) return x;
  return x.contiguous();
}

// t (same shape as the input) rearranged into `layout`; no copy when it already is.
inline at::Tensor to_layout(const at::Tensor& t, Layout layout) {
  if (layout == Layout::kNCS) return t.contiguous();
  if (is_channels_last_dense(t)) return t;
  std::vector<int64_t> to_nsc{0};
  for (int64_t d = 2; d < t.dim(); ++d) to_nsc.push_back(d);
  to_nsc.push_back(1);
  std::vector<int64_t> back(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) back[to_nsc[i]] = i;
  return t.permute(to_nsc).contiguous().permute(back);
}

inline int64_t spatial_size(const at::Tensor& x) {
  int64_t s = 1;
  for (int64_t d = 2; d < x.dim(); ++d) s *= x.size(d);
  return s;
}

inline at::ScalarType accumulate_type_of(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// A modulation parameter's gradient from its per-(n, c) sums (Σ g * xhat for the weight, Σ g for
// the bias, accumulated): (N, C) for AdaIN's per-sample parameters, else summed over the batch to
// (C,), in the parameter's dtype (x's for an absent parameter).
inline at::Tensor param_grad(const std::optional<at::Tensor>& param, const at::Tensor& per_nc,
                             at::ScalarType x_dtype) {
  const bool present = param.has_value() && param->defined();
  const at::ScalarType dtype = present ? param->scalar_type() : x_dtype;
  if (present && param->dim() == 2) return per_nc.to(dtype);
  return per_nc.sum(0).to(dtype);
}

}  // namespace i2i_fast
