// The whiten-instability study: one train_loop per (d, seed) with the hard-whitening loss, the per-iteration
// curves recorded from inside the loss, and crashes kept as results.
#include "studies/whiten_instability.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/loader.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "losses/intl_loss.h"
#include "losses/whitening.h"
#include "studies/sweep.h"
#include "train/ssl_model.h"
#include "train/trainer.h"

namespace intl::studies {
namespace {

using json = nlohmann::json;

void append_point(results::Run& run, const std::string& curve, double x, double y) {
  results::Curve& c = run.curves[curve];
  c.x_label = "iteration";
  c.x.push_back(x);
  c.y.push_back(y);
}

// The smaller of two values, ignoring a NaN unless both are.
double min_finite(double a, double b) { return std::isnan(a) ? b : std::isnan(b) ? a : std::min(a, b); }

std::string run_name(int64_t d, uint64_t seed) { return "d=" + std::to_string(d) + " seed=" + std::to_string(seed); }

void summarize(results::Run& run, int64_t iterations_done) {
  const results::Curve& c = run.curves["log10_inv_cond"];
  double lowest = NAN;
  for (double y : c.y) lowest = min_finite(lowest, y);
  run.metrics["initial_log10_inv_cond"] = c.y.empty() ? NAN : c.y.front();
  run.metrics["final_log10_inv_cond"] = c.y.empty() ? NAN : c.y.back();
  run.metrics["min_log10_inv_cond"] = lowest;
  run.metrics["iterations"] = double(iterations_done);
  const results::Event* crash = run.first_event("crash");
  run.metrics["crashed"] = crash ? 1.0 : 0.0;
  if (crash) run.metrics["crash_iteration"] = double(crash->step);
}

void print_summary(const results::Result& result) {
  std::printf("%-18s %10s %14s %14s %14s  %s\n", "run", "iterations", "c^-1 first", "c^-1 lowest", "c^-1 last",
              "outcome");
  for (const results::Run& r : result.runs) {
    auto metric = [&](const char* name) {
      auto it = r.metrics.find(name);
      return it == r.metrics.end() ? NAN : it->second;
    };
    const results::Event* crash = r.first_event("crash");
    const std::string outcome =
        crash ? "crashed at iteration " + std::to_string(crash->step) + ": " + crash->message : "trained";
    std::printf("%-18s %10.0f %14.3g %14.3g %14.3g  %s\n", r.name.c_str(), metric("iterations"),
                std::pow(10.0, metric("initial_log10_inv_cond")), std::pow(10.0, metric("min_log10_inv_cond")),
                std::pow(10.0, metric("final_log10_inv_cond")), outcome.c_str());
  }
  std::printf("(c^-1 = |lambda_min| / lambda_max of the d x d batch covariance, the worse of the two views)\n");
}

}  // namespace

void validate(const WhitenInstabilityOptions& o) {
  auto need = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError(message);
  };
  need(!o.d.empty(), "--d needs at least one embedding size");
  for (int64_t d : o.d) need(d >= 2 && d <= 65536, "--d: " + std::to_string(d) + " is not in 2..65536");
  need(o.seeds >= 1, "--seeds must be >= 1, found " + std::to_string(o.seeds));
  need(o.batch >= 2, "--batch must be >= 2 (a covariance needs two samples), found " + std::to_string(o.batch));
  need(o.iters >= 1, "--iters must be >= 1, found " + std::to_string(o.iters));
  need(o.p > 0 && o.p <= 1, "--p must be in (0, 1] (0.5: hard whitening), found " + std::to_string(o.p));
  need(o.eig_dtype == "float32" || o.eig_dtype == "float64",
       "--eig-dtype must be float32 or float64, found '" + o.eig_dtype + "'");
  need(o.arch == "resnet18" || o.arch == "resnet50", "--arch must be resnet18 or resnet50, found '" + o.arch + "'");
  need(o.width >= 1, "--width must be >= 1, found " + std::to_string(o.width));
  need(o.hidden >= 1, "--hidden must be >= 1, found " + std::to_string(o.hidden));
  need(o.image_size >= 8, "--image-size must be >= 8, found " + std::to_string(o.image_size));
  need(o.train_images >= 0, "--train-images must be >= 0 (0: the whole split)");
  need(o.lr > 0 && std::isfinite(o.lr), "--lr must be a positive number");
  need(o.weight_decay >= 0, "--weight-decay must be >= 0");
  need(o.warmup >= 0, "--warmup must be >= 0 iterations");
  need(o.workers >= 0, "--workers must be >= 0");
  need(!o.resume || !o.out.empty(), "--resume needs --out: the folder of the study to continue");
}

json whiten_instability_config(const WhitenInstabilityOptions& o) {
  return {{"d", o.d},
          {"seeds", o.seeds},
          {"batch", o.batch},
          {"iters", o.iters},
          {"p", o.p},
          {"eig-dtype", o.eig_dtype},
          {"arch", o.arch},
          {"width", o.width},
          {"hidden", o.hidden},
          {"image-size", o.image_size},
          {"dataset", o.dataset},
          {"data-dir", o.data_dir},
          {"train-images", o.train_images},
          {"lr", o.lr},
          {"weight-decay", o.weight_decay},
          {"warmup", o.warmup},
          {"workers", o.workers},
          {"checkpoints", o.checkpoints},
          {"seed", o.seed},
          {"device", o.device},
          {"out", o.out}};
}

