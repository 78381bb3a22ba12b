// k-nearest-neighbour classifiers on frozen features. The W-MSE protocol of the paper's CIFAR numbers:
// Euclidean distance, the k = 5 nearest training features vote, a tie between labels goes to the smallest
// label (torch.unique + argmax in W-MSE's eval_knn). The weighted variant of InstDisc: cosine similarity,
// k = 200, each neighbour votes exp(similarity / temperature).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace intl::train {

enum class KnnDistance { euclidean, cosine };
KnnDistance parse_knn_distance(const std::string& name);  // "euclidean" | "cosine", else UsageError

struct KnnOptions {
  int k = 5;
  KnnDistance distance = KnnDistance::euclidean;
  bool weighted = false;     // false: majority vote; true: votes exp(cos / T), or exp(-squared distance / T)
  double temperature = 0.1;  // of the weighted vote
};

// Predicted label of every test row. train (n, d) and test (m, d) float32 on the CPU; labels in
// [0, num_classes). Neighbours at equal distance are taken in training order (the lower index first). Features
// holding NaN or inf are an Error naming the image.
std::vector<int32_t> knn_predict(const Tensor& train, const std::vector<int32_t>& train_labels, const Tensor& test,
                                 int num_classes, const KnnOptions& options);

// Percentage of test rows whose predicted label is right.
double knn_accuracy(const Tensor& train, const std::vector<int32_t>& train_labels, const Tensor& test,
                    const std::vector<int32_t>& test_labels, int num_classes, const KnnOptions& options);

// The metric name of a configuration: "knn5_top1" (majority vote, Euclidean), "knn5_cosine_top1",
// "wknn200_top1" (weighted, cosine).
std::string knn_metric_name(const KnnOptions& options);

// Error naming `who` and the first training or test image whose (rows, d) float32 features hold NaN or inf: a
// NaN distance or score would count as a vote or a right answer.
void check_finite_features(const Tensor& train, const Tensor& test, const std::string& who);

}  // namespace intl::train
