// A caching allocator for large CPU blocks, installed as the process's CPU allocator.
//
// Why: on machines where a page fault is expensive (virtual machines in particular), writing a
// freshly allocated 32 MiB tensor costs several times its own memory traffic, because every
// 4 KiB page faults on first touch; glibc returns blocks of that size to the system on free, so
// a training loop pays the faults again for every large tensor of every iteration (convolutions,
// optimizer temporaries, normalization outputs alike). This allocator keeps freed large blocks
// and hands them out again: after the first iteration, the blocks of a training step are reused
// and no longer fault. It applies to every tensor allocated on the CPU while it is installed,
// so every provider of a benchmark (eager, torch.compile, fused) runs under the same allocator.
//
// Rules:
// - Requests below `min_bytes` (1 MiB) go to the allocator it replaced (torch's default).
// - A large request is rounded up to a multiple of 2 MiB and served by the smallest cached block
//   of at least that size and at most 1.25x it; otherwise a new block is mapped (mmap). A new
//   block may be advised MADV_HUGEPAGE (off by default: on a fragmented machine the kernel's
//   synchronous compaction for huge pages stalls the allocation, the stall this allocator is
//   meant to remove).
// - Freed blocks are cached; the idle cached bytes are bounded (`max_cached_bytes`): beyond it
//   the least recently freed blocks are unmapped. A failed mmap releases the whole cache and
//   retries once, then asks the replaced allocator (which raises torch's out-of-memory error).
// - Thread-safe (one mutex; large allocations are rare). Fork-safe: the mutex is held across
//   fork() by pthread_atfork handlers, so a child process never inherits it locked.
// - Allocations and frees are reported to the profiler like torch's own.
//
// Control (registered operators, see i2i_fast/cpu_allocator.py): cpu_cache_install(max_cached
// bytes, huge_pages), cpu_cache_uninstall(), cpu_cache_empty(), cpu_cache_stats().
#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/library.h>

#include <pthread.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace i2i_fast::cpu {
namespace {

constexpr size_t kMiB = size_t(1) << 20;
constexpr size_t kGranule = 2 * kMiB;
constexpr size_t kMinBytes = 1 * kMiB;

struct Block {
  void* base;
  size_t size;  // mapped bytes, a multiple of kGranule
};

class CachingCPUAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    if (nbytes < kMinBytes || fallback_ == nullptr) {
      return (fallback_ ? fallback_ : c10::GetDefaultCPUAllocator())->allocate(nbytes);
    }
    Block block = take_cached(round_up(nbytes));
    if (block.base == nullptr) block = map_block(round_up(nbytes));
    if (block.base == nullptr) {
      release_cache();
      block = map_block(round_up(nbytes));
    }
    if (block.base == nullptr) return fallback_->allocate(nbytes);  // raises out-of-memory
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.emplace(block.base, Live{block.size, nbytes});
      in_use_bytes_ += nbytes;
      report_locked(block.base, static_cast<int64_t>(nbytes));
    }
    // A "simple" data pointer (context = data) with a raw deleter: torch's raw_allocate /
    // raw_deallocate (oneDNN's scratch buffers) need both.
    return {block.base, block.base, &free_pointer, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    if (count > 0) std::memcpy(dest, src, count);
  }

  c10::DeleterFnPtr raw_deleter() const override { return &free_pointer; }

  void install(int64_t max_cached_bytes, bool huge_pages) {
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      max_cached_ = static_cast<size_t>(max_cached_bytes);
      huge_pages_ = huge_pages;
      if (!installed_) {
        // Priorities only grow: each install and uninstall outranks the previous setting.
        fallback_ = c10::GetCPUAllocator();
        if (fallback_ == this) fallback_ = c10::GetDefaultCPUAllocator();
        c10::SetCPUAllocator(this, ++priority_);
        installed_ = true;
      }
      evict_to(max_cached_, released);
    }
    unmap(released);
  }

  void uninstall() {
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (installed_) {
        c10::SetCPUAllocator(fallback_, ++priority_);
        installed_ = false;
      }
      evict_to(0, released);
    }
    unmap(released);
  }

  void release_cache() {
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      evict_to(0, released);
    }
    unmap(released);
  }

  std::vector<int64_t> stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {installed_ ? 1 : 0,
            static_cast<int64_t>(in_use_bytes_),
            static_cast<int64_t>(cached_bytes_),
            static_cast<int64_t>(max_cached_),
            static_cast<int64_t>(hits_),
            static_cast<int64_t>(misses_),
            static_cast<int64_t>(evicted_bytes_),
            huge_pages_ ? 1 : 0};
  }

  // pthread_atfork handlers: the mutex is never inherited locked.
  void lock_for_fork() { mutex_.lock(); }
  void unlock_after_fork() { mutex_.unlock(); }

 private:
  static size_t round_up(size_t nbytes) { return (nbytes + kGranule - 1) / kGranule * kGranule; }

  // The smallest cached block of size in [size, 1.25 size], removed from the cache; or
  // {nullptr, 0}.
  Block take_cached(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_by_size_.lower_bound(size);
    if (it == free_by_size_.end() || it->first > size + size / 4) {
      ++misses_;
      return {nullptr, 0};
    }
    ++hits_;
    const Block block = *it->second;
    cached_bytes_ -= block.size;
    lru_.erase(it->second);
    free_by_size_.erase(it);
    return block;
  }

  // A newly mapped block of `size` bytes, or {nullptr, 0}.
  Block map_block(size_t size) {
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return {nullptr, 0};
    bool huge;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      huge = huge_pages_;
    }
