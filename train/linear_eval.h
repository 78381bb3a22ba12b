// Linear evaluation on frozen features, as W-MSE's eval_sgd (the protocol of the paper's CIFAR numbers):
// a Linear(d, classes) with bias trained by Adam (lr 1e-2 decayed exponentially, once per epoch, to 1e-6
// over 500 epochs; weight decay 5e-6; batch 1000, reshuffled every epoch); top-1 and top-5 on the test set.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/features.h"

namespace intl::train {

struct LinearEvalOptions {
  int epochs = 500;
  int batch_size = 1000;
  double lr_start = 1e-2, lr_end = 1e-6;
  double weight_decay = 5e-6;
  uint64_t seed = 0;  // classifier initialisation and batch order
  std::string lr_option;  // the option that sets lr_start, named in the divergence error ("": none)
};

struct LinearEvalResult {
  double top1 = 0, top5 = 0;  // percent on the test set
  double final_loss = 0;      // mean training loss of the last epoch
};

// Percent of rows (logits (rows, classes) row-major) whose label is among the k largest logits (ties: the
// lower class first). A row holding NaN or inf counts as wrong.
double top_k_accuracy(const std::vector<float>& logits, const std::vector<int32_t>& labels, int classes, int k);

// Features holding NaN or inf are an Error naming the image. A training loss or classifier weights that become
// NaN or inf are an Error naming the epoch and the learning rate ("linear classifier diverged at epoch ...").
LinearEvalResult linear_eval(const FeatureSet& train, const FeatureSet& test, const LinearEvalOptions& options);

}  // namespace intl::train
