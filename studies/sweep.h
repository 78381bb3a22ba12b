// A study that trains several networks one after another (whiten-instability over d and seeds, iternorm-cifar
// over T and the trace loss) into one RESULT.json: the output folder, the result header, publishing, one
// checkpoint folder per run, and resumption - runs a resumed folder already finished are kept as they are,
// and the first unfinished one continues from its newest checkpoint. The training itself is train_loop's.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "data/cifar.h"
#include "data/image_folder.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "results/out_dir.h"
#include "results/result.h"
#include "train/trainer.h"

namespace intl::studies {

// Training (and test) images of a study: CIFAR-10 from a folder (the first train_images / test_images of
// each split when > 0), synthetic images (data/cifar.h's generator, 10 classes, written once to
// <out>/synthetic-cifar10 so the run can be repeated from the files; default 5000 / 1000 images), or an
// ImageNet folder (DIR/train, decoded on the loader's workers; training split only, every image).
// test_images < 0: the test split is not needed and stays empty.
struct StudyData {
  CifarDataset train, test;                // CIFAR-10 and synthetic
  std::unique_ptr<ImageFolder> folder;     // ImageNet
  std::string description;  // e.g. "cifar10 from DIR: 50000 training, 10000 test images"
  const ImageSource& train_source() const { return folder ? static_cast<const ImageSource&>(*folder) : train; }
};
StudyData load_study_data(const std::string& dataset, const std::string& data_dir, int train_images,
                          int test_images, uint64_t seed, const std::string& out_dir);

// Thrown by a study whose run was stopped by SIGINT / SIGTERM (after its checkpoint): the command exits 130.
struct Interrupted : Error {
  using Error::Error;
};

// The run's folder name: letters, digits, '-', '_' and '.' kept, anything else '_' ("d=64 seed=0" ->
// "d_64_seed_0").
std::string run_folder_name(const std::string& run_name);

class Sweep {
 public:
  // Creates (or, with resume, reopens) `out` and the result. `config` holds the fully resolved options; a
  // resumed folder's RESULT.json must have been written with the same config apart from the keys that do
  // not change what is trained (out, resume, workers, device, log-every), else UsageError listing the
  // differences.
  Sweep(const std::string& study, const std::string& command, const std::string& out, bool resume, Device device,
        uint64_t seed, const nlohmann::json& config);

  results::Result& result() { return result_; }
  const std::string& out_dir() const { return out_; }
  std::string result_path() const;

  // Whether a resumed folder holds this run finished (it is kept and not trained again).
  bool finished(const std::string& run_name) const;
  // A fresh entry for the run (replacing an unfinished one of a resumed folder; the training loop restores
  // its history from the checkpoint). The reference stays valid until the next begin_run.
  results::Run& begin_run(const std::string& run_name, const nlohmann::json& run_config);
  // The run's checkpoint folder (<out>/checkpoints/<run folder name>) and, when resuming, the checkpoint
  // to continue from ("" for a fresh start).
  std::string checkpoint_dir(const std::string& run_name) const;
  std::string resume_checkpoint(const std::string& run_name) const;
  // Trains the run with train_loop, publishing RESULT.json as it goes. `config` gets what every study run
  // shares: with checkpoints, the run's own folder, one checkpoint kept and, when resuming, the newest to
  // continue from; progress lines labelled "<study> <run name>". A run stopped by a signal throws
  // Interrupted, saying how to continue.
  train::TrainOutcome train_run(const std::string& run_name, const train::TrainerParts& parts,
                                train::TrainerConfig config, bool checkpoints, results::Run& run);
  // Marks the run finished (status "finished", "crashed", "diverged") so a resumed sweep keeps it.
  void finish_run(const std::string& run_name, const std::string& status);
  // Writes RESULT.json atomically, with the wall time so far.
  void publish();
  // At the end of the study: writes its figures beside RESULT.json and prints "wrote <files>".
  void write_figures() const;

 private:
  std::string study_;
  std::string out_;
  bool resume_ = false;
  results::Result result_;
  std::chrono::steady_clock::time_point start_;
  double wall_before_ = 0;  // wall time of the resumed runs
};

}  // namespace intl::studies
