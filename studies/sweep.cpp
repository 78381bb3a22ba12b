// The sweep driver of studies/sweep.h: the study's data, its output folder and result header, and which runs
// a resumed folder already finished.
#include "studies/sweep.h"

#include <cctype>
#include <cstdio>
#include <filesystem>

#include "engine/backend.h"
#include "engine/error.h"
#include "plot/figures.h"
#include "results/out_dir.h"
#include "train/checkpoint.h"

namespace intl::studies {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kSyntheticTrain = 5000, kSyntheticTest = 1000;

CifarDataset first_images(CifarDataset data, int limit) {
  if (limit > 0 && limit < data.size()) {
    data.labels.resize(size_t(limit));
    data.pixels.resize(size_t(limit) * CifarDataset::kImageBytes);
  }
  return data;
}

// Options that do not change what is trained: a resumed sweep may differ in them.
bool ignored_on_resume(const std::string& key) {
  return key == "out" || key == "resume" || key == "workers" || key == "device" || key == "log-every" ||
         key == "precision" || key == "loss-form";
}


}  // namespace

StudyData load_study_data(const std::string& dataset, const std::string& data_dir, int train_images,
                          int test_images, uint64_t seed, const std::string& out_dir) {
  StudyData d;
  if (dataset == "synthetic") {
    const int n_train = train_images > 0 ? train_images : kSyntheticTrain;
    const int n_test = test_images > 0 ? test_images : kSyntheticTest;  // written even when not loaded
    if (n_train < 5) throw UsageError("--train-images: the synthetic set needs at least 5 training images");
    const std::string dir = (fs::path(out_dir) / "synthetic-cifar10").string();
    make_synthetic_cifar(dir, CifarKind::cifar10, n_train, n_test, seed);
    d.train = load_cifar(dir, CifarKind::cifar10, Split::train);
    if (test_images >= 0) d.test = load_cifar(dir, CifarKind::cifar10, Split::test);
    d.description = "synthetic (" + dir + ")";
  } else if (dataset == "cifar10") {
    if (data_dir.empty())
      throw UsageError("--data-dir is required with --dataset cifar10: the folder holding data_batch_1.bin ... "
                       "test_batch.bin (or --dataset synthetic)");
    d.train = first_images(load_cifar(data_dir, CifarKind::cifar10, Split::train), train_images);
    if (test_images >= 0) d.test = first_images(load_cifar(data_dir, CifarKind::cifar10, Split::test), test_images);
    d.description = "cifar10 from " + data_dir;
  } else if (dataset == "imagenet") {
    if (data_dir.empty()) throw UsageError("--data-dir is required with --dataset imagenet: the folder holding train/");
    if (test_images >= 0)
      throw UsageError("--dataset imagenet: this study evaluates on CIFAR-10 only; use --dataset cifar10 or synthetic");
    d.folder = std::make_unique<ImageFolder>((fs::path(data_dir) / "train").string());
    d.description = "imagenet from " + data_dir;
    d.description += ": " + std::to_string(d.folder->size()) + " training images";
    return d;
  } else {
    throw UsageError("--dataset: '" + dataset + "' is not one of cifar10, imagenet, synthetic");
  }
  d.description += ": " + std::to_string(d.train.size()) + " training images";
  if (test_images >= 0) d.description += ", " + std::to_string(d.test.size()) + " test images";
  return d;
}

std::string run_folder_name(const std::string& run_name) {
  std::string s = run_name;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return s;
}

Sweep::Sweep(const std::string& study, const std::string& command, const std::string& out, bool resume,
             Device device, uint64_t seed, const json& config)
    : study_(study), out_(out), resume_(resume), start_(std::chrono::steady_clock::now()) {
  if (resume && !fs::exists(result_path()))
    throw UsageError("--resume: '" + result_path() + "' does not exist; run without --resume to start the study");
  if (!resume) results::refuse_existing_result(out, "pass --resume to continue it, or choose another --out");
  results::prepare_out_dir(out);
  if (resume) {
    const results::Result saved = results::load_result(result_path());
    std::string diff;
    for (const auto& [key, value] : config.items())
      if (!ignored_on_resume(key) && (!saved.config.contains(key) || saved.config.at(key) != value))
        diff += "  " + key + ": saved " + (saved.config.contains(key) ? saved.config.at(key).dump() : "(not set)") +
                ", now " + value.dump() + "\n";
    if (saved.header.study != study) diff += "  study: saved " + saved.header.study + ", now " + study + "\n";
    if (!diff.empty())
      throw UsageError("--resume: '" + result_path() + "' was written with other options:\n" + diff +
                       "resume with the same options (or --config), or start a new study in another --out");
    for (const results::Run& r : saved.runs)
      if (r.extra.contains("status")) result_.runs.push_back(r);
    wall_before_ = saved.header.wall_s;
  }
  result_.header = results::make_header(command, study);
  result_.header.device = device_name(device);
  result_.header.device_name = results::device_description(device != Device::cpu);
  result_.header.seed = seed;
  result_.config = config;
  results::add_compute_settings(result_.config, device == Device::cuda);
}

std::string Sweep::result_path() const { return (fs::path(out_) / "RESULT.json").string(); }

bool Sweep::finished(const std::string& run_name) const {
  const results::Run* r = result_.find_run(run_name);
  return r && r->extra.contains("status");
}

results::Run& Sweep::begin_run(const std::string& run_name, const json& run_config) {
  check(!finished(run_name), "Sweep: run '" + run_name + "' is already finished");
  results::Run run;
  run.name = run_name;
  run.config = run_config;
  result_.runs.push_back(std::move(run));
  return result_.runs.back();
}

std::string Sweep::checkpoint_dir(const std::string& run_name) const {
  return (fs::path(out_) / "checkpoints" / run_folder_name(run_name)).string();
}

std::string Sweep::resume_checkpoint(const std::string& run_name) const {
  if (!resume_) return "";
  return train::latest_checkpoint(checkpoint_dir(run_name));
}

train::TrainOutcome Sweep::train_run(const std::string& run_name, const train::TrainerParts& parts,
                                     train::TrainerConfig config, bool checkpoints, results::Run& run) {
  if (checkpoints) {
    config.checkpoint_dir = checkpoint_dir(run_name);
    config.resume_from = resume_checkpoint(run_name);
    config.keep = 1;
  }
  config.label = study_ + " " + run_name;
  const train::TrainOutcome outcome = train::train_loop(parts, config, run, [&] { publish(); });
  if (outcome.status == train::TrainStatus::interrupted)
    throw Interrupted(study_ + ": " + outcome.message +
                      (checkpoints ? "" : "; the same command with --resume keeps the finished runs and restarts "
                                          "this one"));
  return outcome;
}

void Sweep::finish_run(const std::string& run_name, const std::string& status) {
  for (results::Run& r : result_.runs)
    if (r.name == run_name) r.extra["status"] = status;
}

void Sweep::publish() {
  result_.header.wall_s =
      wall_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  results::save_result(result_, result_path());
}

void Sweep::write_figures() const {
  const std::vector<std::string> figures = plot::write_study_figures(result_, out_);
  std::printf("wrote %s", result_path().c_str());
  for (const std::string& f : figures) std::printf(", %s", f.c_str());
  std::printf("\n");
}

}  // namespace intl::studies
