// Device-side building blocks shared by the .cu files: launch geometry for grid-stride loops, dtype dispatch
// on the host, typed math overloads, and block-wide reductions. Included only by .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/tensor.h"

namespace intl::cuda {

constexpr int kThreads = 256;

// V adjacent stored elements, loaded and stored as one access: kernels over memory-bound passes move
// kVectorBytes a thread (vector_width<T>() elements) where the tensors' addresses allow (fits_vectors).
constexpr int kVectorBytes = 16;
template <class T, int V> struct alignas(sizeof(T) * V) Vec {
  T v[V];
};
// A GPU faults on a misaligned or stray vector access; the emulated device (on x86, which would do either
// silently or crash) checks each one, sets the error the GPU would report, and skips it.
template <int V, class T> __device__ __forceinline__ Vec<T, V> load_vec(const T* p) {
#if defined(INTL_CUDA_EMULATION)
  Vec<T, V> v{};
  if (::emu::vector_access_ok(p, sizeof v)) std::memcpy(static_cast<void*>(&v), p, sizeof v);
  return v;
#else
  return *reinterpret_cast<const Vec<T, V>*>(p);
#endif
}
template <int V, class T> __device__ __forceinline__ void store_vec(T* p, const Vec<T, V>& v) {
#if defined(INTL_CUDA_EMULATION)
  if (::emu::vector_access_ok(p, sizeof v)) std::memcpy(static_cast<void*>(p), &v, sizeof v);
#else
  *reinterpret_cast<Vec<T, V>*>(p) = v;
#endif
}
// The elements of T one 16-byte access moves.
template <class T> constexpr int vector_width() { return kVectorBytes / int(sizeof(T)); }
// Whether a kernel may move vector_width<T>() elements a thread: n divides into such groups and every defined
// tensor starts on a 16-byte boundary (allocations do; a view may not).
template <class T> bool fits_vectors(int64_t n, std::initializer_list<const Tensor*> tensors) {
  if (n % vector_width<T>() != 0) return false;
  for (const Tensor* t : tensors)
    if (t->defined() && reinterpret_cast<uintptr_t>(t->raw_data()) % kVectorBytes != 0) return false;
  return true;
}

// Unrolls the loop that follows (nvcc); the emulated build (tests/cuda_emulation) compiles it as a plain loop.
#if defined(__CUDACC__)
#define INTL_UNROLL _Pragma("unroll")
#else
#define INTL_UNROLL
#endif

// Blocks for a grid-stride loop over n elements (capped: the loop covers the rest).
inline unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(blocks < 1 ? 1 : blocks > 65535 * 8 ? 65535 * 8 : blocks);
}

#define INTL_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <class F> void dispatch_float(DType dtype, F&& f) {
  if (dtype == DType::f32) f(float());
  else if (dtype == DType::f64) f(double());
  else throw Error(std::string("CUDA kernel needs a floating tensor, got ") + dtype_name(dtype));
}

// Every element type (copy and fill).
template <class F> void dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float()); break;
    case DType::f64: f(double()); break;
    case DType::i32: f(int32_t()); break;
    case DType::i64: f(int64_t()); break;
    case DType::u8: f(uint8_t()); break;
    case DType::bf16: f(__nv_bfloat16()); break;
  }
}

// The floating types a kernel stores: float, double, and bfloat16 (computed in float, Compute below) for the
// kernels that carry a network's activations (binary ops, fused batch norm, pooling).
template <class F> void dispatch_storage(DType dtype, const char* kernel, F&& f) {
  if (dtype == DType::f32) f(float());
  else if (dtype == DType::f64) f(double());
  else if (dtype == DType::bf16) f(__nv_bfloat16());
  else throw Error(std::string(kernel) + ": CUDA kernel needs a floating tensor, got " + dtype_name(dtype));
}

// Element conversion between any two stored types (copy, fill): through float where bfloat16 is involved,
// rounding to nearest even into it.
template <class D, class S> struct Convert {
  __host__ __device__ static D of(S v) { return D(v); }
};
template <class D> struct Convert<D, __nv_bfloat16> {
  __host__ __device__ static D of(__nv_bfloat16 v) { return D(__bfloat162float(v)); }
};
template <class S> struct Convert<__nv_bfloat16, S> {
  __host__ __device__ static __nv_bfloat16 of(S v) { return __float2bfloat16_rn(float(v)); }
};
template <> struct Convert<__nv_bfloat16, __nv_bfloat16> {
  __host__ __device__ static __nv_bfloat16 of(__nv_bfloat16 v) { return v; }
};

// A stored element's compute type: itself, float for bfloat16. widen() reads a value into it, narrow<T>()
// stores one back (Convert); for float and double both are the identity.
template <class T> struct Compute { using type = T; };
template <> struct Compute<__nv_bfloat16> { using type = float; };
template <class T> using compute_t = typename Compute<T>::type;

template <class T> __host__ __device__ __forceinline__ compute_t<T> widen(T v) {
  return Convert<compute_t<T>, T>::of(v);
}
template <class T> __host__ __device__ __forceinline__ T narrow(compute_t<T> v) { return Convert<T, compute_t<T>>::of(v); }

template <class T> T* ptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr; }

// Typed math: float calls the single-precision function, double the double one, as std:: does on the CPU.
__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log(float x) { return logf(x); }
__device__ __forceinline__ double dev_log(double x) { return log(x); }
__device__ __forceinline__ float dev_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double dev_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float dev_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double dev_abs(double x) { return fabs(x); }
__device__ __forceinline__ float dev_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double dev_pow(double x, double y) { return pow(x, y); }

// Reduction of v over the block with `combine` (blockDim.x a multiple of 32, at most 1024), returned to
// every thread; `identity` is combine's neutral element and `shared` holds 32 values. The order is fixed, so
// the same inputs give the same bits.
template <class T, class Combine> __device__ T block_reduce(T v, T identity, T* shared, Combine combine) {
  for (int o = 16; o > 0; o >>= 1) v = combine(v, __shfl_down_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? shared[lane] : identity;
    for (int o = 16; o > 0; o >>= 1) v = combine(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

struct SumOp {
  template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <class T> __device__ T operator()(T a, T b) const { return b > a ? b : a; }
};
template <class T> __device__ T block_sum(T v, T* shared) { return block_reduce(v, T(0), shared, SumOp()); }

}  // namespace intl::cuda
