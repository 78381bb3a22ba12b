// Batch whitening of a two-feature embedding in closed form, for the toy2d study: the 2x2 covariance, its
// eigendecomposition solved analytically, IterNorm's Newton steps, the power-p spectral transformation (ZCA at
// p = 0.5) and Cholesky whitening, each with its backward written by hand on 2x2 matrices. The math is that of
// losses/whitening.h in the BW form (Sigma = Zc^T Zc / (m - 1), Zhat = Zc W); tests/test_toy2d.cpp checks the
// gradients against the tape engine.
#pragma once
#include <vector>

namespace intl::toy2d {

// A 2x2 matrix, row-major: [[a, b], [c, d]].
struct Mat2 {
  double a = 0, b = 0, c = 0, d = 0;
};
inline Mat2 mat2_identity() { return {1, 0, 0, 1}; }
inline Mat2 operator+(const Mat2& x, const Mat2& y) { return {x.a + y.a, x.b + y.b, x.c + y.c, x.d + y.d}; }
inline Mat2 operator-(const Mat2& x, const Mat2& y) { return {x.a - y.a, x.b - y.b, x.c - y.c, x.d - y.d}; }
inline Mat2 operator*(double s, const Mat2& x) { return {s * x.a, s * x.b, s * x.c, s * x.d}; }
inline Mat2 operator*(const Mat2& x, const Mat2& y) {
  return {x.a * y.a + x.b * y.c, x.a * y.b + x.b * y.d, x.c * y.a + x.d * y.c, x.c * y.b + x.d * y.d};
}
inline Mat2 transpose(const Mat2& x) { return {x.a, x.c, x.b, x.d}; }
inline double trace(const Mat2& x) { return x.a + x.d; }
inline double frobenius_dot(const Mat2& x, const Mat2& y) { return x.a * y.a + x.b * y.b + x.c * y.c + x.d * y.d; }

// Eigendecomposition of a symmetric 2x2 matrix: eigenvalues ascending, and the eigenvector of the larger one
// (cos t, sin t); the smaller one's is (-sin t, cos t).
struct Eig2 {
  double min = 0, max = 0;
  double cos_t = 1, sin_t = 0;
};
Eig2 eig2_symmetric(const Mat2& s);

// The transform applied after the network (SPEC 3.1). intl is IterNorm plus the trace loss (the loss lives in
// the study); zca is the spectral transformation with p = 0.5.
enum class Method { none, iternorm, intl, st, zca, cholesky };
const char* method_name(Method m);
inline constexpr int kMaxT = 64;  // IterNorm iterations kept for the backward

struct WhitenSpec {
  Method method = Method::iternorm;
  int T = 5;        // iternorm, intl
  double p = 0.5;   // st
};

// Everything the backward of one whitening reads (one per view; nothing is allocated per step).
struct WhitenCache {
  double mean[2] = {0, 0};
  Mat2 sigma;              // Zc^T Zc / (m - 1)
  Mat2 w;                  // Zhat = Zc W
  double tr = 0;           // iternorm: tr(Sigma)
  Mat2 p[kMaxT + 1];       // iternorm: P_0 .. P_T
  Eig2 eig;                // st, zca
  Mat2 l;                  // cholesky: Sigma = L L^T
};

// The whitening matrix W of a covariance, and its backward: dSigma from dW (returned symmetric: only the
// symmetric part of Sigma's gradient is meaningful). Throws intl::Error when Sigma is not positive definite
// for st, zca and cholesky.
Mat2 whiten_matrix_forward(const WhitenSpec& spec, const Mat2& sigma, WhitenCache& cache);
Mat2 whiten_matrix_backward(const WhitenSpec& spec, const WhitenCache& cache, const Mat2& dw);

// Batch form over m rows of two features (row-major m x 2). Forward: zc = z - mean (written to zc),
// Sigma, W, zhat = zc W. `none` copies z to zhat (no centring). Backward: dz from dzhat (overwrites dz).
void whiten_forward(const WhitenSpec& spec, const double* z, int m, double* zc, double* zhat, WhitenCache& cache);
void whiten_backward(const WhitenSpec& spec, const WhitenCache& cache, const double* zc, const double* dzhat, int m,
                     double* dz);

// Covariance (1 / (m - 1), centred over the rows) of an m x 2 batch.
Mat2 covariance2(const double* z, int m);

}  // namespace intl::toy2d
