// The whiten-instability study: the differentiable cast behind --eig-dtype, hard whitening and its inverse
// condition number, the training loop's "crash is a result" mode, and the reduced setting's ordering in a
// version small enough for seconds - d > m crashes at once with a rounding-level c^-1, d = m - 1 is
// ill-conditioned, d well below m trains; a study stopped by SIGINT and resumed ends as if never stopped.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "data/cifar.h"
#include "data/image_file.h"
#include "data/loader.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "losses/whitening.h"
#include "results/result.h"
#include "studies/whiten_instability.h"
#include "train/checkpoint.h"
#include "train/ssl_model.h"
#include "train/trainer.h"
#include "tests/intl_process.h"
#include "tests/temp_dir.h"

using namespace intl;
namespace fs = std::filesystem;

namespace {

// 64 random 32x32 images in 10 classes.
CifarDataset random_images() {
  CifarDataset data;
  RandomStream rng{5, kStreamData, 0};
  data.pixels.resize(64 * CifarDataset::kImageBytes);
  for (uint8_t& p : data.pixels) p = uint8_t(rng.next_below(256));
  for (int i = 0; i < 64; ++i) data.labels.push_back(i % 10);
  return data;
}

// train_loop over a width-2 network with the given loss of the two views' embeddings, in crash mode.
struct CrashRun {
  results::Run run;
  train::TrainOutcome outcome;
};
CrashRun train_in_crash_mode(const std::function<Tensor(const Tensor&, const Tensor&, int64_t)>& loss) {
  const CifarDataset data = random_images();
  train::SslModelConfig mc;
  mc.base_width = 2;
  mc.projector = {8, 4};
  train::SslModel model(mc);
  std::vector<NamedTensor> params;
  for (auto& [name, t] : model.named_parameters()) params.push_back({name, t});
  Adam adam(params, AdamOptions{});
  LoaderConfig lc = cifar_train_loader_config(16, 0, 0);
  lc.views.view1.out_size = lc.views.view2.out_size = 8;
  Loader loader(data, lc);
  int64_t step = 0;
  train::TrainerParts parts;
  parts.model = &model;
  parts.optimizer = &adam;
  parts.loader = &loader;
  parts.learning_rate = [](int64_t) { return 1e-3; };
  parts.loss = [&](const Batch& b) {
    const Shape shape{b.n, b.height, b.width, b.channels};  // NHWC
    Tensor z1 = model.embed(Tensor::from_floats(b.view1, shape));
    Tensor z2 = model.embed(Tensor::from_floats(b.view2, shape));
    return loss(z1, z2, ++step);
  };
  train::TrainerConfig tc;
  tc.epochs = 3;
  tc.crash_is_result = true;
  tc.handle_signals = false;
  tc.log_every_s = 1e9;
  CrashRun r;
  r.outcome = train::train_loop(parts, tc, r.run, [] {});
  return r;
}

}  // namespace

TEST_CASE("cast: a float64 part of a float32 graph sends float32 gradients back") {
  Tensor x = Tensor::from_vector({1.5, -2.0, 0.25}, {3}, DType::f32);
  x.requires_grad_();
  Tensor y = cast(x, DType::f64);
  CHECK(y.dtype() == DType::f64);
  sum(square(y)).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == DType::f32);
  const std::vector<double> g = x.grad().to_vector();
  CHECK(g[0] == doctest::Approx(3.0));
  CHECK(g[1] == doctest::Approx(-4.0));
  CHECK(g[2] == doctest::Approx(0.5));
}

TEST_CASE("hard whitening: identity covariance when d < m, a rounding-level eigenvalue when d >= m") {
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor z = Tensor::randn({64, 8}, 1, 1);
    const studies::HardWhitened w = studies::hard_whiten(z, 0.5, dtype);
    CHECK(w.zhat.dtype() == dtype);
    const std::vector<double> cov = center_and_covariance(w.zhat.to(DType::f64), WhitenAxis::batch).sigma.to_vector();
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j) CHECK(cov[size_t(i * 8 + j)] == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-3).scale(1));
    CHECK(studies::log10_inverse_condition(w.lambda_min, w.lambda_max) > -2);
    // d = m: the centred covariance has rank m - 1, one eigenvalue is zero up to rounding.
    const studies::HardWhitened s = studies::hard_whiten(Tensor::randn({16, 16}, 1, 2), 0.5, dtype);
    CHECK(studies::log10_inverse_condition(s.lambda_min, s.lambda_max) < (dtype == DType::f32 ? -5 : -13));
  }
}

