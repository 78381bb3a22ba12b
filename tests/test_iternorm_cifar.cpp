// The iternorm-cifar study: its spectra against Theorem 1 (cov(Zhat) has eigenvalues x f_T(x)^2), the paper's
// beta table and option checks, and the reduced setting's claim in a version small enough for seconds: with
// the trace loss the whitened spectrum ends flatter (larger lambda_r / lambda_1 of cov(Zhat)) than without,
// at T = 1, 3 and 5.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/cifar.h"
#include "data/loader.h"
#include "engine/error.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "engine/tensor.h"
#include "losses/whitening.h"
#include "results/result.h"
#include "studies/iternorm_cifar.h"
#include "train/evaluation.h"
#include "train/ssl_model.h"
#include "tests/intl_process.h"
#include "tests/temp_dir.h"

using namespace intl;
namespace fs = std::filesystem;

namespace {

double f_T(double x, int T) {
  double f = 1.0;
  for (int k = 0; k < T; ++k) f = 1.5 * f - 0.5 * x * f * f * f;
  return f;
}

}  // namespace

TEST_CASE("cw_spectra: r = min(m, d - 1) eigenvalues, largest first, and Theorem 1 maps Z's to Zhat's") {
  for (const auto& [m, d] : {std::pair<int64_t, int64_t>{12, 6}, {6, 12}}) {
    const Tensor z = Tensor::randn({m, d}, 3, 1);
    for (int T : {1, 3, 5}) {
      const studies::Spectra s = studies::cw_spectra(z, T);
      const size_t r = size_t(std::min(m, d - 1));
      REQUIRE(s.z.size() == r);
      REQUIRE(s.zhat.size() == r);
      double trace = 0;
      for (double v : s.z) trace += v;  // the dropped eigenvalues are zero
      for (size_t i = 0; i < r; ++i) {
        if (i > 0) CHECK(s.z[i] <= s.z[i - 1]);
        const double x = s.z[i] / trace;
        CHECK(s.zhat[i] == doctest::Approx(x * f_T(x, T) * f_T(x, T)).epsilon(1e-6));
      }
      // INTL(Zhat) by hand: v_i = |zhat_i|^2 / (d - 1), the diagonal of cov(Zhat) (rows of Zhat sum to zero),
      // whose sum is the trace, the sum of the spectrum above.
      const std::vector<double> zhat = iternorm(z.to(DType::f64), T, WhitenAxis::channel).to_vector();
      double loss = 0, diagonal = 0, spectrum = 0;
      for (int64_t i = 0; i < m; ++i) {
        double v = 0;
        for (int64_t j = 0; j < d; ++j) v += zhat[size_t(i * d + j)] * zhat[size_t(i * d + j)];
        v /= double(d - 1);
        loss += (1 - v) * (1 - v);
        diagonal += v;
      }
      for (double v : s.zhat) spectrum += v;
      CHECK(s.trace_loss == doctest::Approx(loss).epsilon(1e-9));
      CHECK(diagonal == doctest::Approx(spectrum).epsilon(1e-9));
    }
  }
  CHECK(studies::flatness({4.0, 2.0, 1.0}) == doctest::Approx(0.25));
  CHECK(std::isnan(studies::flatness({})));
}

TEST_CASE("iternorm-cifar: the paper's beta, --beta per T, and usage errors") {
  studies::IternormCifarOptions o;
  CHECK(studies::iternorm_cifar_beta(o, 0, true) == 5.0);   // T = 1
  CHECK(studies::iternorm_cifar_beta(o, 1, true) == 0.5);   // T = 3
  CHECK(studies::iternorm_cifar_beta(o, 2, true) == 0.05);  // T = 5
  CHECK(studies::iternorm_cifar_beta(o, 2, false) == 0.0);
  o.T = {4};
  CHECK_THROWS_AS(studies::validate(o), UsageError);  // no paper beta for T = 4
  o.beta = {0.1};
  CHECK_NOTHROW(studies::validate(o));
  CHECK(studies::iternorm_cifar_beta(o, 0, true) == 0.1);
  o.beta = {0.1, 0.2};
  CHECK_THROWS_AS(studies::validate(o), UsageError);
  o = {};
  o.trace_loss = {"maybe"};
  CHECK_THROWS_AS(studies::validate(o), UsageError);
  o = {};
  o.dataset = "imagenet";
  CHECK_THROWS_AS(studies::validate(o), UsageError);
  o = {};
  o.dim = 2;  // one eigenvalue of cov(Z) after centring over 2 features: no spectrum to flatten
  CHECK_THROWS_WITH_AS(studies::validate(o), doctest::Contains("--dim must be >= 3"), UsageError);
  o.dim = 3;
  CHECK_NOTHROW(studies::validate(o));
}

