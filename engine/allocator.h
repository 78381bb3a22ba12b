// Memory for tensors. On the CPU a caching allocator keeps every freed block in a free list keyed by its
// rounded size and hands it out again, never returning memory to the system: on these machines a fresh page
// fault costs more than the arithmetic of a small kernel, so after the first training step no step faults in
// new pages. The CUDA backend has its own caching allocator behind the same interface (engine/cuda).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace intl {

struct AllocatorStats {
  size_t active_bytes = 0;   // handed out and not yet freed
  size_t peak_bytes = 0;     // maximum of active_bytes
  size_t cached_bytes = 0;   // freed and kept for reuse
  size_t system_allocs = 0;  // number of times the system allocator was asked for memory
};

// The bookkeeping both caching allocators share: one free list per size class, and the counters. A request is
// rounded up to its class: multiples of `fine_step` up to `fine_limit`, then four classes per power of two (at
// most 25% waste). The caller asks for system memory only when take() finds the class's list empty. Thread-safe.
class SizeClassCache {
 public:
  SizeClassCache(size_t fine_step, size_t fine_limit) : fine_step_(fine_step), fine_limit_(fine_limit) {}
  size_t size_class(size_t bytes) const;
  // A cached block of class `cls` (counted active), or nullptr when there is none.
  void* take(size_t cls);
  // Counts a block of class `cls` just obtained from the system as active.
  void add_new(size_t cls);
  // Keeps a freed block for reuse.
  void give_back(void* block, size_t cls);
  AllocatorStats stats() const;
  // Hands every cached block to `release(block)` and forgets it.
  template <class Release> void release_all(Release release) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [cls, blocks] : free_blocks_) {
      for (void* block : blocks) release(block);
      stats_.cached_bytes -= cls * blocks.size();
      blocks.clear();
    }
  }

 private:
  void count_active(size_t cls);
  const size_t fine_step_, fine_limit_;
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_blocks_;  // size class -> blocks
  AllocatorStats stats_;
};

// 64-byte aligned CPU memory; sizes are rounded up to a size class. Thread-safe.
void* cpu_alloc(size_t bytes);
void cpu_free(void* ptr, size_t bytes);
AllocatorStats cpu_allocator_stats();

// Once at start-up: tell glibc never to use mmap for large blocks nor trim the heap, so that memory other
// code frees (std::vector, OpenBLAS buffers) is reused too. Idempotent.
void configure_process_memory();

}  // namespace intl
