// Evaluation of a trained backbone on CIFAR (SPEC 3.4, W-MSE protocol): frozen features of the
// non-augmented training and test images, then kNN and/or the linear classifier. Shared by `intl eval` and
// the end of `intl pretrain`. Metric names: knn5_top1 (knn_metric_name), linear_top1, linear_top5, in
// percent, as in experiments/paper/*.json, and linear_final_loss (the classifier's mean loss of its last epoch).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "data/cifar.h"
#include "train/features.h"
#include "train/knn.h"
#include "train/linear_eval.h"
#include "train/ssl_model.h"

namespace intl::train {

inline constexpr const char* backbone_metadata_key = "intl_model";

// A backbone read from a file: a training checkpoint of `intl pretrain` (tensors "model.backbone.*", the
// network described in its metadata), or backbone weights with torchvision's names: backbone.safetensors of
// `intl pretrain` (described by its metadata key "intl_model"), or a file from elsewhere (e.g. PyTorch),
// built from `fallback` (arch, stem, width).
struct LoadedBackbone {
  std::shared_ptr<ResNet> backbone;
  SslModelConfig config;        // the description used
  std::string dataset;          // the checkpoint's training dataset ("" for plain weights)
  nlohmann::json recipe;        // the checkpoint's training recipe (null for plain weights)
};
LoadedBackbone load_backbone(const std::string& path, const SslModelConfig& fallback);

// The images of a split, the first `limit` of them when limit > 0 (scaled-down runs).
CifarDataset load_cifar_subset(const std::string& dir, CifarKind kind, Split split, int limit);

struct EvalOptions {
  bool knn = true;
  KnnOptions knn_options;
  bool linear = true;
  LinearEvalOptions linear_options;
  FeatureOptions features;
};

// Metrics by name (knn_metric_name(options), linear_top1, linear_top5, linear_final_loss) of the backbone on
// (train, test).
std::map<std::string, double> evaluate_backbone(ResNet& backbone, const ImageSource& train,
                                                const ImageSource& test, const EvalOptions& options);

}  // namespace intl::train
