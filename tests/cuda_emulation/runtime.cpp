// The emulated CUDA runtime: fibers for the threads of a block, barriers for __syncthreads and warp shuffles,
// tracked "device" allocations, and the last-error slot. Single-threaded: a launch runs to completion on the
// calling thread, so the emulated stream is always idle.
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_runtime.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace emu {
namespace {

// ---- device memory: host memory whose ranges are remembered ----
std::mutex g_memory_mutex;
std::map<uintptr_t, size_t>& allocations() {
  static auto* m = new std::map<uintptr_t, size_t>();
  return *m;
}

bool inside(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_memory_mutex);
  auto it = allocations().upper_bound(a);
  if (it == allocations().begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second;
}

cudaError_t g_last_error = cudaSuccess;
std::string g_last_what;

// ---- fibers ----
constexpr size_t kStackBytes = 64 * 1024;
enum class State { ready, block_barrier, warp_barrier, done };

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  uint3 index;
  State state = State::ready;
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  Fiber* current = nullptr;
  void (*body)(void*) = nullptr;
  void* context = nullptr;
  // Warp exchange slots: 8 bytes per lane.
  std::vector<unsigned char> slots;
};
Block* g_block = nullptr;

void fiber_main() {
  g_block->body(g_block->context);
  g_block->current->state = State::done;
  swapcontext(&g_block->current->context, &g_block->scheduler);
}

// Parks the running fiber in `state` until the scheduler releases its barrier.
void wait(State state) {
  Fiber* f = g_block->current;
  f->state = state;
  swapcontext(&f->context, &g_block->scheduler);
}

void run_block(Block& b) {
  const unsigned n = blockDim.x * blockDim.y * blockDim.z;
  if (b.fibers.size() < n) b.fibers.resize(n);
  b.slots.assign(size_t(n + 31) / 32 * 32 * 8, 0);
  for (unsigned t = 0; t < n; ++t) {
    Fiber& f = b.fibers[t];
    if (!f.stack) f.stack.reset(new char[kStackBytes]);
    f.index = {t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
    f.state = State::ready;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiber_main, 0);
  }
  // Warps run as far as they can, one after another: a warp passes its shuffles' barriers at once and stops
  // only at __syncthreads or its end, so warps get far apart, as they may on a GPU, and a shared-memory read
  // that lacks the barrier ordering it after another warp's write reads too early here. Odd blocks take their
  // warps and lanes last to first, so a race shows in one of the two orders.
  const bool reverse = (blockIdx.x + blockIdx.y + blockIdx.z) % 2 == 1;
  const unsigned warps = (n + 31) / 32;
  auto run_warp = [&](unsigned w) {
    const unsigned lo = w * 32, hi = std::min(n, lo + 32);
    for (;;) {
      for (unsigned i = lo; i < hi; ++i) {
        Fiber& f = b.fibers[reverse ? hi - 1 - (i - lo) : i];
        if (f.state != State::ready) continue;
        b.current = &f;
        threadIdx = f.index;
        swapcontext(&b.scheduler, &f.context);
      }
      bool any = false, all = true;  // at the warp's shuffle barrier: every live lane, or not
      for (unsigned t = lo; t < hi; ++t) {
        const State s = b.fibers[t].state;
        if (s == State::done) continue;
        if (s == State::warp_barrier) any = true;
        else all = false;
      }
      if (!(any && all)) return;
      for (unsigned t = lo; t < hi; ++t)
        if (b.fibers[t].state == State::warp_barrier) b.fibers[t].state = State::ready;
    }
  };
  for (;;) {
    for (unsigned k = 0; k < warps; ++k) run_warp(reverse ? warps - 1 - k : k);
    // Every live thread now waits at __syncthreads (release them all), or some wait at a barrier that not
    // every thread of their warp or block will reach.
    bool live = false, all_at_block = true;
    for (unsigned t = 0; t < n; ++t) {
      const State s = b.fibers[t].state;
      if (s == State::done) continue;
      live = true;
      if (s != State::block_barrier) all_at_block = false;
    }
    if (!live) return;
    if (!all_at_block) {
      std::fprintf(stderr, "cuda emulation: deadlock in block (%u, %u, %u): threads wait at barriers that not "
                           "every live thread of their block or warp reaches\n", blockIdx.x, blockIdx.y, blockIdx.z);
      std::abort();
    }
    for (unsigned t = 0; t < n; ++t)
      if (b.fibers[t].state == State::block_barrier) b.fibers[t].state = State::ready;
  }
}

}  // namespace

