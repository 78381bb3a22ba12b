// Elementwise CPU kernels: copy/convert, fill, random, unary and broadcasting binary ops, sum reductions.
// Each kernel switches on dtype and op once, then runs a templated loop over a functor.
#include <omp.h>

#include <cmath>
#include <cstring>

#include "engine/cpu/dispatch.h"
#include "engine/cpu/kernels.h"
#include "engine/cpu/strided.h"
#include "engine/error.h"
#include "engine/random.h"

namespace intl::cpu {
namespace {

constexpr int64_t kParallelGrain = 1 << 17;  // elements below which threads cost more than they give

template <class Src, class Dst> void copy_typed(const Tensor& src, const Tensor& dst) {
  const Src* s = static_cast<const Src*>(src.raw_data());
  Dst* d = static_cast<Dst*>(dst.raw_data());
  if (src.is_contiguous()) {
    const int64_t n = src.numel();
    if constexpr (std::is_same_v<Src, Dst>) {
      std::memcpy(d, s, size_t(n) * sizeof(Src));
    } else {
#pragma omp parallel for if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) d[i] = Dst(s[i]);
    }
    return;
  }
  StridedLayout L;
  L.operands = 2;
  L.shape = src.shape();
  L.strides[0] = src.strides();
  L.strides[1] = contiguous_strides(src.shape());
  L.collapse();
  const int64_t inner = L.inner(), outer = L.outer(), si = L.strides[0].back();
#pragma omp parallel for if (outer * inner > kParallelGrain)
  for (int64_t o = 0; o < outer; ++o) {
    const Src* sp = s + L.offset(0, o);
    Dst* dp = d + L.offset(1, o);
    for (int64_t i = 0; i < inner; ++i) dp[i] = Dst(sp[i * si]);
  }
}

template <class T, class F> void map_unary(const T* x, T* y, int64_t n, F f) {
#pragma omp parallel for simd if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <class T, class F> void map_binary(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* po = static_cast<T*>(out.raw_data());
  StridedLayout L;
  L.operands = 3;
  L.shape = out.shape();
  L.strides[0] = a.strides();
  L.strides[1] = b.strides();
  L.strides[2] = contiguous_strides(out.shape());
  L.collapse();
  const int64_t inner = L.inner(), outer = L.outer();
  const int64_t sa = L.strides[0].back(), sb = L.strides[1].back();
#pragma omp parallel for if (outer * inner > kParallelGrain && outer > 1)
  for (int64_t o = 0; o < outer; ++o) {
    const T* ra = pa + L.offset(0, o);
    const T* rb = pb + L.offset(1, o);
    T* ro = po + L.offset(2, o);
    if (sa == 1 && sb == 1) {
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) ro[i] = f(ra[i], rb[i]);
    } else if (sa == 1 && sb == 0) {
      const T vb = rb[0];
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) ro[i] = f(ra[i], vb);
    } else if (sa == 0 && sb == 1) {
      const T va = ra[0];
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) ro[i] = f(va, rb[i]);
    } else {
      for (int64_t i = 0; i < inner; ++i) ro[i] = f(ra[i * sa], rb[i * sb]);
    }
  }
}

}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  INTL_CHECK(src.shape() == dst.shape(), "copy: shape " + shape_str(src.shape()) + " into " + shape_str(dst.shape()));
  INTL_CHECK(dst.is_contiguous(), "copy: the destination must be contiguous");
  dispatch_all(src.dtype(), [&](auto s) {
    dispatch_all(dst.dtype(), [&](auto d) { copy_typed<decltype(s), decltype(d)>(src, dst); });
  });
}

void fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  dispatch_all(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = static_cast<T*>(dst.raw_data());
    const T v = T(value);
#pragma omp parallel for simd if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) p[i] = v;
  });
}

void random(const Tensor& dst, bool uniform, double lo, double hi, uint64_t seed, uint64_t stream) {
  const RandomStream rs{seed, stream, 0};
  const int64_t n = dst.numel();
  dispatch_float(dst.dtype(), "random", [&](auto z) {
    using T = decltype(z);
    T* p = static_cast<T*>(dst.raw_data());
    // Block i gives element i: the value does not depend on thread count or device.
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const Philox4 b = rs.block(uint64_t(i));
      const double u1 = u32_to_unit_double(b.v[0], b.v[1]);
      if (uniform) {
        p[i] = T(lo + (hi - lo) * (1.0 - u1));  // [lo, hi)
      } else {
        const double u2 = u32_to_unit_double(b.v[2], b.v[3]);
        p[i] = T(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
      }
    }
  });
}

