// CPU kernels of the GAN loss family: gan_loss and r1_penalty, forward and backward.
//
// Work is cut into tasks, each a run of at most kChunk elements of one sample of one scale, so
// that every scale (and every sample) of a call is handled in one parallel region, forward and
// backward alike. A forward task sums its per-element losses in blocks of kBlock elements in float
// (double for float64 inputs), folded into a double; the task sums are then added per (scale,
// sample) in task order on one thread. Task boundaries depend only on the shapes, so the result
// does not depend on the number of threads. Calls with fewer than kParallelMinElements elements
// (the usual discriminator outputs: 16x16 patches x 8 samples) run on the calling thread, where
// starting a parallel region would cost more than the arithmetic.
//
// gan_loss reads each scale as contiguous memory (other strides are copied first: these tensors
// are small); with a domain, sample n's selected head is the run [domain[n] * R, (domain[n] + 1)
// * R) of its (K * R)-element block, read in place. r1_penalty reads contiguous and channels-last
// tensors (any batch-major dense layout) in place and writes its gradient in the same layout.
#include "gan_loss_cpu.h"

#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/cpu_element.h"
#include "device_kernels.h"

namespace i2i_fast::gan_loss::cpu {
namespace {

using i2i_fast::cpu::AccumulateOf;

constexpr int64_t kBlock = 1024;                   // elements summed in A before a double fold
constexpr int64_t kChunk = 1 << 14;                // elements per task
constexpr int64_t kParallelMinElements = 1 << 16;  // smaller calls stay on the calling thread

// `count` elements of sample `sample` of scale `scale`, starting `begin` elements into the
// sample's block.
struct Task {
  int64_t scale;
  int64_t sample;
  int64_t begin;
  int64_t count;
};

void add_tasks(std::vector<Task>& tasks, int64_t scale, int64_t sample, int64_t begin,
               int64_t count) {
  for (int64_t b = 0; b < count; b += kChunk) {
    tasks.push_back({scale, sample, begin + b, std::min(kChunk, count - b)});
  }
}

template <typename Body>
void run_tasks(const std::vector<Task>& tasks, int64_t total_elements, const Body& body) {
  const auto n = static_cast<int64_t>(tasks.size());
  if (total_elements < kParallelMinElements || n == 1) {
    for (int64_t t = 0; t < n; ++t) body(tasks[t], t);
    return;
  }
  at::parallel_for(0, n, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) body(tasks[t], t);
  });
}

// An uninitialised contiguous CPU tensor for a kernel to fill (every element of it). A loss and
// the gradients of a discriminator's outputs are small, and a kernel call on them is mostly host
// overhead: they come straight from at::detail::empty_cpu (what at::empty runs on the CPU, with
// the process's CPU allocator) without a trip through the dispatcher.
at::Tensor new_output(at::IntArrayRef sizes, at::ScalarType dtype) {
  return at::detail::empty_cpu(sizes, dtype, /*pin_memory=*/false, std::nullopt);
}

// Values of a 0-d or 1-d floating tensor (any strides, an expanded one included) as doubles.
std::vector<double> read_values(const at::Tensor& t) {
  std::vector<double> values(static_cast<size_t>(t.numel()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "read_values", [&] {
    const scalar_t* p = t.const_data_ptr<scalar_t>();
    const int64_t stride = t.dim() == 0 ? 0 : t.stride(0);
    for (size_t i = 0; i < values.size(); ++i) {
      values[i] = static_cast<double>(p[static_cast<int64_t>(i) * stride]);
    }
  });
  return values;
}

// ---------------------------------------------------------------------------------------------
// gan_loss

// One scale as the kernels read it: contiguous, each sample a block of heads * per_head elements.
struct Scale {
  at::Tensor dense;
  int64_t heads;
  int64_t per_head;  // R: selected elements per sample
  int64_t block() const { return heads * per_head; }
};

std::vector<Scale> scales_of(at::TensorList outputs, bool with_heads) {
  std::vector<Scale> scales;
  scales.reserve(outputs.size());
  for (const at::Tensor& x : outputs) {
    const int64_t n = x.size(0);
    const int64_t heads = with_heads ? x.size(1) : 1;
    scales.push_back({x.contiguous(), heads, x.numel() / (n * heads)});
  }
  return scales;
}

// domain[n] for every sample (0 for all without a domain), range-checked against every scale.
std::vector<int64_t> read_domain(const std::optional<at::Tensor>& domain, at::TensorList outputs,
                                 int64_t n, const char* op) {
  std::vector<int64_t> y(static_cast<size_t>(n), 0);
  if (!domain.has_value() || !domain->defined()) return y;
  const at::Tensor& d = *domain;
  const int64_t stride = d.stride(0);
  if (d.scalar_type() == at::kLong) {
    const int64_t* p = d.const_data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) y[i] = p[i * stride];
  } else {
    const int32_t* p = d.const_data_ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) y[i] = p[i * stride];
  }
  check_domain_range(op, outputs, n, [&](int64_t i) { return y[i]; });
  return y;
}

