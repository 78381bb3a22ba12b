// Whitening transforms of a mini-batch embedding Z (m samples x d features), SPEC section 2:
// IterNorm (T Newton steps, gradients through every step), the spectral transformation with power p (by
// eigendecomposition; p = 0.5 is ZCA / hard whitening), and W-MSE's Cholesky whitening. Each comes in the
// channel-whitening form (CW: each sample centred over its features, m x m covariance, output P Zc) and the
// batch-whitening form (BW: each feature centred over the batch, d x d covariance, output Zc P).
#pragma once
#include "engine/precision.h"
#include "engine/tensor.h"

namespace intl {

// Whitening, eigensolvers and losses compute in float32 whatever `--precision` says: every public function of
// losses/ holds one of these while it records its ops, so their backward runs in float32 too
// (engine/precision.h).
struct LossPrecision : MatmulPrecisionScope {
  LossPrecision() : MatmulPrecisionScope(MatmulPrecision::fp32) {}
};

enum class WhitenAxis { channel, batch };

// Centred input and its covariance: CW Sigma = Zc Zc^T / (d - 1), BW Sigma = Zc^T Zc / (m - 1).
struct Centered {
  Tensor zc;
  Tensor sigma;
};
Centered center_and_covariance(const Tensor& z, WhitenAxis axis);

// IterNorm: Sigma_N = Sigma / tr(Sigma); P_0 = I; P_{k+1} = 1.5 P_k - 0.5 P_k^3 Sigma_N; W = P_T / sqrt(tr).
Tensor iternorm(const Tensor& z, int T, WhitenAxis axis);
// The whitening matrix W of IterNorm for a covariance (exposed for the closed-form tests).
Tensor iternorm_matrix(const Tensor& sigma, int T);

// Spectral transformation with g(lambda) = lambda^(-p): Phi = U g(Lambda) U^T. p in [0, 1]; p = 0.5 whitens.
Tensor spectral_transform(const Tensor& z, double p, WhitenAxis axis);

// Cholesky whitening (W-MSE): Sigma = L L^T, output L^{-1} applied on the covariance's side.
Tensor cholesky_whiten(const Tensor& z, WhitenAxis axis);

}  // namespace intl