TEST_CASE("train_loop with crash_is_result: an eigensolver failure and a non-finite gradient are crash events") {
  const CrashRun solver = train_in_crash_mode([](const Tensor& a, const Tensor& b, int64_t step) {
    if (step == 3) throw NumericalError("eigh: the symmetric eigensolver did not converge (test)");
    return mse_loss(a, b);
  });
  CHECK(solver.outcome.status == train::TrainStatus::diverged);
  REQUIRE(solver.run.first_event("crash") != nullptr);
  CHECK(solver.run.first_event("crash")->step == 3);
  CHECK(solver.run.first_event("crash")->message.find("did not converge") != std::string::npos);
  CHECK(solver.outcome.position.global_step == 2);

  // sqrt at 0: a finite loss (0) whose gradient is infinite.
  const CrashRun gradient = train_in_crash_mode([](const Tensor& a, const Tensor& b, int64_t step) {
    Tensor loss = mse_loss(a, b);
    return step == 2 ? add(loss, sum(sqrt(sub(a, a.detach())))) : loss;
  });
  REQUIRE(gradient.run.first_event("crash") != nullptr);
  CHECK(gradient.run.first_event("crash")->step == 2);
  CHECK(gradient.run.first_event("crash")->message.find("gradient became non-finite") != std::string::npos);

  // Without a crash the loop runs to the end (3 epochs of 4 steps).
  const CrashRun fine = train_in_crash_mode([](const Tensor& a, const Tensor& b, int64_t) { return mse_loss(a, b); });
  CHECK(fine.outcome.status == train::TrainStatus::finished);
  CHECK(fine.outcome.position.global_step == 12);
  CHECK(fine.run.first_event("crash") == nullptr);
}

TEST_CASE("whiten-instability, reduced: d > m crashes at once, d = m - 1 is ill-conditioned, d << m trains") {
  TempDir dir;
  studies::WhitenInstabilityOptions o;
  o.d = {48, 31, 4};  // the crashing run first: the study must go on after it
  o.batch = 32;
  o.iters = 24;
  o.warmup = 4;
  o.width = 2;
  o.hidden = 64;
  o.image_size = 8;
  o.dataset = "synthetic";
  o.train_images = 128;
  o.workers = 0;
  o.device = "cpu";
  o.log_every = 1e9;
  o.out = dir.path.string();
  const results::Result r = studies::run_whiten_instability(o);
  REQUIRE(r.runs.size() == 3);
  const results::Run* over = r.find_run("d=48 seed=0");
  const results::Run* edge = r.find_run("d=31 seed=0");
  const results::Run* small = r.find_run("d=4 seed=0");
  REQUIRE(over);
  REQUIRE(edge);
  REQUIRE(small);
  // d > m: crashes within the first iterations; its covariance is singular up to rounding.
  REQUIRE(over->first_event("crash"));
  CHECK(over->first_event("crash")->step <= 2);
  CHECK(over->metrics.at("crashed") == 1);
  CHECK(over->metrics.at("crash_iteration") == double(over->first_event("crash")->step));  // the event's iteration
  CHECK(over->metrics.at("initial_log10_inv_cond") < -6);
  // d well below m: trains every iteration with a well-conditioned covariance.
  CHECK(small->first_event("crash") == nullptr);
  CHECK(small->curves.at("log10_inv_cond").y.size() == 24);
  CHECK(small->metrics.at("min_log10_inv_cond") > -3);
  // d = m - 1 (full rank, as d = m is without centring): far worse conditioned than d << m.
  CHECK(edge->metrics.at("min_log10_inv_cond") < small->metrics.at("min_log10_inv_cond") - 2);
  // Each run's summary is its curve's first, lowest and last points, and the iterations it trained.
  for (const results::Run* run : {over, edge, small}) {
    INFO(run->name);
    const std::vector<double>& y = run->curves.at("log10_inv_cond").y;
    REQUIRE(y.size() >= 1);
    auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
    double lowest = NAN;  // the lowest point, a NaN (a failed eigensolve) ignored
    for (double v : y) lowest = std::isnan(lowest) || v < lowest ? v : lowest;
    CHECK(same(run->metrics.at("initial_log10_inv_cond"), y.front()));
    CHECK(same(run->metrics.at("final_log10_inv_cond"), y.back()));
    CHECK(same(run->metrics.at("min_log10_inv_cond"), lowest));
  }
  CHECK(small->metrics.at("final_log10_inv_cond") != small->metrics.at("initial_log10_inv_cond"));
  CHECK(small->metrics.at("iterations") == 24);
  // The file holds every curve and crash, and the figure is drawn.
  const results::Result saved = results::load_result((dir.path / "RESULT.json").string());
  CHECK(saved.header.study == "whiten-instability");
  CHECK(saved.find_run("d=48 seed=0")->first_event("crash") != nullptr);
  CHECK(saved.find_run("d=4 seed=0")->curves.at("step_loss").y.size() == 24);
  CHECK(fs::exists(dir.path / "whiten-instability.svg"));
}

