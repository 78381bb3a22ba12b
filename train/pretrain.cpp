// The CIFAR pre-training run: options -> data, network, optimizer, schedule -> the training loop -> the
// final evaluation and the result file.
#include "train/pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "data/loader.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/optim/schedule.h"
#include "losses/intl_loss.h"
#include "models/safetensors.h"
#include "plot/figures.h"
#include "train/evaluation.h"
#include "train/trainer.h"

namespace intl::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      std::string name = line.substr(line.find(':') + 1);
      return name.substr(std::min(name.size(), name.find_first_not_of(' ')));
    }
  return "cpu";
}

std::string default_out(const std::string& dataset) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  return "runs/pretrain-" + dataset + "-" + stamp;
}

void validate(const PretrainOptions& o) {
  auto need = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError(message);
  };
  need(!o.data_dir.empty(), "--data-dir is required: the folder holding the CIFAR binary files");
  need(o.epochs >= 1, "--epochs must be >= 1, found " + std::to_string(o.epochs));
  need(o.batch_size >= 2, "--batch-size must be >= 2 (whitening needs two samples), found " +
                              std::to_string(o.batch_size));
  need(o.T >= 0, "--T must be >= 0, found " + std::to_string(o.T));
  need(o.lr > 0, "--lr must be positive");
  need(o.warmup_epochs >= 0 && o.warmup_epochs <= o.epochs, "--warmup-epochs must be in 0..--epochs");
  need(o.final_lr_ratio >= 0, "--final-lr-ratio must be >= 0");
  need(o.image_size >= 8, "--image-size must be >= 8, found " + std::to_string(o.image_size));
  need(o.workers >= 0, "--workers must be >= 0");
  need(o.eval_every >= 0, "--eval-every must be >= 0 (0: evaluate only at the end)");
  need(o.knn_k >= 1, "--knn-k must be >= 1");
  need(o.linear_epochs >= 1, "--linear-epochs must be >= 1");
  need(o.keep >= 1, "--keep must be >= 1");
  need(!o.model.projector.empty(), "--projector needs at least one width");
  for (const std::string& e : o.final_eval)
    need(e == "knn" || e == "linear" || e == "none", "--final-eval takes knn, linear or none, found '" + e + "'");
  need((!o.resume && o.resume_from.empty()) || !o.out.empty(),
       "--resume and --resume-from need --out: the folder of the run to continue");
}

bool wants(const PretrainOptions& o, const std::string& what) {
  return std::find(o.final_eval.begin(), o.final_eval.end(), what) != o.final_eval.end();
}

}  // namespace

json pretrain_recipe_json(const PretrainOptions& o) {
  return {{"dataset", o.dataset},         {"arch", o.model.arch},
          {"stem", o.model.stem},         {"base-width", o.model.base_width},
          {"projector", o.model.projector}, {"T", o.T},
          {"beta", o.beta},               {"epochs", o.epochs},
          {"batch-size", o.batch_size},   {"lr", o.lr},
          {"momentum", o.momentum},       {"weight-decay", o.weight_decay},
          {"warmup-epochs", o.warmup_epochs}, {"final-lr-ratio", o.final_lr_ratio},
          {"image-size", o.image_size},   {"train-images", o.train_images},
          {"seed", o.seed}};
}

json pretrain_options_json(const PretrainOptions& o) {
  json j = pretrain_recipe_json(o);
  j["data-dir"] = o.data_dir;
  j["test-images"] = o.test_images;
  j["workers"] = o.workers;
  j["eval-every"] = o.eval_every;
  j["knn-k"] = o.knn_k;
  j["final-eval"] = o.final_eval;
  j["linear-epochs"] = o.linear_epochs;
  j["keep"] = o.keep;
  j["max-steps"] = o.max_steps;
  j["device"] = o.device;
  return j;
}

