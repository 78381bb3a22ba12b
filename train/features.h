// Frozen features for evaluation: a backbone in eval mode (batch-norm running statistics, no gradients) run
// over the non-augmented, normalised images of a CIFAR split, as the W-MSE protocol does (SPEC 3.4).
#pragma once
#include <cstdint>
#include <vector>

#include "data/cifar.h"
#include "models/resnet.h"

namespace intl::train {

struct FeatureSet {
  Tensor features;              // (n, d) float32 on the CPU
  std::vector<int32_t> labels;  // (n)
  int num_classes = 0;
};

struct FeatureOptions {
  int batch_size = 256;
  int workers = 2;
  int image_size = 32;  // images are resized to this side (32: CIFAR as stored)
  Device device = Device::cpu;
};

// Features of every image of `data`, in dataset order. Leaves the backbone in the mode it found it in.
FeatureSet extract_features(ResNet& backbone, const CifarDataset& data, const FeatureOptions& options);

}  // namespace intl::train