TEST_CASE("whiten-instability on an ImageNet-style folder (Figure IV(a)'s data path)") {
  TempDir dir;
  RandomStream rng{9, kStreamData, 0};
  for (int i = 0; i < 24; ++i) {
    ImageU8 image{18, 20, 3, {}};
    for (int k = 0; k < 20 * 18 * 3; ++k) image.pixels.push_back(uint8_t(rng.next_below(256)));
    const fs::path file = dir.path / "data/train" / (i % 2 ? "b" : "a") / (std::to_string(i) + ".png");
    fs::create_directories(file.parent_path());
    write_png(file.string(), image);
  }
  studies::WhitenInstabilityOptions o;
  o.d = {4};
  o.batch = 8;
  o.iters = 4;  // an epoch (3 steps) and one step: the last, partial epoch is trained
  o.warmup = 1;
  o.width = 2;
  o.hidden = 16;
  o.image_size = 16;
  o.dataset = "imagenet";
  o.data_dir = (dir.path / "data").string();
  o.workers = 1;
  o.device = "cpu";
  o.log_every = 1e9;
  o.out = (dir.path / "out").string();
  o.checkpoints = true;
  const results::Result r = studies::run_whiten_instability(o);
  REQUIRE(r.runs.size() == 1);
  CHECK(r.runs[0].curves.at("log10_inv_cond").y.size() == 4);
  CHECK(r.runs[0].metrics.at("iterations") == 4);
  CHECK(r.runs[0].first_event("crash") == nullptr);
  // The network has the ImageNet stem (7x7 stride-2 convolution and max pool), and each run keeps one checkpoint.
  const std::vector<std::string> kept = train::list_checkpoints((dir.path / "out/checkpoints/d_4_seed_0").string());
  REQUIRE(kept.size() == 1);
  CHECK(train::read_checkpoint_state(kept[0]).model.at("stem") == "imagenet");
}

