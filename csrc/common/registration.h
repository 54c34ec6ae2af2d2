// Registering an operator family with the dispatcher, written once, so that a family names only
// its own operators (CONTRIBUTING.md, "Adding an operator"; names for a family `frn`):
//
//   // <family>_ops.cpp: the schemas, and the device operators that are not differentiable
//   TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
//     i2i_fast::define_operators(m, {
//         "frn(Tensor x, ..., float eps=1e-06) -> Tensor",
//         "frn_forward(Tensor x, ..., float eps) -> (Tensor, Tensor)",
//         ...});
//   }
//   TORCH_LIBRARY_IMPL(i2i_fast, Autograd, m) {
//     m.impl("frn", &i2i_fast::frn_autograd);
//     i2i_fast::not_differentiable(m, {"frn_forward", "frn_backward"});
//   }
//
//   // device_kernels.h: the device kernels, written once for every device, and their names
//   template <FrnForwardFn forward, FrnBackwardFn backward>
//   struct FrnKernels {
//     static ... frn_forward(...) { ...checks...; return forward(...); }
//     static ... frn_backward(...) { ...checks...; return backward(...); }
//     static constexpr std::tuple kernels{
//         Kernel<&frn_forward>{"frn_forward"}, Kernel<&frn_backward>{"frn_backward"},
//     };
//   };
//
//   // frn_cpu.cpp (frn_cuda.cu likewise, for CUDA): one line of registration
//   TORCH_LIBRARY_IMPL(i2i_fast, CPU, m) {
//     i2i_fast::register_kernels<i2i_fast::FrnKernels<&frn_forward, &frn_backward>>(m);
//   }
//
// Host code only (device_kernels.h, which includes it, is compiled by nvcc too).
#pragma once

#include <torch/library.h>

#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>

#include <initializer_list>
#include <tuple>
#include <type_traits>
#include <vector>

namespace i2i_fast {

// Defines each schema in the i2i_fast namespace, tagged pt2_compliant (torch.compile may trace
// through it without graph breaks: each has a fake implementation and no data-dependent output).
inline void define_operators(torch::Library& m, std::initializer_list<const char*> schemas) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  for (const char* schema : schemas) m.def(schema, tags);
}

// Device operators that are not differentiable: differentiating one (a double backward) raises
// an error that names it, instead of a silently missing gradient.
inline void not_differentiable(torch::Library& m, std::initializer_list<const char*> names) {
  for (const char* name : names) m.impl(name, torch::autograd::autogradNotImplementedFallback());
}

// One device kernel: the operator's name and its function, a compile-time constant as TORCH_FN
// requires (the dispatcher then calls it without an indirection).
template <auto function>
struct Kernel {
  const char* name;

  void register_to(torch::Library& m) const {
    m.impl(name, c10::CompileTimeFunctionPointer<std::remove_pointer_t<decltype(function)>,
                                                 function>());
  }
};

// Registers every kernel of a family's `Kernels::kernels` (a std::tuple of Kernel) for the
// dispatch key of the enclosing TORCH_LIBRARY_IMPL.
template <typename Kernels>
void register_kernels(torch::Library& m) {
  std::apply([&m](const auto&... kernel) { (kernel.register_to(m), ...); }, Kernels::kernels);
}

}  // namespace i2i_fast
