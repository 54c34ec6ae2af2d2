#include "cpu_output_allocator.h"

#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace i2i_fast::cpu {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;

std::atomic<size_t> g_allocated_bytes{0};

void free_huge_page_block(void* ctx) {
  // ctx is the whole block; its first word holds the data size (see allocate()).
  auto* header = static_cast<size_t*>(ctx);
  const size_t nbytes = header[0];
  void* data = static_cast<char*>(ctx) + kHugePage;
  const size_t total = g_allocated_bytes.fetch_sub(nbytes) - nbytes;
  c10::reportMemoryUsageToProfiler(data, -static_cast<int64_t>(nbytes), total, 0,
                                   c10::Device(c10::DeviceType::CPU));
  std::free(ctx);
}

class HugePageOutputAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    if (nbytes < kHugePageOutputMinBytes) return c10::GetCPUAllocator()->allocate(nbytes);
    // One leading huge page holds the size, so the data itself starts 2 MiB-aligned.
    void* block = nullptr;
    const int rc = posix_memalign(&block, kHugePage, nbytes + kHugePage);
    if (rc != 0 || block == nullptr) {
      // Out of memory (or no aligned block): the ordinary allocator reports it properly.
      return c10::GetCPUAllocator()->allocate(nbytes);
    }
    static_cast<size_t*>(block)[0] = nbytes;
    void* data = static_cast<char*>(block) + kHugePage;
    // Advice only: ignored where THP is off or unsupported.
    (void)madvise(data, nbytes, MADV_HUGEPAGE);
    const size_t total = g_allocated_bytes.fetch_add(nbytes) + nbytes;
    c10::reportMemoryUsageToProfiler(data, static_cast<int64_t>(nbytes), total, 0,
                                     c10::Device(c10::DeviceType::CPU));
    return {data, block, &free_huge_page_block, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    if (count > 0) std::memcpy(dest, src, count);
  }
};

HugePageOutputAllocator g_allocator;

}  // namespace

bool huge_page_outputs_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("I2I_FAST_HUGE_PAGE_OUTPUTS");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

at::Tensor empty_output_like(const at::Tensor& like) {
  const size_t nbytes = static_cast<size_t>(like.numel()) * like.element_size();
  if (!huge_page_outputs_enabled() || nbytes < kHugePageOutputMinBytes) {
    return at::empty_strided(like.sizes(), like.strides(), like.options());
  }
  return at::detail::empty_strided_generic(like.sizes(), like.strides(), &g_allocator,
                                           c10::DispatchKeySet(c10::DispatchKey::CPU),
                                           like.scalar_type());
}

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const size_t nbytes = static_cast<size_t>(c10::multiply_integers(sizes)) *
                        c10::elementSize(options.dtype().toScalarType());
  if (!huge_page_outputs_enabled() || nbytes < kHugePageOutputMinBytes) {
    return at::empty(sizes, options);
  }
  return at::detail::empty_generic(sizes, &g_allocator, c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   options.dtype().toScalarType(), std::nullopt);
}

}  // namespace i2i_fast::cpu
