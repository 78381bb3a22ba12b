// Closed-form 2x2 whitening and its hand-written backward. Derivations are in the comments above each
// backward; every one is checked against the tape engine in tests/test_toy2d.cpp.
#include "studies/toy2d_whiten.h"

#include <cmath>
#include <string>

#include "engine/error.h"

namespace intl::toy2d {

const char* method_name(Method m) {
  switch (m) {
    case Method::none: return "none";
    case Method::iternorm: return "iternorm";
    case Method::intl: return "intl";
    case Method::st: return "st";
    case Method::zca: return "zca";
    case Method::cholesky: return "cholesky";
  }
  return "?";
}

Eig2 eig2_symmetric(const Mat2& s) {
  // [[a, b], [b, d]]: eigenvalues (a + d) / 2 -+ r with r = hypot((a - d) / 2, b); the larger one's vector
  // is at angle t with tan 2t = 2b / (a - d). The smaller eigenvalue is det / max, which keeps its relative
  // accuracy when the two differ by orders of magnitude.
  const double half_diff = 0.5 * (s.a - s.d), b = 0.5 * (s.b + s.c);
  const double r = std::hypot(half_diff, b), mid = 0.5 * (s.a + s.d);
  Eig2 e;
  e.max = mid + r;
  e.min = e.max > 0 ? (s.a * s.d - b * b) / e.max : mid - r;
  const double t = 0.5 * std::atan2(b, half_diff);
  e.cos_t = std::cos(t);
  e.sin_t = std::sin(t);
  return e;
}

Mat2 covariance2(const double* z, int m) {
  double m0 = 0, m1 = 0;
  for (int i = 0; i < m; ++i) m0 += z[2 * i], m1 += z[2 * i + 1];
  m0 /= m, m1 /= m;
  double s00 = 0, s01 = 0, s11 = 0;
  for (int i = 0; i < m; ++i) {
    const double u = z[2 * i] - m0, v = z[2 * i + 1] - m1;
    s00 += u * u, s01 += u * v, s11 += v * v;
  }
  const double k = 1.0 / (m - 1);
  return {k * s00, k * s01, k * s01, k * s11};
}

namespace {

// Outer products of the eigenvectors: u_min u_min^T, u_max u_max^T and the symmetric u_min u_max^T + u_max u_min^T.
Mat2 outer_min(const Eig2& e) { return {e.sin_t * e.sin_t, -e.sin_t * e.cos_t, -e.sin_t * e.cos_t, e.cos_t * e.cos_t}; }
Mat2 outer_max(const Eig2& e) { return {e.cos_t * e.cos_t, e.sin_t * e.cos_t, e.sin_t * e.cos_t, e.sin_t * e.sin_t}; }
Mat2 outer_cross(const Eig2& e) {
  const double c2 = e.cos_t * e.cos_t - e.sin_t * e.sin_t, s2 = 2 * e.sin_t * e.cos_t;
  return {-s2, c2, c2, s2};
}
Mat2 symmetric_part(const Mat2& g) { return 0.5 * (g + transpose(g)); }

// IterNorm: S = Sigma / tr; P_0 = I; P_{k+1} = 1.5 P_k - 0.5 P_k^3 S; W = P_T / sqrt(tr).
Mat2 iternorm_forward(int T, const Mat2& sigma, WhitenCache& cache) {
  cache.tr = trace(sigma);
  const Mat2 s = (1.0 / cache.tr) * sigma;
  cache.p[0] = mat2_identity();
  for (int k = 0; k < T; ++k) {
    const Mat2& p = cache.p[k];
    cache.p[k + 1] = 1.5 * p - 0.5 * ((p * p * p) * s);
  }
  return (1.0 / std::sqrt(cache.tr)) * cache.p[T];
}

// Backward of one Newton step P' = 1.5 P - 0.5 P P P S with gradient G of P': for a product A B C D,
// dA = G (BCD)^T, dB = A^T G (CD)^T, dC = (AB)^T G D^T, dD = (ABC)^T G. W = P_T / sqrt(tr) gives
// dP_T = dW / sqrt(tr) and dtr = -<dW, P_T> / (2 tr^1.5); S = Sigma / tr gives
// dSigma = dS / tr - <dS, Sigma> / tr^2 I, and tr = Sigma_00 + Sigma_11 adds dtr I.
Mat2 iternorm_backward(int T, const WhitenCache& cache, const Mat2& dw) {
  const double tr = cache.tr, inv_sqrt_tr = 1.0 / std::sqrt(tr);
  const Mat2 s = (1.0 / tr) * cache.sigma;
  double dtr = -0.5 * frobenius_dot(dw, cache.p[T]) * inv_sqrt_tr / tr;
  Mat2 g = inv_sqrt_tr * dw, ds;
  for (int k = T - 1; k >= 0; --k) {
    const Mat2& p = cache.p[k];
    const Mat2 p2 = p * p, ps = p * s, p2s = p2 * s, p3 = p2 * p;
    const Mat2 dp = 1.5 * g - 0.5 * (g * transpose(p2s) + transpose(p) * g * transpose(ps) + transpose(p2) * g * transpose(s));
    ds = ds - 0.5 * (transpose(p3) * g);
    g = dp;
  }
  dtr -= frobenius_dot(ds, cache.sigma) / (tr * tr);
  return symmetric_part((1.0 / tr) * ds + dtr * mat2_identity());
}

// Spectral transformation Phi = U diag(lambda^-p) U^T.
Mat2 spectral_forward(double p, const Mat2& sigma, WhitenCache& cache) {
  cache.eig = eig2_symmetric(sigma);
  const Eig2& e = cache.eig;
  if (!(e.min > 0))
    throw Error("spectral transformation: the embedding's covariance is singular (smallest eigenvalue " +
                std::to_string(e.min) + ")");
  return std::pow(e.min, -p) * outer_min(e) + std::pow(e.max, -p) * outer_max(e);
}

// For a spectral function Phi = U f(Lambda) U^T of a symmetric Sigma, dSigma = U (K o U^T sym(dPhi) U) U^T with
// K_ii = f'(lambda_i) and K_12 = (f(lambda_1) - f(lambda_2)) / (lambda_1 - lambda_2), the divided difference
// (f' at the midpoint when the two eigenvalues nearly tie, so ties are harmless here).
Mat2 spectral_backward(double p, const WhitenCache& cache, const Mat2& dphi) {
  const Eig2& e = cache.eig;
  const Mat2 g = symmetric_part(dphi);
  auto f = [p](double x) { return std::pow(x, -p); };
  auto df = [p](double x) { return -p * std::pow(x, -p - 1); };
  const double gap = e.max - e.min;
  const double k_cross = gap > 1e-6 * e.max ? (f(e.max) - f(e.min)) / gap : df(0.5 * (e.max + e.min));
  // Components of g in the eigenbasis: u_min^T g u_min, u_max^T g u_max, u_min^T g u_max.
  const double c = e.cos_t, s = e.sin_t;
  const double g_min = s * s * g.a - s * c * (g.b + g.c) + c * c * g.d;
  const double g_max = c * c * g.a + s * c * (g.b + g.c) + s * s * g.d;
  const double g_cross = -s * c * g.a - s * s * g.b + c * c * g.c + c * s * g.d;
  return (df(e.min) * g_min) * outer_min(e) + (df(e.max) * g_max) * outer_max(e) + (k_cross * g_cross) * outer_cross(e);
}

// Cholesky whitening: Sigma = L L^T, W = L^-T (so Zhat = Zc L^-T).
Mat2 cholesky_forward(const Mat2& sigma, WhitenCache& cache) {
  const double l11 = std::sqrt(sigma.a);
  const double l21 = sigma.c / l11;
  const double l22_sq = sigma.d - l21 * l21;
  if (!(sigma.a > 0) || !(l22_sq > 0))
    throw Error("cholesky whitening: the embedding's covariance is not positive definite");
  const double l22 = std::sqrt(l22_sq);
  cache.l = {l11, 0, l21, l22};
  return {1 / l11, -l21 / (l11 * l22), 0, 1 / l22};
}

// W = L^-T: d(L^-1) = dW^T and dL = -L^-T d(L^-1) L^-T = -W dW^T W, of which only the lower triangle exists.
// Then by the scalar chain l11 = sqrt(a), l21 = c / l11, l22 = sqrt(d - l21^2), and the off-diagonal
// gradient is split evenly over the two symmetric entries.
Mat2 cholesky_backward(const WhitenCache& cache, const Mat2& dw) {
  const double l11 = cache.l.a, l21 = cache.l.c, l22 = cache.l.d;
  const Mat2 dl = -1.0 * (cache.w * transpose(dw) * cache.w);
  const double dd = dl.d / (2 * l22);
  const double dl21 = dl.c - dl.d * l21 / l22;
  const double dc = dl21 / l11;
  const double dl11 = dl.a - dl21 * l21 / l11;
  const double da = dl11 / (2 * l11);
  return {da, 0.5 * dc, 0.5 * dc, dd};
}

}  // namespace

Mat2 whiten_matrix_forward(const WhitenSpec& spec, const Mat2& sigma, WhitenCache& cache) {
  cache.sigma = sigma;
  switch (spec.method) {
    case Method::none: cache.w = mat2_identity(); break;
    case Method::iternorm:
    case Method::intl: cache.w = iternorm_forward(spec.T, sigma, cache); break;
    case Method::st: cache.w = spectral_forward(spec.p, sigma, cache); break;
    case Method::zca: cache.w = spectral_forward(0.5, sigma, cache); break;
    case Method::cholesky: cache.w = cholesky_forward(sigma, cache); break;
  }
  return cache.w;
}

Mat2 whiten_matrix_backward(const WhitenSpec& spec, const WhitenCache& cache, const Mat2& dw) {
  switch (spec.method) {
    case Method::none: return {};
    case Method::iternorm:
    case Method::intl: return iternorm_backward(spec.T, cache, dw);
    case Method::st: return spectral_backward(spec.p, cache, dw);
    case Method::zca: return spectral_backward(0.5, cache, dw);
    case Method::cholesky: return cholesky_backward(cache, dw);
  }
  return {};
}

void whiten_forward(const WhitenSpec& spec, const double* z, int m, double* zc, double* zhat, WhitenCache& cache) {
  if (spec.method == Method::none) {
    for (int i = 0; i < 2 * m; ++i) zc[i] = zhat[i] = z[i];
    return;
  }
  double m0 = 0, m1 = 0;
  for (int i = 0; i < m; ++i) m0 += z[2 * i], m1 += z[2 * i + 1];
  cache.mean[0] = m0 / m, cache.mean[1] = m1 / m;
  double s00 = 0, s01 = 0, s11 = 0;
  for (int i = 0; i < m; ++i) {
    const double u = zc[2 * i] = z[2 * i] - cache.mean[0];
    const double v = zc[2 * i + 1] = z[2 * i + 1] - cache.mean[1];
    s00 += u * u, s01 += u * v, s11 += v * v;
  }
  const double k = 1.0 / (m - 1);
  const Mat2 w = whiten_matrix_forward(spec, {k * s00, k * s01, k * s01, k * s11}, cache);
  for (int i = 0; i < m; ++i) {
    const double u = zc[2 * i], v = zc[2 * i + 1];
    zhat[2 * i] = u * w.a + v * w.c;
    zhat[2 * i + 1] = u * w.b + v * w.d;
  }
}

// zhat = zc W and Sigma = zc^T zc / (m - 1): dW = zc^T dzhat; dzc = dzhat W^T + 2 zc dSigma / (m - 1) for a
// symmetric dSigma; centring: dz = dzc - mean over rows of dzc.
void whiten_backward(const WhitenSpec& spec, const WhitenCache& cache, const double* zc, const double* dzhat, int m,
                     double* dz) {
  if (spec.method == Method::none) {
    for (int i = 0; i < 2 * m; ++i) dz[i] = dzhat[i];
    return;
  }
  Mat2 dw;
  for (int i = 0; i < m; ++i) {
    const double u = zc[2 * i], v = zc[2 * i + 1], g0 = dzhat[2 * i], g1 = dzhat[2 * i + 1];
    dw.a += u * g0, dw.b += u * g1, dw.c += v * g0, dw.d += v * g1;
  }
  const Mat2 ds = (2.0 / (m - 1)) * whiten_matrix_backward(spec, cache, dw);
  const Mat2& w = cache.w;
  double s0 = 0, s1 = 0;
  for (int i = 0; i < m; ++i) {
    const double u = zc[2 * i], v = zc[2 * i + 1], g0 = dzhat[2 * i], g1 = dzhat[2 * i + 1];
    const double d0 = g0 * w.a + g1 * w.b + u * ds.a + v * ds.c;
    const double d1 = g0 * w.c + g1 * w.d + u * ds.b + v * ds.d;
    dz[2 * i] = d0, dz[2 * i + 1] = d1;
    s0 += d0, s1 += d1;
  }
  s0 /= m, s1 /= m;
  for (int i = 0; i < m; ++i) dz[2 * i] -= s0, dz[2 * i + 1] -= s1;
}

}  // namespace intl::toy2d