// What the forward and the backward read of a call: the batch size, the number of scales, every
// sample's domain index (range-checked) and the scales.
struct Batch {
  int64_t n;
  int64_t num_scales;
  std::vector<int64_t> y;
  std::vector<Scale> scales;
};

Batch batch_of(at::TensorList outputs, const std::optional<at::Tensor>& domain,
               const GanLossSpec& spec) {
  const int64_t n = outputs[0].size(0);
  const bool with_heads = domain.has_value() && domain->defined();
  return {n, static_cast<int64_t>(outputs.size()), read_domain(domain, outputs, n, spec.op),
          scales_of(outputs, with_heads)};
}

template <ElementLoss kind, typename T, typename A>
double sum_of_losses(const T* x, int64_t count, A label, A sign) {
  double total = 0;
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t e = std::min(count, b + kBlock);
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += element_loss<kind, A>(static_cast<A>(x[i]), label, sign);
    total += static_cast<double>(s);
  }
  return total;
}

template <ElementLoss kind, typename T, typename A>
void write_loss_grads(const T* x, T* dx, int64_t count, A label, A sign, A upstream) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    dx[i] = static_cast<T>(
        element_loss_grad<kind, A>(static_cast<A>(x[i]), label, sign, upstream));
  }
}

template <typename T>
void fill_zero(T* p, int64_t begin, int64_t end) {
  if (end > begin) std::fill(p + begin, p + end, T(0));
}

}  // namespace

at::Tensor gan_loss_forward(at::TensorList outputs, const std::optional<at::Tensor>& domain,
                            const GanLossSpec& spec) {
  const auto [n, num_scales, y, scales] = batch_of(outputs, domain, spec);

  std::vector<Task> tasks;
  tasks.reserve(static_cast<size_t>(num_scales * n));
  int64_t total = 0;
  for (int64_t s = 0; s < num_scales; ++s) {
    const int64_t r = scales[s].per_head;
    for (int64_t i = 0; i < n; ++i) add_tasks(tasks, s, i, y[i] * r, r);
    total += n * r;
  }
  std::vector<double> task_sums(tasks.size());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, outputs[0].scalar_type(), "gan_loss_forward", [&] {
        using A = typename AccumulateOf<scalar_t>::type;
        const A label = static_cast<A>(spec.label);
        const A sign = static_cast<A>(spec.sign);
        std::vector<const scalar_t*> data(scales.size());
        for (size_t s = 0; s < scales.size(); ++s) {
          data[s] = scales[s].dense.const_data_ptr<scalar_t>();
        }
        dispatch_element_loss(spec.loss, [&](auto kind_constant) {
          constexpr ElementLoss kind = decltype(kind_constant)::value;
          run_tasks(tasks, total, [&](const Task& task, int64_t t) {
            const scalar_t* x =
                data[task.scale] + task.sample * scales[task.scale].block() + task.begin;
            task_sums[t] = sum_of_losses<kind, scalar_t, A>(x, task.count, label, sign);
          });
        });
      });

  // Per (scale, sample) sums, added in task order.
  std::vector<double> sums(static_cast<size_t>(num_scales * n), 0.0);
  for (size_t t = 0; t < tasks.size(); ++t) sums[tasks[t].scale * n + tasks[t].sample] += task_sums[t];

  const at::ScalarType loss_dtype = loss_dtype_of(outputs[0].scalar_type());
  if (spec.reduction == Reduction::kNone) {
    std::vector<double> per_sample(static_cast<size_t>(n), 0.0);
    for (int64_t s = 0; s < num_scales; ++s) {
      const double r = static_cast<double>(scales[s].per_head);
      for (int64_t i = 0; i < n; ++i) per_sample[i] += sums[s * n + i] / r;
    }
    at::Tensor loss = new_output({n}, loss_dtype);
    AT_DISPATCH_FLOATING_TYPES(loss.scalar_type(), "gan_loss_forward_none", [&] {
      scalar_t* out = loss.mutable_data_ptr<scalar_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<scalar_t>(per_sample[i]);
    });
    return loss;
  }
  double value = 0;
  for (int64_t s = 0; s < num_scales; ++s) {
    double scale_sum = 0;
    for (int64_t i = 0; i < n; ++i) scale_sum += sums[s * n + i];
    value += spec.reduction == Reduction::kMean
                 ? scale_sum / (static_cast<double>(n) * static_cast<double>(scales[s].per_head))
                 : scale_sum;
  }
  at::Tensor loss = new_output({}, loss_dtype);
  AT_DISPATCH_FLOATING_TYPES(loss.scalar_type(), "gan_loss_forward_scalar", [&] {
    *loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(value);
  });
  return loss;
}

