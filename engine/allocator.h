// Memory for tensors. On the CPU a caching allocator keeps every freed block in a free list keyed by its
// rounded size and hands it out again, never returning memory to the system: on these machines a fresh page
// fault costs more than the arithmetic of a small kernel, so after the first training step no step faults in
// new pages. The CUDA backend has its own caching allocator behind the same interface (engine/cuda).
#pragma once
#include <cstddef>
#include <cstdint>

namespace intl {

struct AllocatorStats {
  size_t active_bytes = 0;   // handed out and not yet freed
  size_t peak_bytes = 0;     // maximum of active_bytes
  size_t cached_bytes = 0;   // freed and kept for reuse
  size_t system_allocs = 0;  // number of times the system allocator was asked for memory
};

// 64-byte aligned CPU memory; sizes are rounded up to a size class. Thread-safe.
void* cpu_alloc(size_t bytes);
void cpu_free(void* ptr, size_t bytes);
AllocatorStats cpu_allocator_stats();

// Once at start-up: tell glibc never to use mmap for large blocks nor trim the heap, so that memory other
// code frees (std::vector, OpenBLAS buffers) is reused too. Idempotent.
void configure_process_memory();

}  // namespace intl
