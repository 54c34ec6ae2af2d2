// What the normalization kernels share across devices: the description of one normalization
// (which statistics, which modulation, which activation), the input checks, and the memory
// layouts the kernels read directly.
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
#include <string>
#include <vector>

#include "../common/activation.h"

namespace i2i_fast {

enum class Grouping { kInstance, kLayer };
enum class StdKind { kBiasedVar, kUnbiasedStdPlusEps };

struct NormSpec {
  Grouping grouping;
  StdKind std_kind;
  double eps;
  Activation activation;
  double negative_slope;
};

inline StdKind parse_layer_norm_style(std::string_view style) {
  if (style == "munit") return StdKind::kUnbiasedStdPlusEps;
  if (style == "standard") return StdKind::kBiasedVar;
  TORCH_CHECK_VALUE(false, "style: expected 'munit' or 'standard', got '", std::string(style), "'");
}

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

// Input checks shared by every backend that implements the normalization operators. The Python
// layer checks the same things first (with the same wording); these keep direct torch.ops calls
// safe.
inline void check_norm_input(const char* op, const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.dim() >= 3 && x.dim() <= 5, op,
                    ": x: expected shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), got ",
                    x.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), op,
                   ": x: expected a floating tensor (float16, bfloat16, float32, float64), got ",
                   x.scalar_type());
  TORCH_CHECK_VALUE(x.numel() > 0, op, ": x: expected a non-empty tensor, got shape ", x.sizes());
}

inline void check_norm_param(const char* op, const char* name, const at::Tensor& p,
                             const at::Tensor& x, at::IntArrayRef expected_shape) {
  TORCH_CHECK_VALUE(p.sizes() == expected_shape, op, ": ", name, ": expected shape ",
                    expected_shape, ", got ", p.sizes());
  TORCH_CHECK_VALUE(p.device() == x.device(), op, ": ", name, ": expected device ", x.device(),
                    " (the device of x), got ", p.device());
  const auto pt = p.scalar_type();
  const bool same = pt == x.scalar_type();
  const bool fp32_for_low_precision =
      pt == at::kFloat && (x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16);
  TORCH_CHECK_TYPE(same || fp32_for_low_precision, op, ": ", name, ": expected dtype ",
                   x.scalar_type(), " (or float32 for a float16/bfloat16 x), got ", pt);
}

inline void check_eps(const char* op, double eps) {
  TORCH_CHECK_VALUE(eps >= 0 && std::isfinite(eps), op,
                    ": eps: expected a finite non-negative number, got ", eps);
}

inline void check_optional_norm_param(const char* op, const char* name,
                                      const std::optional<at::Tensor>& p, const at::Tensor& x,
                                      at::IntArrayRef expected_shape) {
  if (p.has_value() && p->defined()) check_norm_param(op, name, *p, x, expected_shape);
}

// The extra inputs of a backward operator: grad_out like x, and the statistics its forward
// operator returned ((N, C) for instance statistics, (N,) for layer statistics), all floating and
// on x's device. Kernels index these by x's shape, so a mismatch must stop here.
inline void check_norm_backward_inputs(const char* op, const at::Tensor& grad_out,
                                       const at::Tensor& x, const at::Tensor& mean,
                                       const at::Tensor& rstd, Grouping grouping) {
  TORCH_CHECK_VALUE(grad_out.sizes() == x.sizes(), op, ": grad_out: expected shape ", x.sizes(),
                    " (the shape of x), got ", grad_out.sizes());
  const std::vector<int64_t> stat_shape =
      grouping == Grouping::kInstance ? std::vector<int64_t>{x.size(0), x.size(1)}
                                      : std::vector<int64_t>{x.size(0)};
  const auto check_device_and_dtype = [&](const char* name, const at::Tensor& t) {
    TORCH_CHECK_VALUE(t.device() == x.device(), op, ": ", name, ": expected device ", x.device(),
                      " (the device of x), got ", t.device());
    TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, ": ", name,
                     ": expected a floating tensor, got ", t.scalar_type());
  };
  check_device_and_dtype("grad_out", grad_out);
  check_device_and_dtype("mean", mean);
  check_device_and_dtype("rstd", rstd);
  TORCH_CHECK_VALUE(mean.sizes() == stat_shape, op, ": mean: expected shape ", stat_shape,
                    " (what the forward operator returned), got ", mean.sizes());
  TORCH_CHECK_VALUE(rstd.sizes() == stat_shape, op, ": rstd: expected shape ", stat_shape,
                    " (what the forward operator returned), got ", rstd.sizes());
}

// Each operator's checks and its NormSpec, shared by every device's implementation.
inline NormSpec adain_spec(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           double eps, std::string_view activation, double negative_slope) {
  check_norm_input("adain", x);
  const std::vector<int64_t> nc{x.size(0), x.size(1)};
  check_norm_param("adain", "weight", weight, x, nc);
  check_norm_param("adain", "bias", bias, x, nc);
  check_eps("adain", eps);
  return {Grouping::kInstance, StdKind::kBiasedVar, eps, parse_activation(activation),
          negative_slope};
}

inline NormSpec instance_norm_spec(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                                   const std::optional<at::Tensor>& bias, double eps,
                                   std::string_view activation, double negative_slope) {
  check_norm_input("instance_norm", x);
  const std::vector<int64_t> c{x.size(1)};
  check_optional_norm_param("instance_norm", "weight", weight, x, c);
  check_optional_norm_param("instance_norm", "bias", bias, x, c);
  check_eps("instance_norm", eps);
  return {Grouping::kInstance, StdKind::kBiasedVar, eps, parse_activation(activation),
          negative_slope};
}

inline NormSpec layer_norm_spec(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                                const std::optional<at::Tensor>& bias, double eps,
                                std::string_view style, std::string_view activation,
                                double negative_slope) {
  check_norm_input("layer_norm", x);
  const std::vector<int64_t> c{x.size(1)};
  check_optional_norm_param("layer_norm", "weight", weight, x, c);
  check_optional_norm_param("layer_norm", "bias", bias, x, c);
  check_eps("layer_norm", eps);
  return {Grouping::kLayer, parse_layer_norm_style(style), eps, parse_activation(activation),
          negative_slope};
}

}  // namespace i2i_fast
