// The whitening transforms, composed from differentiable engine ops so that gradients flow through every
// Newton step, eigendecomposition and triangular solve.
#include "losses/whitening.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace intl {

Centered center_and_covariance(const Tensor& z, WhitenAxis axis) {
  const LossPrecision fp32;
  INTL_CHECK(z.dim() == 2, "whitening needs a 2-D embedding (samples x features), got " + shape_str(z.shape()));
  const int64_t m = z.size(0), d = z.size(1);
  if (axis == WhitenAxis::channel) {
    INTL_CHECK(d > 1, "channel whitening needs more than one feature");
    Tensor zc = sub(z, mean(z, {1}, true));
    return {zc, mul(matmul(zc, transpose(zc)), 1.0 / double(d - 1))};
  }
  INTL_CHECK(m > 1, "batch whitening needs more than one sample");
  Tensor zc = sub(z, mean(z, {0}, true));
  return {zc, mul(matmul(transpose(zc), zc), 1.0 / double(m - 1))};
}

Tensor iternorm_matrix(const Tensor& sigma, int T) {
  const LossPrecision fp32;
  INTL_CHECK(T >= 0, "IterNorm: T must be >= 0, got " + std::to_string(T));
  const int64_t n = sigma.size(0);
  Tensor tr = sum(diagonal(sigma));
  Tensor sn = div(sigma, tr);
  Tensor p = eye(n, sigma.dtype(), sigma.device());
  for (int k = 0; k < T; ++k) {
    Tensor p3 = matmul(matmul(p, p), p);
    p = sub(mul(p, 1.5), mul(matmul(p3, sn), 0.5));
  }
  return div(p, sqrt(tr));
}

namespace {
Tensor apply(const Tensor& w, const Tensor& zc, WhitenAxis axis) {
  return axis == WhitenAxis::channel ? matmul(w, zc) : matmul(zc, w);
}
}  // namespace

Tensor iternorm(const Tensor& z, int T, WhitenAxis axis) {
  const LossPrecision fp32;
  Centered c = center_and_covariance(z, axis);
  return apply(iternorm_matrix(c.sigma, T), c.zc, axis);
}

Tensor spectral_transform(const Tensor& z, double p, WhitenAxis axis) {
  const LossPrecision fp32;
  INTL_CHECK(p >= 0.0 && p <= 1.0, "spectral transform: power p must be in [0, 1], got " + std::to_string(p));
  Centered c = center_and_covariance(z, axis);
  EighResult e = eigh(c.sigma);
  Tensor phi = matmul(mul(e.vectors, reshape(pow(e.values, -p), {1, -1})), transpose(e.vectors));
  return apply(phi, c.zc, axis);
}

Tensor cholesky_whiten(const Tensor& z, WhitenAxis axis) {
  const LossPrecision fp32;
  Centered c = center_and_covariance(z, axis);
  Tensor l = cholesky(c.sigma);
  // CW: L^{-1} Zc (m x d). BW: Zc L^{-T} = (L^{-1} Zc^T)^T.
  if (axis == WhitenAxis::channel) return triangular_solve(l, c.zc, false);
  return transpose(triangular_solve(l, transpose(c.zc).contiguous(), false));
}

}  // namespace intl