TEST_CASE("whiten-instability: a run is a function of its own seed, not of the study's first seed") {
  // Run "seed=1" of --seed 0 --seeds 2 is run "seed=1" of --seed 1 --seeds 1: initial weights and data order
  // both follow the run's seed (the data set, a file here, does not depend on it).
  TempDir dir;
  make_synthetic_cifar((dir.path / "data").string(), CifarKind::cifar10, 64, 10, 3);
  auto study = [&](uint64_t seed, int seeds, const char* out) {
    studies::WhitenInstabilityOptions o;
    o.d = {4};
    o.batch = 16;
    o.iters = 4;
    o.warmup = 1;
    o.width = 2;
    o.hidden = 16;
    o.image_size = 8;
    o.dataset = "cifar10";
    o.data_dir = (dir.path / "data").string();
    o.seed = seed;
    o.seeds = seeds;
    o.workers = 0;
    o.device = "cpu";
    o.log_every = 1e9;
    o.out = (dir.path / out).string();
    return studies::run_whiten_instability(o);
  };
  const results::Result two = study(0, 2, "two"), one = study(1, 1, "one");
  REQUIRE(two.runs.size() == 2);
  REQUIRE(one.runs.size() == 1);
  const auto& loss0 = two.find_run("d=4 seed=0")->curves.at("step_loss").y;
  const auto& loss1 = two.find_run("d=4 seed=1")->curves.at("step_loss").y;
  REQUIRE(loss1.size() == 4);
  CHECK(loss1 == one.find_run("d=4 seed=1")->curves.at("step_loss").y);
  CHECK(loss0 != loss1);
  CHECK(two.find_run("d=4 seed=1")->curves.at("log10_inv_cond").y ==
        one.find_run("d=4 seed=1")->curves.at("log10_inv_cond").y);
}

// Every option of the training step reaches it: two iterations replayed by hand from the options (the network
// of --width, --hidden, --d and the run's seed, crops at --image-size, hard whitening with --p in --eig-dtype,
// Adam with --lr, --weight-decay and --warmup) give the run's recorded step losses, bit for bit.
TEST_CASE("whiten-instability: two iterations replayed by hand from the options give the run's step losses") {
  // Both eigensolver precisions: --eig-dtype must reach the whitening.
  for (const DType eig_dtype : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(eig_dtype));
    TempDir dir;
    make_synthetic_cifar((dir.path / "data").string(), CifarKind::cifar10, 32, 10, 9);
    studies::WhitenInstabilityOptions o;
    o.d = {4};
    o.batch = 16;
    o.iters = 2;
    o.p = 0.4;
    o.eig_dtype = eig_dtype == DType::f64 ? "float64" : "float32";
    o.width = 2;
    o.hidden = 16;
    o.image_size = 8;
    o.dataset = "cifar10";
    o.data_dir = (dir.path / "data").string();
    o.train_images = 32;
    o.lr = 0.01;
    o.weight_decay = 0.1;
    o.warmup = 2;
    o.workers = 0;
    o.device = "cpu";
    o.seed = 5;
    o.log_every = 1e9;
    o.out = (dir.path / "out").string();
    const results::Result r = studies::run_whiten_instability(o);
    REQUIRE(r.runs.size() == 1);

    train::SslModelConfig mc;
    mc.base_width = 2;
    mc.projector = {16, 4};
    mc.seed = 5;
    train::SslModel model(mc);
    model.train();
    std::vector<NamedTensor> params;
    for (auto& [name, t] : model.named_parameters()) params.push_back({name, t});
    Adam adam(params, AdamOptions{0.9, 0.999, 1e-8, 0.1, false});
    const CifarDataset data = load_cifar(o.data_dir, CifarKind::cifar10, Split::train);
    LoaderConfig lc = cifar_train_loader_config(16, 5, 0);
    lc.views.view1.out_size = lc.views.view2.out_size = 8;
    Loader loader(data, lc);
    const MultiStep schedule{0.01, 2, {}, 1.0};
    loader.start_epoch(0);
    std::vector<double> losses;
    for (int step = 0; step < 2; ++step) {
      const Batch* b = loader.next();
      REQUIRE(b);
      const Shape shape{b->n, b->height, b->width, b->channels};
      adam.zero_grad();
      const studies::HardWhitened w1 = studies::hard_whiten(model.embed(Tensor::from_floats(b->view1, shape)), 0.4,
                                                            eig_dtype);
      const studies::HardWhitened w2 = studies::hard_whiten(model.embed(Tensor::from_floats(b->view2, shape)), 0.4,
                                                            eig_dtype);
      Tensor loss = norm_mse(w1.zhat, w2.zhat);
      loss.backward();
      losses.push_back(loss.item());
      adam.step(schedule.at(step));
    }
    CHECK(r.runs[0].curves.at("step_loss").y == losses);
  }
}

