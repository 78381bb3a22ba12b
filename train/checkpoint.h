// Training checkpoints: one safetensors file each, with the model ("model.<name>") and optimizer state
// ("optimizer.<slot>") as tensors and the rest (position in the data order and schedule, optimizer step
// count, history, recipe) as JSON metadata. Written atomically (temporary file, fsync, rename): a run killed
// at any moment leaves only whole checkpoints behind.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/optim/optimizer.h"
#include "models/module.h"

namespace intl::train {

// Where a run stands: the next batch to train on is batch `step_in_epoch` of epoch `epoch`, and
// `global_step` batches have been trained on so far (it is also the schedule's position).
struct TrainPosition {
  int epoch = 0;
  int step_in_epoch = 0;
  int64_t global_step = 0;
};

// Everything a checkpoint holds besides tensors.
struct CheckpointState {
  TrainPosition position;
  int64_t optimizer_steps = 0;
  nlohmann::json recipe = nlohmann::json::object();   // the options that define the training
  nlohmann::json progress = nlohmann::json::object(); // the loop's history (curves, partial-epoch sums)
  nlohmann::json model = nlohmann::json::object();    // what is needed to rebuild the network (arch, widths)
  // Where the run computed ("cpu, 2 threads", "cuda"): besides the recipe, what its bits depend on ("" in
  // checkpoints that predate it).
  std::string computed_on;
};

inline constexpr const char* checkpoint_format_name = "intl-checkpoint";
inline constexpr int checkpoint_format_version = 1;

// Writes model, optimizer (may be null) and state to `path` atomically.
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const CheckpointState& state);

// Reads a checkpoint's state (metadata only is validated; tensors are not copied anywhere).
CheckpointState read_checkpoint_state(const std::string& path);

// Restores model and optimizer (may be null) in place from `path` and returns the state. Every model and
// optimizer tensor must be present with the same shape and dtype, else intl::Error naming the file and the
// tensor; nothing is modified unless the whole checkpoint fits.
CheckpointState load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer);

// File name of a checkpoint at a position: "ckpt-e0005.safetensors" at an epoch boundary,
// "ckpt-e0005-s000123.safetensors" inside epoch 5.
std::string checkpoint_file_name(const TrainPosition& position);

// Checkpoints in `dir`, oldest first (by global step, read from the file names); missing dir: none.
std::vector<std::string> list_checkpoints(const std::string& dir);
// The newest checkpoint in `dir`, or "" when there is none.
std::string latest_checkpoint(const std::string& dir);
// Deletes all but the newest `keep` checkpoints (keep >= 1) and leftover temporary files of killed writes.
void prune_checkpoints(const std::string& dir, int keep);

}  // namespace intl::train
