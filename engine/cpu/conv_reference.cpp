// Reference convolution and max pooling (NCHW, float and double). The convolution of one image is a GEMM
// over its im2col matrix: col (c_in * kh * kw, h_out * w_out), whose row (c, i, j) holds the input pixels
// that kernel tap (i, j) of channel c sees, so y = W (c_out, c_in * kh * kw) @ col.
#include "engine/cpu/conv_reference.h"

#include <limits>
#include <string>

#include "engine/cpu/dispatch.h"
#include "engine/cpu/kernels.h"
#include "engine/error.h"

namespace intl::cpu::reference {
namespace {

bool is_pointwise(const Conv2dArgs& a) { return a.kh == 1 && a.kw == 1 && a.stride == 1 && a.pad == 0; }

// col (c_in * kh * kw, h_out * w_out) from one image x (c_in, h, w); zero where the tap falls in the padding.
template <class T> void im2col(const Conv2dArgs& a, const T* x, T* col) {
  const int64_t ho = a.h_out(), wo = a.w_out();
#pragma omp parallel for if (a.c_in * a.kh * a.kw * ho * wo > (1 << 16))
  for (int64_t c = 0; c < a.c_in; ++c)
    for (int64_t i = 0; i < a.kh; ++i)
      for (int64_t j = 0; j < a.kw; ++j) {
        T* row = col + ((c * a.kh + i) * a.kw + j) * ho * wo;
        for (int64_t oy = 0; oy < ho; ++oy) {
          const int64_t iy = oy * a.stride - a.pad + i;
          for (int64_t ox = 0; ox < wo; ++ox) {
            const int64_t ix = ox * a.stride - a.pad + j;
            const bool inside = iy >= 0 && iy < a.h && ix >= 0 && ix < a.w;
            row[oy * wo + ox] = inside ? x[(c * a.h + iy) * a.w + ix] : T(0);
          }
        }
      }
}

// The adjoint of im2col: dx (c_in, h, w) = sum of dcol entries over the taps that read each pixel.
template <class T> void col2im(const Conv2dArgs& a, const T* dcol, T* dx) {
  const int64_t ho = a.h_out(), wo = a.w_out();
#pragma omp parallel for if (a.c_in * a.kh * a.kw * ho * wo > (1 << 16))
  for (int64_t c = 0; c < a.c_in; ++c) {
    T* plane = dx + c * a.h * a.w;
    for (int64_t p = 0; p < a.h * a.w; ++p) plane[p] = T(0);
    for (int64_t i = 0; i < a.kh; ++i)
      for (int64_t j = 0; j < a.kw; ++j) {
        const T* row = dcol + ((c * a.kh + i) * a.kw + j) * ho * wo;
        for (int64_t oy = 0; oy < ho; ++oy) {
          const int64_t iy = oy * a.stride - a.pad + i;
          if (iy < 0 || iy >= a.h) continue;
          for (int64_t ox = 0; ox < wo; ++ox) {
            const int64_t ix = ox * a.stride - a.pad + j;
            if (ix >= 0 && ix < a.w) plane[iy * a.w + ix] += row[oy * wo + ox];
          }
        }
      }
  }
}

GemmArgs gemm_args(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                   int64_t lda, const void* b, int64_t ldb, void* c, double beta) {
  GemmArgs g;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.m = m; g.n = n; g.k = k;
  g.alpha = 1.0; g.beta = beta;
  g.a = a; g.lda = lda;
  g.b = b; g.ldb = ldb;
  g.c = c; g.ldc = n;
  g.dtype = dtype;
  return g;
}

}  // namespace

void conv2d_forward(const Conv2dArgs& a, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& y) {
  dispatch_float(x.dtype(), "conv2d_forward", [&](auto zero) {
    using T = decltype(zero);
    const int64_t K = a.c_in * a.kh * a.kw, P = a.h_out() * a.w_out();
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    T* py = y.data<T>();
    Tensor col = is_pointwise(a) ? Tensor() : Tensor::empty({K, P}, x.dtype());
    for (int64_t n = 0; n < a.n; ++n) {
      const T* xn = px + n * a.c_in * a.h * a.w;
      T* yn = py + n * a.c_out * P;
      const T* cn = xn;
      if (col.defined()) {
        im2col(a, xn, col.data<T>());
        cn = col.data<T>();
      }
      gemm(gemm_args(x.dtype(), false, false, a.c_out, P, K, pw, K, cn, P, yn, 0.0));
      if (bias.defined()) {
        const T* pb = bias.data<T>();
        for (int64_t o = 0; o < a.c_out; ++o)
          for (int64_t p = 0; p < P; ++p) yn[o * P + p] += pb[o];
      }
    }
  });
}

// dcol = W^T dy for each image, then col2im; for a pointwise convolution dcol is dx itself.
void conv2d_backward_data(const Conv2dArgs& a, const Tensor& dy, const Tensor& weight, const Tensor& dx) {
  dispatch_float(dy.dtype(), "conv2d_backward_data", [&](auto zero) {
    using T = decltype(zero);
    const int64_t K = a.c_in * a.kh * a.kw, P = a.h_out() * a.w_out();
    const T* pdy = dy.data<T>();
    const T* pw = weight.data<T>();
    T* pdx = dx.data<T>();
    Tensor dcol = is_pointwise(a) ? Tensor() : Tensor::empty({K, P}, dy.dtype());
    for (int64_t n = 0; n < a.n; ++n) {
      T* dxn = pdx + n * a.c_in * a.h * a.w;
      T* target = dcol.defined() ? dcol.data<T>() : dxn;
      gemm(gemm_args(dy.dtype(), true, false, K, P, a.c_out, pw, K, pdy + n * a.c_out * P, P, target, 0.0));
      if (dcol.defined()) col2im(a, dcol.data<T>(), dxn);
    }
  });
}

// dW = sum over images of dy (c_out, P) @ col^T (P, K); dbias = sum of dy over images and positions.
void conv2d_backward_filter(const Conv2dArgs& a, const Tensor& x, const Tensor& dy, const Tensor& dweight,
                            const Tensor& dbias) {
  dispatch_float(x.dtype(), "conv2d_backward_filter", [&](auto zero) {
    using T = decltype(zero);
    const int64_t K = a.c_in * a.kh * a.kw, P = a.h_out() * a.w_out();
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    T* pdw = dweight.data<T>();
    Tensor col = is_pointwise(a) ? Tensor() : Tensor::empty({K, P}, x.dtype());
    for (int64_t n = 0; n < a.n; ++n) {
      const T* xn = px + n * a.c_in * a.h * a.w;
      const T* cn = xn;
      if (col.defined()) {
        im2col(a, xn, col.data<T>());
        cn = col.data<T>();
      }
      gemm(gemm_args(x.dtype(), false, true, a.c_out, K, P, pdy + n * a.c_out * P, P, cn, P, pdw,
                     n == 0 ? 0.0 : 1.0));
    }
    if (dbias.defined()) {
      T* pdb = dbias.data<T>();
      for (int64_t o = 0; o < a.c_out; ++o) {
        double s = 0;
        for (int64_t n = 0; n < a.n; ++n)
          for (int64_t p = 0; p < P; ++p) s += pdy[(n * a.c_out + o) * P + p];
        pdb[o] = T(s);
      }
    }
  });
}

// Padding counts as -infinity; the first maximum in row-major window order wins, as in PyTorch.
void maxpool2d_forward(const Pool2dArgs& a, const Tensor& x, const Tensor& y, const Tensor& indices) {
  dispatch_float(x.dtype(), "maxpool2d_forward", [&](auto zero) {
    using T = decltype(zero);
    const int64_t ho = a.h_out(), wo = a.w_out();
    const T* px = x.data<T>();
    T* py = y.data<T>();
    int32_t* pi = indices.data<int32_t>();
#pragma omp parallel for if (a.n * a.c * ho * wo * a.k * a.k > (1 << 16))
    for (int64_t plane = 0; plane < a.n * a.c; ++plane) {
      const T* xp = px + plane * a.h * a.w;
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          T best = -std::numeric_limits<T>::infinity();
          int64_t arg = -1;
          for (int64_t i = 0; i < a.k; ++i) {
            const int64_t iy = oy * a.stride - a.pad + i;
            if (iy < 0 || iy >= a.h) continue;
            for (int64_t j = 0; j < a.k; ++j) {
              const int64_t ix = ox * a.stride - a.pad + j;
              if (ix < 0 || ix >= a.w) continue;
              const T v = xp[iy * a.w + ix];
              if (arg < 0 || v > best || v != v) {
                best = v;
                arg = iy * a.w + ix;
              }
            }
          }
          const int64_t o = (plane * ho + oy) * wo + ox;
          py[o] = best;
          pi[o] = int32_t(arg);
        }
    }
  });
}

void maxpool2d_backward(const Pool2dArgs& a, const Tensor& dy, const Tensor& indices, const Tensor& dx) {
  dispatch_float(dy.dtype(), "maxpool2d_backward", [&](auto zero) {
    using T = decltype(zero);
    const int64_t ho = a.h_out(), wo = a.w_out();
    const T* pdy = dy.data<T>();
    const int32_t* pi = indices.data<int32_t>();
    T* pdx = dx.data<T>();
#pragma omp parallel for if (a.n * a.c * a.h * a.w > (1 << 16))
    for (int64_t plane = 0; plane < a.n * a.c; ++plane) {
      T* dxp = pdx + plane * a.h * a.w;
      for (int64_t p = 0; p < a.h * a.w; ++p) dxp[p] = T(0);
      for (int64_t o = plane * ho * wo; o < (plane + 1) * ho * wo; ++o)
        if (pi[o] >= 0) dxp[pi[o]] += pdy[o];
    }
  });
}

}  // namespace intl::cpu::reference
