// `intl eval knn|linear|semi --checkpoint C --data-dir D`: evaluates a pre-trained backbone and writes the
// metrics (in percent) to <out>/RESULT.json, comparable with experiments/paper/*.json.
// - knn: 5-NN on frozen features of the non-augmented images (CIFAR as stored; image folders through
//   Resize + CenterCrop), knn5_top1.
// - linear --protocol cifar: W-MSE's classifier on frozen features (Adam, 500 epochs); --protocol imagenet
//   (the default for image folders): SGD on augmented images through the frozen backbone, 100 epochs, x0.1 at
//   60 and 80 (train/supervised.h). linear_top1 / linear_top5.
// - semi: fine-tunes backbone and classifier on 1% or 10% of the labels (--subset-file), 20 epochs, cosine;
//   semi_top1 / semi_top5.
// For image folders, options left unset take the protocol's values, not the CIFAR defaults --help shows.
// --out is checked before any work: a folder that already holds a RESULT.json is refused unless --overwrite.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "data/image_folder.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "models/safetensors.h"
#include "results/out_dir.h"
#include "results/result.h"
#include "train/evaluation.h"
#include "train/pretrain.h"
#include "train/supervised.h"

namespace intl::cli {
namespace {

struct EvalCommandOptions {
  std::string mode;  // knn | linear
  std::string checkpoint, data_dir, dataset;
  train::SslModelConfig fallback;  // for plain weight files
  int k = 5;
  std::string distance = "euclidean";
  bool weighted = false;
  double temperature = 0.1;
  int epochs = 500, batch_size = 1000;
  double lr = 1e-2, final_lr = 1e-6, weight_decay = 5e-6;
  int image_size = 32, train_images = 0, test_images = 0, workers = 2;
  // image folders, ImageNet protocols
  std::string protocol;             // linear: cifar | imagenet ("" : by dataset)
  std::string classes_file, on_bad_image = "skip", subset_file;
  int percent = 10;                 // semi
  double backbone_lr = 0;           // semi: per 256 images; 0: 0.006, or 0.004 for multi-crop + EMA models
  double momentum = 0.9;
  int64_t max_steps = -1;
  bool overwrite = false;  // replace a RESULT.json already in --out
  CLI::App* cmd = nullptr;
  CommonOptions common;
};

bool unset(const EvalCommandOptions& o, const char* name) {
  CLI::Option* opt = o.cmd->get_option_no_throw(name);
  return !opt || opt->count() == 0;
}

// The folder RESULT.json goes to (--out, or runs/eval-MODE-TIME), checked before any work: it is a folder or
// can be created as one, the nearest existing folder on its path is writable, and it holds no RESULT.json
// unless --overwrite. Nothing is created here; save_result creates the folder at the end.
std::string checked_out_dir(const EvalCommandOptions& o) {
  const std::string out = o.common.out.empty() ? results::default_out_dir("eval-" + o.mode) : o.common.out;
  results::check_out_dir(out);
  if (!o.overwrite) results::refuse_existing_result(out, "pass --overwrite to replace it, or choose another --out");
  return out;
}

// A checkpoint that describes its network (a training checkpoint, or backbone.safetensors of `intl pretrain`)
// is built as it says; --arch, --stem and --base-width given explicitly with other values are refused, as
// resuming with other options is, so that a result never reports one network under another's options.
void check_model_options(const EvalCommandOptions& o, const train::LoadedBackbone& loaded) {
  std::string conflicts;
  auto compare = [&](const char* name, const std::string& given, const std::string& in_file) {
    if (!unset(o, name) && given != in_file)
      conflicts += (conflicts.empty() ? "" : ", ") + std::string(name) + " " + given + " (the file: " + in_file + ")";
  };
  compare("--arch", o.fallback.arch, loaded.config.arch);
  compare("--stem", o.fallback.stem, loaded.config.stem);
  compare("--base-width", std::to_string(o.fallback.base_width), std::to_string(loaded.config.base_width));
  if (!conflicts.empty())
    throw UsageError("'" + o.checkpoint + "' describes its own network, and the command line contradicts it: " +
                     conflicts + "; --arch, --stem and --base-width are for plain weight files: drop them");
}

// Weights holding NaN or inf give meaningless metrics (every distance NaN, every logit NaN): refused.
void check_finite_weights(const std::string& path, const ResNet& backbone) {
  NamedTensorList tensors = backbone.named_parameters();
  for (auto& nt : backbone.named_buffers()) tensors.push_back(nt);
  const std::string bad = first_non_finite_tensor(tensors);
  if (!bad.empty())
    throw Error("'" + path + "': backbone tensor '" + bad + "' holds non-finite values (NaN or inf); the run that "
                "wrote it diverged: evaluate an earlier checkpoint");
}

// Evaluation on ImageNet-style folders: kNN on center-crop features, the ImageNet linear protocol, or
// semi-supervised fine-tuning.
std::map<std::string, double> eval_image_folder(EvalCommandOptions& o, train::LoadedBackbone& loaded, Device device,
                                                nlohmann::json& config) {
  const bool multi_crop_ema = loaded.recipe.is_object() && loaded.recipe.value("ema", false) &&
                              loaded.recipe.value("multi-crop", false);
  if (unset(o, "--image-size")) o.image_size = 224;
  if (unset(o, "--workers")) o.workers = 8;
  ImageFolderOptions fo;
  fo.on_bad_image = parse_bad_image_policy(o.on_bad_image);
  fo.classes_file = o.classes_file;
  fo.max_images = o.test_images;
  const ImageFolder val(image_folder_split_dir(o.data_dir, Split::test), fo);
  fo.max_images = o.train_images;
  if (o.mode == "semi") {
    if (o.percent != 1 && o.percent != 10) throw UsageError("--percent takes 1 or 10");
    if (!o.subset_file.empty()) {
      fo.subset_file = o.subset_file;
    } else {  // no list: percent of the images, round-robin over the classes
      const ImageFolder all(image_folder_split_dir(o.data_dir, Split::train), fo);
      fo.max_images = std::max(all.num_classes(), int(std::lround(all.size() * o.percent / 100.0)));
      std::printf("semi: no --subset-file; using %d of %d images (%d%%, round-robin over the classes)\n",
                  fo.max_images, all.size(), o.percent);
    }
  }
  const ImageFolder train_folder(image_folder_split_dir(o.data_dir, Split::train), fo);
  if (train_folder.classes() != val.classes())
    throw Error(o.data_dir + ": train/ and val/ hold different class folders; they must match");
  config["classes_used"] = train_folder.num_classes();
  config["train-images"] = train_folder.size();
  config["test-images"] = val.size();
  config["image-size"] = o.image_size;
  config["on-bad-image"] = o.on_bad_image;
  if (!o.classes_file.empty()) config["classes"] = o.classes_file;
  std::map<std::string, double> metrics;
  if (o.mode == "knn") {
    train::EvalOptions e;
    e.linear = false;
    e.knn_options.k = o.k;
    e.knn_options.distance = train::parse_knn_distance(o.distance);
    e.knn_options.weighted = o.weighted;
    e.knn_options.temperature = o.temperature;
    e.features = train::FeatureOptions{256, o.workers, o.image_size, device, train::center_crop_for(o.image_size)};
    metrics = train::evaluate_backbone(*loaded.backbone, train_folder, val, e);
  } else {
    train::SupervisedOptions so;
    so.fine_tune = o.mode == "semi";
    so.epochs = unset(o, "--epochs") ? (so.fine_tune ? 20 : 100) : o.epochs;
    so.batch_size = unset(o, "--batch-size") ? 256 : o.batch_size;
    so.lr = unset(o, "--lr") ? (so.fine_tune ? 0.2 : multi_crop_ema ? 0.4 : 0.2) : o.lr;
    so.backbone_lr = o.backbone_lr > 0 ? o.backbone_lr : multi_crop_ema ? 0.004 : 0.006;
    so.momentum = o.momentum;
    so.weight_decay = unset(o, "--weight-decay") ? 0.0 : o.weight_decay;
    so.schedule = so.fine_tune ? "cosine" : "step";
    so.image_size = o.image_size;
    so.workers = o.workers;
    so.max_steps = o.max_steps;
    so.seed = o.common.seed;
    so.device = device;
    so.label = o.mode == "semi" ? "semi " + std::to_string(o.percent) + "%" : "linear";
    const train::SupervisedResult r = train::train_classifier(*loaded.backbone, train_folder, val, so);
    const std::string prefix = o.mode == "semi" ? "semi" : "linear";
    metrics[prefix + "_top1"] = r.top1;
    metrics[prefix + "_top5"] = r.top5;
    config["protocol"] = "imagenet";
    config["epochs"] = so.epochs;
    config["batch-size"] = so.batch_size;
    config["lr"] = so.lr;
    config["lr_used"] = r.lr_used;
    config["momentum"] = so.momentum;
    config["weight-decay"] = so.weight_decay;
    config["schedule"] = so.schedule;
    config["steps_run"] = r.steps;
    config["final_loss"] = r.final_loss;
    if (so.fine_tune) {
      config["percent"] = o.percent;
      config["subset-file"] = o.subset_file;
      config["backbone-lr"] = so.backbone_lr;
      config["backbone_lr_used"] = r.backbone_lr_used;
    } else {
      config["milestones"] = so.milestones;
    }
  }
  metrics["skipped_images"] = train_folder.skipped_images();
  metrics["skipped_val_images"] = val.skipped_images();
  return metrics;
}

void run_eval(EvalCommandOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  const std::string out = checked_out_dir(o);
  const Device device = resolve_device(o.common.device);
  train::LoadedBackbone loaded = train::load_backbone(o.checkpoint, o.fallback);
  check_model_options(o, loaded);
  check_finite_weights(o.checkpoint, *loaded.backbone);
  std::string dataset = o.dataset.empty() ? loaded.dataset : o.dataset;
  if (dataset.empty())
    throw UsageError("--dataset is needed: '" + o.checkpoint + "' does not say which dataset it was trained on");
  loaded.backbone->to(device);
  nlohmann::json config = {{"checkpoint", o.checkpoint}, {"data-dir", o.data_dir}, {"dataset", dataset},
                           {"model", train::ssl_model_config_to_json(loaded.config)}};
  std::map<std::string, double> metrics;
  if (train::is_image_folder_dataset(dataset)) {
    if (o.protocol == "cifar") throw UsageError("--protocol cifar is for the CIFAR datasets; image folders use imagenet");
    metrics = eval_image_folder(o, loaded, device, config);
  } else {
    if (o.mode == "semi" || o.protocol == "imagenet")
      throw UsageError("eval " + o.mode + (o.mode == "semi" ? "" : " --protocol imagenet") +
                       " needs an image-folder dataset (imagenet100, imagenet; set --dataset)");
    const CifarKind kind = parse_cifar_kind(dataset);
    const CifarDataset train = train::load_cifar_subset(o.data_dir, kind, Split::train, o.train_images);
    const CifarDataset test = train::load_cifar_subset(o.data_dir, kind, Split::test, o.test_images);
    train::EvalOptions e;
    e.knn = o.mode == "knn";
    e.linear = o.mode == "linear";
    e.knn_options.k = o.k;
    e.knn_options.distance = train::parse_knn_distance(o.distance);
    e.knn_options.weighted = o.weighted;
    e.knn_options.temperature = o.temperature;
    e.linear_options.epochs = o.epochs;
    e.linear_options.batch_size = o.batch_size;
    e.linear_options.lr_start = o.lr;
    e.linear_options.lr_end = o.final_lr;
    e.linear_options.weight_decay = o.weight_decay;
    e.linear_options.seed = o.common.seed;
    e.linear_options.lr_option = "--lr";
    e.features = train::FeatureOptions{256, o.workers, o.image_size, device, std::nullopt};
    metrics = train::evaluate_backbone(*loaded.backbone, train, test, e);
    config["train-images"] = train.size();
    config["test-images"] = test.size();
    config["image-size"] = o.image_size;
    if (e.linear) {
      config["protocol"] = "cifar";
      config["epochs"] = o.epochs;
      config["batch-size"] = o.batch_size;
      config["lr"] = o.lr;
      config["final-lr"] = o.final_lr;
      config["weight-decay"] = o.weight_decay;
    }
  }

  results::Result result;
  result.header = results::make_header("eval " + o.mode, "eval");
  result.header.device = device_name(device);
  result.header.seed = o.common.seed;
  result.config = config;
  results::add_compute_settings(result.config, device == Device::cuda);
  if (o.mode == "knn") {
    result.config["k"] = o.k;
    result.config["distance"] = o.distance;
    result.config["weighted"] = o.weighted;
    if (o.weighted) result.config["temperature"] = o.temperature;
  }
  results::Run run;
  run.name = "intl";
  run.metrics = metrics;
  result.runs.push_back(run);
  result.header.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const std::string path = (std::filesystem::path(out) / "RESULT.json").string();
  results::save_result(result, path);
  for (const auto& [name, value] : metrics) std::printf("%s: %.2f\n", name.c_str(), value);
  std::printf("result: %s\n", path.c_str());
}

void add_mode(CLI::App& eval, const std::string& mode, const std::string& help) {
  auto o = std::make_shared<EvalCommandOptions>();
  o->mode = mode;
  auto* cmd = eval.add_subcommand(mode, help);
  cmd->add_option("--checkpoint", o->checkpoint, "a checkpoint of `intl pretrain`, or backbone weights (safetensors)")
      ->required();
  o->cmd = cmd;
  cmd->add_option("--data-dir", o->data_dir,
                  "CIFAR: folder holding the binary files; ImageNet: folder holding train/CLASS/* and val/CLASS/*")
      ->required();
  cmd->add_option("--dataset", o->dataset, "cifar10 | cifar100 | imagenet100 | imagenet (default: the checkpoint's)");
  cmd->add_option("--classes", o->classes_file, "image folders: keep only the classes named in FILE, one per line");
  cmd->add_option("--on-bad-image", o->on_bad_image, "image folders: skip (counted) or fail on an image that does not decode")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_option("--arch", o->fallback.arch, "backbone of a plain weights file")->capture_default_str();
  cmd->add_option("--stem", o->fallback.stem, "stem of a plain weights file: cifar | imagenet")->capture_default_str();
  cmd->add_option("--base-width", o->fallback.base_width, "base width of a plain weights file")->capture_default_str();
  cmd->add_option("--image-size", o->image_size,
                  "images are resized to this side (image folders: crop side, 224 by default, Resize(side x 256 / 224))")
      ->check(positive())
      ->check(CLI::Validator(
          [](std::string& v) { return std::stod(v) <= 4096 ? std::string() : "must be at most 4096, found " + v; },
          "<= 4096"))
      ->capture_default_str();
  cmd->add_option("--train-images", o->train_images,
                  "use N training images (0: all): CIFAR's first N, an image folder's N round-robin over its classes")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("--test-images", o->test_images, "use N test images (0: all), taken as --train-images")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("--workers", o->workers, "data loader threads")->check(non_negative())->capture_default_str();
  if (mode == "knn") {
    cmd->add_option("--k", o->k, "neighbours")->check(positive())->capture_default_str();
    cmd->add_option("--distance", o->distance, "euclidean | cosine")
        ->check(CLI::IsMember({"euclidean", "cosine"}))
        ->capture_default_str();
    cmd->add_flag("--weighted", o->weighted,
                  "weighted vote exp(similarity / temperature) (InstDisc's kNN: use with --k 200 --distance cosine)");
    cmd->add_option("--temperature", o->temperature, "temperature of the weighted vote")
        ->check(positive())
        ->capture_default_str();
  } else {
    if (mode == "linear")
      cmd->add_option("--protocol", o->protocol,
                      "cifar: W-MSE's classifier on frozen features (Adam); imagenet: SGD on augmented images, "
                      "100 epochs, x0.1 at 60 and 80 (default: by dataset)")
          ->check(CLI::IsMember({"cifar", "imagenet"}));
    if (mode == "semi") {
      cmd->add_option("--percent", o->percent, "1 or 10: the labelled fraction")->capture_default_str();
      cmd->add_option("--subset-file", o->subset_file,
                      "image file names, one per line (SimCLR's 1percent.txt / 10percent.txt); unset: --percent of "
                      "the images, round-robin over the classes");
      cmd->add_option("--backbone-lr", o->backbone_lr,
                      "backbone rate per 256 images (0: 0.006, or 0.004 for multi-crop + EMA models)")
          ->check(non_negative())
          ->capture_default_str();
    }
    cmd->add_option("--momentum", o->momentum, "SGD momentum (ImageNet protocols)")
        ->check(non_negative())
        ->capture_default_str();
    cmd->add_option("--max-steps", o->max_steps, "stop training after this many steps (checks)")->group("");
    cmd->add_option("--epochs", o->epochs, "epochs of the classifier (ImageNet protocols: 100 linear, 20 semi)")
        ->check(positive())
        ->capture_default_str();
    cmd->add_option("--batch-size", o->batch_size, "batch size")->check(positive())->capture_default_str();
    cmd->add_option("--lr", o->lr,
                    "CIFAR: Adam rate at the start; ImageNet: classifier SGD rate per 256 images (0.2; linear 0.4 "
                    "for multi-crop + EMA models)")
        ->check(positive())
        ->capture_default_str();
    cmd->add_option("--final-lr", o->final_lr, "learning rate reached at the end (exponential decay per epoch)")
        ->check(positive())
        ->capture_default_str();
    cmd->add_option("--weight-decay", o->weight_decay, "Adam weight decay")
        ->check(non_negative())
        ->capture_default_str();
  }
  cmd->add_flag("--overwrite", o->overwrite, "replace a RESULT.json already in --out (without it, such a folder is "
                "refused)");
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* eval = app.add_subcommand("eval", "evaluate a pre-trained backbone: knn | linear | semi");
  eval->require_subcommand(1);
  add_mode(*eval, "semi", "semi-supervised: fine-tune backbone + classifier on 1% / 10% of the labels (image folders)");
  add_mode(*eval, "knn", "k-nearest-neighbour accuracy on frozen features (default: 5-NN, Euclidean, majority vote)");
  add_mode(*eval, "linear", "linear classifier on frozen features (Adam 1e-2 -> 1e-6 over 500 epochs, batch 1000)");
}

}  // namespace intl::cli
