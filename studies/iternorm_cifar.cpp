// The iternorm-cifar study: one train_loop per (T, trace loss) with the CW INTL loss (beta 0 without the trace
// loss), spectra accumulated after every step and recorded per epoch, kNN every few epochs, kNN and linear
// evaluation at the end.
#include "studies/iternorm_cifar.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "losses/intl_loss.h"
#include "losses/whitening.h"
#include "studies/sweep.h"
#include "train/evaluation.h"
#include "train/ssl_model.h"
#include "train/trainer.h"

namespace intl::studies {
namespace {

using json = nlohmann::json;

// The paper's trace-loss weights (supplement D.2).
const std::map<int, double> kPaperBeta = {{1, 5.0}, {3, 0.5}, {5, 0.05}};

std::string run_name(int T, bool trace_loss) {
  return "T=" + std::to_string(T) + (trace_loss ? " trace loss" : " no trace loss");
}

// Sums of the spectra of the steps of the epoch in progress.
struct SpectrumSums {
  std::vector<double> z, zhat;
  double trace_loss = 0;
  int count = 0;
  void add(const Spectra& s) {
    if (z.empty()) z.assign(s.z.size(), 0.0), zhat.assign(s.zhat.size(), 0.0);
    for (size_t i = 0; i < z.size(); ++i) z[i] += s.z[i], zhat[i] += s.zhat[i];
    trace_loss += s.trace_loss;
    ++count;
  }
  std::vector<double> mean(const std::vector<double>& sum) const {
    std::vector<double> out(sum);
    for (double& v : out) v /= double(count);
    return out;
  }
  // Checkpointed with the epoch in progress (TrainerParts::save_epoch_state), exactly.
  json to_json() const {
    return {{"z", results::numbers_to_json(z)}, {"zhat", results::numbers_to_json(zhat)},
            {"trace_loss", results::number_to_json(trace_loss)}, {"count", count}};
  }
  static SpectrumSums from_json(const json& j) {
    SpectrumSums s;
    s.z = results::read_numbers(j.at("z"), "z");
    s.zhat = results::read_numbers(j.at("zhat"), "zhat");
    s.trace_loss = results::number_from_json(j.at("trace_loss"), "trace_loss");
    s.count = j.at("count").get<int>();
    return s;
  }
};

// Appends [epoch, values...] as a row of the run's array `name`.
void append_row(results::Run& run, const std::string& name, double epoch, const std::vector<double>& values) {
  results::Array& a = run.arrays[name];
  a.cols = values.size() + 1;
  a.values.push_back(epoch);
  a.values.insert(a.values.end(), values.begin(), values.end());
}

void print_summary(const results::Result& result) {
  std::printf("%-22s %7s %13s %13s %11s %9s %9s\n", "run", "beta", "flat cov(Zh)", "flat cov(Z)", "trace loss",
              "5-NN", "linear");
  for (const results::Run& r : result.runs) {
    auto metric = [&](const char* name) {
      auto it = r.metrics.find(name);
      return it == r.metrics.end() ? NAN : it->second;
    };
    auto percent = [&](const char* name) {
      const double v = metric(name);
      return std::isnan(v) ? std::string("-") : std::to_string(v).substr(0, std::to_string(v).find('.') + 3);
    };
    std::printf("%-22s %7.3g %13.4g %13.4g %11.4g %9s %9s\n", r.name.c_str(), r.config.value("beta", 0.0),
                metric("final_zhat_flatness"), metric("final_z_flatness"), metric("final_trace_loss"),
                percent("knn5_top1").c_str(), percent("linear_top1").c_str());
  }
  std::printf("(flat: lambda_r / lambda_1 of the last epoch's mean spectrum, r = min(batch, dim - 1); trace loss: "
              "INTL(Zhat) of view 1, last epoch's mean)\n");
}

}  // namespace

void validate(const IternormCifarOptions& o) {
  auto need = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError(message);
  };
  need(!o.T.empty(), "--T needs at least one value");
  for (int T : o.T) need(T >= 0 && T <= 64, "--T: " + std::to_string(T) + " is not in 0..64");
  need(!o.trace_loss.empty(), "--trace-loss needs at least one of on, off");
  for (const std::string& t : o.trace_loss)
    need(t == "on" || t == "off", "--trace-loss takes on and/or off, found '" + t + "'");
  need(o.beta.empty() || o.beta.size() == o.T.size(),
       "--beta gives one weight per --T value (" + std::to_string(o.T.size()) + "), found " +
           std::to_string(o.beta.size()));
  for (double b : o.beta) need(b >= 0 && std::isfinite(b), "--beta values must be finite and >= 0");
  need(o.epochs >= 1, "--epochs must be >= 1, found " + std::to_string(o.epochs));
  need(o.batch >= 2, "--batch must be >= 2, found " + std::to_string(o.batch));
  need(o.lr > 0 && std::isfinite(o.lr), "--lr must be a positive number");
  need(o.weight_decay >= 0, "--weight-decay must be >= 0");
  need(o.warmup >= 0, "--warmup must be >= 0 iterations");
  for (int e : o.drops) need(e >= 0, "--drops: epochs before the end must be >= 0, found " + std::to_string(e));
  need(o.drop_factor > 0, "--drop-factor must be > 0");
  need(o.arch == "resnet18" || o.arch == "resnet50", "--arch must be resnet18 or resnet50, found '" + o.arch + "'");
  need(o.width >= 1 && o.hidden >= 1, "--width and --hidden must be >= 1");
  need(o.dim >= 3, "--dim must be >= 3, found " + std::to_string(o.dim));
  need(o.image_size >= 8, "--image-size must be >= 8, found " + std::to_string(o.image_size));
  need(o.dataset == "cifar10" || o.dataset == "synthetic",
       "--dataset must be cifar10 or synthetic, found '" + o.dataset + "'");
  need(o.train_images >= 0 && o.test_images >= 0, "--train-images and --test-images must be >= 0");
  need(o.knn_every >= 0 && o.linear_epochs >= 0, "--knn-every and --linear-epochs must be >= 0");
  need(o.workers >= 0, "--workers must be >= 0");
  need(!o.resume || !o.out.empty(), "--resume needs --out: the folder of the study to continue");
  for (size_t i = 0; i < o.T.size(); ++i) iternorm_cifar_beta(o, i, true);
}

