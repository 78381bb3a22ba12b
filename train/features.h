// Frozen features for evaluation: a backbone in eval mode (batch-norm running statistics, no gradients) run
// over the non-augmented, normalised images of a split, as the W-MSE protocol does (SPEC 3.4): CIFAR
// images as stored (or resized), image folders through Resize + CenterCrop (256 / 224 at full size).
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "data/image_source.h"
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
  // Set: Resize(resize) + CenterCrop(crop) (image folders; image_size is then unused).
  std::optional<CenterCropConfig> center_crop;
};

// The evaluation view of an image folder at `side`: Resize(round(side * 256 / 224)) + CenterCrop(side),
// which is 256 / 224 at full size.
CenterCropConfig center_crop_for(int side);

// Features of every image of `data`, in dataset order. Leaves the backbone in the mode it found it in.
FeatureSet extract_features(ResNet& backbone, const ImageSource& data, const FeatureOptions& options);

}  // namespace intl::train