TEST_CASE("iternorm-cifar, reduced: the trace loss leaves a flatter whitened spectrum at every T") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  studies::IternormCifarOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.warmup = 3;
  o.drops = {};
  o.width = 2;
  o.hidden = 64;
  o.dim = 16;
  o.image_size = 8;
  o.dataset = "synthetic";
  o.train_images = 96;
  o.test_images = 64;
  o.knn_every = 2;
  o.linear_epochs = 0;
  o.workers = 0;
  o.checkpoints = false;
  o.device = "cpu";
  o.log_every = 1e9;
  o.out = dir.string();
  const results::Result r = studies::run_iternorm_cifar(o);
  REQUIRE(r.runs.size() == 6);
  for (int T : {1, 3, 5}) {
    const results::Run* on = r.find_run("T=" + std::to_string(T) + " trace loss");
    const results::Run* off = r.find_run("T=" + std::to_string(T) + " no trace loss");
    REQUIRE(on);
    REQUIRE(off);
    INFO("T = " << T << ": flatness with " << on->metrics.at("final_zhat_flatness") << ", without "
                << off->metrics.at("final_zhat_flatness"));
    CHECK(on->metrics.at("final_zhat_flatness") > off->metrics.at("final_zhat_flatness"));
    CHECK(on->metrics.at("final_trace_loss") < off->metrics.at("final_trace_loss"));
    // What the figure reads: the final spectra (r = min(32, 15) = 15 values) and kNN against epoch.
    CHECK(on->arrays.at("final_zhat_spectrum").rows() == 15);
    CHECK(on->arrays.at("final_z_spectrum").rows() == 15);
    CHECK(on->arrays.at("zhat_spectra").rows() == 3);
    CHECK(on->curves.at("knn_top1").x == std::vector<double>{2, 3});
    CHECK(on->metrics.count("knn5_top1") == 1);
  }
  CHECK(fs::exists(dir / "RESULT.json"));
  CHECK(fs::exists(dir / "iternorm-cifar.svg"));
}

TEST_CASE("iternorm-cifar: --drops places each learning-rate drop that many epochs before the end") {
  TempDir tmp;
  auto lr_per_epoch = [&](std::vector<int> drops, const char* out) {
    studies::IternormCifarOptions o;
    o.T = {1};
    o.trace_loss = {"off"};
    o.epochs = 4;
    o.batch = 32;
    o.lr = 0.01;
    o.warmup = 0;
    o.drops = std::move(drops);
    o.drop_factor = 0.1;
    o.width = 2;
    o.hidden = 16;
    o.dim = 8;
    o.image_size = 8;
    o.dataset = "synthetic";
    o.train_images = 64;
    o.test_images = 16;
    o.knn_every = 0;
    o.linear_epochs = 0;
    o.workers = 0;
    o.checkpoints = false;
    o.device = "cpu";
    o.log_every = 1e9;
    o.out = (tmp.path / out).string();
    const results::Result r = studies::run_iternorm_cifar(o);
    REQUIRE(r.runs.size() == 1);
    return r.runs[0].curves.at("lr").y;  // the rate of each epoch's last step
  };
  auto near = [](const std::vector<double>& got, const std::vector<double>& want) {
    INFO("got " << doctest::toString(got));
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-9));
  };
  near(lr_per_epoch({2, 1}, "two"), {0.01, 0.01, 0.001, 0.0001});
  near(lr_per_epoch({}, "none"), {0.01, 0.01, 0.01, 0.01});
  near(lr_per_epoch({9}, "early"), {0.001, 0.001, 0.001, 0.001});  // at or before the start: from the first step
}