std::vector<at::Tensor> gan_loss_backward(const at::Tensor& grad_loss, at::TensorList outputs,
                                          const std::optional<at::Tensor>& domain,
                                          const GanLossSpec& spec) {
  const auto [n, num_scales, y, scales] = batch_of(outputs, domain, spec);
  const std::vector<double> g = read_values(grad_loss);

  // d loss / d (selected element) = f'(x) * upstream[scale, sample].
  std::vector<double> upstream(static_cast<size_t>(num_scales * n));
  for (int64_t s = 0; s < num_scales; ++s) {
    const double r = static_cast<double>(scales[s].per_head);
    for (int64_t i = 0; i < n; ++i) {
      switch (spec.reduction) {
        case Reduction::kMean:
          upstream[s * n + i] = g[0] / (static_cast<double>(n) * r);
          break;
        case Reduction::kSum:
          upstream[s * n + i] = g[0];
          break;
        case Reduction::kNone:
          upstream[s * n + i] = g[i] / r;
          break;
      }
    }
  }

  std::vector<at::Tensor> grads;
  grads.reserve(scales.size());
  std::vector<Task> tasks;
  tasks.reserve(static_cast<size_t>(num_scales * n));
  int64_t total = 0;
  for (int64_t s = 0; s < num_scales; ++s) {
    grads.push_back(new_output(scales[s].dense.sizes(), scales[s].dense.scalar_type()));
    for (int64_t i = 0; i < n; ++i) add_tasks(tasks, s, i, 0, scales[s].block());
    total += n * scales[s].block();
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, outputs[0].scalar_type(), "gan_loss_backward", [&] {
        using A = typename AccumulateOf<scalar_t>::type;
        const A label = static_cast<A>(spec.label);
        const A sign = static_cast<A>(spec.sign);
        std::vector<const scalar_t*> in(scales.size());
        std::vector<scalar_t*> out(scales.size());
        for (size_t s = 0; s < scales.size(); ++s) {
          in[s] = scales[s].dense.const_data_ptr<scalar_t>();
          out[s] = grads[s].mutable_data_ptr<scalar_t>();
        }
        dispatch_element_loss(spec.loss, [&](auto kind_constant) {
          constexpr ElementLoss kind = decltype(kind_constant)::value;
          run_tasks(tasks, total, [&](const Task& task, int64_t) {
            const Scale& sc = scales[task.scale];
            const int64_t offset = task.sample * sc.block();
            const scalar_t* x = in[task.scale] + offset;
            scalar_t* dx = out[task.scale] + offset;
            // The selected head [lo, hi) gets f'(x) * upstream, the other heads zero.
            const int64_t lo = y[task.sample] * sc.per_head;
            const int64_t hi = lo + sc.per_head;
            const int64_t begin = task.begin;
            const int64_t end = task.begin + task.count;
            const int64_t a = std::max(begin, lo);
            const int64_t b = std::min(end, hi);
            fill_zero(dx, begin, std::min(end, lo));
            if (b > a) {
              const A up = static_cast<A>(upstream[task.scale * n + task.sample]);
              write_loss_grads<kind, scalar_t, A>(x + a, dx + a, b - a, label, sign, up);
            }
            fill_zero(dx, std::max(begin, hi), end);
          });
        });
      });
  return grads;
}

// ---------------------------------------------------------------------------------------------
// r1_penalty