#ifdef MADV_HUGEPAGE
    if (huge) (void)madvise(base, size, MADV_HUGEPAGE);
#endif
    return {base, size};
  }

  static void free_pointer(void* ptr);

  // Frees `ptr`: a block of this allocator goes to the cache; anything else (a small request
  // served by the replaced allocator, reaching here through raw_deallocate) goes back to it.
  void give_back(void* ptr) {
    std::vector<Block> released;
    c10::DeleterFnPtr other = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = live_.find(ptr);
      if (it == live_.end()) {
        other = (fallback_ ? fallback_ : c10::GetDefaultCPUAllocator())->raw_deleter();
      } else {
        const Block block{ptr, it->second.size};
        in_use_bytes_ -= it->second.nbytes;
        report_locked(ptr, -static_cast<int64_t>(it->second.nbytes));
        live_.erase(it);
        if (block.size <= max_cached_) {
          lru_.push_back(block);
          free_by_size_.emplace(block.size, std::prev(lru_.end()));
          cached_bytes_ += block.size;
          evict_to(max_cached_, released);
        } else {
          released.push_back(block);
        }
      }
    }
    if (other != nullptr) other(ptr);
    unmap(released);
  }

  // Moves least recently freed blocks out of the cache until it holds at most `limit` bytes.
  void evict_to(size_t limit, std::vector<Block>& released) {
    while (cached_bytes_ > limit && !lru_.empty()) {
      const Block oldest = lru_.front();
      for (auto it = free_by_size_.lower_bound(oldest.size);
           it != free_by_size_.end() && it->first == oldest.size; ++it) {
        if (it->second == lru_.begin()) {
          free_by_size_.erase(it);
          break;
        }
      }
      lru_.pop_front();
      cached_bytes_ -= oldest.size;
      evicted_bytes_ += oldest.size;
      released.push_back(oldest);
    }
  }

  static void unmap(const std::vector<Block>& blocks) {
    for (const Block& b : blocks) munmap(b.base, b.size);
  }

  void report_locked(void* ptr, int64_t delta) {
    c10::reportMemoryUsageToProfiler(ptr, delta, in_use_bytes_, in_use_bytes_ + cached_bytes_,
                                     c10::Device(c10::DeviceType::CPU));
  }

  std::mutex mutex_;
  c10::Allocator* fallback_ = nullptr;
  bool installed_ = false;
  bool huge_pages_ = false;
  uint8_t priority_ = 0;
  size_t max_cached_ = 0;
  size_t cached_bytes_ = 0;
  size_t in_use_bytes_ = 0;
  size_t hits_ = 0, misses_ = 0, evicted_bytes_ = 0;
  struct Live {
    size_t size;    // mapped bytes
    size_t nbytes;  // requested bytes
  };
  std::unordered_map<void*, Live> live_;                     // blocks in use, by address
  std::list<Block> lru_;                                     // idle blocks, oldest first
  std::multimap<size_t, std::list<Block>::iterator> free_by_size_;  // idle blocks by size
};

// Never destroyed: tensors freed during interpreter shutdown still find it.
CachingCPUAllocator& the_allocator() {
  static auto* allocator = [] {
    auto* a = new CachingCPUAllocator();
    pthread_atfork([] { the_allocator().lock_for_fork(); },
                   [] { the_allocator().unlock_after_fork(); },
                   [] { the_allocator().unlock_after_fork(); });
    return a;
  }();
  return *allocator;
}

void CachingCPUAllocator::free_pointer(void* ptr) { the_allocator().give_back(ptr); }

void install(int64_t max_cached_bytes, bool huge_pages) {
  TORCH_CHECK(max_cached_bytes >= 0,
              "cpu_cache_install: max_cached_bytes: expected >= 0, got ", max_cached_bytes);
  the_allocator().install(max_cached_bytes, huge_pages);
}

void uninstall() { the_allocator().uninstall(); }

void empty() { the_allocator().release_cache(); }

std::vector<int64_t> stats() { return the_allocator().stats(); }

}  // namespace
}  // namespace i2i_fast::cpu

TORCH_LIBRARY_FRAGMENT(i2i_fast, m) {
  m.def("cpu_cache_install(int max_cached_bytes, bool huge_pages) -> ()",
        &i2i_fast::cpu::install);
  m.def("cpu_cache_uninstall() -> ()", &i2i_fast::cpu::uninstall);
  m.def("cpu_cache_empty() -> ()", &i2i_fast::cpu::empty);
  m.def("cpu_cache_stats() -> int[]", &i2i_fast::cpu::stats);
}
