// ResNet backbones as torchvision builds them (He et al. 2016, v1.5: the stride sits on the 3x3 conv of a
// Bottleneck), without the classifier: forward returns the globally pooled features (512 for ResNet-18/34,
// 2048 for ResNet-50/101/152 at the standard width). Parameter and buffer names are torchvision's
// ("layer2.0.downsample.0.weight"), so checkpoints load into torchvision.models.resnetXX (only fc missing).
#pragma once
#include <memory>
#include <string>

#include "models/module.h"

namespace intl {

enum class ResNetStem : uint8_t {
  imagenet,  // conv 7x7 stride 2 padding 3, BN, ReLU, max pool 3 stride 2 padding 1
  cifar,     // conv 3x3 stride 1 padding 1, BN, ReLU, no max pool (SPEC 3.4)
};

struct ResNetConfig {
  int depth = 18;          // 18, 34 (BasicBlock) or 50, 101, 152 (Bottleneck)
  ResNetStem stem = ResNetStem::imagenet;
  int64_t base_width = 64; // channels of the stem and layer1 (torchvision: 64); smaller for test networks
  bool zero_init_residual = false;  // last BN of each residual branch starts at weight 0
  uint64_t seed = 0;       // convolutions draw from Philox streams of this seed
  DType dtype = DType::f32;
};

// "resnet18" -> 18, ...; anything else is a UsageError naming the accepted values.
int resnet_depth(const std::string& arch);
// "imagenet" / "cifar"; anything else is a UsageError.
ResNetStem resnet_stem(const std::string& name);

class ResidualBlock : public Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;
};

class ResNetStage;  // layer1..layer4: blocks named "0", "1", ...
class Conv2d;
class BatchNorm2d;

class ResNet : public Module {
 public:
  // Convolutions are Kaiming normal (fan_out, ReLU), BN weight 1 and bias 0, as torchvision.
  explicit ResNet(const ResNetConfig& config);
  // x (N, H, W, 3), NHWC as every image activation -> features (N, feature_dim()).
  Tensor forward(const Tensor& x) const;
  int64_t feature_dim() const { return feature_dim_; }
  const ResNetConfig& config() const { return config_; }

 private:
  ResNetConfig config_;
  int64_t feature_dim_ = 0;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ResNetStage> layers_[4];
};

std::shared_ptr<ResNet> make_resnet(const ResNetConfig& config);

}  // namespace intl
