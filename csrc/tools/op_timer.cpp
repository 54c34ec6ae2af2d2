// i2i_fast_op_timer: runs, checks and times the i2i_fast operators outside Python, for profilers
// (perf, VTune, valgrind --tool=callgrind, and ncu/nsys once CUDA kernels are built in).
//
// Every operator is called through the dispatcher (torch::ops-style typed handles), exactly as
// Python calls it. Before timing, each result is compared with a float64 formula written with
// ATen operators; a mismatch makes the program exit with status 1.
//
//   i2i_fast_op_timer [--op all|adain|instance_norm|layer_norm] [--shape N,C,H,W]
//                     [--dtype float32|float64|bfloat16|float16] [--channels-last]
//                     [--repeats R] [--warmup W] [--threads T] [--quick]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using at::Tensor;
using TensorTriple = std::tuple<Tensor, Tensor, Tensor>;
using OptTensor = std::optional<Tensor>;

struct Options {
  std::string op = "all";
  std::vector<int64_t> shape{8, 256, 64, 64};
  at::ScalarType dtype = at::kFloat;
  bool channels_last = false;
  int repeats = 20;
  int warmup = 3;
  int threads = 0;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "i2i_fast_op_timer: %s\n", message.c_str());
  std::fprintf(stderr,
               "usage: i2i_fast_op_timer [--op all|adain|instance_norm|layer_norm] "
               "[--shape N,C,H,W] [--dtype float32|float64|bfloat16|float16] [--channels-last] "
               "[--repeats R] [--warmup W] [--threads T] [--quick]\n");
  std::exit(2);
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (end == item.c_str() || *end != '\0' || v < 1) {
      usage_error("--shape: expected positive integers separated by commas, got '" + text + "'");
    }
    shape.push_back(v);
  }
  if (shape.size() < 3 || shape.size() > 5) {
    usage_error("--shape: expected 3 to 5 dimensions (N,C,...), got '" + text + "'");
  }
  return shape;
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  usage_error("--dtype: expected float32, float64, bfloat16 or float16, got '" + name + "'");
}

int parse_int(const std::string& flag, const std::string& text, int minimum) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || v < minimum) {
    usage_error(flag + ": expected an integer >= " + std::to_string(minimum) + ", got '" + text +
                "'");
  }
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + ": missing value");
      return argv[++i];
    };
    if (a == "--op") {
      o.op = value();
      if (o.op != "all" && o.op != "adain" && o.op != "instance_norm" && o.op != "layer_norm") {
        usage_error("--op: expected all, adain, instance_norm or layer_norm, got '" + o.op + "'");
      }
    } else if (a == "--shape") {
      o.shape = parse_shape(value());
    } else if (a == "--dtype") {
      o.dtype = parse_dtype(value());
    } else if (a == "--channels-last") {
      o.channels_last = true;
    } else if (a == "--repeats") {
      o.repeats = parse_int(a, value(), 1);
    } else if (a == "--warmup") {
      o.warmup = parse_int(a, value(), 0);
    } else if (a == "--threads") {
      o.threads = parse_int(a, value(), 1);
    } else if (a == "--quick") {
      o.shape = {2, 16, 33, 35};
      o.repeats = 3;
      o.warmup = 1;
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }
  if (o.channels_last && o.shape.size() != 4) usage_error("--channels-last needs a 4-d --shape");
  return o;
}

// ----- the float64 formulas the kernels must reproduce -----------------------------------------

Tensor activate(const Tensor& z, const std::string& activation) {
  if (activation == "relu") return at::relu(z);
  if (activation == "leaky_relu") return at::leaky_relu(z, 0.2);
  return z;
}

