// The INTL objective (SPEC section 2): trace loss, norm_mse alignment, the total loss with
// beta = 0.01 (log2 K - 3), and its multi-crop + EMA variant.
#pragma once
#include <vector>

#include "engine/tensor.h"
#include "losses/whitening.h"

namespace intl {

// sum_i (1 - v_i)^2 over the covariance diagonal of a whitened output: CW v_i = |zhat_i|^2 / (d - 1) per
// sample; BW v_j = sum_i zhat_ij^2 / (m - 1) per feature.
Tensor trace_loss(const Tensor& zhat, WhitenAxis axis);
// 2 - 2 mean_i cos(a_i, b_i).
Tensor norm_mse(const Tensor& a, const Tensor& b);
// beta = 0.01 (log2 K - 3): K the size of the whitened covariance (CW: the batch size).
double intl_beta(int64_t K);
// norm_mse(Zhat1, Zhat2) + beta (INTL(Zhat1) + INTL(Zhat2)), Zhat = CW IterNorm(Z, T).
Tensor intl_loss(const Tensor& z1, const Tensor& z2, int T, double beta);
// Multi-crop + EMA: mean_i [norm_mse(q_i, k) + beta INTL(q_i)], q_i the whitened online crops, k the
// whitened target (no gradient).
Tensor intl_multicrop_loss(const std::vector<Tensor>& online, const Tensor& target, int T, double beta);

}  // namespace intl
