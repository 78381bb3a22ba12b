// The CUDA caching allocator: 512-byte multiples up to 1 MiB, then four size classes per power of two
// (at most 25% waste), as the CPU allocator does. Never returns memory to the driver unless cudaMalloc fails.
#include "engine/cuda/allocator.h"

#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/cuda/context.h"

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

size_t size_class(size_t bytes) {
  if (bytes <= (size_t(1) << 20)) return (bytes + 511) & ~size_t(511);
  size_t p = size_t(1) << 20;
  while (p * 2 < bytes) p *= 2;
  const size_t step = p / 4;
  return (bytes + step - 1) / step * step;
}

void count_active(AllocatorStats& s, size_t cls) {
  s.active_bytes += cls;
  if (s.active_bytes > s.peak_bytes) s.peak_bytes = s.active_bytes;
}

}  // namespace

void* cuda_alloc(size_t bytes) {
  const size_t cls = size_class(bytes == 0 ? 1 : bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= cls;
      count_active(c.stats, cls);
      return p;
    }
  }
  cuda::stream();  // the device is set and usable before the first cudaMalloc
  void* p = nullptr;
  if (cudaMalloc(&p, cls) != cudaSuccess) {
    cudaGetLastError();  // out-of-memory is not sticky: clear it and retry with the cache emptied
    cuda_release_cached();
    const cudaError_t e = cudaMalloc(&p, cls);
    if (e != cudaSuccess) {
      const AllocatorStats s = cuda_allocator_stats();
      throw Error("CUDA out of memory allocating " + std::to_string(cls) + " bytes (" + cudaGetErrorString(e) +
                  "; " + std::to_string(s.active_bytes >> 20) + " MiB in use by tensors); use a smaller "
                  "batch size or model");
    }
  }
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.system_allocs++;
  count_active(c.stats, cls);
  return p;
}

void cuda_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  const size_t cls = size_class(bytes == 0 ? 1 : bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.free_blocks[cls].push_back(ptr);
  c.stats.active_bytes -= cls;
  c.stats.cached_bytes += cls;
}

AllocatorStats cuda_allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void cuda_release_cached() {
  cuda::synchronize();  // queued kernels may still use freed blocks
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [cls, blocks] : c.free_blocks) {
    for (void* p : blocks) CUDA_CHECK(cudaFree(p));
    c.stats.cached_bytes -= cls * blocks.size();
    blocks.clear();
  }
}

}  // namespace intl
