// Elementwise CUDA kernels: copy/convert (strided, and host <-> device), fill, Philox random, unary and
// broadcasting binary ops, sum reductions, and the triangle mask of the Cholesky factor. Kernels first,
// launchers after; each launcher switches on dtype and op once, as engine/cpu/elementwise.cpp does.
#include <cuda_bf16.h>

#include "engine/backend.h"
#include "engine/cpu/strided.h"
#include "engine/cuda/kernels.h"
#include "engine/cuda/launch.cuh"
#include "engine/random.h"

namespace intl::cuda {
namespace {

// Up to two strided operands over one collapsed shape (the output is contiguous), passed by value.
constexpr int kMaxRank = 8;
struct Layout {
  int rank = 1;
  int64_t shape[kMaxRank] = {};
  int64_t stride[2][kMaxRank] = {};
};

__device__ __forceinline__ void offsets(const Layout& L, int64_t i, int64_t& o0, int64_t& o1) {
  if (L.rank == 1) {
    o0 = i * L.stride[0][0];
    o1 = i * L.stride[1][0];
    return;
  }
  o0 = o1 = 0;
  for (int d = L.rank - 1; d >= 0; --d) {
    const int64_t idx = i % L.shape[d];
    i /= L.shape[d];
    o0 += idx * L.stride[0][d];
    o1 += idx * L.stride[1][d];
  }
}

template <class Src, class Dst> __global__ void copy_kernel(const Src* s, Dst* d, int64_t n, Layout L) {
  INTL_GRID_STRIDE(i, n) {
    int64_t os, unused;
    offsets(L, i, os, unused);
    d[i] = Convert<Dst, Src>::of(s[os]);
  }
}

template <class T> __global__ void fill_kernel(T* p, int64_t n, T v) {
  INTL_GRID_STRIDE(i, n) p[i] = v;
}

// Element i uses Philox block i, exactly as cpu::random does.
template <class T> __global__ void random_kernel(T* p, int64_t n, RandomStream rs, bool uniform, double lo, double hi) {
  INTL_GRID_STRIDE(i, n) {
    const Philox4 b = rs.block(uint64_t(i));
    const double u1 = u32_to_unit_double(b.v[0], b.v[1]);
    if (uniform) {
      p[i] = T(lo + (hi - lo) * (1.0 - u1));
    } else {
      const double u2 = u32_to_unit_double(b.v[2], b.v[3]);
      p[i] = T(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
  }
}

template <class T, UnaryOp OP> __device__ __forceinline__ T apply_unary(T v, T s) {
  if constexpr (OP == UnaryOp::neg) return -v;
  else if constexpr (OP == UnaryOp::exp) return dev_exp(v);
  else if constexpr (OP == UnaryOp::log) return dev_log(v);
  else if constexpr (OP == UnaryOp::sqrt) return dev_sqrt(v);
  else if constexpr (OP == UnaryOp::rsqrt) return T(1) / dev_sqrt(v);
  else if constexpr (OP == UnaryOp::abs) return dev_abs(v);
  else if constexpr (OP == UnaryOp::relu) return v < T(0) ? T(0) : v;  // NaN passes, as PyTorch's
  else if constexpr (OP == UnaryOp::square) return v * v;
  else if constexpr (OP == UnaryOp::pow) return dev_pow(v, s);
  else if constexpr (OP == UnaryOp::scale) return s * v;
  else if constexpr (OP == UnaryOp::add_scalar) return v + s;
  else return T((v > T(0)) - (v < T(0)));  // sign
}

template <class T, UnaryOp OP> __global__ void unary_kernel(const T* x, T* y, int64_t n, T s) {
  INTL_GRID_STRIDE(i, n) y[i] = apply_unary<T, OP>(x[i], s);
}

template <class T, BinaryOp OP> __device__ __forceinline__ T apply_binary(T u, T v) {
  if constexpr (OP == BinaryOp::add) return u + v;
  else if constexpr (OP == BinaryOp::sub) return u - v;
  else if constexpr (OP == BinaryOp::mul) return u * v;
  else if constexpr (OP == BinaryOp::div) return u / v;
  else return v > T(0) ? u : T(0);  // relu_mask
}

// T is the stored type; bfloat16 operands are computed in float and the result rounded once.
template <class T, BinaryOp OP> __global__ void binary_kernel(const T* a, const T* b, T* out, int64_t n, Layout L) {
  INTL_GRID_STRIDE(i, n) {
    int64_t oa, ob;
    offsets(L, i, oa, ob);
    out[i] = narrow<T>(apply_binary<compute_t<T>, OP>(widen(a[oa]), widen(b[ob])));
  }
}

// The same over contiguous operands, V elements a thread: n / V vectors.
template <class T, BinaryOp OP, int V>
__global__ void binary_vector_kernel(const T* a, const T* b, T* out, int64_t vectors) {
  INTL_GRID_STRIDE(i, vectors) {
    const Vec<T, V> u = load_vec<V>(a + i * V), v = load_vec<V>(b + i * V);
    Vec<T, V> r;
    INTL_UNROLL
    for (int j = 0; j < V; ++j) r.v[j] = narrow<T>(apply_binary<compute_t<T>, OP>(widen(u.v[j]), widen(v.v[j])));
    store_vec<V>(out + i * V, r);
  }
}

// x viewed as (outer, red, inner): block b sums one chunk of one row (inner == 1) into partial[o, c].
template <class T>
__global__ void reduce_rows_kernel(const T* x, T* partial, int64_t outer, int64_t red, int64_t chunk, int64_t chunks) {
  __shared__ T shared[32];
  for (int64_t b = blockIdx.x; b < outer * chunks; b += gridDim.x) {
    const int64_t o = b / chunks, c = b % chunks;
    const int64_t begin = c * chunk, end = min(red, begin + chunk);
    T acc = 0;
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) acc += x[o * red + r];
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) partial[b] = acc;
  }
}

// One thread per (o, c, i): partial[o, c, i] = sum over one chunk of r of x[o, r, i] (coalesced over i).
template <class T>
__global__ void reduce_columns_kernel(const T* x, T* partial, int64_t outer, int64_t red, int64_t inner,
                                      int64_t chunk, int64_t chunks) {
  INTL_GRID_STRIDE(t, outer * chunks * inner) {
    const int64_t i = t % inner, c = (t / inner) % chunks, o = t / (inner * chunks);
    const int64_t begin = c * chunk, end = min(red, begin + chunk);
    T acc = 0;
    for (int64_t r = begin; r < end; ++r) acc += x[(o * red + r) * inner + i];
    partial[t] = acc;
  }
}

template <class T> __global__ void zero_upper_kernel(T* a, int64_t total, int64_t n) {
  INTL_GRID_STRIDE(e, total) {
    if (e % n > (e / n) % n) a[e] = T(0);
  }
}

// ---- launchers ----

Layout make_layout(const Shape& shape, const Shape& s0, const Shape& s1) {
  cpu::StridedLayout L;
  L.operands = 3;
  L.shape = shape;
  L.strides[0] = s0;
  L.strides[1] = s1;
  L.strides[2] = contiguous_strides(shape);
  L.collapse();
  INTL_CHECK(L.shape.size() <= size_t(kMaxRank), "CUDA strided kernel: more than 8 non-mergeable axes in shape " +
                                                     shape_str(shape));
  Layout out;
  out.rank = int(L.shape.size());
  for (int d = 0; d < out.rank; ++d) {
    out.shape[d] = L.shape[size_t(d)];
    out.stride[0][d] = L.strides[0][size_t(d)];
    out.stride[1][d] = L.strides[1][size_t(d)];
  }
  return out;
}

// Host <-> device: staged through a contiguous tensor of dst's dtype on the side that needs converting.
void copy_across(const Tensor& src, const Tensor& dst) {
  INTL_CHECK(dst.is_contiguous(), "copy between devices needs a contiguous destination");
  const bool direct = src.is_contiguous() && src.dtype() == dst.dtype();
  const size_t bytes = size_t(dst.numel()) * dtype_size(dst.dtype());
  if (src.device() == Device::cpu) {
    Tensor staged = direct ? src : Tensor::empty(src.shape(), dst.dtype(), Device::cpu);
    if (!direct) cpu_backend().copy(src, staged);
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), staged.raw_data(), bytes, cudaMemcpyHostToDevice, stream()));
  } else {
    Tensor staged = direct ? src : Tensor::empty(src.shape(), dst.dtype(), Device::cuda);
    if (!direct) copy(src, staged);
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), staged.raw_data(), bytes, cudaMemcpyDeviceToHost, stream()));
  }
  // Both directions wait: the host buffer (pageable, from the CPU caching allocator) may be reused at once.
  synchronize();
}