TEST_CASE("whiten-instability: options out of range are usage errors") {
  studies::WhitenInstabilityOptions o;
  o.d = {};
  CHECK_THROWS_AS(studies::validate(o), UsageError);
  o = {};
  o.p = 0;
  CHECK_THROWS_AS(studies::validate(o), UsageError);
  o = {};
  o.eig_dtype = "float16";
  CHECK_THROWS_AS(studies::validate(o), UsageError);
  o = {};
  o.arch = "vgg";
  CHECK_THROWS_AS(studies::validate(o), UsageError);
  o = {};
  o.p = 1.5;
  CHECK_THROWS_WITH_AS(studies::validate(o), doctest::Contains("--p must be in (0, 1]"), UsageError);
  o.p = 1;
  CHECK_NOTHROW(studies::validate(o));
}

TEST_CASE("whiten-instability: the paper's config file holds the defaults, the reduced one only known options") {
  const nlohmann::json defaults = studies::whiten_instability_config(studies::WhitenInstabilityOptions{});
  for (const char* file : {"whiten-instability.json", "whiten-instability-cpu.json"}) {
    std::ifstream in(std::string(INTL_SOURCE_DIR) + "/experiments/" + file);
    REQUIRE(in);
    const nlohmann::json config = nlohmann::json::parse(in);
    for (const auto& [key, value] : config.items()) {
      if (key[0] == '_') continue;
      INFO(file << ": " << key);
      REQUIRE(defaults.contains(key));
      if (std::string(file) == "whiten-instability.json") CHECK(value == defaults.at(key));
    }
  }
}

TEST_CASE("whiten-instability stopped by SIGINT in its second run and resumed ends as the uninterrupted study") {
  TempDir dir;
  // Two runs of 30 epochs of 4 steps, a checkpoint each epoch; a fraction of a second each on a width-2 network.
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{
        "run", "whiten-instability", "--dataset", "synthetic", "--train-images", "64", "--batch", "16", "--iters",
        "120", "--d", "4,6", "--width", "2", "--hidden", "16", "--image-size", "8", "--warmup", "2", "--workers",
        "1", "--checkpoints", "--seed", "3", "--log-every", "1000", "--device", "cpu", "--out", out};
  };
  const std::string straight = dir / "straight", stopped = dir / "stopped";
  REQUIRE_MESSAGE(run_intl(args(straight), dir / "straight.log") == 0, read_text(dir / "straight.log"));

  const int status = interrupt_intl(args(stopped), stopped, stopped + "/checkpoints/d_6_seed_3/ckpt-e0001.safetensors",
                                    SIGINT, dir / "stopped.log");
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 130), read_text(dir / "stopped.log"));
  CHECK(read_text(dir / "stopped.log").find("continue with the same command and --resume") != std::string::npos);
  const results::Result partial = results::load_result(stopped + "/RESULT.json");
  REQUIRE(partial.runs.size() == 2);
  CHECK(partial.runs[0].curves.at("log10_inv_cond").y.size() == 120);  // the first run is kept whole
  CHECK(partial.runs[1].curves.at("log10_inv_cond").y.size() < 120);

  std::vector<std::string> resume = args(stopped);
  resume.push_back("--resume");
  REQUIRE_MESSAGE(run_intl(resume, dir / "resumed.log") == 0, read_text(dir / "resumed.log"));
  const results::Result a = results::load_result(straight + "/RESULT.json");
  const results::Result b = results::load_result(stopped + "/RESULT.json");
  REQUIRE(a.runs.size() == b.runs.size());
  for (size_t i = 0; i < a.runs.size(); ++i) {
    INFO(a.runs[i].name);
    CHECK(a.runs[i].name == b.runs[i].name);
    CHECK(a.runs[i].metrics == b.runs[i].metrics);
    REQUIRE(a.runs[i].curves.size() == b.runs[i].curves.size());
    for (const auto& [key, curve] : a.runs[i].curves) {
      if (key == "epoch_time_s") continue;  // wall-clock times, the one thing allowed to differ
      INFO(key);
      CHECK(curve.x == b.runs[i].curves.at(key).x);
      CHECK(curve.y == b.runs[i].curves.at(key).y);
    }
  }
}
