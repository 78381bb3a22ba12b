// The pre-training run (CIFAR binaries or ImageNet-style folders): options -> data, network, optimizer, schedule -> the training loop -> the
// final evaluation and the result file.
#include "train/pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "data/image_folder.h"
#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/optim/schedule.h"
#include "losses/intl_loss.h"
#include "models/safetensors.h"
#include "plot/figures.h"
#include "results/out_dir.h"
#include "train/evaluation.h"
#include "train/supervised.h"
#include "train/trainer.h"

namespace intl::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// What the result file of an earlier process of the run recorded: its training rate and the run's wall time
// so far (0 for what it does not hold).
struct EarlierProcess {
  double images_per_s = 0, wall_s = 0;
};
EarlierProcess earlier_process(const std::string& result_path) {
  EarlierProcess e;
  try {
    const results::Result r = results::load_result(result_path);
    e.wall_s = r.header.wall_s;
    if (!r.runs.empty()) e.images_per_s = r.runs[0].metrics.at("images_per_s");
  } catch (const std::exception&) {
  }
  return e;
}

std::string fmt_number(double v) {  // as the user would type it
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

bool wants(const PretrainOptions& o, const std::string& what) {
  return std::find(o.final_eval.begin(), o.final_eval.end(), what) != o.final_eval.end();
}

void validate(const PretrainOptions& o) {
  auto need = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError(message);
  };
  const bool folder = is_image_folder_dataset(o.dataset);
  need(!o.data_dir.empty(), folder ? "--data-dir is required: the folder holding train/CLASS/*.JPEG and val/CLASS/*.JPEG"
                                   : "--data-dir is required: the folder holding the CIFAR binary files");
  need(folder || (o.classes_file.empty() && !o.multi_crop),
       "--classes and --multi-crop are for the image-folder datasets (imagenet100, imagenet)");
  need(o.on_bad_image == "skip" || o.on_bad_image == "fail", "--on-bad-image takes skip or fail");
  need(o.ema_momentum > 0 && o.ema_momentum <= 1, "--ema-momentum must be in (0, 1]");
  need(o.linear_lr >= 0 && o.linear_batch_size >= 1, "--linear-lr must be >= 0 and --linear-batch-size >= 1");
  need(o.epochs >= 1, "--epochs must be >= 1, found " + std::to_string(o.epochs));
  need(o.batch_size >= 2, "--batch-size must be >= 2 (whitening needs two samples), found " +
                              std::to_string(o.batch_size));
  need(o.T >= 0, "--T must be >= 0, found " + std::to_string(o.T));
  need(o.lr >= 0 && std::isfinite(o.lr), "--lr must be positive (or 0: the recipe's rate)");
  need(o.momentum >= 0 && o.momentum < 1, "--momentum must be in [0, 1), found " + fmt_number(o.momentum));
  need(o.weight_decay >= 0 && std::isfinite(o.weight_decay),
       "--weight-decay must be >= 0, found " + fmt_number(o.weight_decay));
  need(o.beta >= 0 && std::isfinite(o.beta), "--beta must be >= 0 (0: 0.01 (log2(batch-size) - 3)), found " +
                                                 fmt_number(o.beta));
  need(o.beta > 0 || o.batch_size >= 8,
       "--beta 0 means 0.01 (log2(batch-size) - 3), which is negative at batch " + std::to_string(o.batch_size) +
           "; below batch 8 give --beta");
  need(o.warmup_epochs >= 0 && o.warmup_epochs <= o.epochs,
       "--warmup-epochs " + fmt_number(o.warmup_epochs) + " must be in 0..--epochs (" + std::to_string(o.epochs) +
           "); lower --warmup-epochs (default 2) or raise --epochs");
  need(o.final_lr_ratio >= 0, "--final-lr-ratio must be >= 0");
  need(o.train_images >= 0 && o.test_images >= 0, "--train-images and --test-images must be >= 0 (0: all)");
  need(o.log_every > 0, "--log-every must be > 0 seconds, found " + fmt_number(o.log_every));
  need(o.image_size >= 8 && o.image_size <= 4096,
       "--image-size must be in 8..4096, found " + std::to_string(o.image_size));
  need(o.workers >= 0, "--workers must be >= 0");
  need(o.eval_every >= 0, "--eval-every must be >= 0 (0: evaluate only at the end)");
  need(o.knn_k >= 1, "--knn-k must be >= 1");
  need(o.linear_epochs >= 1, "--linear-epochs must be >= 1");
  need(o.keep >= 1, "--keep must be >= 1");
  need(!o.model.projector.empty(), "--projector needs at least one width");
  for (const std::string& e : o.final_eval)
    need(e == "knn" || e == "linear" || e == "none", "--final-eval takes knn, linear or none, found '" + e + "'");
  need(!wants(o, "none") || o.final_eval.size() == 1, "--final-eval none stands alone (found it with others)");
  need((!o.resume && o.resume_from.empty()) || !o.out.empty(),
       "--resume and --resume-from need --out: the folder of the run to continue");
}

}  // namespace

