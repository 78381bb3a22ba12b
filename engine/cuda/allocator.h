// Device memory for tensors: a caching allocator with one free list per size class; cudaMalloc is called only
// when a list is empty, so after the first training step no step calls it. All work runs on the one backend
// stream, so a block freed while a queued kernel still reads it is reused only by work queued after that.
// Plain C++. cuda_allocator_stats() answers in every build (all zeros without CUDA, or before the CUDA
// backend is loaded; engine/cuda/entry.h).
#pragma once
#include <cstddef>

#include "engine/allocator.h"

namespace intl {

void* cuda_alloc(size_t bytes);
void cuda_free(void* ptr, size_t bytes);
// Counters for --verbose: active, peak and cached bytes, and how many times cudaMalloc was called.
AllocatorStats cuda_allocator_stats();
// Returns every cached block to the driver (after the stream drains). Called when cudaMalloc fails.
void cuda_release_cached();

namespace cuda {

// Scratch device memory (workspaces, solver info arrays) from the caching allocator, freed at scope end.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes), ptr_(bytes ? cuda_alloc(bytes) : nullptr) {}
  ~DeviceBuffer() { cuda_free(ptr_, bytes_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  template <class T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
  void* ptr_;
};

}  // namespace cuda
}  // namespace intl
