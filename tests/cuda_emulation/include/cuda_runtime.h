// CUDA emulation on the CPU (tests/cuda_emulation/README.md): what the engine's kernels and its CUDA backend
// glue use of the CUDA runtime, for a host compiler. Kernels become plain functions that ::emu::launch runs
// once per thread of every block, each thread a fiber, so __syncthreads and warp shuffles behave as on a GPU;
// "device" memory is host memory that the runtime tracks, so launches and copies can check their pointers.
#pragma once
#include <math.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static  // blocks run one after another, their threads on one OS thread

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// The running thread's coordinates, set by the scheduler before it resumes a fiber.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

using std::max;
using std::min;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;

// The device: one, named "CUDA emulation on the CPU"; a stream is a token (work runs at once).
struct cudaDeviceProp {
  char name[256];
};
constexpr unsigned cudaStreamNonBlocking = 1;
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t error);

void __syncthreads();

namespace emu {

// A launch's configuration, as written between <<< and >>>.
struct Config {
  dim3 grid, block;
  Config(dim3 g, dim3 b, size_t shared_bytes = 0, cudaStream_t stream = nullptr) : grid(g), block(b) {
    (void)shared_bytes;
    (void)stream;
  }
};

// Runs body() once per thread of every block of `config` (each thread a fiber; blocks in order). A bad
// configuration (more than 1024 threads, a grid y or z over 65535) sets the last error instead, as a launch
// does.
void run_grid(const Config& config, void (*body)(void*), void* context);
// Whether p lies inside memory from cudaMalloc (null counts as valid: kernels take optional operands).
bool is_device_pointer(const void* p);
// Records a launch error for cudaGetLastError (the first one sticks until read).
void set_error(cudaError_t error, const char* what);
// Whether a kernel may access `bytes` at p in one instruction (a vector load or store); if not (outside
// device memory, or not on a multiple of `bytes`) it sets the error a GPU would report.
bool vector_access_ok(const void* p, size_t bytes);

template <class A> void check_argument(const A& a) {
  if constexpr (std::is_pointer_v<A>) {
    if (!is_device_pointer(static_cast<const void*>(a))) set_error(cudaErrorInvalidDevicePointer, "kernel argument");
  }
}

// kernel<<<config>>>(args...), rewritten by the build into launch(Config{config}, kernel-caller, args...).
template <class K, class... A> void launch(const Config& config, K kernel, A... args) {
  (check_argument(args), ...);
  struct Context {
    K* kernel;
    std::tuple<A...>* args;
  };
  std::tuple<A...> tuple(args...);
  Context context{&kernel, &tuple};
  run_grid(config, [](void* c) {
    Context& ctx = *static_cast<Context*>(c);
    std::apply(*ctx.kernel, *ctx.args);
  }, &context);
}

// Warp shuffles: every lane of the warp publishes its value, then reads its partner's.
void warp_exchange(const void* value, void* out, size_t bytes, int source_lane);
}  // namespace emu

template <class T> T __shfl_down_sync(unsigned mask, T v, int delta) {
  (void)mask;
  const int lane = int((threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y) & 31);
  T out = v;
  emu::warp_exchange(&v, &out, sizeof(T), lane + delta);  // lanes past 31 keep their own value
  return out;
}