HardWhitened hard_whiten(const Tensor& z, double p, DType dtype) {
  Centered c = center_and_covariance(cast(z, dtype), WhitenAxis::batch);
  EighResult e = eigh(c.sigma);  // throws when the solver reports failure
  Tensor phi = matmul(mul(e.vectors, reshape(pow(e.values, -p), {1, -1})), transpose(e.vectors));
  const std::vector<double> lambda = e.values.to_vector();  // ascending
  return {matmul(c.zc, phi), lambda.front(), lambda.back()};
}

double log10_inverse_condition(double lambda_min, double lambda_max) {
  return std::log10(std::fabs(lambda_min) / lambda_max);
}

results::Result run_whiten_instability(const WhitenInstabilityOptions& options) {
  validate(options);
  WhitenInstabilityOptions o = options;
  if (o.out.empty()) o.out = results::default_out_dir("whiten-instability");
  const Device device = resolve_device(o.device);
  const DType eig_dtype = o.eig_dtype == "float64" ? DType::f64 : DType::f32;
  Sweep sweep("whiten-instability", "run whiten-instability", o.out, o.resume, device, o.seed,
              whiten_instability_config(o));
  const StudyData data = load_study_data(o.dataset, o.data_dir, o.train_images, -1, o.seed, o.out);
  std::printf("whiten-instability: %s; batch %d, %lld iterations, p %g, eigensolver %s, %s, out %s\n",
              data.description.c_str(), o.batch, static_cast<long long>(o.iters), o.p, o.eig_dtype.c_str(),
              device_name(device), o.out.c_str());

  for (int64_t d : o.d)
    for (int s = 0; s < o.seeds; ++s) {
      const uint64_t seed = o.seed + uint64_t(s);
      const std::string name = run_name(d, seed);
      if (sweep.finished(name)) continue;
      results::Run& run = sweep.begin_run(name, {{"d", d}, {"seed", seed}});

      train::SslModelConfig mc;
      mc.arch = o.arch;
      mc.stem = o.dataset == "imagenet" ? "imagenet" : "cifar";
      mc.base_width = o.width;
      mc.projector = {o.hidden, d};
      mc.seed = seed;
      train::SslModel model(mc);
      model.to(device);
      std::vector<NamedTensor> params;
      for (auto& [pname, t] : model.named_parameters()) params.push_back({pname, t});
      Adam adam(params, AdamOptions{0.9, 0.999, 1e-8, o.weight_decay, false});
      LoaderConfig lc = o.dataset == "imagenet" ? imagenet_train_loader_config(o.batch, seed, o.workers)
                                                : cifar_train_loader_config(o.batch, seed, o.workers);
      lc.views.view1.out_size = lc.views.view2.out_size = o.image_size;
      const ImageSource& images = data.train_source();
      if (o.batch > images.size())
        throw UsageError("--batch " + std::to_string(o.batch) + " is larger than the " +
                         std::to_string(images.size()) + " training images");
      Loader loader(images, lc);
      const int spe = loader.steps_per_epoch();
      const MultiStep schedule{o.lr, o.warmup, {}, 1.0};

      train::TrainerParts parts;
      parts.model = &model;
      parts.optimizer = &adam;
      parts.loader = &loader;
      parts.learning_rate = [&](int64_t step) { return schedule.at(step); };
      parts.loss = [&](const Batch& b) {
        const Shape shape{b.n, b.height, b.width, b.channels};  // (n, H, W, 3): NHWC
        Tensor x1 = Tensor::from_floats(b.view1, shape).to(device), x2 = Tensor::from_floats(b.view2, shape).to(device);
        const double iteration = double(int64_t(b.epoch) * spe + b.step + 1);
        const HardWhitened w1 = hard_whiten(model.embed(x1), o.p, eig_dtype);
        const HardWhitened w2 = hard_whiten(model.embed(x2), o.p, eig_dtype);
        append_point(run, "log10_inv_cond", iteration,
                     min_finite(log10_inverse_condition(w1.lambda_min, w1.lambda_max),
                                log10_inverse_condition(w2.lambda_min, w2.lambda_max)));
        Tensor loss = norm_mse(w1.zhat, w2.zhat);
        append_point(run, "step_loss", iteration, loss.item());
        return loss;
      };

      train::TrainerConfig tc;
      tc.epochs = int((o.iters + spe - 1) / spe);
      tc.max_steps = o.iters;
      tc.crash_is_result = true;
      tc.recipe = whiten_instability_config(o);
      for (const char* key : {"workers", "device", "out", "seeds", "d"}) tc.recipe.erase(key);
      tc.recipe["run"] = name;
      tc.model_description = train::ssl_model_config_to_json(mc);
      tc.images_per_step = 2 * o.batch;
      tc.log_every_s = o.log_every;
      const train::TrainOutcome outcome = sweep.train_run(name, parts, tc, o.checkpoints, run);
      summarize(run, outcome.position.global_step);
      sweep.finish_run(name, run.first_event("crash") ? "crashed" : "finished");
      sweep.publish();
    }
  results::Result& result = sweep.result();
  print_summary(result);
  sweep.write_figures();
  return result;
}

}  // namespace intl::studies
