// The linear classifier's training loop and its top-k accuracy.
#include "train/linear_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <numeric>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "engine/random.h"
#include "models/layers.h"
#include "models/safetensors.h"
#include "train/knn.h"

namespace intl::train {
namespace {

constexpr uint64_t kClassifierStream = 7;  // Linear init stream, apart from the projector's

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

// Percent of rows whose label is among the `k` largest logits (ties: the lower class first). A row holding NaN or
// inf is never right: NaN compares false with everything, so it would otherwise rank the true class first.
double top_k_accuracy(const std::vector<float>& logits, const std::vector<int32_t>& labels, int classes, int k) {
  int64_t right = 0;
  const size_t rows = labels.size();
  for (size_t i = 0; i < rows; ++i) {
    const float* row = logits.data() + i * classes;
    if (!std::all_of(row, row + classes, [](float v) { return std::isfinite(v); })) continue;
    const float mine = row[labels[i]];
    int above = 0;  // classes ranked before the true one
    for (int c = 0; c < classes; ++c) above += row[c] > mine || (row[c] == mine && c < labels[i]);
    right += above < k;
  }
  return rows ? 100.0 * double(right) / double(rows) : 0.0;
}

LinearEvalResult linear_eval(const FeatureSet& train, const FeatureSet& test, const LinearEvalOptions& o) {
  check(train.features.dim() == 2 && test.features.dim() == 2 && train.features.size(1) == test.features.size(1),
        "linear eval: train and test features must be (n, d) with the same d");
  check(o.epochs >= 1 && o.batch_size >= 1, "linear eval: epochs and batch size must be positive");
  const int64_t n = train.features.size(0), d = train.features.size(1);
  const int classes = std::max(train.num_classes, test.num_classes);
  check(n > 0 && classes > 0, "linear eval: no training features");
  check_finite_features(train.features, test.features, "linear eval");
  Linear classifier(d, classes, true, o.seed, kClassifierStream);
  Adam adam({{"weight", classifier.weight()}, {"bias", classifier.bias()}},
            AdamOptions{0.9, 0.999, 1e-8, o.weight_decay});
  const ExponentialDecay schedule{o.lr_start, o.lr_end, o.epochs};

  const float* features = train.features.data<float>();
  std::vector<int64_t> order(n);
  Tensor batch_x = Tensor::empty({std::min<int64_t>(n, o.batch_size), d});  // (b, d)
  Tensor batch_y = Tensor::empty({std::min<int64_t>(n, o.batch_size)}, DType::i64);
  LinearEvalResult result;
  auto diverged = [&](int epoch, const std::string& what, double lr) {
    throw Error("linear classifier diverged at epoch " + std::to_string(epoch + 1) + " of " +
                std::to_string(o.epochs) + " (" + what + ", learning rate " + number(lr) + "); lower " +
                (o.lr_option.empty() ? std::string("the learning rate") : o.lr_option));
  };
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    RandomStream rng{o.seed, kStreamData, (uint64_t(3) << 62) | (uint64_t(epoch) << 32)};
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.next_below(uint64_t(i) + 1)]);
    const double lr = schedule.at(epoch);
    double loss_sum = 0;
    int batches = 0;
    for (int64_t lo = 0; lo < n; lo += o.batch_size) {
      const int64_t b = std::min<int64_t>(o.batch_size, n - lo);
      Tensor x = b == batch_x.size(0) ? batch_x : Tensor::empty({b, d});
      Tensor y = b == batch_y.size(0) ? batch_y : Tensor::empty({b}, DType::i64);
      float* px = x.data<float>();
      int64_t* py = y.data<int64_t>();
      for (int64_t i = 0; i < b; ++i) {
        std::memcpy(px + i * d, features + order[lo + i] * d, size_t(d) * sizeof(float));
        py[i] = train.labels[order[lo + i]];
      }
      x.bump_version();
      adam.zero_grad();
      Tensor loss = softmax_cross_entropy(classifier.forward(x), y);
      loss.backward();  // queued before the loss is read, as in train_loop; a non-finite loss is never stepped
      const double value = loss.item();
      if (!std::isfinite(value)) diverged(epoch, "the training loss became " + number(value), lr);
      adam.step(lr);
      loss_sum += value;
      ++batches;
    }
    if (!first_non_finite_tensor({{"weight", classifier.weight()}, {"bias", classifier.bias()}}).empty())
      diverged(epoch, "its weights became NaN or inf", lr);
    result.final_loss = loss_sum / batches;
  }
  NoGradGuard no_grad;
  const std::vector<float> logits = classifier.forward(test.features).to_floats();  // (m, classes)
  result.top1 = top_k_accuracy(logits, test.labels, classes, 1);
  result.top5 = top_k_accuracy(logits, test.labels, classes, std::min(5, classes));
  return result;
}

}  // namespace intl::train
