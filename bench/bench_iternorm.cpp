// The IterNorm benchmark. Besides the median it prints the FLOPs of the work and the rate achieved, next to
// an sgemm measured in the same process, so the figure can be read against the machine's GEMM peak.
#include "bench/bench_iternorm.h"

#include <cstdio>

#include "bench/timing.h"
#include "cli/command.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "losses/intl_loss.h"

namespace intl::bench {
namespace {

struct Options {
  int64_t m = 256, d = 2048;
  int T = 4;
  double budget = 3.0;
  IntlLossForm form = IntlLossForm::automatic;
  int profile_runs = 0;
  cli::CommonOptions common;
};

double sgemm_gflops(Device device) {  // the machine's GEMM rate at a large size
  const int64_t n = 2048;
  Tensor a = Tensor::randn({n, n}, 1, 1, DType::f32, device), b = Tensor::randn({n, n}, 1, 2, DType::f32, device);
  // Reading one element back waits for the device without timing a copy of the product.
  Timing t = time_median([&] { slice(slice(matmul(a, b), 0, 0, 1), 1, 0, 1).item(); }, 1, 5, 1.0);
  return 2.0 * double(n * n * n) / (t.median_ms * 1e-3) / 1e9;
}

void run(Options o) {
  const Device device = resolve_device(o.common.device);
  o.form = resolve_intl_loss_form(o.form, device);
  Tensor z1 = Tensor::randn({o.m, o.d}, o.common.seed, 1, DType::f32, device);
  Tensor z2 = add(z1, mul(Tensor::randn({o.m, o.d}, o.common.seed, 2, DType::f32, device), 0.1));
  z1.requires_grad_(true);
  z2.requires_grad_(true);
  const double beta = intl_beta(o.m);
  double loss_value = 0;
  auto step = [&] {
    z1.zero_grad();
    z2.zero_grad();
    Tensor loss = intl_loss(z1, z2, o.T, beta, o.form);
    loss.backward();
    loss_value = loss.item();  // waits for the device: the backward ran on the same stream before it
  };
  const Timing t = time_median(step, 2, 5, o.budget);
  // FLOPs. Literal algorithm, per view: covariance 2 m^2 d, T Newton steps of three m^3 GEMMs, output
  // 2 m^2 d; backward twice the forward. Spectral algorithm, both views: Gram matrices G1, G2, C (6 m^2 d),
  // the gradient product (2m x 2m) x (2m x d) (8 m^2 d), and 16 m x m products (plus two eigensolves).
  const double m = double(o.m), d = double(o.d);
  const double literal = 2 * 3 * (2 * m * m * d + o.T * 3 * 2 * m * m * m + 2 * m * m * d);
  const double spectral = 14 * m * m * d + 16 * 2 * m * m * m;
  const double done = o.form == IntlLossForm::newton ? literal : spectral;
  const double peak = sgemm_gflops(device);
  std::printf("intl bench iternorm: m=%lld d=%lld T=%d float32 loss-form=%s device=%s loss=%.6g reps=%d\n",
              (long long)o.m, (long long)o.d, o.T, intl_loss_form_name(o.form), device_name(device), loss_value,
              t.reps);
  std::printf("GEMM work of this algorithm: %.2f GFLOP -> %.1f GFLOP/s (%.0f%% of sgemm 2048^3 measured here: "
              "%.1f GFLOP/s); the literal algorithm would need %.2f GFLOP\n",
              done / 1e9, done / (t.median_ms * 1e-3) / 1e9, 100 * done / (t.median_ms * 1e-3) / 1e9 / peak, peak,
              literal / 1e9);
  std::printf("min_ms: %.3f\nmedian_ms: %.3f\n", t.min_ms, t.median_ms);
  print_profile(step, o.profile_runs, t.median_ms);
}

}  // namespace

void add_bench_iternorm(CLI::App& bench) {
  auto opts = std::make_shared<Options>();
  auto* cmd = bench.add_subcommand("iternorm", "INTL loss (CW IterNorm + trace loss + norm_mse), fwd+bwd, two views");
  cmd->add_option("--m", opts->m, "batch size (rows)")->capture_default_str()->check(CLI::Range(2, 1 << 16));
  cmd->add_option("--d", opts->d, "embedding dimension")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--T", opts->T, "Newton iterations")->capture_default_str()->check(CLI::Range(0, 100));
  cmd->add_option("--budget", opts->budget, "seconds of timed repetitions")->check(cli::positive())->capture_default_str();
  cli::add_loss_form_option(*cmd, opts->form);
  cmd->add_option("--profile", opts->profile_runs,
                  "then N more runs with every backend primitive synchronised and timed: where the time goes")
      ->check(CLI::Range(0, 100000));
  cli::add_common_options(*cmd, opts->common);
  cmd->remove_option(cmd->get_option("--out"));  // a benchmark prints its figures and writes no files
  cmd->callback([opts] { run(*opts); });
}

}  // namespace intl::bench
