// ImageNet evaluation protocols that train on augmented images (SPEC 3.4): the linear protocol (a classifier
// on the frozen backbone in evaluation mode) and semi-supervised fine-tuning (backbone and classifier on 1%
// or 10% of the labels). Both train with RandomResizedCrop + horizontal flip and report top-1 / top-5 on the
// validation images through Resize + CenterCrop (256 / 224 at full size).
//
// The classifier is Linear(feature_dim, classes) with weight N(0, 0.01) and bias 0; SGD with momentum. The
// rates given are per 256 images: the rate used is lr x batch_size / 256 (both rates when fine-tuning).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_source.h"
#include "models/resnet.h"

namespace intl::train {

struct SupervisedOptions {
  bool fine_tune = false;        // false: the linear protocol (frozen backbone, eval mode)
  int epochs = 100;
  int batch_size = 256;
  double lr = 0.2;               // classifier, per 256 images
  double backbone_lr = 0.006;    // fine-tuning only, per 256 images
  double momentum = 0.9;
  double weight_decay = 0;
  std::string schedule = "step"; // step: x gamma at each milestone epoch; cosine: per step to 0
  std::vector<int> milestones = {60, 80};
  double gamma = 0.1;
  int image_size = 224;          // side of the training crops and of the validation center crop
  int workers = 4;
  int64_t max_steps = -1;        // stop training after this many steps in all (scaled-down checks)
  uint64_t seed = 0;             // classifier initialisation, batch order and augmentation
  Device device = Device::cpu;
  std::string label = "eval";    // prefix of the progress lines
};

struct SupervisedResult {
  double top1 = 0, top5 = 0;     // percent on the validation images
  double final_loss = 0;         // mean training loss of the last epoch run
  int64_t steps = 0;             // training steps run
  int epochs_run = 0;
  double images_per_s = 0;       // training throughput
  double lr_used = 0;            // the classifier's peak rate, lr x batch / 256 (what a result records)
  double backbone_lr_used = 0;   // fine-tuning: the backbone's, backbone_lr x batch / 256
};

// The learning-rate factor of the schedule at a step (1 at the start).
double supervised_lr_factor(const SupervisedOptions& options, int64_t step, int steps_per_epoch);

// Trains a classifier on `train` (and the backbone too when fine_tune) and measures it on `val`. The backbone
// must be on options.device; it is left in evaluation mode. Usage problems are UsageError.
SupervisedResult train_classifier(ResNet& backbone, const ImageSource& train, const ImageSource& val,
                                  const SupervisedOptions& options);

}  // namespace intl::train