json pretrain_recipe_json(const PretrainOptions& o) {
  json j = {{"dataset", o.dataset},         {"arch", o.model.arch},
          {"stem", o.model.stem},         {"base-width", o.model.base_width},
          {"projector", o.model.projector}, {"T", o.T},
          {"beta", o.beta},               {"epochs", o.epochs},
          {"batch-size", o.batch_size},   {"lr", o.lr},
          {"momentum", o.momentum},       {"weight-decay", o.weight_decay},
          {"warmup-epochs", o.warmup_epochs}, {"final-lr-ratio", o.final_lr_ratio},
          {"image-size", o.image_size},   {"train-images", o.train_images},
          {"seed", o.seed}};
  // Keys added for the image-folder runs appear only when they differ from the CIFAR recipe, so that
  // checkpoints written before them still resume.
  if (!o.classes_file.empty()) j["classes"] = o.classes_file;
  if (o.ema) {
    j["ema"] = true;
    j["ema-momentum"] = o.ema_momentum;
  }
  if (o.multi_crop) j["multi-crop"] = true;
  if (!o.decay_1d) j["decay-1d"] = false;
  return j;
}

double recipe_base_lr(const std::string& dataset, int epochs) {
  if (dataset == "imagenet100") return 0.5;  // Table C, per 256 images: 0.25 at batch 128 [code in100.sh]
  if (dataset == "imagenet") return epochs <= 100 ? 0.5 : epochs <= 400 ? 0.4 : 0.3;
  return 0.3;
}

bool is_image_folder_dataset(const std::string& dataset) {
  return dataset == "imagenet" || dataset == "imagenet100";
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
  j["loss-form"] = intl_loss_form_name(o.loss_form);
  if (is_image_folder_dataset(o.dataset)) {
    j["on-bad-image"] = o.on_bad_image;
    j["linear-lr"] = o.linear_lr;
    j["linear-batch-size"] = o.linear_batch_size;
  }
  return j;
}