void unary(UnaryOp op, const Tensor& x, const Tensor& y, double s) {
  INTL_CHECK(x.is_contiguous() && y.is_contiguous(), "unary kernel needs contiguous tensors");
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), "unary", [&](auto z) {
    using T = decltype(z);
    const T* px = static_cast<const T*>(x.raw_data());
    T* py = static_cast<T*>(y.raw_data());
    const T ts = T(s);
    switch (op) {
      case UnaryOp::neg: map_unary(px, py, n, [](T v) { return -v; }); break;
      case UnaryOp::exp: map_unary(px, py, n, [](T v) { return std::exp(v); }); break;
      case UnaryOp::log: map_unary(px, py, n, [](T v) { return std::log(v); }); break;
      case UnaryOp::sqrt: map_unary(px, py, n, [](T v) { return std::sqrt(v); }); break;
      case UnaryOp::rsqrt: map_unary(px, py, n, [](T v) { return T(1) / std::sqrt(v); }); break;
      case UnaryOp::abs: map_unary(px, py, n, [](T v) { return std::abs(v); }); break;
      case UnaryOp::relu: map_unary(px, py, n, [](T v) { return v < T(0) ? T(0) : v; }); break;  // NaN passes
      case UnaryOp::square: map_unary(px, py, n, [](T v) { return v * v; }); break;
      case UnaryOp::pow: map_unary(px, py, n, [ts](T v) { return std::pow(v, ts); }); break;
      case UnaryOp::scale: map_unary(px, py, n, [ts](T v) { return ts * v; }); break;
      case UnaryOp::add_scalar: map_unary(px, py, n, [ts](T v) { return v + ts; }); break;
      case UnaryOp::sign: map_unary(px, py, n, [](T v) { return T((v > T(0)) - (v < T(0))); }); break;
    }
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_float(out.dtype(), "binary", [&](auto z) {
    using T = decltype(z);
    switch (op) {
      case BinaryOp::add: map_binary<T>(a, b, out, [](T u, T v) { return u + v; }); break;
      case BinaryOp::sub: map_binary<T>(a, b, out, [](T u, T v) { return u - v; }); break;
      case BinaryOp::mul: map_binary<T>(a, b, out, [](T u, T v) { return u * v; }); break;
      case BinaryOp::div: map_binary<T>(a, b, out, [](T u, T v) { return u / v; }); break;
      case BinaryOp::relu_mask: map_binary<T>(a, b, out, [](T u, T v) { return v > T(0) ? u : T(0); }); break;
    }
  });
}

// out has x's rank with extent 1 on reduced axes. Accumulates in the tensor's own type.
void reduce_sum(const Tensor& x, const Tensor& out) {
  INTL_CHECK(x.is_contiguous() && out.is_contiguous() && x.dim() == out.dim(), "reduce_sum: bad operands");
  dispatch_float(x.dtype(), "reduce_sum", [&](auto z) {
    using T = decltype(z);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    // Express as (outer, reduced, inner) when the reduced axes form one block; otherwise walk generally.
    const Shape& s = x.shape();
    int64_t first = -1, last = -1;
    bool block = true;
    for (int64_t i = 0; i < x.dim(); ++i) {
      if (out.shape()[size_t(i)] == 1 && s[size_t(i)] != 1) {
        if (first < 0) first = i;
        else if (last != i - 1) block = false;
        last = i;
      }
    }
    if (first < 0) {
      std::memcpy(po, px, size_t(x.numel()) * sizeof(T));
      return;
    }
    if (block) {
      int64_t outer = 1, red = 1, inner = 1;
      for (int64_t i = 0; i < x.dim(); ++i) (i < first ? outer : i <= last ? red : inner) *= s[size_t(i)];
      if (inner == 1) {
#pragma omp parallel for if (outer * red > kParallelGrain && outer > 1)
        for (int64_t o = 0; o < outer; ++o) {
          const T* p = px + o * red;
          T acc = 0;
#pragma omp simd reduction(+ : acc)
          for (int64_t r = 0; r < red; ++r) acc += p[r];
          po[o] = acc;
        }
      } else {
#pragma omp parallel for if (outer * red * inner > kParallelGrain && outer > 1)
        for (int64_t o = 0; o < outer; ++o) {
          T* q = po + o * inner;
          for (int64_t i = 0; i < inner; ++i) q[i] = 0;
          for (int64_t r = 0; r < red; ++r) {
            const T* p = px + (o * red + r) * inner;
#pragma omp simd
            for (int64_t i = 0; i < inner; ++i) q[i] += p[i];
          }
        }
      }
      return;
    }
    // General case: every element adds into its output slot (serial; rare shapes only).
    std::memset(po, 0, size_t(out.numel()) * sizeof(T));
    Shape ostr = contiguous_strides(out.shape());
    for (size_t i = 0; i < ostr.size(); ++i)
      if (out.shape()[i] == 1) ostr[i] = 0;
    const int64_t n = x.numel();
    std::vector<int64_t> idx(size_t(x.dim()), 0);
    for (int64_t e = 0; e < n; ++e) {
      int64_t off = 0;
      for (size_t i = 0; i < idx.size(); ++i) off += idx[i] * ostr[i];
      po[off] += px[e];
      for (size_t i = idx.size(); i-- > 0;) {
        if (++idx[i] < s[i]) break;
        idx[i] = 0;
      }
    }
  });
}

}  // namespace intl::cpu