namespace {

// Sample n occupies the memory run [n * numel / N, (n + 1) * numel / N): contiguous,
// channels-last, or any other dense layout with the batch dimension outermost.
bool is_batch_major_dense(const at::Tensor& x) {
  if (!x.is_non_overlapping_and_dense()) return false;
  return x.size(0) == 1 || x.stride(0) == x.numel() / x.size(0);
}

at::Tensor batch_major(const at::Tensor& x) {
  return is_batch_major_dense(x) ? x : x.contiguous();
}

std::vector<Task> sample_tasks(int64_t n, int64_t per_sample) {
  std::vector<Task> tasks;
  for (int64_t i = 0; i < n; ++i) add_tasks(tasks, 0, i, 0, per_sample);
  return tasks;
}

// Sum of x^2 in blocks of kSquaresBlock elements, each summed in A over kLanes independent
// partial sums (several vector registers, so the adds do not wait on one another; 256 elements
// per partial sum) and folded into a double.
template <typename T, typename A>
double sum_of_squares(const T* x, int64_t count) {
  constexpr int64_t kLanes = 32;
  constexpr int64_t kSquaresBlock = 8192;
  double total = 0;
  for (int64_t b = 0; b < count; b += kSquaresBlock) {
    const int64_t e = std::min(count, b + kSquaresBlock);
    A lanes[kLanes] = {};
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes) {
#pragma omp simd
      for (int64_t j = 0; j < kLanes; ++j) {
        const A v = static_cast<A>(x[i + j]);
        lanes[j] += v * v;
      }
    }
    A s = 0;
    for (; i < e; ++i) {
      const A v = static_cast<A>(x[i]);
      s += v * v;
    }
    for (int64_t j = 0; j < kLanes; ++j) s += lanes[j];
    total += static_cast<double>(s);
  }
  return total;
}

// out = factor * x
template <typename T, typename A>
void scaled_copy(const T* x, T* out, int64_t count, A factor) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<T>(factor * static_cast<A>(x[i]));
}

}  // namespace

at::Tensor r1_penalty_forward(const at::Tensor& grads, double weight, Reduction reduction) {
  const at::Tensor x = batch_major(grads);
  const int64_t n = x.size(0);
  const int64_t per_sample = x.numel() / n;
  const std::vector<Task> tasks = sample_tasks(n, per_sample);
  std::vector<double> task_sums(tasks.size());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "r1_penalty", [&] {
    using A = typename AccumulateOf<scalar_t>::type;
    const scalar_t* base = x.const_data_ptr<scalar_t>();
    run_tasks(tasks, x.numel(), [&](const Task& task, int64_t t) {
      task_sums[t] =
          sum_of_squares<scalar_t, A>(base + task.sample * per_sample + task.begin, task.count);
    });
  });
  std::vector<double> per(static_cast<size_t>(n), 0.0);
  for (size_t t = 0; t < tasks.size(); ++t) per[tasks[t].sample] += task_sums[t];

  const at::ScalarType loss_dtype = loss_dtype_of(x.scalar_type());
  if (reduction == Reduction::kNone) {
    at::Tensor loss = new_output({n}, loss_dtype);
    AT_DISPATCH_FLOATING_TYPES(loss.scalar_type(), "r1_penalty_none", [&] {
      scalar_t* out = loss.mutable_data_ptr<scalar_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<scalar_t>(weight * per[i]);
    });
    return loss;
  }
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += per[i];
  if (reduction == Reduction::kMean) total /= static_cast<double>(n);
  at::Tensor loss = new_output({}, loss_dtype);
  AT_DISPATCH_FLOATING_TYPES(loss.scalar_type(), "r1_penalty_scalar", [&] {
    *loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(weight * total);
  });
  return loss;
}

at::Tensor r1_penalty_backward(const at::Tensor& grad_loss, const at::Tensor& grads,
                               double weight, Reduction reduction) {
  const at::Tensor x = batch_major(grads);
  const int64_t n = x.size(0);
  const int64_t per_sample = x.numel() / n;
  const std::vector<double> g = read_values(grad_loss);
  std::vector<double> factor(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double gi = reduction == Reduction::kNone ? g[i]
                      : reduction == Reduction::kMean ? g[0] / static_cast<double>(n)
                                                      : g[0];
    factor[i] = 2.0 * weight * gi;
  }
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::Preserve);
  const std::vector<Task> tasks = sample_tasks(n, per_sample);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "r1_penalty_backward", [&] {
        using A = typename AccumulateOf<scalar_t>::type;
        const scalar_t* in = x.const_data_ptr<scalar_t>();
        scalar_t* out = dx.mutable_data_ptr<scalar_t>();
        run_tasks(tasks, x.numel(), [&](const Task& task, int64_t) {
          const int64_t offset = task.sample * per_sample + task.begin;
          scaled_copy<scalar_t, A>(in + offset, out + offset, task.count,
                                   static_cast<A>(factor[task.sample]));
        });
      });
  return dx;
}

}  // namespace i2i_fast::gan_loss::cpu

// ---------------------------------------------------------------------------------------------
// The CPU kernels of the operators (schemas in gan_loss_ops.cpp; each runs its operator's checks
// first, device_kernels.h).

TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
  using namespace i2i_fast::gan_loss::cpu;
  i2i_fast::register_kernels<i2i_fast::GanLossKernels<
      &gan_loss_forward, &gan_loss_backward, &r1_penalty_forward, &r1_penalty_backward>>(m);
}
