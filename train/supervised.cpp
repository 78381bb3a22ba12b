// The supervised training loops of train/supervised.h.
#include "train/supervised.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "models/layers.h"
#include "train/features.h"
#include "train/linear_eval.h"

namespace intl::train {
namespace {

constexpr uint64_t kClassifierStream = 11;  // N(0, 0.01) initialisation of the classifier

// RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3) + horizontal flip, nothing else.
AugmentConfig train_crop(int side) {
  AugmentConfig c;
  c.out_size = side;
  c.resample = Resample::bilinear_antialias;  // torchvision's default interpolation
  c.jitter_p = 0;
  c.grayscale_p = 0;
  c.blur_p = 0;
  c.solarize_p = 0;
  return c;
}

void validate(const SupervisedOptions& o) {
  auto need = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError(message);
  };
  need(o.epochs >= 1, "--epochs must be >= 1, found " + std::to_string(o.epochs));
  need(o.batch_size >= (o.fine_tune ? 2 : 1),
       o.fine_tune ? "--batch-size must be >= 2 to fine-tune (batch norm needs two images a batch)"
                   : "--batch-size must be >= 1");
  need(o.lr > 0 && (!o.fine_tune || o.backbone_lr >= 0), "learning rates must be positive");
  need(o.schedule == "step" || o.schedule == "cosine", "--schedule takes step or cosine, found '" + o.schedule + "'");
  need(o.image_size >= 8, "--image-size must be >= 8");
  need(o.workers >= 0, "--workers must be >= 0");
}

}  // namespace

double supervised_lr_factor(const SupervisedOptions& o, int64_t step, int steps_per_epoch) {
  if (o.schedule == "cosine") {
    const double total = double(int64_t(o.epochs) * steps_per_epoch);
    return 0.5 * (1.0 + std::cos(3.14159265358979323846 * std::min(1.0, double(step) / total)));
  }
  const int64_t epoch = step / std::max(1, steps_per_epoch);
  double f = 1.0;
  for (int m : o.milestones)
    if (epoch >= m) f *= o.gamma;
  return f;
}