// Every option of the training step reaches it: the epoch of two steps replayed by hand from the options (the
// network of --width, --hidden, --dim and --seed, crops at --image-size, the INTL loss with --T and --beta, Adam
// with --lr, --weight-decay and --warmup) gives the run's recorded loss and rate, bit for bit.
TEST_CASE("iternorm-cifar: an epoch of two steps replayed by hand from the options gives the run's loss, its "
          "final 5-NN and linear classifier") {
  TempDir tmp;
  make_synthetic_cifar((tmp.path / "data").string(), CifarKind::cifar10, 32, 10, 8);
  studies::IternormCifarOptions o;
  o.T = {3};
  o.trace_loss = {"on"};
  o.beta = {0.7};
  o.loss_form = IntlLossForm::newton;  // not the CPU's automatic choice (spectral): the option must reach the loss
  o.epochs = 1;
  o.batch = 16;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  o.warmup = 2;
  o.drops = {};
  o.width = 2;
  o.hidden = 16;
  o.dim = 8;
  o.image_size = 8;
  o.dataset = "cifar10";
  o.data_dir = (tmp.path / "data").string();
  o.train_images = 32;
  o.test_images = 10;
  o.knn_every = 0;
  o.linear_epochs = 2;
  o.workers = 0;
  o.checkpoints = false;
  o.device = "cpu";
  o.seed = 4;
  o.log_every = 1e9;
  o.out = (tmp.path / "out").string();
  const results::Result r = studies::run_iternorm_cifar(o);
  REQUIRE(r.runs.size() == 1);

  train::SslModelConfig mc;
  mc.base_width = 2;
  mc.projector = {16, 8};
  mc.seed = 4;
  train::SslModel model(mc);
  model.train();
  std::vector<NamedTensor> params;
  for (auto& [name, t] : model.named_parameters()) params.push_back({name, t});
  Adam adam(params, AdamOptions{0.9, 0.999, 1e-8, 0.1, false});
  const CifarDataset data = load_cifar(o.data_dir, CifarKind::cifar10, Split::train);
  LoaderConfig lc = cifar_train_loader_config(16, 4, 0);
  lc.views.view1.out_size = lc.views.view2.out_size = 8;
  Loader loader(data, lc);
  const MultiStep schedule{0.01, 2, {}, 0.2};
  loader.start_epoch(0);
  double loss_sum = 0;
  for (int step = 0; step < 2; ++step) {
    const Batch* b = loader.next();
    REQUIRE(b);
    const Shape shape{b->n, b->height, b->width, b->channels};
    adam.zero_grad();
    // View 1 first, in its own statement: the order of a call's arguments is unspecified, and it decides the
    // batch norms' running statistics, which the final evaluation reads.
    Tensor z1 = model.embed(Tensor::from_floats(b->view1, shape));
    Tensor z2 = model.embed(Tensor::from_floats(b->view2, shape));
    Tensor loss = intl_loss(z1, z2, 3, 0.7, IntlLossForm::newton);
    loss.backward();
    loss_sum += loss.item();
    adam.step(schedule.at(step));
  }
  CHECK(schedule.at(0) == doctest::Approx(0.005));  // the warm-up's first step
  CHECK(r.runs[0].curves.at("loss").y == std::vector<double>{loss_sum / 2});
  CHECK(r.runs[0].curves.at("lr").y == std::vector<double>{0.01});

  // The final evaluation of that network: 5-NN and --linear-epochs of the classifier with the study's seed, on
  // features of --image-size images.
  train::EvalOptions e;
  e.linear_options.epochs = 2;
  e.linear_options.seed = 4;
  e.features = train::FeatureOptions{256, 0, 8, Device::cpu, std::nullopt};
  const auto by_hand =
      train::evaluate_backbone(model.backbone(), data, load_cifar(o.data_dir, CifarKind::cifar10, Split::test), e);
  for (const std::string name : {"knn5_top1", "linear_final_loss", "linear_top1"}) {
    INFO(name);
    REQUIRE(r.runs[0].metrics.count(name) == 1);
    CHECK(r.runs[0].metrics.at(name) == by_hand.at(name));
  }
}

