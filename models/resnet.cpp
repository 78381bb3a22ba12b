// ResNet: BasicBlock, Bottleneck, the four stages and the two stems, in torchvision's registration order.
// Every convolution draws its initial weights from its own Philox stream (construction order), so one seed
// fixes the whole backbone.
#include "models/resnet.h"

#include <vector>

#include "engine/error.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "engine/random.h"
#include "models/conv_layers.h"

namespace intl {
namespace {

// Streams of the backbone's convolutions: far from the few that Linear layers of the same seed use.
constexpr uint64_t kResNetStreamBase = kStreamInit * 1000003 + (uint64_t(1) << 20);

struct StreamCounter {
  uint64_t next = kResNetStreamBase;
  uint64_t operator()() { return next++; }
};

// The 1x1 projection shortcut: "downsample.0" (conv, stride) and "downsample.1" (BN).
class Downsample : public Module {
 public:
  Downsample(int64_t in, int64_t out, int64_t stride, const ResNetConfig& c, StreamCounter& streams)
      : conv_(register_module("0", std::make_shared<Conv2d>(in, out, 1, stride, 0, false, c.seed, streams(),
                                                             c.dtype))),
        bn_(register_module("1", std::make_shared<BatchNorm2d>(out, c.dtype))) {}
  Tensor forward(const Tensor& x) const { return bn_->forward(conv_->forward(x)); }

 private:
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<BatchNorm2d> bn_;
};

// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) with 3x3 convolutions; conv1 carries the stride.
class BasicBlock : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride, const ResNetConfig& c, StreamCounter& streams) {
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, planes, 3, stride, 1, false, c.seed, streams(),
                                                                c.dtype));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes, c.dtype));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(planes, planes, 3, 1, 1, false, c.seed, streams(),
                                                                c.dtype));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes, c.dtype, c.zero_init_residual));
    if (stride != 1 || in != planes * expansion)
      downsample_ = register_module("downsample",
                                    std::make_shared<Downsample>(in, planes * expansion, stride, c, streams));
  }
  Tensor forward(const Tensor& x) const override {
    const Tensor out = bn1_->forward(conv1_->forward(x), Tensor(), true);
    const Tensor identity = downsample_ ? downsample_->forward(x) : x;
    return bn2_->forward(conv2_->forward(out), identity, true);  // BN, residual add and ReLU fused
  }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Downsample> downsample_;
};

// 1x1 reduce, 3x3 (with the stride, torchvision's v1.5), 1x1 expand by 4, plus the shortcut.
class Bottleneck : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, const ResNetConfig& c, StreamCounter& streams) {
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, planes, 1, 1, 0, false, c.seed, streams(),
                                                                c.dtype));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes, c.dtype));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(planes, planes, 3, stride, 1, false, c.seed,
                                                                streams(), c.dtype));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes, c.dtype));
    conv3_ = register_module("conv3", std::make_shared<Conv2d>(planes, planes * expansion, 1, 1, 0, false, c.seed,
                                                                streams(), c.dtype));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(planes * expansion, c.dtype, c.zero_init_residual));
    if (stride != 1 || in != planes * expansion)
      downsample_ = register_module("downsample",
                                    std::make_shared<Downsample>(in, planes * expansion, stride, c, streams));
  }
  Tensor forward(const Tensor& x) const override {
    Tensor out = bn1_->forward(conv1_->forward(x), Tensor(), true);
    out = bn2_->forward(conv2_->forward(out), Tensor(), true);
    const Tensor identity = downsample_ ? downsample_->forward(x) : x;
    return bn3_->forward(conv3_->forward(out), identity, true);  // BN, residual add and ReLU fused
  }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<Downsample> downsample_;
};

struct DepthPlan {
  int depth;
  bool bottleneck;
  int blocks[4];
};
constexpr DepthPlan kPlans[] = {
    {18, false, {2, 2, 2, 2}}, {34, false, {3, 4, 6, 3}}, {50, true, {3, 4, 6, 3}},
    {101, true, {3, 4, 23, 3}}, {152, true, {3, 8, 36, 3}},
};

