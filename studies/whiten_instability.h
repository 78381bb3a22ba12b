// The whiten-instability study (SPEC 3.2, supplement D.3, Figure IV): hard whitening (lambda^-p of the d x d
// batch covariance by eigendecomposition, gradients through eigh) of a ResNet + projector embedding, trained
// on norm_mse of the whitened views by train_loop; every iteration's inverse condition number is recorded, and
// a crash (non-finite loss or gradient, eigensolver failure) is a result that ends only its own run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"
#include "results/result.h"

namespace intl::studies {

struct WhitenInstabilityOptions {
  std::vector<int64_t> d = {64, 128, 256, 512, 1024, 2048};  // embedding sizes (Figure IV); one run per d, seed
  int seeds = 1;                    // seeds seed, seed + 1, ... for each d
  int batch = 512;                  // m
  int64_t iters = 6000;
  double p = 0.5;                   // power of the spectral transformation; 0.5 is hard whitening (ZCA)
  std::string eig_dtype = "float32";  // float32 | float64: the precision of the whitening and its eigensolver
  std::string arch = "resnet18";    // resnet18 | resnet50 (ImageNet in the paper)
  int64_t width = 64;               // ResNet base width (64: the standard network)
  int64_t hidden = 1024;            // projector: features -> hidden (BN, ReLU) -> d
  int image_size = 32;              // side of the training crops (224 on ImageNet)
  std::string dataset = "cifar10";  // cifar10 | imagenet | synthetic
  std::string data_dir;
  int train_images = 0;             // CIFAR-10: the first N (0: all); synthetic: N (0: 5000); ImageNet: all
  double lr = 3e-3;                 // Adam
  double weight_decay = 1e-6;
  int64_t warmup = 500;             // iterations of linear warm-up
  int workers = 2;
  double log_every = 30;            // seconds between plain progress lines
  bool checkpoints = false;         // checkpoint every epoch under <out>/checkpoints/<run>
  bool resume = false;
  std::string device = "auto";
  uint64_t seed = 0;
  std::string out;                  // "" : runs/whiten-instability-<time>
};

// Throws UsageError naming the option for anything out of range.
void validate(const WhitenInstabilityOptions& options);
// The options as the result's config (option names as keys).
nlohmann::json whiten_instability_config(const WhitenInstabilityOptions& options);

// Zhat = Zc U diag(lambda^-p) U^T with Sigma = Zc^T Zc / (m - 1) = U diag(lambda) U^T (BW), computed in
// `dtype` (z is cast; the gradient comes back in z's dtype). Throws intl::Error when the eigensolver fails.
struct HardWhitened {
  Tensor zhat;                       // (m, d) in `dtype`
  double lambda_min = 0, lambda_max = 0;  // extreme eigenvalues of Sigma as computed (lambda_min may be <= 0)
};
HardWhitened hard_whiten(const Tensor& z, double p, DType dtype);

// What the curve log10_inv_cond holds: log10(|lambda_min| / lambda_max). A covariance that is singular in
// exact arithmetic (d >= m) has its smallest computed eigenvalue at rounding level, of either sign; its
// magnitude is the inverse condition number the eigensolver works with.
double log10_inverse_condition(double lambda_min, double lambda_max);

// Runs every (d, seed) into <out>/RESULT.json and <out>/whiten-instability.svg, prints a summary table, and
// returns the result. Per run: config {d, seed}; curves log10_inv_cond (the worse of the two views) and
// step_loss against "iteration", plus train_loop's per-epoch loss and lr; metrics
// initial_log10_inv_cond, final_log10_inv_cond, min_log10_inv_cond, iterations, crashed (0/1) and
// crash_iteration; an event "crash" when it crashed.
results::Result run_whiten_instability(const WhitenInstabilityOptions& options);

}  // namespace intl::studies
