// `intl pretrain cifar10|cifar100|imagenet100|imagenet`: the INTL benchmark recipes of SPEC 3.4 (defaults
// below are CIFAR's; the command line applies ImageNet-100's Table C and ImageNet's E.2 for options left unset)
// run by the training loop of train/trainer.h, then kNN and linear evaluation. Every number is an option;
// experiments/*.json hold the paper's recipes. docs/pretrain.md and docs/imagenet.md are the user's guides.
//
// ImageNet-style data (SPEC 4): DIR/train/CLASS/*.JPEG and DIR/val/CLASS/*.JPEG (data/image_folder.h), an
// optional classes file (ImageNet-100), and a policy for images that do not decode (skipped ones are counted
// in the result file as metrics skipped_images / skipped_val_images, and listed in an event).
// --ema adds the momentum target network (SPEC 2: m0 0.996 rising to 1 on a half cosine over the epochs);
// --multi-crop uses Table B's six crops. With --ema, the loss is the multi-crop loss of SPEC 2: crop 0 through
// the momentum network gives the target k, the other crops the online outputs q_i;
// L = mean_i [norm_mse(q_i, k) + beta INTL(q_i)]. --multi-crop alone is the authors' methods/intl.py: every
// crop online, crop 0 the anchor with its gradient; L = mean_i [norm_mse(t_i, t_0) + beta (INTL(t_i) + INTL(t_0))].
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/ssl_model.h"

namespace intl::train {

struct PretrainOptions {
  std::string dataset = "cifar10";
  std::string data_dir;
  SslModelConfig model;          // arch, stem, base width, projector widths (seed set from `seed`)
  int T = 4;                     // IterNorm iterations
  IntlLossForm loss_form = IntlLossForm::automatic;  // how the two-view loss is computed (same value)
  double beta = 0;               // trace-loss weight; 0: 0.01 (log2(batch) - 3)
  int epochs = 1000;
  int batch_size = 256;
  double lr = 0.3;               // per 256 images: the rate used is lr x batch / 256
  double momentum = 0.9;
  double weight_decay = 1e-4;
  double warmup_epochs = 2;
  double final_lr_ratio = 0.001;
  int image_size = 32;           // side of the training crops and evaluation images
  int train_images = 0;          // 0: the whole training split; N: its first N images
  int test_images = 0;           // likewise for the test split
  int workers = 2;               // loader threads
  int eval_every = 5;            // kNN accuracy every this many epochs (0: only at the end)
  int knn_k = 5;
  std::vector<std::string> final_eval = {"knn", "linear"};  // after training; {} or {"none"}: nothing
  int linear_epochs = 500;
  int keep = 2;
  bool resume = false;           // continue from the newest checkpoint in <out>/checkpoints
  std::string resume_from;       // or from this checkpoint
  double log_every = 30;         // seconds between progress lines when not on a terminal
  int64_t max_steps = -1;        // stop after this many steps in all (scaled-down checks); -1: none
  std::string device = "auto";
  uint64_t seed = 0;
  std::string out;               // result folder; "" : runs/pretrain-<dataset>-<time>
  // ImageNet-style folders
  std::string classes_file;      // restrict to these classes (ImageNet-100: experiments/imagenet100_classes.txt)
  std::string on_bad_image = "skip";  // skip | fail, for images that do not decode
  bool ema = false;              // momentum target network
  double ema_momentum = 0.996;   // m0
  bool multi_crop = false;       // Table B's six crops
  bool decay_1d = true;          // false: no weight decay on 1-D parameters (biases, batch-norm)
  // ImageNet linear protocol (SPEC 3.4) at the end of an image-folder run
  double linear_lr = 0;          // per 256 images; 0: 0.2, or 0.4 for a multi-crop + EMA model
  int linear_batch_size = 256;
};

// The base learning rate (per 256 images) of the paper's recipe: CIFAR 0.3, ImageNet-100 0.5, ImageNet by
// epoch budget (0.5 up to 100 epochs, 0.4 up to 400, 0.3 beyond).
double recipe_base_lr(const std::string& dataset, int epochs);
bool is_image_folder_dataset(const std::string& dataset);  // imagenet | imagenet100

// The options as the result file's config (option names as keys), and the part that defines the training
// (stored in checkpoints, must match on resume).
nlohmann::json pretrain_options_json(const PretrainOptions& options);
nlohmann::json pretrain_recipe_json(const PretrainOptions& options);

enum class PretrainStatus { finished, interrupted, diverged };
struct PretrainOutcome {
  PretrainStatus status = PretrainStatus::finished;
  std::string result_path;   // <out>/RESULT.json
  std::string message;       // what happened, when not finished
};

// Trains (or resumes), evaluates and writes <out>/RESULT.json, the figure, checkpoints and
// <out>/backbone.safetensors. Usage problems are UsageError; a diverged run writes its result and returns
// diverged (the caller fails with the message).
PretrainOutcome run_pretrain(const PretrainOptions& options);

}  // namespace intl::train