SupervisedResult train_classifier(ResNet& backbone, const ImageSource& train, const ImageSource& val,
                                  const SupervisedOptions& o) {
  validate(o);
  check(!o.fine_tune || train.size() >= 2, o.label + ": fine-tuning needs at least two training images (batch norm "
                                                     "needs two a batch), found " + std::to_string(train.size()));
  const int64_t d = backbone.feature_dim();
  const int classes = std::max(train.num_classes(), val.num_classes());
  Linear classifier(d, classes, true, o.seed, kClassifierStream);
  {
    NoGradGuard no_grad;
    classifier.weight().copy_(mul(Tensor::randn({int64_t(classes), d}, o.seed, kClassifierStream), 0.01));
    classifier.bias().copy_(Tensor::zeros({int64_t(classes)}));
  }
  classifier.to(o.device);
  const double scale = o.batch_size / 256.0;
  // --weight-decay (0 unless given) applies to every parameter, biases and batch-norm included, as it does to
  // a single PyTorch SGD parameter group.
  const SgdOptions sgd{o.momentum, o.weight_decay};
  Sgd head({{"fc.weight", classifier.weight()}, {"fc.bias", classifier.bias()}}, sgd);
  std::vector<NamedTensor> body_params;
  if (o.fine_tune)
    for (auto& [name, t] : backbone.named_parameters()) body_params.push_back({name, t});
  Sgd body(body_params, sgd);

  LoaderConfig lc = imagenet_train_loader_config(o.batch_size, o.seed, o.workers);
  lc.crops = {train_crop(o.image_size)};
  lc.drop_last = false;
  Loader loader(train, lc);
  const int steps_per_epoch = loader.steps_per_epoch();
  const char* what = o.fine_tune ? "fine-tuning" : "linear classifier";
  std::printf("%s: %s, %d images, %d classes, %d steps per epoch, %d epochs, lr %.4g%s\n", o.label.c_str(), what,
              train.size(), classes, steps_per_epoch, o.epochs, o.lr * scale,
              o.fine_tune ? (", backbone lr " + std::to_string(o.backbone_lr * scale)).c_str() : "");

  SupervisedResult result;
  result.lr_used = o.lr * scale;
  result.backbone_lr_used = o.fine_tune ? o.backbone_lr * scale : 0.0;
  double seconds = 0;
  int64_t images = 0;
  auto last_line = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < o.epochs && (o.max_steps < 0 || result.steps < o.max_steps); ++epoch) {
    if (o.fine_tune) backbone.train();
    else backbone.eval();
    loader.start_epoch(epoch);
    double loss_sum = 0;
    int batches = 0;
    const auto start = std::chrono::steady_clock::now();
    while (const Batch* b = loader.next()) {
      if (o.max_steps >= 0 && result.steps >= o.max_steps) break;
      if (o.fine_tune && b->n == 1) continue;  // a last batch of one image has no batch statistics: left out
      const double f = supervised_lr_factor(o, result.steps, steps_per_epoch);
      Tensor x = Tensor::from_floats(b->view1, {b->n, b->height, b->width, b->channels});  // NHWC
      Tensor y = Tensor::empty({b->n}, DType::i64);
      for (int i = 0; i < b->n; ++i) y.data<int64_t>()[i] = b->labels[i];
      y.bump_version();
      if (o.device != Device::cpu) {
        x = x.to(o.device);
        y = y.to(o.device);
      }
      head.zero_grad();
      if (o.fine_tune) body.zero_grad();
      Tensor features;
      if (o.fine_tune) {
        features = backbone.forward(x);
      } else {
        NoGradGuard no_grad;
        features = backbone.forward(x);
      }
      Tensor loss = softmax_cross_entropy(classifier.forward(features), y);
      const double value = loss.item();
      if (!std::isfinite(value))
        throw Error(o.label + ": the loss became " + std::to_string(value) + " at epoch " +
                    std::to_string(epoch + 1) + "; lower the learning rate");
      loss.backward();
      head.step(result.lr_used * f);
      if (o.fine_tune) body.step(result.backbone_lr_used * f);
      loss_sum += value;
      ++batches;
      ++result.steps;
      images += b->n;
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last_line).count() > 30) {
        last_line = now;
        std::printf("%s: epoch %d/%d step %d/%d loss %.4f\n", o.label.c_str(), epoch + 1, o.epochs, batches,
                    steps_per_epoch, value);
        std::fflush(stdout);
      }
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (batches == 0) break;
    result.final_loss = loss_sum / batches;
    result.epochs_run = epoch + 1;
    std::printf("%s: epoch %d/%d loss %.4f\n", o.label.c_str(), epoch + 1, o.epochs, result.final_loss);
    std::fflush(stdout);
  }
  result.images_per_s = seconds > 0 ? double(images) / seconds : 0;

  // Validation: Resize + CenterCrop, backbone in evaluation mode.
  backbone.eval();
  NoGradGuard no_grad;
  LoaderConfig vc = imagenet_eval_loader_config(std::min(o.batch_size, 256), o.workers);
  vc.center_crop = center_crop_for(o.image_size);
  vc.views.view1.out_size = o.image_size;
  Loader val_loader(val, vc);
  std::vector<float> logits;
  std::vector<int32_t> labels;
  val_loader.start_epoch(0);
  while (const Batch* b = val_loader.next()) {
    Tensor x = Tensor::from_floats(b->view1, {b->n, b->height, b->width, b->channels});  // NHWC
    if (o.device != Device::cpu) x = x.to(o.device);
    const std::vector<float> l = classifier.forward(backbone.forward(x)).to_floats();  // (n, classes)
    logits.insert(logits.end(), l.begin(), l.end());
    labels.insert(labels.end(), b->labels, b->labels + b->n);
  }
  result.top1 = top_k_accuracy(logits, labels, classes, 1);
  result.top5 = top_k_accuracy(logits, labels, classes, std::min(5, classes));
  return result;
}

}  // namespace intl::train
