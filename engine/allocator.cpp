// The size-class cache both caching allocators use, and the CPU allocator: 64-byte classes up to 4 KiB, then
// four per power of two.
#include "engine/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

namespace intl {

size_t SizeClassCache::size_class(size_t bytes) const {
  if (bytes <= fine_limit_) return (bytes + fine_step_ - 1) / fine_step_ * fine_step_;
  size_t p = fine_limit_;
  while (p * 2 < bytes) p *= 2;
  const size_t step = p / 4;
  return (bytes + step - 1) / step * step;
}

void SizeClassCache::count_active(size_t cls) {
  stats_.active_bytes += cls;
  if (stats_.active_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.active_bytes;
}

void* SizeClassCache::take(size_t cls) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_blocks_.find(cls);
  if (it == free_blocks_.end() || it->second.empty()) return nullptr;
  void* block = it->second.back();
  it->second.pop_back();
  stats_.cached_bytes -= cls;
  count_active(cls);
  return block;
}

void SizeClassCache::add_new(size_t cls) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.system_allocs++;
  count_active(cls);
}

void SizeClassCache::give_back(void* block, size_t cls) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_blocks_[cls].push_back(block);
  stats_.active_bytes -= cls;
  stats_.cached_bytes += cls;
}

AllocatorStats SizeClassCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

namespace {

SizeClassCache& cpu_cache() {
  // Never destroyed: tensors may be freed during static destruction.
  static auto* cache = new SizeClassCache(64, 4096);
  return *cache;
}

}  // namespace

void* cpu_alloc(size_t bytes) {
  SizeClassCache& cache = cpu_cache();
  const size_t cls = cache.size_class(bytes == 0 ? 64 : bytes);
  if (void* block = cache.take(cls)) return block;
  void* block = std::aligned_alloc(64, cls);
  if (!block) throw std::bad_alloc();
  cache.add_new(cls);
  return block;
}

void cpu_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  SizeClassCache& cache = cpu_cache();
  cache.give_back(ptr, cache.size_class(bytes == 0 ? 64 : bytes));
}

AllocatorStats cpu_allocator_stats() { return cpu_cache().stats(); }

void configure_process_memory() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);  // never trim (the value is unsigned: -1 is "infinite")
    mallopt(M_TOP_PAD, 64 << 20);
  });
}

}  // namespace intl
