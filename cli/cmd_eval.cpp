// `intl eval knn|linear --checkpoint C --data-dir D`: evaluates a pre-trained backbone on frozen features of
// the non-augmented CIFAR images (SPEC 3.4, W-MSE protocol) and writes the metrics (knn5_top1 or
// linear_top1 / linear_top5, in percent) to <out>/RESULT.json, comparable with experiments/paper/*.json.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "cli/command.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "results/result.h"
#include "train/evaluation.h"

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
  CommonOptions common;
};

void run_eval(EvalCommandOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  const Device device = resolve_device(o.common.device);
  train::LoadedBackbone loaded = train::load_backbone(o.checkpoint, o.fallback);
  std::string dataset = o.dataset.empty() ? loaded.dataset : o.dataset;
  if (dataset.empty())
    throw UsageError("--dataset is needed: '" + o.checkpoint + "' does not say which dataset it was trained on");
  const CifarKind kind = parse_cifar_kind(dataset);
  loaded.backbone->to(device);
  const CifarDataset train = train::load_cifar_subset(o.data_dir, kind, Split::train, o.train_images);
  const CifarDataset test = train::load_cifar_subset(o.data_dir, kind, Split::test, o.test_images);

  train::EvalOptions e;
  e.knn = o.mode == "knn";
  e.linear = o.mode == "linear";
  e.knn_options.k = o.k;
  e.knn_options.distance = train::parse_knn_distance(o.distance);
  e.knn_options.weighted = o.weighted;
  e.knn_options.temperature = o.temperature;
  e.linear_options = train::LinearEvalOptions{o.epochs, o.batch_size, o.lr, o.final_lr, o.weight_decay, o.common.seed};
  e.features = train::FeatureOptions{256, o.workers, o.image_size, device};
  const std::map<std::string, double> metrics = train::evaluate_backbone(*loaded.backbone, train, test, e);

  results::Result result;
  result.header = results::make_header("eval " + o.mode, "eval");
  result.header.device = device_name(device);
  result.header.seed = o.common.seed;
  result.config = {{"checkpoint", o.checkpoint}, {"data-dir", o.data_dir}, {"dataset", dataset},
                   {"model", train::ssl_model_config_to_json(loaded.config)}, {"train-images", train.size()},
                   {"test-images", test.size()}, {"image-size", o.image_size}};
  if (e.knn) {
    result.config["k"] = o.k;
    result.config["distance"] = o.distance;
    result.config["weighted"] = o.weighted;
    if (o.weighted) result.config["temperature"] = o.temperature;
  } else {
    result.config["epochs"] = o.epochs;
    result.config["batch-size"] = o.batch_size;
    result.config["lr"] = o.lr;
    result.config["final-lr"] = o.final_lr;
    result.config["weight-decay"] = o.weight_decay;
  }
  results::Run run;
  run.name = "intl";
  run.metrics = metrics;
  result.runs.push_back(run);
  std::string out = o.common.out;
  if (out.empty()) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
    out = "runs/eval-" + o.mode + "-" + stamp;
  }
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
  cmd->add_option("--data-dir", o->data_dir, "folder holding the CIFAR binary files")->required();
  cmd->add_option("--dataset", o->dataset, "cifar10 | cifar100 (default: the checkpoint's)");
  cmd->add_option("--arch", o->fallback.arch, "backbone of a plain weights file")->capture_default_str();
  cmd->add_option("--stem", o->fallback.stem, "stem of a plain weights file: cifar | imagenet")->capture_default_str();
  cmd->add_option("--base-width", o->fallback.base_width, "base width of a plain weights file")->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "images are resized to this side")->capture_default_str();
  cmd->add_option("--train-images", o->train_images, "use the first N training images (0: all)")->capture_default_str();
  cmd->add_option("--test-images", o->test_images, "use the first N test images (0: all)")->capture_default_str();
  cmd->add_option("--workers", o->workers, "data loader threads")->capture_default_str();
  if (mode == "knn") {
    cmd->add_option("--k", o->k, "neighbours")->capture_default_str();
    cmd->add_option("--distance", o->distance, "euclidean | cosine")
        ->check(CLI::IsMember({"euclidean", "cosine"}))
        ->capture_default_str();
    cmd->add_flag("--weighted", o->weighted,
                  "weighted vote exp(similarity / temperature) (InstDisc's kNN: use with --k 200 --distance cosine)");
    cmd->add_option("--temperature", o->temperature, "temperature of the weighted vote")->capture_default_str();
  } else {
    cmd->add_option("--epochs", o->epochs, "epochs of the classifier")->capture_default_str();
    cmd->add_option("--batch-size", o->batch_size, "batch size")->capture_default_str();
    cmd->add_option("--lr", o->lr, "Adam learning rate at the start")->capture_default_str();
    cmd->add_option("--final-lr", o->final_lr, "learning rate reached at the end (exponential decay per epoch)")
        ->capture_default_str();
    cmd->add_option("--weight-decay", o->weight_decay, "Adam weight decay")->capture_default_str();
  }
  add_common_options(*cmd, o->common);
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* eval = app.add_subcommand("eval", "evaluate a pre-trained backbone: knn | linear");
  eval->require_subcommand(1);
  add_mode(*eval, "knn", "k-nearest-neighbour accuracy on frozen features (default: 5-NN, Euclidean, majority vote)");
  add_mode(*eval, "linear", "linear classifier on frozen features (Adam 1e-2 -> 1e-6 over 500 epochs, batch 1000)");
}

}  // namespace intl::cli
