// The CUDA caching allocator: 512-byte multiples up to 1 MiB, then four size classes per power of two
// (at most 25% waste), as the CPU allocator does. Never returns memory to the driver unless cudaMalloc fails.
#include "engine/cuda/allocator.h"

#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/cuda/entry.h"

namespace intl {
namespace {

SizeClassCache& device_cache() {
  // Never destroyed: tensors may be freed during static destruction.
  static auto* cache = new SizeClassCache(512, size_t(1) << 20);
  return *cache;
}

}  // namespace

void* cuda_alloc(size_t bytes) {
  SizeClassCache& cache = device_cache();
  const size_t cls = cache.size_class(bytes == 0 ? 1 : bytes);
  if (void* block = cache.take(cls)) return block;
  cuda::stream();  // the device is set and usable before the first cudaMalloc
  void* p = nullptr;
  if (cudaMalloc(&p, cls) != cudaSuccess) {
    cudaGetLastError();  // out-of-memory is not sticky: clear it and retry with the cache emptied
    cuda_release_cached();
    const cudaError_t e = cudaMalloc(&p, cls);
    if (e != cudaSuccess) {
      const AllocatorStats s = device_cache().stats();
      throw Error("CUDA out of memory allocating " + std::to_string(cls) + " bytes (" + cudaGetErrorString(e) +
                  "; " + std::to_string(s.active_bytes >> 20) + " MiB in use by tensors); use a smaller "
                  "batch size or model");
    }
  }
  cache.add_new(cls);
  return p;
}

void cuda_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  SizeClassCache& cache = device_cache();
  cache.give_back(ptr, cache.size_class(bytes == 0 ? 1 : bytes));
}

namespace cuda {
AllocatorStats allocator_stats() { return device_cache().stats(); }
}  // namespace cuda

void cuda_release_cached() {
  cuda::synchronize();  // queued kernels may still use freed blocks
  device_cache().release_all([](void* block) { CUDA_CHECK(cudaFree(block)); });
}

}  // namespace intl