template <class T> void reduce_block(const T* x, T* out, int64_t outer, int64_t red, int64_t inner) {
  const bool rows = inner == 1 && red >= 1024;
  const int64_t chunk = rows ? 16 * kThreads : 256;
  const int64_t chunks = (red + chunk - 1) / chunk;
  Tensor partial;
  T* dst = out;
  if (chunks > 1) {
    partial = Tensor::empty({outer * chunks * inner}, sizeof(T) == 4 ? DType::f32 : DType::f64, Device::cuda);
    dst = static_cast<T*>(partial.raw_data());
  }
  if (rows) {
    reduce_rows_kernel<T><<<grid_for(outer * chunks * kThreads), kThreads, 0, stream()>>>(x, dst, outer, red, chunk,
                                                                                          chunks);
  } else {
    reduce_columns_kernel<T><<<grid_for(outer * chunks * inner), kThreads, 0, stream()>>>(x, dst, outer, red, inner,
                                                                                         chunk, chunks);
  }
  CUDA_CHECK_LAUNCH();
  if (chunks > 1) reduce_block<T>(dst, out, outer, chunks, inner);
}

template <class T, UnaryOp OP> void launch_unary(const Tensor& x, const Tensor& y, double s) {
  const int64_t n = x.numel();
  unary_kernel<T, OP><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(x), ptr<T>(y), n, T(s));
  CUDA_CHECK_LAUNCH();
}