PretrainOutcome run_pretrain(const PretrainOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  validate(options);
  PretrainOptions o = options;
  o.model.seed = o.seed;
  if (o.out.empty()) o.out = results::default_out_dir("pretrain-" + o.dataset);
  const std::string checkpoint_dir = (fs::path(o.out) / "checkpoints").string();
  // Another command's result (or a run stopped before its first checkpoint) is not overwritten; a folder with
  // checkpoints is the trainer's to refuse or resume.
  if (!o.resume && o.resume_from.empty() && !fs::exists(checkpoint_dir))
    results::refuse_existing_result(o.out, "choose another --out, or remove it to start a run there");
  results::check_out_dir(o.out);  // made once the data has loaded
  std::string resume_from = o.resume_from;
  if (!resume_from.empty() && !fs::is_regular_file(resume_from))
    throw UsageError("--resume-from: '" + resume_from + "' " +
                     (fs::is_directory(resume_from) ? "is a folder" : "does not exist") +
                     "; give a checkpoint file, e.g. RUN/checkpoints/ckpt-e0010.safetensors (or --resume for the "
                     "newest)");
  if (o.resume && resume_from.empty()) {
    resume_from = latest_checkpoint(checkpoint_dir);
    if (resume_from.empty())
      throw UsageError("--resume: no checkpoint in '" + checkpoint_dir + "' to continue from; run without --resume "
                       "to start training there");
  }

  const Device device = resolve_device(o.device);
  o.loss_form = resolve_intl_loss_form(o.loss_form, device);  // results record the form that ran
  const bool folder = is_image_folder_dataset(o.dataset);
  if (o.lr == 0) o.lr = recipe_base_lr(o.dataset, o.epochs);
  const bool final_eval = wants(o, "knn") || wants(o, "linear");
  const bool any_eval = final_eval || o.eval_every > 0;
  std::unique_ptr<ImageSource> train_source, test_source;
  const ImageFolder* train_folder = nullptr;
  const ImageFolder* test_folder = nullptr;
  if (folder) {
    ImageFolderOptions fo;
    fo.on_bad_image = parse_bad_image_policy(o.on_bad_image);
    fo.classes_file = o.classes_file;
    fo.max_images = o.train_images;
    auto train_images = std::make_unique<ImageFolder>(image_folder_split_dir(o.data_dir, Split::train), fo);
    train_folder = train_images.get();
    train_source = std::move(train_images);
    if (any_eval) {
      fo.max_images = o.test_images;
      auto val_images = std::make_unique<ImageFolder>(image_folder_split_dir(o.data_dir, Split::test), fo);
      if (val_images->classes() != train_folder->classes())
        throw Error(o.data_dir + ": train/ and val/ hold different class folders (" +
                    std::to_string(train_folder->num_classes()) + " and " +
                    std::to_string(val_images->num_classes()) + "); they must match");
      test_folder = val_images.get();
      test_source = std::move(val_images);
    }
  } else {
    const CifarKind kind = parse_cifar_kind(o.dataset);
    train_source = std::make_unique<CifarDataset>(load_cifar_subset(o.data_dir, kind, Split::train, o.train_images));
    test_source = std::make_unique<CifarDataset>(
        any_eval ? load_cifar_subset(o.data_dir, kind, Split::test, o.test_images) : CifarDataset{});
  }
  const ImageSource& train_data = *train_source;
  // Without any evaluation an image folder's val/ is never read: the test split is then an empty set.
  if (!test_source) test_source = std::make_unique<CifarDataset>();
  const ImageSource& test_data = *test_source;
  if ((wants(o, "knn") || o.eval_every > 0) && o.knn_k > train_data.size())
    throw UsageError("--knn-k " + std::to_string(o.knn_k) + " exceeds the " + std::to_string(train_data.size()) +
                     " training images the kNN accuracy votes among; lower --knn-k");
  results::prepare_out_dir(o.out);

  o.model.ema = o.ema;
  SslModel model(o.model);
  model.to(device);
  std::vector<NamedTensor> params;
  for (auto& [name, t] : model.online_parameters()) params.push_back({name, t});
  Sgd sgd(params, SgdOptions{o.momentum, o.weight_decay, false, o.decay_1d});
  std::unique_ptr<TargetUpdater> target_updater;
  if (o.ema) {
    target_updater = std::make_unique<TargetUpdater>(model);
    // The target starts as a copy of the online network (resumed: from the checkpoint).
    if (resume_from.empty()) target_updater->copy_online();
  }

  LoaderConfig loader_config;
  if (!folder) {
    loader_config = cifar_train_loader_config(o.batch_size, o.seed, o.workers);
    loader_config.views.view1.out_size = loader_config.views.view2.out_size = o.image_size;
  } else {
    loader_config = o.multi_crop ? imagenet_multi_crop_loader_config(o.batch_size, o.seed, o.workers)
                                 : imagenet_train_loader_config(o.batch_size, o.seed, o.workers);
    // Sizes scale with --image-size (224: the paper's); the blur's sigma and kernel do not (data/transforms.h).
    auto scale_view = [&](AugmentConfig& v) {
      v.out_size = std::max(8, int(std::lround(v.out_size * o.image_size / 224.0)));
    };
    scale_view(loader_config.views.view1);
    scale_view(loader_config.views.view2);
    for (AugmentConfig& v : loader_config.crops) scale_view(v);
  }
  Loader loader(train_data, loader_config);
  const int views_per_image = loader_config.crops.empty() ? 2 : int(loader_config.crops.size());
  const int steps_per_epoch = loader.steps_per_epoch();
  const int64_t total_steps = int64_t(o.epochs) * steps_per_epoch;
  const WarmupCosine schedule{o.lr * o.batch_size / 256.0, int64_t(std::llround(o.warmup_epochs * steps_per_epoch)),
                              total_steps, o.final_lr_ratio};
  const double beta = o.beta > 0 ? o.beta : intl_beta(o.batch_size);

  EvalOptions eval;
  eval.knn_options.k = o.knn_k;
  eval.linear_options.epochs = o.linear_epochs;
  eval.linear_options.seed = o.seed;
  eval.features = FeatureOptions{256, o.workers, o.image_size, device, std::nullopt};
  if (folder) eval.features.center_crop = center_crop_for(o.image_size);

  results::Result result;
  result.header = results::make_header("pretrain " + o.dataset, "pretrain");
  result.header.device = device_name(device);
  result.header.device_name = results::device_description(device != Device::cpu);
  result.header.seed = o.seed;
  result.config = pretrain_options_json(o);
  result.config["beta_used"] = beta;
  result.config["base_lr_used"] = schedule.base_lr;
  results::add_compute_settings(result.config, device == Device::cuda);
  result.config["train_images_used"] = train_data.size();
  if (folder) {
    result.config["classes_used"] = train_data.num_classes();
    if (test_folder) result.config["val_images_used"] = test_data.size();
  }
  result.runs.emplace_back();
  results::Run& run = result.runs.back();
  run.name = o.ema && o.multi_crop ? "intl multicrop+ema" : o.ema ? "intl ema" : o.multi_crop ? "intl multicrop" : "intl";
  const std::string result_path = (fs::path(o.out) / "RESULT.json").string();
  // A resumed run's wall time counts its earlier processes too, as a resumed study's does.
  const EarlierProcess earlier =
      resume_from.empty() || !fs::exists(result_path) ? EarlierProcess{} : earlier_process(result_path);
  auto publish = [&] {
    if (train_folder) run.metrics["skipped_images"] = train_folder->skipped_images();
    if (test_folder) run.metrics["skipped_val_images"] = test_folder->skipped_images();
    result.header.wall_s =
        earlier.wall_s + std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    results::save_result(result, result_path);
  };

  TrainerParts parts;
  parts.model = &model;
  parts.optimizer = &sgd;
  parts.loader = &loader;
  parts.learning_rate = [&](int64_t step) { return schedule.at(step); };
  auto view_tensor = [&](const Batch& b, size_t v) {
    const BatchView& view = b.views[v];
    Tensor x = Tensor::from_floats(view.data, {b.n, view.height, view.width, b.channels});  // NHWC
    return device != Device::cpu ? x.to(device) : x;
  };
  parts.loss = [&](const Batch& b) {
    std::vector<Tensor> crops;
    for (size_t v = 0; v < b.views.size(); ++v) crops.push_back(view_tensor(b, v));
    return pretrain_loss(model, crops, o.T, beta, o.loss_form);
  };
  if (o.ema)
    parts.on_step = [&](int64_t global_step, double, double) {
      target_updater->after_step(global_step, total_steps, o.ema_momentum);
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
  tc.images_per_step = views_per_image * o.batch_size;
  tc.log_every_s = o.log_every;
  tc.label = "pretrain " + o.dataset;
  if (folder)
    std::printf("pretrain %s: %d classes from %s%s, %d views per image%s\n", o.dataset.c_str(),
                train_data.num_classes(), o.data_dir.c_str(),
                o.classes_file.empty() ? "" : (" (classes " + o.classes_file + ")").c_str(), views_per_image,
                o.ema ? ", momentum target network" : "");
  std::printf("pretrain %s: %d training images, %d steps per epoch, %d epochs, base lr %.4g, beta %.4g, %s, "
              "out %s\n",
              o.dataset.c_str(), train_data.size(), steps_per_epoch, o.epochs, schedule.base_lr, beta,
              device_name(device), o.out.c_str());
  if (!resume_from.empty()) std::printf("resuming from %s\n", resume_from.c_str());
  // A resumed run with no step left times nothing: the rate its earlier process measured stays in the result.
  const TrainOutcome outcome = train_loop(parts, tc, run, publish);
  const double images_per_s = outcome.images_per_s > 0 ? outcome.images_per_s : earlier.images_per_s;

  PretrainOutcome out;
  out.result_path = result_path;
  run.metrics["images_per_s"] = images_per_s;
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
  json description = ssl_model_config_to_json(o.model);
  if (o.multi_crop) description["multi_crop"] = true;  // picks the evaluation rates of multi-crop + EMA models
  save_safetensors(model.backbone(), (fs::path(o.out) / "backbone.safetensors").string(),
                   {{backbone_metadata_key, description.dump()}});
  if (final_eval) {
    // The training's metrics are in the result before the evaluation starts, with a note that stays only if the
    // process stops during it (Ctrl-C, a kill): such a result says what it lacks, and --resume repeats it.
    run.events.push_back({"note", total_steps,
                          "stopped during the final evaluation: its metrics are missing; --resume repeats it",
                          json::object()});
    publish();
    run.events.pop_back();
    EvalOptions final_options = eval;
    final_options.knn = wants(o, "knn");
    final_options.linear = wants(o, "linear") && !folder;
    for (const auto& [name, value] : evaluate_backbone(model.backbone(), train_data, test_data, final_options))
      run.metrics[name] = value;
    if (folder && wants(o, "linear")) {  // the ImageNet linear protocol on augmented images
      SupervisedOptions so;
      so.epochs = o.linear_epochs;
      so.batch_size = o.linear_batch_size;
      so.lr = o.linear_lr > 0 ? o.linear_lr : (o.ema && o.multi_crop ? 0.4 : 0.2);
      so.image_size = o.image_size;
      so.workers = o.workers;
      so.seed = o.seed;
      so.device = device;
      so.label = "linear " + o.dataset;
      const SupervisedResult r = train_classifier(model.backbone(), train_data, test_data, so);
      run.metrics["linear_top1"] = r.top1;
      run.metrics["linear_top5"] = r.top5;
      // experiments/paper/imagenet.json gives top-1 per pre-training budget: the same key matches it in intl diff.
      if (o.dataset == "imagenet") run.metrics["linear_top1_" + std::to_string(o.epochs) + "ep"] = r.top1;
      result.config["linear_lr_used"] = r.lr_used;
    }
    auto& knn_curve = run.curves["knn_top1"];
    const double last_epoch = double(loss_curve.x.empty() ? 0 : loss_curve.x.back());
    const std::string knn_name = knn_metric_name(final_options.knn_options);
    if (final_options.knn && (knn_curve.x.empty() || knn_curve.x.back() != last_epoch)) {
      knn_curve.x_label = "epoch";
      knn_curve.x.push_back(last_epoch);
      knn_curve.y.push_back(run.metrics[knn_name]);
    }
  }
  for (const auto& [folder_read, which] : {std::pair{train_folder, "training"}, std::pair{test_folder, "validation"}}) {
    if (!folder_read || folder_read->skipped_images() == 0) continue;
    std::string list;
    for (const std::string& p : folder_read->skipped_paths()) list += (list.empty() ? "" : ", ") + p;
    run.events.push_back({"note", total_steps, "skipped " + std::to_string(folder_read->skipped_images()) + " " +
                                                   which + " images that do not decode: " + list,
                          json::object()});
  }
  publish();
  plot::write_study_figures(result, o.out);
  std::string summary = "pretrain " + o.dataset + ": done, " + std::to_string(int(std::lround(images_per_s))) +
                        " images/s";
  for (const auto& [name, value] : run.metrics)
    if (name.find("top") != std::string::npos) summary += ", " + name + " " + std::to_string(value);
  std::printf("%s\nresult: %s\n", summary.c_str(), result_path.c_str());
  return out;
}

}  // namespace intl::train