PretrainOutcome run_pretrain(const PretrainOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  validate(options);
  PretrainOptions o = options;
  o.model.seed = o.seed;
  if (o.out.empty()) o.out = default_out(o.dataset);
  const std::string checkpoint_dir = (fs::path(o.out) / "checkpoints").string();
  std::string resume_from = o.resume_from;
  if (o.resume && resume_from.empty()) {
    resume_from = latest_checkpoint(checkpoint_dir);
    if (resume_from.empty())
      throw UsageError("--resume: no checkpoint in '" + checkpoint_dir + "' to continue from; run without --resume "
                       "to start training there");
  }

  const Device device = resolve_device(o.device);
  const CifarKind kind = parse_cifar_kind(o.dataset);
  const CifarDataset train_data = load_cifar_subset(o.data_dir, kind, Split::train, o.train_images);
  const bool final_eval = wants(o, "knn") || wants(o, "linear");
  const bool any_eval = final_eval || o.eval_every > 0;
  const CifarDataset test_data = any_eval ? load_cifar_subset(o.data_dir, kind, Split::test, o.test_images)
                                          : CifarDataset{};

  SslModel model(o.model);
  model.to(device);
  std::vector<NamedTensor> params;
  for (auto& [name, t] : model.named_parameters()) params.push_back({name, t});
  Sgd sgd(params, SgdOptions{o.momentum, o.weight_decay, false, /*decay_1d=*/true});

  LoaderConfig loader_config = cifar_train_loader_config(o.batch_size, o.seed, o.workers);
  loader_config.views.view1.out_size = loader_config.views.view2.out_size = o.image_size;
  Loader loader(train_data, loader_config);
  const int steps_per_epoch = loader.steps_per_epoch();
  const int64_t total_steps = int64_t(o.epochs) * steps_per_epoch;
  const WarmupCosine schedule{o.lr * o.batch_size / 256.0, int64_t(std::llround(o.warmup_epochs * steps_per_epoch)),
                              total_steps, o.final_lr_ratio};
  const double beta = o.beta > 0 ? o.beta : intl_beta(o.batch_size);

  EvalOptions eval;
  eval.knn_options.k = o.knn_k;
  eval.linear_options.epochs = o.linear_epochs;
  eval.linear_options.seed = o.seed;
  eval.features = FeatureOptions{256, o.workers, o.image_size, device};

  results::Result result;
  result.header = results::make_header("pretrain " + o.dataset, "pretrain");
  result.header.device = device_name(device);
  result.header.device_name = device == Device::cpu ? cpu_model_name() : cuda_device_name();
  result.header.seed = o.seed;
  result.config = pretrain_options_json(o);
  result.config["beta_used"] = beta;
  result.config["base_lr_used"] = schedule.base_lr;
  result.runs.emplace_back();
  results::Run& run = result.runs.back();
  run.name = "intl";
  const std::string result_path = (fs::path(o.out) / "RESULT.json").string();
  auto publish = [&] {
    result.header.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    results::save_result(result, result_path);
  };

  TrainerParts parts;
  parts.model = &model;
  parts.optimizer = &sgd;
  parts.loader = &loader;
  parts.learning_rate = [&](int64_t step) { return schedule.at(step); };
  parts.loss = [&](const Batch& b) {
    const Shape shape{b.n, b.height, b.width, b.channels};  // (n, H, W, 3): NHWC
    Tensor x1 = Tensor::from_floats(b.view1, shape), x2 = Tensor::from_floats(b.view2, shape);
    if (device != Device::cpu) {
      x1 = x1.to(device);
      x2 = x2.to(device);
    }
    return intl_two_view_loss(model, x1, x2, o.T, beta);
  };
  if (o.eval_every > 0)
    parts.evaluate = [&](int epoch) -> std::map<std::string, double> {
      if (epoch + 1 == o.epochs && wants(o, "knn")) return {};  // the final evaluation adds this point
      EvalOptions knn_only = eval;
      knn_only.linear = false;
      return {{"knn_top1", evaluate_backbone(model.backbone(), train_data, test_data, knn_only).begin()->second}};
    };

  TrainerConfig tc;
  tc.epochs = o.epochs;
  tc.max_steps = o.max_steps;
  tc.eval_every = o.eval_every;
  tc.checkpoint_dir = checkpoint_dir;
  tc.keep = o.keep;
  tc.resume_from = resume_from;
  tc.recipe = pretrain_recipe_json(o);
  tc.model_description = ssl_model_config_to_json(o.model);
  tc.images_per_step = 2 * o.batch_size;
  tc.log_every_s = o.log_every;
  tc.label = "pretrain " + o.dataset;
  std::printf("pretrain %s: %d training images, %d steps per epoch, %d epochs, base lr %.4g, beta %.4g, %s, "
              "out %s\n",
              o.dataset.c_str(), train_data.size(), steps_per_epoch, o.epochs, schedule.base_lr, beta,
              device_name(device), o.out.c_str());
  if (!resume_from.empty()) std::printf("resuming from %s\n", resume_from.c_str());
  const TrainOutcome outcome = train_loop(parts, tc, run, publish);

  PretrainOutcome out;
  out.result_path = result_path;
  run.metrics["images_per_s"] = outcome.images_per_s;
  if (outcome.status != TrainStatus::finished) {
    out.status = outcome.status == TrainStatus::diverged ? PretrainStatus::diverged : PretrainStatus::interrupted;
    out.message = outcome.message;
    publish();
    return out;
  }

  const auto& loss_curve = run.curves["loss"];
  if (!loss_curve.y.empty()) run.metrics["final_loss"] = loss_curve.y.back();
  const auto& times = run.curves["epoch_time_s"].y;
  if (!times.empty()) {
    double s = 0;
    for (double t : times) s += t;
    run.metrics["epoch_time_s"] = s / double(times.size());
  }
  save_safetensors(model.backbone(), (fs::path(o.out) / "backbone.safetensors").string(),
                   {{backbone_metadata_key, ssl_model_config_to_json(o.model).dump()}});
  if (final_eval) {
    EvalOptions final_options = eval;
    final_options.knn = wants(o, "knn");
    final_options.linear = wants(o, "linear");
    for (const auto& [name, value] : evaluate_backbone(model.backbone(), train_data, test_data, final_options))
      run.metrics[name] = value;
    auto& knn_curve = run.curves["knn_top1"];
    const double last_epoch = double(loss_curve.x.empty() ? 0 : loss_curve.x.back());
    const std::string knn_name = knn_metric_name(final_options.knn_options);
    if (final_options.knn && (knn_curve.x.empty() || knn_curve.x.back() != last_epoch)) {
      knn_curve.x_label = "epoch";
      knn_curve.x.push_back(last_epoch);
      knn_curve.y.push_back(run.metrics[knn_name]);
    }
  }
  publish();
  plot::write_study_figures(result, o.out);
  std::string summary = "pretrain " + o.dataset + ": done, " + std::to_string(int(std::lround(outcome.images_per_s))) +
                        " images/s";
  for (const auto& [name, value] : run.metrics)
    if (name.find("top") != std::string::npos) summary += ", " + name + " " + std::to_string(value);
  std::printf("%s\nresult: %s\n", summary.c_str(), result_path.c_str());
  return out;
}

}  // namespace intl::train
