// Max pooling and global average pooling on NHWC activations. Memory-bound, so one plain implementation, vectorised
// over channels and split over images, serves float32 and (as the reference) float64.
#include <cstdint>
#include <limits>
#include <string>

#include "engine/cpu/conv_kernels.h"
#include "engine/error.h"

namespace intl::cpu {
namespace {

void check_pool(const Pool2dShape& s) {
  INTL_CHECK(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.k > 0 && s.stride > 0 && s.pad >= 0 && 2 * s.pad <= s.k &&
                 s.h_out() > 0 && s.w_out() > 0,
             "maxpool2d: invalid shape (n " + std::to_string(s.n) + ", c " + std::to_string(s.c) + ", h " +
                 std::to_string(s.h) + ", w " + std::to_string(s.w) + ", kernel " + std::to_string(s.k) + ", stride " +
                 std::to_string(s.stride) + ", pad " + std::to_string(s.pad) + "; pad must be at most kernel / 2)");
}

// x = beta * x, or 0 when beta = 0 (so that garbage, even NaN, is never read).
template <class T>
void scale_or_zero(T* x, int64_t count, T beta) {
  if (beta == T(0)) {
    for (int64_t i = 0; i < count; ++i) x[i] = T(0);
  } else if (beta != T(1)) {
    for (int64_t i = 0; i < count; ++i) x[i] *= beta;
  }
}

}  // namespace

template <class T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  check_pool(s);
  const int c = s.c, ho = s.h_out(), wo = s.w_out();
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < s.n; ++n)
    for (int oh = 0; oh < ho; ++oh)
      for (int ow = 0; ow < wo; ++ow) {
        const int64_t at = ((int64_t(n) * ho + oh) * wo + ow) * c;
        T* yr = y + at;
        int32_t* ar = argmax ? argmax + at : nullptr;
        for (int k = 0; k < c; ++k) yr[k] = -std::numeric_limits<T>::infinity();
        if (ar)
          for (int k = 0; k < c; ++k) ar[k] = -1;
        for (int i = 0; i < s.k; ++i) {
          const int ih = oh * s.stride - s.pad + i;
          if (ih < 0 || ih >= s.h) continue;
          for (int j = 0; j < s.k; ++j) {
            const int iw = ow * s.stride - s.pad + j;
            if (iw < 0 || iw >= s.w) continue;
            const T* xr = x + ((int64_t(n) * s.h + ih) * s.w + iw) * c;
            const int32_t pos = ih * s.w + iw;
            if (ar) {
#pragma omp simd
              for (int k = 0; k < c; ++k) {
                // Strict: the first maximum wins ties. A NaN wins over numbers (the first NaN), so that it
                // propagates as in PyTorch; x != x is the NaN test that vectorises.
                const bool take = xr[k] > yr[k] || ar[k] < 0 || (xr[k] != xr[k] && yr[k] == yr[k]);
                yr[k] = take ? xr[k] : yr[k];
                ar[k] = take ? pos : ar[k];
              }
            } else {
#pragma omp simd
              for (int k = 0; k < c; ++k) yr[k] = xr[k] > yr[k] || (xr[k] != xr[k] && yr[k] == yr[k]) ? xr[k] : yr[k];
            }
          }
        }
      }
}

template <class T>
void maxpool2d_backward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx, T beta) {
  check_pool(s);
  const int c = s.c, ho = s.h_out(), wo = s.w_out();
  const int64_t plane = int64_t(s.h) * s.w * c;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < s.n; ++n) {  // images own disjoint parts of dx
    T* dxn = dx + n * plane;
    scale_or_zero(dxn, plane, beta);
    for (int64_t o = 0; o < int64_t(ho) * wo; ++o) {
      const int64_t at = (int64_t(n) * ho * wo + o) * c;
      for (int k = 0; k < c; ++k) {
        const int32_t pos = argmax[at + k];
        if (pos >= 0) dxn[int64_t(pos) * c + k] += dy[at + k];
      }
    }
  }
}

template <class T>
void avgpool2d_global_forward(const NhwcShape& s, const T* x, T* y) {
  const int c = s.c;
  const int64_t hw = int64_t(s.h) * s.w;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < s.n; ++n) {
    T* yr = y + int64_t(n) * c;
    for (int k = 0; k < c; ++k) yr[k] = T(0);
    for (int64_t r = 0; r < hw; ++r) {
      const T* xr = x + (int64_t(n) * hw + r) * c;
#pragma omp simd
      for (int k = 0; k < c; ++k) yr[k] += xr[k];
    }
    for (int k = 0; k < c; ++k) yr[k] /= T(hw);
  }
}

template <class T>
void avgpool2d_global_backward(const NhwcShape& s, const T* dy, T* dx, T beta) {
  const int c = s.c;
  const int64_t hw = int64_t(s.h) * s.w;
  const T inv = T(1) / T(hw);
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < s.n; ++n)
    for (int64_t r = 0; r < hw; ++r) {
      const T* g = dy + int64_t(n) * c;
      T* dxr = dx + (int64_t(n) * hw + r) * c;
      if (beta == T(0)) {
#pragma omp simd
        for (int k = 0; k < c; ++k) dxr[k] = g[k] * inv;
      } else {
#pragma omp simd
        for (int k = 0; k < c; ++k) dxr[k] = g[k] * inv + beta * dxr[k];
      }
    }
}

template void maxpool2d_forward<float>(const Pool2dShape&, const float*, float*, int32_t*);
template void maxpool2d_forward<double>(const Pool2dShape&, const double*, double*, int32_t*);
template void maxpool2d_backward<float>(const Pool2dShape&, const float*, const int32_t*, float*, float);
template void maxpool2d_backward<double>(const Pool2dShape&, const double*, const int32_t*, double*, double);
template void avgpool2d_global_forward<float>(const NhwcShape&, const float*, float*);
template void avgpool2d_global_forward<double>(const NhwcShape&, const double*, double*);
template void avgpool2d_global_backward<float>(const NhwcShape&, const float*, float*, float);
template void avgpool2d_global_backward<double>(const NhwcShape&, const double*, double*, double);

}  // namespace intl::cpu
