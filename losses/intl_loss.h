// The INTL objective (SPEC section 2): trace loss, norm_mse alignment, the total loss with
// beta = 0.01 (log2 K - 3), and its multi-crop variants, with and without an EMA target.
#pragma once
#include <string>
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
// The two computations of the two-view loss, equal up to rounding in value and gradient: `spectral`
// (intl_loss_spectral, losses/intl_spectral.h: one eigensolve per view) and `newton` (intl_loss: IterNorm
// literally, 3T matrix products per view forward and 6T backward). `automatic` (the default, "auto") takes the
// spectral form on the CPU, where it is the faster (README, Speed), and the newton form on a GPU, where it is
// GEMMs only and queues a whole step without waiting for the device, while the spectral form reads back its
// traces, eigenvalues and the eigensolver's status every step, and cuSOLVER's syevd at m = 256 is a chain of
// small kernels; `intl bench iternorm --loss-form` measures both on any device.
enum class IntlLossForm { automatic, spectral, newton };
// "auto" | "spectral" | "newton"; anything else is a UsageError naming --loss-form.
IntlLossForm parse_intl_loss_form(const std::string& name);
const char* intl_loss_form_name(IntlLossForm form);
// The form that runs on `device`: `form` itself unless automatic.
IntlLossForm resolve_intl_loss_form(IntlLossForm form, Device device);
// The loss in `form`, resolved on the views' device.
Tensor intl_loss(const Tensor& z1, const Tensor& z2, int T, double beta, IntlLossForm form);
// Multi-crop + EMA: mean_i [norm_mse(q_i, k) + beta INTL(q_i)], q_i the whitened online crops, k the
// whitened target (no gradient).
Tensor intl_multicrop_loss(const std::vector<Tensor>& online, const Tensor& target, int T, double beta);
// Multi-crop without EMA ([code] methods/intl.py): every crop through the online network, crop 0 the anchor
// with its gradient; mean_{i>=1} [norm_mse(t_i, t_0) + beta (INTL(t_i) + INTL(t_0))], t = CW IterNorm(z, T).
// With two crops it is intl_loss(z_1, z_0).
Tensor intl_anchored_crops_loss(const std::vector<Tensor>& crops, int T, double beta);

}  // namespace intl
