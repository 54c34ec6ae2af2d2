// The argument checks of the GAN loss operators, for the compiled kernels of every device
// (device_kernels.h runs them before any kernel). The C++ mirror of i2i_fast/ops/gan_loss/checks.py:
// the same checks in the same order with the same words (tests/test_operator_checks.py compares
// the two). check_gan_loss returns the GanLossSpec its kernels run.
//
// Domain indices: their range needs their values, which only the CPU kernels read on the host
// (check_domain_range); the CUDA kernels give a NaN loss for an index outside [0, K) instead.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <string_view>

#include "../common/checks.h"
#include "common.h"

namespace i2i_fast {

// Every discriminator output: floating, non-empty, (N, ...) or (N, K, ...) with `heads`, and the
// same batch size, dtype and device as outputs[0]. Returns N.
inline int64_t check_loss_outputs(std::string_view op, at::TensorList outputs, bool heads) {
  TORCH_CHECK_VALUE(!outputs.empty(), op,
                    ": outputs: expected a tensor or a non-empty list of tensors, got an empty "
                    "list");
  const std::string_view expected_shape =
      heads ? "(N, K, ...) with one head per domain (domain is given)"
            : "(N, ...) with a batch dimension";
  const at::Tensor& first = outputs[0];
  for (size_t i = 0; i < outputs.size(); ++i) {
    const at::Tensor& x = outputs[i];
    const std::string name = "outputs[" + std::to_string(i) + "]";
    checks::batched(op, name, x, heads ? 2 : 1, expected_shape);
    if (i == 0) continue;
    TORCH_CHECK_VALUE(x.size(0) == first.size(0), op, ": ", name, ": expected batch size ",
                      first.size(0), " (that of outputs[0]), got ", x.size(0), " (shape ",
                      checks::shape_text(x.sizes()), ")");
    TORCH_CHECK_TYPE(x.scalar_type() == first.scalar_type(), op, ": ", name, ": expected dtype ",
                     checks::dtype_text(first.scalar_type()), " (that of outputs[0]), got ",
                     checks::dtype_text(x.scalar_type()));
    checks::same_device(op, name, x, first.device(), " (that of outputs[0])");
  }
  return first.size(0);
}

inline Reduction check_reduction(std::string_view op, std::string_view reduction) {
  switch (checks::choice(op, "reduction", reduction, {"mean", "sum", "none"})) {
    case 0: return Reduction::kMean;
    case 1: return Reduction::kSum;
    default: return Reduction::kNone;
  }
}

// mode x target (x label) -> the per-element function. target is "real", "fake", "generator" or
// "label" (a numeric label, lsgan, nsgan and sigmoid_bce only; `label` holds it; sigmoid_bce's a
// probability, in [0, 1]).
inline GanLossSpec check_loss_function(const char* op, std::string_view mode,
                                       std::string_view target, double label) {
  const size_t m =
      checks::choice(op, "mode", mode, {"lsgan", "nsgan", "hinge", "wgan", "sigmoid_bce"});
  const bool takes_label = m < 2 || m == 4;  // lsgan, nsgan, sigmoid_bce
  const bool is_label = target == "label";
  TORCH_CHECK_VALUE(is_label || target == "real" || target == "fake" || target == "generator", op,
                    ": target: expected 'real', 'fake', 'generator' or a number, got ",
                    checks::repr_text(target));
  if (is_label) {
    checks::finite_number(op, "target", label);
    TORCH_CHECK_VALUE(takes_label, op, ": target: a numeric label (", checks::float_text(label),
                      ") is only defined for mode 'lsgan', 'nsgan' or 'sigmoid_bce'; mode ",
                      checks::repr_text(mode), " takes 'real', 'fake' or 'generator'");
    TORCH_CHECK_VALUE(m != 4 || (label >= 0.0 && label <= 1.0), op,
                      ": target: expected a label in [0, 1] for mode 'sigmoid_bce' (a "
                      "probability), got ",
                      checks::float_text(label));
  }
  GanLossSpec spec{ElementLoss::kLinear, 0.0, 0.0, Reduction::kMean, op};
  if (takes_label) {
    spec.loss = m == 0 ? ElementLoss::kSquared
                : m == 1 ? ElementLoss::kBce
                         : ElementLoss::kSigmoidBce;
    spec.label = is_label ? label : (target == "fake" ? 0.0 : 1.0);
  } else if (target == "generator") {
    spec.sign = -1.0;
  } else if (m == 2) {  // hinge
    spec.loss = target == "real" ? ElementLoss::kHingeReal : ElementLoss::kHingeFake;
  } else {  // wgan
    spec.sign = target == "real" ? -1.0 : 1.0;
  }
  return spec;
}

// (N,) int64 or int32 head indices on the device of the outputs (not their values).
inline void check_domain(std::string_view op, const at::Tensor& domain, int64_t n,
                         const c10::Device& device) {
  const auto t = domain.scalar_type();
  TORCH_CHECK_TYPE(t == at::kLong || t == at::kInt, op,
                   ": domain: expected an int64 or int32 tensor of domain indices, got ",
                   checks::dtype_text(t));
  TORCH_CHECK_VALUE(domain.dim() == 1 && domain.size(0) == n, op, ": domain: expected shape (", n,
                    ",) (one index per sample), got ", checks::shape_text(domain.sizes()));
  checks::same_device(op, "domain", domain, device, " (that of outputs)");
}

// Everything about a gan_loss call but the domain's values; returns its spec.
inline GanLossSpec check_gan_loss(const char* op, at::TensorList outputs, std::string_view mode,
                                  std::string_view target, double label,
                                  const std::optional<at::Tensor>& domain,
                                  std::string_view reduction) {
  const bool heads = domain.has_value() && domain->defined();
  const int64_t n = check_loss_outputs(op, outputs, heads);
  GanLossSpec spec = check_loss_function(op, mode, target, label);
  spec.reduction = check_reduction(op, reduction);
  if (heads) check_domain(op, *domain, n, outputs[0].device());
  return spec;
}

// Domain indices must lie in [0, K) for every scale (K = outputs[i].size(1)); `index(n)` reads
// sample n's index.
template <typename IndexFn>
void check_domain_range(std::string_view op, at::TensorList outputs, int64_t n, IndexFn index) {
  int64_t k_min = outputs[0].size(1);
  size_t which = 0;
  for (size_t i = 1; i < outputs.size(); ++i) {
    if (outputs[i].size(1) < k_min) {
      k_min = outputs[i].size(1);
      which = i;
    }
  }
  for (int64_t s = 0; s < n; ++s) {
    const int64_t y = index(s);
    TORCH_CHECK_VALUE(y >= 0 && y < k_min, op, ": domain: expected indices in [0, ", k_min,
                      ") (K = outputs[", which, "].shape[1]), got ", y, " at sample ", s);
  }
}

inline Reduction check_r1_penalty(std::string_view op, const at::Tensor& grads, double weight,
                                  std::string_view reduction) {
  checks::batched(op, "grads", grads, 1, "(N, ...) with a batch dimension");
  checks::finite_number(op, "weight", weight);
  return check_reduction(op, reduction);
}

}  // namespace i2i_fast
