// The training loop shared by pre-training and the studies that train a network: steps with a schedule,
// a progress line, a per-epoch record in a result Run, checkpoints keeping the newest N, exact resumption,
// Ctrl-C (SIGINT / SIGTERM: checkpoint, then stop) and divergence (stop, keep the last good checkpoint, record
// an event "divergence"). The model, optimizer, loader, schedule and loss are parameters.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "engine/optim/optimizer.h"
#include "models/module.h"
#include "results/result.h"
#include "train/checkpoint.h"

namespace intl::train {

struct TrainerParts {
  Module* model = nullptr;          // parameters and buffers are checkpointed
  Optimizer* optimizer = nullptr;   // state and step count are checkpointed
  Loader* loader = nullptr;         // training batches; the loop calls start_epoch(epoch, step)
  std::function<double(int64_t global_step)> learning_rate;
  // The loss of one batch, with its graph (the loop calls backward and the optimizer).
  std::function<Tensor(const Batch& batch)> loss;
  // Optional. After epoch e (0-based) when (e + 1) % eval_every == 0: metrics by name, each appended to the
  // curve of that name at x = e + 1. The model is in training mode before and must be after.
  std::function<std::map<std::string, double>(int epoch)> evaluate;
  // Optional. After every step: the global step just done (1-based), its loss and learning rate.
  std::function<void(int64_t global_step, double loss, double lr)> on_step;
  // Optional, together: the caller's own sums over the epoch in progress (a study's per-step spectra, say),
  // stored in every checkpoint and given back on resume, so that a resumed epoch records what the
  // uninterrupted one would have.
  std::function<nlohmann::json()> save_epoch_state;
  std::function<void(const nlohmann::json&)> restore_epoch_state;
};

struct TrainerConfig {
  int epochs = 1;
  int64_t max_steps = -1;        // stop after this many steps in all, with a checkpoint (resumable); -1: none
  int eval_every = 0;            // 0: no evaluation during training
  std::string checkpoint_dir;    // "" : no checkpoints
  int keep = 2;                  // checkpoints kept (the newest)
  std::string resume_from;       // a checkpoint to continue from; "" : a fresh run
  nlohmann::json recipe;         // the options that define the training: stored, and must match on resume
  nlohmann::json model_description;  // stored in checkpoints (what `intl eval` needs to rebuild the network)
  int images_per_step = 0;       // for images/s: batch size x views
  double log_every_s = 30;       // seconds between plain progress lines (not on a terminal)
  std::string label = "train";   // progress line prefix
  bool handle_signals = true;    // SIGINT / SIGTERM checkpoint and stop
  // For studies whose subject is numerical failure (whiten-instability): a step whose loss or gradient is not
  // finite, or whose loss or backward throws (an eigensolver's NumericalError counts even at the first step),
  // ends the run as a result - an event "crash" at that step instead of "divergence", status diverged, and
  // no advice printed.
  bool crash_is_result = false;
};

enum class TrainStatus { finished, interrupted, diverged };

struct TrainOutcome {
  TrainStatus status = TrainStatus::finished;
  TrainPosition position;
  std::string last_checkpoint;   // the newest checkpoint on disk ("" if none)
  std::string message;           // for interrupted and diverged: what happened and what to do
  double images_per_s = 0;       // over the steps this process ran
  double step_seconds = 0;       // time in training steps in this process
};

// What the loop is given is all it knows: the model and optimizer (their tensors are checkpointed), the
// loader (its (epoch, step) is the data-order state), the schedule (a pure function of the global step) and
// a loss function. With those restored, a resumed run repeats the uninterrupted one bit for bit on the CPU
// (same seed, same thread count): every random choice is a function of (seed, epoch, step).
//
// Runs the loop from the start or from config.resume_from. Appends curves and events to `run` (on resume,
// first restores the curves, arrays and events saved in the checkpoint) and calls `publish()` after every
// epoch and when stopping, so a result file written there follows the checkpoints. A fresh run refuses a
// checkpoint_dir that already holds checkpoints (UsageError: resume it or choose another folder).
TrainOutcome train_loop(const TrainerParts& parts, const TrainerConfig& config, results::Run& run,
                        const std::function<void()>& publish);

// Keys whose values differ between two recipes, as "key: checkpoint A, now B" lines ("" when they agree).
std::string recipe_differences(const nlohmann::json& saved, const nlohmann::json& now);

}  // namespace intl::train
