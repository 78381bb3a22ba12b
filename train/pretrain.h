// `intl pretrain cifar10|cifar100`: the INTL benchmark recipe of SPEC 3.4 (defaults below are the paper's)
// run by the training loop of train/trainer.h, then kNN and linear evaluation. Every number is an option;
// experiments/cifar10.json and cifar100.json hold the paper's recipes. docs/pretrain.md is the user's guide.
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
};

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