double iternorm_cifar_beta(const IternormCifarOptions& o, size_t t_index, bool trace_loss) {
  if (!trace_loss) return 0.0;
  if (!o.beta.empty()) return o.beta.at(t_index);
  const auto it = kPaperBeta.find(o.T.at(t_index));
  if (it == kPaperBeta.end())
    throw UsageError("--T " + std::to_string(o.T[t_index]) + ": the paper gives beta only for T = 1, 3, 5 (5, 0.5, "
                     "0.05); give --beta with one weight per --T value");
  return it->second;
}

json iternorm_cifar_config(const IternormCifarOptions& o) {
  return {{"T", o.T},
          {"trace-loss", o.trace_loss},
          {"beta", o.beta},
          {"loss-form", intl_loss_form_name(o.loss_form)},
          {"epochs", o.epochs},
          {"batch", o.batch},
          {"lr", o.lr},
          {"weight-decay", o.weight_decay},
          {"warmup", o.warmup},
          {"drops", o.drops},
          {"drop-factor", o.drop_factor},
          {"arch", o.arch},
          {"width", o.width},
          {"hidden", o.hidden},
          {"dim", o.dim},
          {"image-size", o.image_size},
          {"dataset", o.dataset},
          {"data-dir", o.data_dir},
          {"train-images", o.train_images},
          {"test-images", o.test_images},
          {"knn-every", o.knn_every},
          {"linear-epochs", o.linear_epochs},
          {"workers", o.workers},
          {"checkpoints", o.checkpoints},
          {"seed", o.seed},
          {"device", o.device},
          {"out", o.out}};
}

