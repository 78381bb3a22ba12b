// The iternorm-cifar study (SPEC 3.3, supplement D.2): channel-whitening IterNorm with T iterations, with and
// without the trace loss, on a ResNet + projector trained by train_loop on CIFAR-10 with Adam. Each epoch
// records the spectra of cov(Z) and cov(Zhat) and how flat they are, every few epochs the 5-NN accuracy, and
// the end 5-NN and linear accuracy.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"
#include "losses/intl_loss.h"
#include "results/result.h"

namespace intl::studies {

struct IternormCifarOptions {
  std::vector<int> T = {1, 3, 5};
  std::vector<std::string> trace_loss = {"on", "off"};
  std::vector<double> beta;          // one per T; empty: the paper's 5 / 0.5 / 0.05 for T = 1 / 3 / 5
  IntlLossForm loss_form = IntlLossForm::automatic;  // how the loss is computed (the same value either way)
  int epochs = 200;                  // not stated in the supplement; W-MSE's CIFAR ablations use 200
  int batch = 256;
  double lr = 3e-3;                  // Adam
  double weight_decay = 1e-6;
  int64_t warmup = 500;              // iterations of linear warm-up
  std::vector<int> drops = {50, 25}; // lr x drop_factor at this many epochs before the end
  double drop_factor = 0.2;
  std::string arch = "resnet18";
  int64_t width = 64;                // ResNet base width
  int64_t hidden = 1024;             // projector: features -> hidden (BN, ReLU) -> dim
  int64_t dim = 128;
  int image_size = 32;
  std::string dataset = "cifar10";   // cifar10 | synthetic
  std::string data_dir;
  int train_images = 0, test_images = 0;  // 0: the whole split (synthetic: 5000 / 1000)
  int knn_every = 5;                 // 5-NN accuracy every this many epochs (0: only at the end)
  int linear_epochs = 500;           // final linear evaluation (0: none)
  int workers = 2;
  double log_every = 30;
  bool checkpoints = true;           // every epoch under <out>/checkpoints/<run>
  bool resume = false;
  std::string device = "auto";
  uint64_t seed = 0;
  std::string out;                   // "" : runs/iternorm-cifar-<time>
};

void validate(const IternormCifarOptions& options);
nlohmann::json iternorm_cifar_config(const IternormCifarOptions& options);
// The trace-loss weight of a run: 0 with the trace loss off; options.beta[i] for T[i] when given; else the
// paper's table. UsageError for a T outside the table without --beta.
double iternorm_cifar_beta(const IternormCifarOptions& options, size_t t_index, bool trace_loss);

// Spectra. Sigma = Zc Zc^T / (d - 1) is the m x m covariance that CW IterNorm whitens (rows centred over
// their features), cov(Zhat) likewise of Zhat = IterNorm(Z). Row centring leaves at most r = min(m, d - 1)
// non-zero eigenvalues; the spectra keep those r, largest first, computed in float64 without gradients.
// Flatness of a spectrum: its inverse condition number lambda_r / lambda_1 (1 = white in all r directions).
struct Spectra {
  std::vector<double> z, zhat;
  double trace_loss = 0;  // INTL(Zhat) of this batch
};
Spectra cw_spectra(const Tensor& z, int T);
// lambda_last / lambda_first of a spectrum sorted largest first (NaN when empty).
double flatness(const std::vector<double>& spectrum);

// Runs every (T, trace loss) into <out>/RESULT.json and <out>/iternorm-cifar.svg, prints a summary table and
// returns the result. Per run: config {T, trace_loss, beta}; curves against epoch: loss, lr (train_loop),
// z_flatness, zhat_flatness, trace_loss (INTL(Zhat) of view 1, whether or not it is trained on) and
// knn_top1; arrays z_spectra and zhat_spectra (rows [epoch, lambda_1 .. lambda_r]), final_z_spectrum and
// final_zhat_spectrum (the last epoch's); metrics final_zhat_flatness, final_z_flatness, final_trace_loss,
// knn5_top1, linear_top1, linear_top5.
results::Result run_iternorm_cifar(const IternormCifarOptions& options);

}  // namespace intl::studies
