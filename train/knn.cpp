// kNN by blocks of test rows: one GEMM of the block against all training features, then per row a
// selection of the k nearest under the total order (distance, training index).
#include "train/knn.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace intl::train {
namespace {

constexpr int64_t kBlockRows = 256;

// Rows scaled to unit length (a zero row stays zero), on the CPU.
Tensor unit_rows(const Tensor& x) {
  Tensor out = x.to(Device::cpu).contiguous().clone();
  const int64_t n = out.size(0), d = out.size(1);
  float* p = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(p[i * d + j]) * p[i * d + j];
    const double inv = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
    for (int64_t j = 0; j < d; ++j) p[i * d + j] = float(p[i * d + j] * inv);
  }
  return out;
}

std::vector<double> squared_norms(const Tensor& x) {
  const int64_t n = x.size(0), d = x.size(1);
  const float* p = x.data<float>();
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(p[i * d + j]) * p[i * d + j];
    out[i] = s;
  }
  return out;
}

}  // namespace

KnnDistance parse_knn_distance(const std::string& name) {
  if (name == "euclidean") return KnnDistance::euclidean;
  if (name == "cosine") return KnnDistance::cosine;
  throw UsageError("--distance must be euclidean or cosine, found '" + name + "'");
}

void check_finite_features(const Tensor& train, const Tensor& test, const std::string& who) {
  for (const auto& [x, name] : {std::pair{&train, "training"}, std::pair{&test, "test"}}) {
    const Tensor c = x->to(Device::cpu).contiguous();
    const int64_t rows = c.size(0), d = c.size(1);
    const float* p = c.data<float>();
    for (int64_t i = 0; i < rows * d; ++i)
      if (!std::isfinite(p[i]))
        throw Error(who + ": the features of " + name + " image " + std::to_string(i / d) +
                    " hold NaN or inf: the backbone produces non-finite features (was it trained to divergence?)");
  }
}

std::vector<int32_t> knn_predict(const Tensor& train_in, const std::vector<int32_t>& train_labels,
                                 const Tensor& test_in, int num_classes, const KnnOptions& o) {
  check(train_in.dim() == 2 && test_in.dim() == 2 && train_in.size(1) == test_in.size(1),
        "knn: features must be (n, d) and (m, d), found " + shape_str(train_in.shape()) + " and " +
            shape_str(test_in.shape()));
  check(train_in.dtype() == DType::f32 && test_in.dtype() == DType::f32, "knn: features must be float32");
  const int64_t n = train_in.size(0), m = test_in.size(0);
  check(int64_t(train_labels.size()) == n, "knn: " + std::to_string(train_labels.size()) + " labels for " +
                                               std::to_string(n) + " training features");
  check(o.k >= 1 && o.k <= n, "knn: k = " + std::to_string(o.k) + " must be in 1.." + std::to_string(n) +
                                  " (the number of training images)");
  check(!o.weighted || o.temperature > 0, "knn: the temperature must be positive");
  for (int32_t y : train_labels)
    check(y >= 0 && y < num_classes, "knn: training label " + std::to_string(y) + " outside 0.." +
                                         std::to_string(num_classes - 1));
  // A NaN distance breaks the selection's order, and every vote would go to an arbitrary neighbour.
  check_finite_features(train_in, test_in, "knn");
  NoGradGuard no_grad;
  const bool cosine = o.distance == KnnDistance::cosine;
  const Tensor train = cosine ? unit_rows(train_in) : train_in.to(Device::cpu).contiguous();
  const Tensor test = cosine ? unit_rows(test_in) : test_in.to(Device::cpu).contiguous();
  const Tensor train_t = transpose(train).contiguous();  // (d, n)
  const std::vector<double> train_norms = cosine ? std::vector<double>() : squared_norms(train);
  const std::vector<double> test_norms = cosine ? std::vector<double>() : squared_norms(test);

  std::vector<int32_t> predicted(m);
  for (int64_t lo = 0; lo < m; lo += kBlockRows) {
    const int64_t hi = std::min(m, lo + kBlockRows);
    const Tensor dots = matmul(slice(test, 0, lo, hi), train_t);  // (hi - lo, n)
    const float* pd = dots.data<float>();
#pragma omp parallel
    {
      std::vector<std::pair<double, int32_t>> order(n);  // (distance, training index)
      std::vector<double> votes(num_classes);
#pragma omp for schedule(dynamic, 8)
      for (int64_t r = lo; r < hi; ++r) {
        const float* row = pd + (r - lo) * n;
        for (int64_t j = 0; j < n; ++j) {
          // Smaller is nearer: squared Euclidean distance, or minus the cosine similarity.
          const double d = cosine ? -double(row[j]) : test_norms[r] + train_norms[j] - 2.0 * double(row[j]);
          order[j] = {d, int32_t(j)};
        }
        std::nth_element(order.begin(), order.begin() + (o.k - 1), order.end());
        std::sort(order.begin(), order.begin() + o.k);
        std::fill(votes.begin(), votes.end(), 0.0);
        // Weights exp(-d / T) relative to the nearest, exp(-(d - d_0) / T): the same vote, but squared Euclidean
        // distances in the hundreds would underflow every weight to 0 (and a small T overflow cosine's to inf).
        const double nearest = order[0].first;
        for (int i = 0; i < o.k; ++i) {
          const auto& [d, j] = order[i];
          votes[train_labels[j]] += o.weighted ? std::exp(-(d - nearest) / o.temperature) : 1.0;
        }
        // The first maximum: ties go to the smallest label.
        predicted[r] = int32_t(std::max_element(votes.begin(), votes.end()) - votes.begin());
      }
    }
  }
  return predicted;
}

double knn_accuracy(const Tensor& train, const std::vector<int32_t>& train_labels, const Tensor& test,
                    const std::vector<int32_t>& test_labels, int num_classes, const KnnOptions& options) {
  check(int64_t(test_labels.size()) == test.size(0), "knn: " + std::to_string(test_labels.size()) +
                                                         " labels for " + std::to_string(test.size(0)) +
                                                         " test features");
  const std::vector<int32_t> predicted = knn_predict(train, train_labels, test, num_classes, options);
  int64_t right = 0;
  for (size_t i = 0; i < predicted.size(); ++i) right += predicted[i] == test_labels[i];
  return predicted.empty() ? 0.0 : 100.0 * double(right) / double(predicted.size());
}

std::string knn_metric_name(const KnnOptions& o) {
  const std::string k = std::to_string(o.k);
  if (o.weighted) return "wknn" + k + (o.distance == KnnDistance::cosine ? "" : "_euclidean") + "_top1";
  return "knn" + k + (o.distance == KnnDistance::cosine ? "_cosine" : "") + "_top1";
}

}  // namespace intl::train