Spectra cw_spectra(const Tensor& z, int T) {
  NoGradGuard no_grad;
  const Tensor z64 = z.detach().to(Device::cpu).to(DType::f64);
  const size_t r = size_t(std::min(z.size(0), z.size(1) - 1));
  const Tensor zhat = iternorm(z64, T, WhitenAxis::channel);
  auto leading = [r](const Tensor& x) {
    const std::vector<double> w = eigh(center_and_covariance(x, WhitenAxis::channel).sigma).values.to_vector();
    return std::vector<double>(w.rbegin(), w.rbegin() + std::ptrdiff_t(r));  // ascending -> largest first
  };
  return {leading(z64), leading(zhat), trace_loss(zhat, WhitenAxis::channel).item()};
}

double flatness(const std::vector<double>& spectrum) {
  return spectrum.empty() ? NAN : spectrum.back() / spectrum.front();
}

results::Result run_iternorm_cifar(const IternormCifarOptions& options) {
  validate(options);
  IternormCifarOptions o = options;
  if (o.out.empty()) o.out = results::default_out_dir("iternorm-cifar");
  for (int e : o.drops)
    if (e >= o.epochs)
      std::fprintf(stderr, "iternorm-cifar: --drops %d falls at or before the start of a %d-epoch run: its x%g "
                   "applies from the first step (give --drops under --epochs to place it)\n",
                   e, o.epochs, o.drop_factor);
  const Device device = resolve_device(o.device);
  o.loss_form = resolve_intl_loss_form(o.loss_form, device);  // results record the form that ran
  Sweep sweep("iternorm-cifar", "run iternorm-cifar", o.out, o.resume, device, o.seed, iternorm_cifar_config(o));
  const StudyData data = load_study_data(o.dataset, o.data_dir, o.train_images, o.test_images, o.seed, o.out);
  std::printf("iternorm-cifar: %s; batch %d, %d epochs, %s, out %s\n", data.description.c_str(), o.batch, o.epochs,
              device_name(device), o.out.c_str());
  train::EvalOptions eval;
  eval.knn_options.k = 5;
  eval.linear_options.epochs = std::max(1, o.linear_epochs);
  eval.linear_options.seed = o.seed;
  eval.features = train::FeatureOptions{256, o.workers, o.image_size, device, std::nullopt};

  for (size_t ti = 0; ti < o.T.size(); ++ti)
    for (const std::string& tl : o.trace_loss) {
      const int T = o.T[ti];
      const bool on = tl == "on";
      const double beta = iternorm_cifar_beta(o, ti, on);
      const std::string name = run_name(T, on);
      if (sweep.finished(name)) continue;
      results::Run& run = sweep.begin_run(name, {{"T", T}, {"trace_loss", tl}, {"beta", beta}});

      train::SslModelConfig mc;
      mc.arch = o.arch;
      mc.stem = "cifar";
      mc.base_width = o.width;
      mc.projector = {o.hidden, o.dim};
      mc.seed = o.seed;
      train::SslModel model(mc);
      model.to(device);
      std::vector<NamedTensor> params;
      for (auto& [pname, t] : model.named_parameters()) params.push_back({pname, t});
      Adam adam(params, AdamOptions{0.9, 0.999, 1e-8, o.weight_decay, false});
      LoaderConfig lc = cifar_train_loader_config(o.batch, o.seed, o.workers);
      lc.views.view1.out_size = lc.views.view2.out_size = o.image_size;
      if (o.batch > data.train.size())
        throw UsageError("--batch " + std::to_string(o.batch) + " is larger than the " +
                         std::to_string(data.train.size()) + " training images");
      Loader loader(data.train, lc);
      const int64_t spe = loader.steps_per_epoch();
      MultiStep schedule{o.lr, o.warmup, {}, o.drop_factor};
      for (int e : o.drops) schedule.milestones.push_back(std::max(0, o.epochs - e) * spe);

      Tensor last_z1;  // view 1's embedding of the step in progress
      SpectrumSums sums;
      train::TrainerParts parts;
      parts.model = &model;
      parts.optimizer = &adam;
      parts.loader = &loader;
      parts.learning_rate = [&](int64_t step) { return schedule.at(step); };
      parts.loss = [&](const Batch& b) {
        const Shape shape{b.n, b.height, b.width, b.channels};  // (n, H, W, 3): NHWC
        Tensor z1 = model.embed(Tensor::from_floats(b.view1, shape).to(device));
        Tensor z2 = model.embed(Tensor::from_floats(b.view2, shape).to(device));
        last_z1 = z1.detach();
        return intl_loss(z1, z2, T, beta, o.loss_form);
      };
      parts.on_step = [&](int64_t, double, double) {
        sums.add(cw_spectra(last_z1, T));
        last_z1 = Tensor();
      };
      parts.save_epoch_state = [&] { return sums.to_json(); };
      parts.restore_epoch_state = [&](const json& j) { sums = SpectrumSums::from_json(j); };
      parts.evaluate = [&](int epoch) {
        std::map<std::string, double> m;
        if (sums.count > 0) {  // none only when resumed at an epoch's end from a checkpoint without the sums
          const std::vector<double> z = sums.mean(sums.z), zhat = sums.mean(sums.zhat);
          append_row(run, "z_spectra", epoch + 1, z);
          append_row(run, "zhat_spectra", epoch + 1, zhat);
          run.arrays["final_z_spectrum"] = results::Array::vector(z);
          run.arrays["final_zhat_spectrum"] = results::Array::vector(zhat);
          m["z_flatness"] = flatness(z);
          m["zhat_flatness"] = flatness(zhat);
          m["trace_loss"] = sums.trace_loss / sums.count;
        }
        sums = SpectrumSums{};
        if (o.knn_every > 0 && (epoch + 1) % o.knn_every == 0) {
          train::EvalOptions knn_only = eval;
          knn_only.linear = false;
          m["knn_top1"] = train::evaluate_backbone(model.backbone(), data.train, data.test, knn_only).begin()->second;
        }
        return m;
      };

      train::TrainerConfig tc;
      tc.epochs = o.epochs;
      tc.eval_every = 1;
      tc.recipe = iternorm_cifar_config(o);
      for (const char* key : {"workers", "device", "out", "T", "trace-loss", "beta", "knn-every", "linear-epochs"})
        tc.recipe.erase(key);
      tc.recipe["run"] = run.config;
      tc.model_description = train::ssl_model_config_to_json(mc);
      tc.images_per_step = 2 * o.batch;
      tc.log_every_s = o.log_every;
      const train::TrainOutcome outcome = sweep.train_run(name, parts, tc, o.checkpoints, run);

      for (const char* key : {"z_flatness", "zhat_flatness", "trace_loss"}) {
        const auto it = run.curves.find(key);
        if (it != run.curves.end() && !it->second.y.empty()) run.metrics["final_" + std::string(key)] = it->second.y.back();
      }
      if (outcome.status == train::TrainStatus::finished) {
        // 5-NN at the end unless the last epoch was just evaluated; linear when asked for.
        results::Curve& knn = run.curves["knn_top1"];
        const std::string knn_metric = train::knn_metric_name(eval.knn_options);
        train::EvalOptions final_eval = eval;
        final_eval.knn = knn.x.empty() || knn.x.back() != double(o.epochs);
        final_eval.linear = o.linear_epochs > 0;
        try {
          for (const auto& [metric, value] :
               train::evaluate_backbone(model.backbone(), data.train, data.test, final_eval))
            run.metrics[metric] = value;
        } catch (const Error& e) {  // one run's failed evaluation (a diverging linear classifier) is its result
          std::fprintf(stderr, "iternorm-cifar: %s: the final evaluation failed: %s\n", name.c_str(), e.what());
          run.events.push_back({"note", 0, std::string("the final evaluation failed: ") + e.what(), json::object()});
          final_eval.knn = false;
        }
        if (final_eval.knn) {
          knn.x_label = "epoch";
          knn.x.push_back(double(o.epochs));
          knn.y.push_back(run.metrics[knn_metric]);
        }
        if (!knn.y.empty()) run.metrics[knn_metric] = knn.y.back();
      }
      sweep.finish_run(name, outcome.status == train::TrainStatus::finished ? "finished" : "diverged");
      sweep.publish();
    }
  results::Result& result = sweep.result();
  print_summary(result);
  sweep.write_figures();
  return result;
}

}  // namespace intl::studies