const DepthPlan& plan_for(int depth) {
  for (const DepthPlan& p : kPlans)
    if (p.depth == depth) return p;
  throw UsageError("ResNet depth " + std::to_string(depth) + " is not one of 18, 34, 50, 101, 152");
}

}  // namespace

class ResNetStage : public Module {
 public:
  // `in` is updated to the stage's output channels.
  ResNetStage(int64_t& in, int64_t planes, int blocks, int64_t stride, bool bottleneck, const ResNetConfig& c,
              StreamCounter& streams) {
    for (int b = 0; b < blocks; ++b) {
      const int64_t s = b == 0 ? stride : 1;
      std::shared_ptr<ResidualBlock> block;
      if (bottleneck) block = std::make_shared<Bottleneck>(in, planes, s, c, streams);
      else block = std::make_shared<BasicBlock>(in, planes, s, c, streams);
      blocks_.push_back(register_module(std::to_string(b), block));
      in = planes * (bottleneck ? Bottleneck::expansion : BasicBlock::expansion);
    }
  }
  Tensor forward(const Tensor& x) const {
    Tensor h = x;
    for (const auto& block : blocks_) h = block->forward(h);
    return h;
  }

 private:
  std::vector<std::shared_ptr<ResidualBlock>> blocks_;
};

int resnet_depth(const std::string& arch) {
  for (const DepthPlan& p : kPlans)
    if (arch == "resnet" + std::to_string(p.depth)) return p.depth;
  throw UsageError("backbone '" + arch + "' is not one of resnet18, resnet34, resnet50, resnet101, resnet152");
}

ResNetStem resnet_stem(const std::string& name) {
  if (name == "imagenet") return ResNetStem::imagenet;
  if (name == "cifar") return ResNetStem::cifar;
  throw UsageError("ResNet stem '" + name + "' is not one of imagenet, cifar");
}

ResNet::ResNet(const ResNetConfig& config) : config_(config) {
  const DepthPlan& plan = plan_for(config.depth);
  INTL_CHECK(config.base_width >= 1, "ResNet base_width must be >= 1, got " + std::to_string(config.base_width));
  StreamCounter streams;
  const int64_t w = config.base_width;
  const bool imagenet = config.stem == ResNetStem::imagenet;
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(3, w, imagenet ? 7 : 3, imagenet ? 2 : 1,
                                                              imagenet ? 3 : 1, false, config.seed, streams(),
                                                              config.dtype));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(w, config.dtype));
  int64_t channels = w;
  for (int i = 0; i < 4; ++i)
    layers_[i] = register_module("layer" + std::to_string(i + 1),
                                 std::make_shared<ResNetStage>(channels, w << i, plan.blocks[i], i == 0 ? 1 : 2,
                                                               plan.bottleneck, config, streams));
  feature_dim_ = channels;
}

Tensor ResNet::forward(const Tensor& x) const {
  INTL_CHECK(x.dim() == 4 && x.size(3) == 3, "ResNet input must be NHWC (N, H, W, 3), got " + shape_str(x.shape()));
  // bfloat16 activations from the stem to the pooled features under --precision bf16 on a GPU (precision.h)
  const Tensor in = bf16_activations(x.dtype(), x.device()) ? cast(x, DType::bf16) : x;
  Tensor h = bn1_->forward(conv1_->forward(in), Tensor(), true);
  if (config_.stem == ResNetStem::imagenet) h = max_pool2d(h, 3, 2, 1);
  for (const auto& layer : layers_) h = layer->forward(h);
  return global_avg_pool(h);
}

std::shared_ptr<ResNet> make_resnet(const ResNetConfig& config) { return std::make_shared<ResNet>(config); }

}  // namespace intl
