// The CPU caching allocator: size classes of 1/4 power-of-two steps above 4 KiB, one free list per class.
#include "engine/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace intl {
namespace {

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // size class -> blocks
  AllocatorStats stats;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may be freed during static destruction
  return *c;
}

// Rounds a request to its size class: 64-byte multiples up to 4 KiB, then four classes per power of two
// (at most 25% waste).
size_t size_class(size_t bytes) {
  if (bytes <= 4096) return (bytes + 63) & ~size_t(63);
  size_t p = 4096;
  while (p * 2 < bytes) p *= 2;
  const size_t step = p / 4;
  return (bytes + step - 1) / step * step;
}

}  // namespace

void* cpu_alloc(size_t bytes) {
  if (bytes == 0) bytes = 64;
  const size_t cls = size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= cls;
      c.stats.active_bytes += cls;
      if (c.stats.active_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.active_bytes;
      return p;
    }
    c.stats.system_allocs++;
    c.stats.active_bytes += cls;
    if (c.stats.active_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.active_bytes;
  }
  void* p = std::aligned_alloc(64, cls);
  if (!p) throw std::bad_alloc();
  return p;
}

void cpu_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  if (bytes == 0) bytes = 64;
  const size_t cls = size_class(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.free_blocks[cls].push_back(ptr);
  c.stats.active_bytes -= cls;
  c.stats.cached_bytes += cls;
}

AllocatorStats cpu_allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void configure_process_memory() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);  // never trim (the value is unsigned: -1 is "infinite")
    mallopt(M_TOP_PAD, 64 << 20);
  });
}

}  // namespace intl