template <class T, BinaryOp OP> void launch_binary(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t n = out.numel();
  const Layout L = make_layout(out.shape(), a.strides(), b.strides());
  // Contiguous operands (a gradient sum, a residual) move 16 bytes a thread where their addresses allow.
  constexpr int V = vector_width<T>();
  if (L.rank == 1 && L.stride[0][0] == 1 && L.stride[1][0] == 1 && fits_vectors<T>(n, {&a, &b, &out})) {
    binary_vector_kernel<T, OP, V><<<grid_for(n / V), kThreads, 0, stream()>>>(ptr<T>(a), ptr<T>(b), ptr<T>(out),
                                                                              n / V);
    CUDA_CHECK_LAUNCH();
    return;
  }
  binary_kernel<T, OP><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(a), ptr<T>(b), ptr<T>(out), n, L);
  CUDA_CHECK_LAUNCH();
}

// n contiguous elements converted from S to D: the copy kernel over one unit-stride axis.
template <class S, class D> void convert_contiguous(const S* src, D* dst, int64_t n) {
  if (n == 0) return;
  Layout L;
  L.shape[0] = n;
  L.stride[0][0] = L.stride[1][0] = 1;
  copy_kernel<S, D><<<grid_for(n), kThreads, 0, stream()>>>(src, dst, n, L);
  CUDA_CHECK_LAUNCH();
}

