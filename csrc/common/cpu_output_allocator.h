// Allocation of CPU kernel outputs.
//
// On machines where a page fault is expensive (virtual machines in particular), writing a freshly
// allocated 32 MiB output costs several times more than the kernel's own arithmetic and memory
// traffic: every 4 KiB page faults once on first touch. Outputs of at least
// kHugePageOutputMinBytes are therefore allocated 2 MiB-aligned and advised with
// MADV_HUGEPAGE, so the kernel maps them with transparent huge pages (one fault per 2 MiB) where
// the system allows it (THP "madvise" or "always"); elsewhere the advice is ignored and they
// behave like ordinary allocations. Smaller outputs use torch's CPU allocator.
//
// The tensors are ordinary resizable CPU tensors. Set I2I_FAST_HUGE_PAGE_OUTPUTS=0 to allocate
// every output with torch's CPU allocator.
#pragma once

#include <ATen/ATen.h>

namespace i2i_fast::cpu {

constexpr size_t kHugePageOutputMinBytes = size_t(2) << 20;

bool huge_page_outputs_enabled();

// An uninitialised tensor with the sizes, strides and dtype of `like` (which must be dense).
at::Tensor empty_output_like(const at::Tensor& like);

// An uninitialised tensor of the given sizes, contiguous.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace i2i_fast::cpu
