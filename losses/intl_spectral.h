// The INTL loss of two views computed through the eigendecomposition of each view's m x m covariance: by
// Theorem 1, channel-whitening IterNorm is the spectral function W = f_T(Sigma_N) / sqrt(tr Sigma) with
// f_0 = 1, f_{k+1}(x) = 1.5 f_k(x) - 0.5 x f_k(x)^3, so the loss and its exact gradient (through every Newton
// step, by the Daleckii-Krein formula with divided differences of the polynomial f_T) need one eigensolve
// per view instead of 3T matrix products forward and 6T backward. The loss only reads the whitened rows'
// inner products, so it is computed from the Gram matrices Zc_a Zc_b^T and never forms Zhat.
// Same value and gradient as intl_loss (losses/intl_loss.h) up to rounding; tested against it, also for a sample
// whose embedding is constant over its features (a zero centred row), where both norms carry norm_mse's epsilon
// and the gradient is finite but enormous (the cosine's derivative is unbounded there).
#pragma once
#include "engine/tensor.h"

namespace intl {

// norm_mse(Zhat1, Zhat2) + beta (INTL(Zhat1) + INTL(Zhat2)), Zhat = CW IterNorm(Z, T); z1, z2 (m x d).
Tensor intl_loss_spectral(const Tensor& z1, const Tensor& z2, int T, double beta);

}  // namespace intl