// Weight (o, i, s) with s = kh * kw: OIHW holds it at (o * I + i) * S + s, KRSC at (o * S + s) * I + i. One
// thread per destination element, so the writes are coalesced (weights are small; the reads may stride).
template <bool ToKrsc, class Src, class Dst>
__global__ void weight_relayout_kernel(const Src* src, Dst* dst, int64_t total, int64_t I, int64_t S) {
  INTL_GRID_STRIDE(t, total) {
    if constexpr (ToKrsc) {
      const int64_t i = t % I, s = (t / I) % S, o = t / (I * S);
      dst[t] = Convert<Dst, Src>::of(src[(o * I + i) * S + s]);
    } else {
      const int64_t s = t % S, i = (t / S) % I, o = t / (I * S);
      dst[t] = Convert<Dst, Src>::of(src[(o * S + s) * I + i]);
    }
  }
}

// OIHW `oihw` <-> KRSC `krsc` in the direction ToKrsc says; the KRSC side is bfloat16 when `bf16`.
template <bool ToKrsc> void relayout_weight(const Tensor& oihw, void* krsc, bool bf16) {
  INTL_CHECK(oihw.dim() == 4 && oihw.is_contiguous(), "weight relayout: a contiguous (O, I, kh, kw) weight");
  INTL_CHECK(!bf16 || oihw.dtype() == DType::f32, "weight relayout: bfloat16 pairs with float32 only");
  const int64_t total = oihw.numel(), I = oihw.size(1), S = oihw.size(2) * oihw.size(3);
  if (total == 0) return;
  auto launch = [&](auto oihw_type, auto krsc_type) {
    using A = decltype(oihw_type);
    using K = decltype(krsc_type);
    A* a = static_cast<A*>(oihw.raw_data());
    K* k = static_cast<K*>(krsc);
    if constexpr (ToKrsc) weight_relayout_kernel<true><<<grid_for(total), kThreads, 0, stream()>>>(a, k, total, I, S);
    else weight_relayout_kernel<false><<<grid_for(total), kThreads, 0, stream()>>>(k, a, total, I, S);
    CUDA_CHECK_LAUNCH();
  };
  if (bf16) launch(float(), __nv_bfloat16());
  else dispatch_float(oihw.dtype(), [&](auto z) { launch(z, z); });
}

}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  INTL_CHECK(src.shape() == dst.shape(), "copy: shape " + shape_str(src.shape()) + " into " + shape_str(dst.shape()));
  if (src.device() != dst.device()) return copy_across(src, dst);
  INTL_CHECK(dst.is_contiguous(), "copy needs a contiguous destination");
  const int64_t n = src.numel();
  if (n == 0) return;
  if (src.is_contiguous() && src.dtype() == dst.dtype()) {
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), size_t(n) * dtype_size(src.dtype()),
                               cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  const Layout L = make_layout(src.shape(), src.strides(), contiguous_strides(src.shape()));
  dispatch_all(src.dtype(), [&](auto s) {
    dispatch_all(dst.dtype(), [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      copy_kernel<S, D><<<grid_for(n), kThreads, 0, stream()>>>(ptr<const S>(src), ptr<D>(dst), n, L);
      CUDA_CHECK_LAUNCH();
    });
  });
}

void fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  dispatch_all(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    fill_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(dst), n, Convert<T, double>::of(value));
    CUDA_CHECK_LAUNCH();
  });
}

void random(const Tensor& dst, bool uniform, double lo, double hi, uint64_t seed, uint64_t stream_id) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const RandomStream rs{seed, stream_id, 0};
  dispatch_float(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    random_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(dst), n, rs, uniform, lo, hi);
    CUDA_CHECK_LAUNCH();
  });
}