TEST_CASE("iternorm-cifar: the paper's config file holds the defaults, the reduced one only known options") {
  const nlohmann::json defaults = studies::iternorm_cifar_config(studies::IternormCifarOptions{});
  for (const char* file : {"iternorm-cifar.json", "iternorm-cifar-cpu.json"}) {
    std::ifstream in(std::string(INTL_SOURCE_DIR) + "/experiments/" + file);
    REQUIRE(in);
    const nlohmann::json config = nlohmann::json::parse(in);
    for (const auto& [key, value] : config.items()) {
      if (key[0] == '_') continue;
      INFO(file << ": " << key);
      REQUIRE(defaults.contains(key));
      if (std::string(file) == "iternorm-cifar.json") CHECK(value == defaults.at(key));
    }
  }
}

// Six epochs of sixteen steps (about 0.1 s each here, on two cores) and SIGINT sent 0.05 s after the first
// epoch's checkpoint, so that the run stops inside its second epoch: that epoch's spectra then average steps
// from before the stop and after the resume, whose sums only the checkpoint carries over. (Where the signal lands
// at an epoch's end or in a later epoch, on a slower or faster machine, the comparison still holds; the run must
// only not end first, as it did within 0.4 s on an idle machine.)
TEST_CASE("iternorm-cifar stopped by SIGINT inside an epoch and resumed records every epoch as the "
          "uninterrupted run") {
  TempDir dir;
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{
        "run", "iternorm-cifar", "--T", "1", "--trace-loss", "on", "--epochs", "6", "--batch", "32",
        "--train-images", "512", "--test-images", "32", "--width", "4", "--hidden", "32", "--dim", "8",
        "--image-size", "16", "--dataset", "synthetic", "--knn-every", "1", "--linear-epochs", "0", "--warmup", "1",
        "--workers", "0", "--checkpoints", "--device", "cpu", "--log-every", "1000", "--out", out};
  };
  const std::string straight = dir / "straight", stopped = dir / "stopped";
  REQUIRE_MESSAGE(run_intl(args(straight), dir / "straight.log") == 0, read_text(dir / "straight.log"));
  const int status = interrupt_intl(args(stopped), stopped,
                                    stopped + "/checkpoints/T_1_trace_loss/ckpt-e0001.safetensors", SIGINT,
                                    dir / "stopped.log", 5, 0.05);
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 130), read_text(dir / "stopped.log"));
  INFO("stopped: " << read_text(dir / "stopped.log"));
  std::vector<std::string> resume = args(stopped);
  resume.push_back("--resume");
  REQUIRE_MESSAGE(run_intl(resume, dir / "resumed.log") == 0, read_text(dir / "resumed.log"));

  const results::Result a = results::load_result(straight + "/RESULT.json");
  const results::Result b = results::load_result(stopped + "/RESULT.json");
  REQUIRE(a.runs.size() == 1);
  REQUIRE(b.runs.size() == 1);
  // --knn-every 1: one 5-NN point per epoch, the last not evaluated twice; --linear-epochs 0: no linear probe.
  CHECK(a.runs[0].curves.at("knn_top1").x == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(a.runs[0].metrics.count("knn5_top1") == 1);
  CHECK(a.runs[0].metrics.count("linear_top1") == 0);
  CHECK(a.runs[0].metrics == b.runs[0].metrics);
  for (const auto& [key, curve] : a.runs[0].curves) {
    if (key == "epoch_time_s") continue;  // wall-clock times, the one thing allowed to differ
    INFO(key);
    REQUIRE(b.runs[0].curves.count(key) == 1);
    CHECK(curve.x == b.runs[0].curves.at(key).x);
    CHECK(curve.y == b.runs[0].curves.at(key).y);
  }
  for (const char* key : {"z_spectra", "zhat_spectra", "final_zhat_spectrum"}) {
    INFO(key);
    CHECK(a.runs[0].arrays.at(key).values == b.runs[0].arrays.at(key).values);
  }
}