std::vector<int64_t> spatial_dims(const Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

Tensor broadcast_param(const Tensor& p, const Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  if (p.dim() == 2) {
    shape[0] = p.size(0);
    shape[1] = p.size(1);
  } else {
    shape[1] = p.size(0);
  }
  return p.reshape(shape);
}

// The normalised, modulated input before the activation.
Tensor reference_pre_activation(const std::string& op, const Tensor& x64, const Tensor& w,
                                const Tensor& b) {
  Tensor y;
  if (op == "layer_norm") {  // MUNIT style: unbiased std, divide by std + eps
    const int64_t n = x64.size(0);
    const Tensor flat = x64.reshape({n, -1});
    std::vector<int64_t> stat_shape(x64.dim(), 1);
    stat_shape[0] = n;
    y = (x64 - flat.mean(1).reshape(stat_shape)) /
        (flat.std(1, /*unbiased=*/true).reshape(stat_shape) + 1e-5);
  } else {
    const auto dims = spatial_dims(x64);
    const Tensor mean = x64.mean(dims, /*keepdim=*/true);
    const Tensor var = x64.var(dims, /*unbiased=*/false, /*keepdim=*/true);
    y = (x64 - mean) / at::sqrt(var + 1e-5);
  }
  return y * broadcast_param(w.to(at::kDouble), x64) + broadcast_param(b.to(at::kDouble), x64);
}

// Gradient through the activation, taking the side of the kink from the kernel's own output:
// where the pre-activation is within rounding of 0, float and double may disagree on its sign,
// and both sides are correct (sub)gradients.
Tensor activation_grad_from_output(const Tensor& grad, const Tensor& kernel_out,
                                   const std::string& activation) {
  if (activation == "none") return grad;
  const Tensor positive = kernel_out.to(at::kDouble) > 0;
  const double negative_slope = activation == "leaky_relu" ? 0.2 : 0.0;
  return at::where(positive, grad, grad * negative_slope);
}

// ----- the operators, through the dispatcher ---------------------------------------------------

struct OpRun {
  std::function<TensorTriple(const Tensor&)> forward;  // x -> (y, mean, rstd)
  std::function<TensorTriple(const Tensor&, const Tensor&, const TensorTriple&)> backward;
};

// AdaIN (W = Tensor: weight and bias required) and instance norm (W = OptTensor) have schemas of
// the same shape.
template <typename W>
OpRun instance_statistics_op(const std::string& op, const Tensor& w, const Tensor& b,
                             const std::string& activation) {
  auto& d = c10::Dispatcher::singleton();
  auto fwd = d.findSchemaOrThrow(("i2i_fast::" + op + "_forward").c_str(), "")
                 .typed<TensorTriple(const Tensor&, const W&, const W&, double,
                                     c10::string_view, double)>();
  auto bwd = d.findSchemaOrThrow(("i2i_fast::" + op + "_backward").c_str(), "")
                 .typed<TensorTriple(const Tensor&, const Tensor&, const W&, const W&,
                                     const Tensor&, const Tensor&, double, c10::string_view,
                                     double)>();
  return {[=](const Tensor& x) { return fwd.call(x, w, b, 1e-5, activation, 0.2); },
          [=](const Tensor& gy, const Tensor& x, const TensorTriple& f) {
            return bwd.call(gy, x, w, b, std::get<1>(f), std::get<2>(f), 1e-5, activation, 0.2);
          }};
}

OpRun make_op(const std::string& op, const Tensor& w, const Tensor& b,
              const std::string& activation) {
  if (op == "adain") return instance_statistics_op<Tensor>(op, w, b, activation);
  if (op == "instance_norm") return instance_statistics_op<OptTensor>(op, w, b, activation);
  auto& d = c10::Dispatcher::singleton();
  auto fwd = d.findSchemaOrThrow("i2i_fast::layer_norm_forward", "")
                 .typed<TensorTriple(const Tensor&, const OptTensor&, const OptTensor&, double,
                                     c10::string_view, c10::string_view, double)>();
  auto bwd = d.findSchemaOrThrow("i2i_fast::layer_norm_backward", "")
                 .typed<TensorTriple(const Tensor&, const Tensor&, const OptTensor&,
                                     const OptTensor&, const Tensor&, const Tensor&, double,
                                     c10::string_view, c10::string_view, double)>();
  return {[=](const Tensor& x) { return fwd.call(x, w, b, 1e-5, "munit", activation, 0.2); },
          [=](const Tensor& gy, const Tensor& x, const TensorTriple& f) {
            return bwd.call(gy, x, w, b, std::get<1>(f), std::get<2>(f), 1e-5, "munit",
                            activation, 0.2);
          }};
}

double max_rel_error(const Tensor& actual, const Tensor& expected) {
  const Tensor a = actual.to(at::kDouble);
  const double scale = std::max(expected.abs().max().item<double>(), 1.0);
  return (a - expected).abs().max().item<double>() / scale;
}

double tolerance(at::ScalarType dtype) {
  switch (dtype) {
    case at::kDouble:
      return 1e-10;
    case at::kFloat:
      return 3e-5;
    case at::kHalf:
      return 4e-3;
    default:
      return 3e-2;
  }
}

std::vector<double> time_ms(const std::function<void()>& fn, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times;
}

double median(const std::vector<double>& sorted) {
  const size_t k = sorted.size();
  return k % 2 ? sorted[k / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
}

// Returns false on a correctness failure.
bool run_op(const std::string& op, const Options& o) {
  at::manual_seed(0);
  const std::string activation = op == "instance_norm" ? "leaky_relu" : "relu";
  const auto options = at::TensorOptions().dtype(o.dtype);
  const auto param_options = at::TensorOptions().dtype(
      o.dtype == at::kDouble ? at::kDouble : at::kFloat);
  Tensor x = at::randn(o.shape, at::TensorOptions().dtype(at::kDouble)).to(o.dtype);
  if (o.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = o.shape[0], C = o.shape[1];
  const std::vector<int64_t> pshape = op == "adain" ? std::vector<int64_t>{N, C}
                                                    : std::vector<int64_t>{C};
  const Tensor w = at::rand(pshape, param_options) + 0.5;
  const Tensor b = at::randn(pshape, param_options);
  const Tensor gy = at::randn(o.shape, at::TensorOptions().dtype(at::kDouble)).to(o.dtype);
  const OpRun run = make_op(op, w, b, activation);

  // Correctness: values and all three gradients against the float64 formula.
  const TensorTriple f = run.forward(x);
  const TensorTriple g = run.backward(gy, x, f);
  Tensor x64 = x.to(at::kDouble).detach().requires_grad_(true);
  Tensor w64 = w.to(at::kDouble).detach().requires_grad_(true);
  Tensor b64 = b.to(at::kDouble).detach().requires_grad_(true);
  const Tensor z64 = reference_pre_activation(op, x64, w64, b64);
  const Tensor y64 = activate(z64, activation);
  z64.backward(activation_grad_from_output(gy.to(at::kDouble), std::get<0>(f), activation));
  const double errors[4] = {max_rel_error(std::get<0>(f), y64),
                            max_rel_error(std::get<0>(g), x64.grad()),
                            max_rel_error(std::get<1>(g), w64.grad()),
                            max_rel_error(std::get<2>(g), b64.grad())};
  const double tol = tolerance(o.dtype);
  bool ok = true;
  for (double e : errors) ok = ok && e <= tol;  // NaN fails too

  // Timing.
  const auto fwd_times = time_ms([&] { run.forward(x); }, o.warmup, o.repeats);
  const auto bwd_times = time_ms([&] { run.backward(gy, x, f); }, o.warmup, o.repeats);
  const double bytes = static_cast<double>(x.numel()) * x.element_size();
  const double fwd_ms = median(fwd_times), bwd_ms = median(bwd_times);
  std::string shape_text;
  for (size_t i = 0; i < o.shape.size(); ++i) {
    shape_text += (i ? "x" : "") + std::to_string(o.shape[i]);
  }
  std::printf(
      "%-13s %s %s %s %s | forward median %.3f ms (min %.3f) %.1f GB/s | backward median %.3f "
      "ms (min %.3f) %.1f GB/s | max error out %.1e grad_x %.1e grad_w %.1e grad_b %.1e "
      "(tolerance %.0e) %s\n",
      op.c_str(), shape_text.c_str(), c10::toString(o.dtype),
      o.channels_last ? "channels_last" : "contiguous", activation.c_str(), fwd_ms,
      fwd_times.front(), 2 * bytes / (fwd_ms * 1e-3) / 1e9, bwd_ms, bwd_times.front(),
      3 * bytes / (bwd_ms * 1e-3) / 1e9, errors[0], errors[1], errors[2], errors[3], tol,
      ok ? "OK" : "MISMATCH");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.threads > 0) at::set_num_threads(o.threads);
  std::printf("i2i_fast_op_timer: %d threads; forward reads x and writes y, backward reads x and "
              "dy and writes dx\n",
              at::get_num_threads());
  bool ok = true;
  for (const char* op : {"adain", "instance_norm", "layer_norm"}) {
    if (o.op == "all" || o.op == op) ok = run_op(op, o) && ok;
  }
  return ok ? 0 : 1;
}