void unary(UnaryOp op, const Tensor& x, const Tensor& y, double s) {
  INTL_CHECK(x.is_contiguous() && y.is_contiguous(), "unary kernel needs contiguous tensors");
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    switch (op) {
      case UnaryOp::neg: launch_unary<T, UnaryOp::neg>(x, y, s); break;
      case UnaryOp::exp: launch_unary<T, UnaryOp::exp>(x, y, s); break;
      case UnaryOp::log: launch_unary<T, UnaryOp::log>(x, y, s); break;
      case UnaryOp::sqrt: launch_unary<T, UnaryOp::sqrt>(x, y, s); break;
      case UnaryOp::rsqrt: launch_unary<T, UnaryOp::rsqrt>(x, y, s); break;
      case UnaryOp::abs: launch_unary<T, UnaryOp::abs>(x, y, s); break;
      case UnaryOp::relu: launch_unary<T, UnaryOp::relu>(x, y, s); break;
      case UnaryOp::square: launch_unary<T, UnaryOp::square>(x, y, s); break;
      case UnaryOp::pow: launch_unary<T, UnaryOp::pow>(x, y, s); break;
      case UnaryOp::scale: launch_unary<T, UnaryOp::scale>(x, y, s); break;
      case UnaryOp::add_scalar: launch_unary<T, UnaryOp::add_scalar>(x, y, s); break;
      case UnaryOp::sign: launch_unary<T, UnaryOp::sign>(x, y, s); break;
    }
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (out.numel() == 0) return;
  dispatch_storage(out.dtype(), "binary op", [&](auto z) {
    using T = decltype(z);
    switch (op) {
      case BinaryOp::add: launch_binary<T, BinaryOp::add>(a, b, out); break;
      case BinaryOp::sub: launch_binary<T, BinaryOp::sub>(a, b, out); break;
      case BinaryOp::mul: launch_binary<T, BinaryOp::mul>(a, b, out); break;
      case BinaryOp::div: launch_binary<T, BinaryOp::div>(a, b, out); break;
      case BinaryOp::relu_mask: launch_binary<T, BinaryOp::relu_mask>(a, b, out); break;
    }
  });
}

// Each maximal run of consecutive reduced axes is one (outer, red, inner) reduction; runs are reduced from
// the last to the first, through temporaries, the final one into `out`.
void reduce_sum(const Tensor& x, const Tensor& out) {
  INTL_CHECK(x.is_contiguous() && out.is_contiguous() && x.dim() == out.dim(), "reduce_sum: bad operands");
  std::vector<std::pair<int64_t, int64_t>> runs;  // [first, last] axes
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (out.shape()[size_t(i)] != 1 || x.shape()[size_t(i)] == 1) continue;
    if (!runs.empty() && runs.back().second == i - 1) runs.back().second = i;
    else runs.push_back({i, i});
  }
  if (runs.empty()) return copy(x, out);
  if (x.numel() == 0) return fill(out, 0.0);
  dispatch_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    Tensor cur = x;
    Shape shape = x.shape();
    for (size_t k = runs.size(); k-- > 0;) {
      int64_t outer = 1, red = 1, inner = 1;
      for (int64_t i = 0; i < x.dim(); ++i) {
        const int64_t e = shape[size_t(i)];
        (i < runs[k].first ? outer : i <= runs[k].second ? red : inner) *= e;
      }
      for (int64_t i = runs[k].first; i <= runs[k].second; ++i) shape[size_t(i)] = 1;
      Tensor next = k == 0 ? out : Tensor::empty(shape, x.dtype(), Device::cuda);
      reduce_block<T>(ptr<const T>(cur), ptr<T>(next), outer, red, inner);
      cur = next;
    }
  });
}

void zero_upper_triangle(const Tensor& a) {
  const int64_t n = a.size(-1), total = a.numel();
  if (total == 0) return;
  dispatch_float(a.dtype(), [&](auto z) {
    using T = decltype(z);
    zero_upper_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(ptr<T>(a), total, n);
    CUDA_CHECK_LAUNCH();
  });
}

void to_bf16(const float* src, void* dst, int64_t n) {
  convert_contiguous(src, static_cast<__nv_bfloat16*>(dst), n);
}

void weight_to_krsc(const Tensor& oihw, void* krsc, bool bf16) { relayout_weight<true>(oihw, krsc, bf16); }

void weight_from_krsc(const void* krsc, bool bf16, const Tensor& oihw) {
  relayout_weight<false>(oihw, const_cast<void*>(krsc), bf16);
}

void from_bf16(const void* src, float* dst, int64_t n) {
  convert_contiguous(static_cast<const __nv_bfloat16*>(src), dst, n);
}

}  // namespace intl::cuda
