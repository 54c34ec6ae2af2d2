// The pieces every operator family's argument checks are made of (csrc/<family>/checks.h), in the
// words of i2i_fast/ops/checks.py: each message names the operator, the argument, what was
// expected and what came, and prints shapes, dtypes, numbers and strings as Python prints them,
// so that a bad call reads the same from every backend and from the fake implementation
// (tests/test_operator_checks.py compares them character for character).
//
// Host code only.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <string>
#include <string_view>

namespace i2i_fast::checks {

// ----- values as Python prints them -----

// A shape as a Python tuple: (2, 3), (3,), ().
inline std::string shape_text(c10::IntArrayRef shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

// A dtype as torch prints it: torch.float32.
inline std::string dtype_text(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kByte: return "torch.uint8";
    case at::kChar: return "torch.int8";
    case at::kShort: return "torch.int16";
    case at::kInt: return "torch.int32";
    case at::kLong: return "torch.int64";
    case at::kBool: return "torch.bool";
    case at::kComplexFloat: return "torch.complex64";
    case at::kComplexDouble: return "torch.complex128";
    default: return std::string("torch.") + c10::toString(t);
  }
}

// A float as Python's str(): the shortest digits that read back the same value, fixed notation
// for decimal exponents in [-4, 16) (with ".0" on whole numbers), else scientific with a signed
// exponent of at least two digits: 1e-05, -1.0, 0.5, 1e+16, nan, inf, -inf.
inline std::string float_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto sci = std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::scientific);
  const std::string scientific(buffer, sci.ptr);
  const size_t e = scientific.find('e');
  const int exponent = std::stoi(scientific.substr(e + 1));
  if (v != 0 && (exponent < -4 || exponent >= 16)) return scientific;
  const auto fixed = std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::fixed);
  std::string text(buffer, fixed.ptr);
  if (text.find('.') == std::string::npos) text += ".0";
  return text;
}

// A string as Python's repr(): in single quotes, or in double quotes when it holds a single
// quote and no double quote; backslashes and the enclosing quote escaped.
inline std::string repr_text(std::string_view s) {
  const bool double_quoted =
      s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos;
  const char quote = double_quoted ? '"' : '\'';
  std::string text(1, quote);
  for (const char c : s) {
    if (c == '\\' || c == quote) text += '\\';
    text += c;
  }
  return text + quote;
}

// ----- checks -----

inline bool is_floating(at::ScalarType t) {
  return t == at::kHalf || t == at::kBFloat16 || t == at::kFloat || t == at::kDouble;
}

// A floating tensor: float16, bfloat16, float32 or float64.
inline void floating(std::string_view op, std::string_view name, const at::Tensor& t) {
  TORCH_CHECK_TYPE(is_floating(t.scalar_type()), op, ": ", name,
                   ": expected a floating tensor (float16, bfloat16, float32 or float64), got ",
                   dtype_text(t.scalar_type()));
}

inline void non_empty(std::string_view op, std::string_view name, const at::Tensor& t) {
  TORCH_CHECK_VALUE(t.numel() > 0, op, ": ", name, ": expected a non-empty tensor, got shape ",
                    shape_text(t.sizes()));
}

// A floating, non-empty tensor with at least `min_dim` dims (expected_shape: "(N, ...)").
inline void batched(std::string_view op, std::string_view name, const at::Tensor& t,
                    int64_t min_dim, std::string_view expected_shape) {
  floating(op, name, t);
  TORCH_CHECK_VALUE(t.dim() >= min_dim, op, ": ", name, ": expected shape ", expected_shape,
                    ", got shape ", shape_text(t.sizes()));
  non_empty(op, name, t);
}

inline void same_device(std::string_view op, std::string_view name, const at::Tensor& t,
                        const c10::Device& expected, std::string_view whose) {
  TORCH_CHECK_VALUE(t.device() == expected, op, ": ", name, ": expected device ", expected, whose,
                    ", got ", t.device());
}

inline void same_dtype(std::string_view op, std::string_view name, const at::Tensor& t,
                       at::ScalarType expected, std::string_view whose) {
  TORCH_CHECK_TYPE(t.scalar_type() == expected, op, ": ", name, ": expected dtype ",
                   dtype_text(expected), whose, ", got ", dtype_text(t.scalar_type()));
}

inline void finite_number(std::string_view op, std::string_view name, double value) {
  TORCH_CHECK_VALUE(std::isfinite(value), op, ": ", name, ": expected a finite number, got ",
                    float_text(value));
}

// A finite eps >= 0 (> 0 when `positive`).
inline void eps(std::string_view op, double value, bool positive = false) {
  TORCH_CHECK_VALUE(value >= 0 && std::isfinite(value) && (value != 0 || !positive), op,
                    ": eps: expected a finite ", positive ? "positive" : "non-negative",
                    " number, got ", float_text(value));
}

// The upstream gradient of a loss over a batch of n samples: floating, (n,) for reduction 'none'
// (one loss per sample), else a scalar; on `device`, that of the input named `whose`.
inline void loss_grad(std::string_view op, const at::Tensor& grad_loss, std::string_view reduction,
                      int64_t n, const c10::Device& device, std::string_view whose) {
  floating(op, "grad_loss", grad_loss);
  if (reduction == "none") {
    TORCH_CHECK_VALUE(grad_loss.dim() == 1 && grad_loss.size(0) == n, op,
                      ": grad_loss: expected shape (", n, ",) (reduction 'none'), got ",
                      shape_text(grad_loss.sizes()));
  } else {
    TORCH_CHECK_VALUE(grad_loss.dim() == 0, op, ": grad_loss: expected a scalar (reduction ",
                      repr_text(reduction), "), got shape ", shape_text(grad_loss.sizes()));
  }
  TORCH_CHECK_VALUE(grad_loss.device() == device, op, ": grad_loss: expected device ", device,
                    " (that of ", whose, "), got ", grad_loss.device());
}

// The index of `value` in `allowed`; otherwise "expected one of 'a', 'b', got 'c'".
inline size_t choice(std::string_view op, std::string_view name, std::string_view value,
                     std::initializer_list<std::string_view> allowed) {
  size_t index = 0;
  std::string listed;
  for (const std::string_view a : allowed) {
    if (a == value) return index;
    listed += (index++ > 0 ? ", " : "") + repr_text(a);
  }
  TORCH_CHECK_VALUE(false, op, ": ", name, ": expected one of ", listed, ", got ",
                    repr_text(value));
  return index;  // not reached
}

}  // namespace i2i_fast::checks