void set_error(cudaError_t error, const char* what) {
  if (g_last_error != cudaSuccess) return;
  g_last_error = error;
  g_last_what = what;
}

bool is_device_pointer(const void* p) { return p == nullptr || inside(p, 1); }

bool vector_access_ok(const void* p, size_t bytes) {
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) set_error(cudaErrorMisalignedAddress, "vector access");
  else if (!inside(p, bytes)) set_error(cudaErrorInvalidDevicePointer, "vector access");
  else return true;
  return false;
}

void run_grid(const Config& config, void (*body)(void*), void* context) {
  const dim3 g = config.grid, bl = config.block;
  const unsigned long long threads = 1ull * bl.x * bl.y * bl.z;
  if (threads == 0 || threads > 1024 || bl.z > 64 || g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 ||
      g.z > 65535 || g.x > 0x7fffffffu) {
    set_error(cudaErrorInvalidConfiguration, "launch configuration");
    return;
  }
  if (g_block) {
    std::fprintf(stderr, "cuda emulation: a kernel launched from inside a kernel\n");
    std::abort();
  }
  static Block* block = new Block();
  Block& b = *block;
  b.body = body;
  b.context = context;
  g_block = &b;
  gridDim = g;
  blockDim = bl;
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) {
        blockIdx = {x, y, z};
        run_block(b);
      }
  g_block = nullptr;
}

void warp_exchange(const void* value, void* out, size_t bytes, int source_lane) {
  Block& b = *g_block;
  const unsigned t = unsigned(b.current - b.fibers.data());
  const unsigned warp_base = t / 32 * 32;
  std::memcpy(&b.slots[size_t(t) * 8], value, bytes);
  wait(State::warp_barrier);  // every lane has published
  if (source_lane < 32 && warp_base + unsigned(source_lane) < blockDim.x * blockDim.y * blockDim.z)
    std::memcpy(out, &b.slots[size_t(warp_base + unsigned(source_lane)) * 8], bytes);
  wait(State::warp_barrier);  // every lane has read before the slots are reused
}

}  // namespace emu

void __syncthreads() { emu::wait(emu::State::block_barrier); }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return cudaErrorInvalidValue;
  std::snprintf(prop->name, sizeof(prop->name), "CUDA emulation on the CPU");
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  static CUstream_st* token = reinterpret_cast<CUstream_st*>(uintptr_t(1));
  *stream = token;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!p) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(emu::g_memory_mutex);
  emu::allocations()[reinterpret_cast<uintptr_t>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(emu::g_memory_mutex);
    if (emu::allocations().erase(reinterpret_cast<uintptr_t>(ptr)) == 0) return cudaErrorInvalidDevicePointer;
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  const bool dst_dev = emu::inside(dst, bytes), src_dev = emu::inside(src, bytes);
  const bool ok = (kind == cudaMemcpyHostToDevice && dst_dev && !emu::inside(src, 1)) ||
                  (kind == cudaMemcpyDeviceToHost && src_dev && !emu::inside(dst, 1)) ||
                  (kind == cudaMemcpyDeviceToDevice && dst_dev && src_dev);
  if (!ok) return cudaErrorInvalidValue;  // a pointer on the wrong side, or a range past its allocation
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaGetLastError(); }

cudaError_t cudaGetLastError() {
  const cudaError_t e = emu::g_last_error;
  emu::g_last_error = cudaSuccess;
  return e;
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (emulation: a copy's pointer on the wrong side or out of range)";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer (emulation: a host pointer given to a kernel)";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction";
    case cudaErrorMisalignedAddress: return "misaligned address";
    default: return "unknown error";
  }
}
