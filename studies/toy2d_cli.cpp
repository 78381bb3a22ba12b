// `intl run toy2d`: options (each may be a comma list; the grid of all combinations runs), checks that
// fail with one line and exit code 2 before anything is written, a progress line, a summary table, and
// RESULT.json plus the Figure II / III SVGs in --out.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "engine/error.h"
#include "plot/figures.h"
#include "results/out_dir.h"
#include "results/result.h"
#include "studies/toy2d.h"
#include "studies/toy2d_result.h"

namespace intl::cli {

namespace {

namespace fs = std::filesystem;
using toy2d::RunOutput;
using toy2d::RunSpec;

// The options as CLI11 fills them: lists stay text until checked, so every error names its option.
struct Toy2dCommand {
  std::vector<std::string> method{"iternorm"}, T{"5"}, p{"0.5"}, beta{"0.05"}, init{"well", "ill"}, init_cond;
  std::vector<std::string> epochs{"200"}, batch{"32"}, lr{"0.1"}, noise{"0.1"}, blobs{"4"};
  CommonOptions common;
  CLI::Option* init_option = nullptr;
  CLI::Option* init_cond_option = nullptr;
};

int parse_int(const std::string& option, const std::string& text, const char* allowed) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < -2147483647LL || v > 2147483647LL)
    throw UsageError(option + ": '" + text + "' is not an integer; allowed: " + allowed);
  return int(v);
}

double parse_double(const std::string& option, const std::string& text, const char* allowed) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw UsageError(option + ": '" + text + "' is not a number; allowed: " + allowed);
  return v;
}

std::vector<int> ints(const std::string& option, const std::vector<std::string>& texts, const char* allowed) {
  std::vector<int> out;
  for (const std::string& t : texts) out.push_back(parse_int(option, t, allowed));
  return out;
}

std::vector<double> doubles(const std::string& option, const std::vector<std::string>& texts, const char* allowed) {
  std::vector<double> out;
  for (const std::string& t : texts) out.push_back(parse_double(option, t, allowed));
  return out;
}

toy2d::StudyOptions study_options(const Toy2dCommand& c) {
  toy2d::StudyOptions o;
  o.method = c.method;
  o.T = ints("--T", c.T, "integers 0..64");
  o.p = doubles("--p", c.p, "numbers in [0, 1] (0.5 whitens)");
  o.beta = doubles("--beta", c.beta, "finite numbers >= 0");
  // Both given: the command line's wins over a --config file's; both on one side is a mistake.
  const bool both = c.init_option->count() > 0 && c.init_cond_option->count() > 0;
  const bool init_from_file = set_by_config(c.init_option), cond_from_file = set_by_config(c.init_cond_option);
  if (both && init_from_file == cond_from_file)
    throw UsageError("--init-cond: cannot be combined with --init; give one (--init well|ill, or --init-cond C >= 1)");
  if (!both || !init_from_file) o.init = c.init;
  if (!both || !cond_from_file) o.init_cond = doubles("--init-cond", c.init_cond, "condition numbers in [1, 1e12]");
  o.epochs = ints("--epochs", c.epochs, "integers 1..1000000");
  o.batch = ints("--batch", c.batch, "integers 4..512");
  o.lr = doubles("--lr", c.lr, "finite numbers > 0");
  o.noise = doubles("--noise", c.noise, "finite numbers >= 0");
  o.blobs = ints("--blobs", c.blobs, "integers 1..512");
  o.seed = c.common.seed;
  toy2d::validate(o);
  return o;
}


std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void print_summary(const std::vector<RunOutput>& runs) {
  size_t width = 3;
  for (const RunOutput& r : runs) width = std::max(width, r.spec.name.size());
  std::printf("%-*s  %9s  %21s  %21s  %9s  %s\n", int(width), "run", "cond(Z)0", "eig cov(Z) end", "eig cov(Zhat) end",
              "loss", "verdict");
  for (const RunOutput& r : runs) {
    const std::string z = fmt("%.3g", r.final_z_eig_min) + " / " + fmt("%.3g", r.final_z_eig_max);
    const std::string w = fmt("%.4g", r.final_zhat_eig_min) + " / " + fmt("%.4g", r.final_zhat_eig_max);
    std::string verdict = r.verdict();
    if (r.crashed) verdict += " at iteration " + std::to_string(r.crash_iteration) + " (" + r.crash_message + ")";
    std::printf("%-*s  %9.4g  %21s  %21s  %9.3g  %s\n", int(width), r.spec.name.c_str(), r.initial_cond, z.c_str(),
                w.c_str(), r.final_loss, verdict.c_str());
  }
  std::printf("(eigenvalues: medians over the last epoch, view 1, covariance 1/(m-1); collapsed: lambda_min cov(Zhat) < %g)\n",
              toy2d::kCollapseBelow);
}

void run_command(const Toy2dCommand& c) {
  const auto t0 = std::chrono::steady_clock::now();
  const toy2d::StudyOptions options = study_options(c);
  const std::vector<RunSpec> grid = toy2d::expand_grid(options);
  // The toy is a 418-parameter network: the fused CPU path is the implementation on every device.
  if (c.common.device == "cuda")
    std::fprintf(stderr, "toy2d: --device cuda: this study runs its fused CPU path (a GPU would only add launch "
                         "latency to a 2-16-16-2 network); recorded as device cpu\n");
  const std::string out_dir = c.common.out.empty() ? results::default_out_dir("toy2d") : c.common.out;
  results::refuse_existing_result(out_dir, "choose another --out, or remove it to run again there");
  const bool created = results::prepare_out_dir(out_dir);

  results::Result result;
  std::vector<RunOutput> outputs;
  try {
    results::Header header = results::make_header("run toy2d", "toy2d");
    header.device = "cpu";
    header.device_name = results::device_description(false);
    header.seed = options.seed;
    const bool tty = isatty(fileno(stderr));
    for (size_t i = 0; i < grid.size(); ++i) {
      const RunSpec& spec = grid[i];
      const std::string prefix = "toy2d: run " + std::to_string(i + 1) + "/" + std::to_string(grid.size()) + " " + spec.name;
      const auto run_start = std::chrono::steady_clock::now();
      auto last = run_start;
      auto on_epoch = [&](int epoch, double loss) {
        if (!tty) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::milliseconds(100) && epoch + 1 < spec.epochs) return;
        last = now;
        // The rest of this run and the runs after it, at this run's pace.
        const double s = std::chrono::duration<double>(now - run_start).count(), per_epoch = s / (epoch + 1);
        const double eta = per_epoch * (spec.epochs - epoch - 1 + double(spec.epochs) * (grid.size() - i - 1));
        std::fprintf(stderr, "\r\033[K%s: epoch %d/%d, loss %.3g, lr %g, %.0f points/s, ETA %.0f s", prefix.c_str(),
                     epoch + 1, spec.epochs, loss, spec.lr, (epoch + 1) * toy2d::kPoints / std::max(s, 1e-9), eta);
      };
      outputs.push_back(toy2d::run_toy2d(spec, on_epoch));
      const RunOutput& r = outputs.back();
      std::fprintf(stderr, "%s%s: %s, lambda_min cov(Zhat) %.4g (%.2f s)%s", tty ? "\r\033[K" : "", prefix.c_str(),
                   r.verdict().c_str(), r.final_zhat_eig_min, r.wall_s, tty && i + 1 < grid.size() ? "" : "\n");
    }
    if (tty) std::fprintf(stderr, "\r\033[K");
    header.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result = toy2d::toy2d_result(options, outputs, header, c.common.device, out_dir);
    results::save_result(result, (fs::path(out_dir) / "RESULT.json").string());
  } catch (...) {
    std::error_code ec;
    if (created && fs::is_empty(out_dir, ec)) fs::remove(out_dir, ec);
    throw;
  }
  const std::vector<std::string> figures = plot::write_study_figures(result, out_dir);
  print_summary(outputs);
  std::printf("wrote %s", (fs::path(out_dir) / "RESULT.json").string().c_str());
  for (const std::string& f : figures) std::printf(", %s", f.c_str());
  std::printf("\n");
}

}  // namespace

void add_run_toy2d(CLI::App& run) {
  auto c = std::make_shared<Toy2dCommand>();
  auto* cmd = run.add_subcommand("toy2d", "synthetic 2D spectrum study: IterNorm, INTL, ST on a toy Siamese network "
                                          "(supplement D.1, Figures II and III)");
  cmd->footer("Each study option takes a comma list (--T 1,3,5); the grid of all combinations runs and lands in one "
              "RESULT.json. A run is " + toy2d::collapse_rule() + ".");
  auto list = [&](const char* name, std::vector<std::string>& target, const char* type, const char* help) {
    return cmd->add_option(name, target, help)->delimiter(',')->type_name(type)->capture_default_str();
  };
  list("--method", c->method, "NAME,...", "transform after the network: none | iternorm | intl | st | zca | cholesky");
  list("--T", c->T, "INT,...", "IterNorm iterations for iternorm and intl, 0..64");
  list("--p", c->p, "NUM,...", "power of the spectral transformation for st, in [0, 1] (0.5 whitens)");
  list("--beta", c->beta, "NUM,...", "trace-loss weight for intl, >= 0");
  c->init_option = list("--init", c->init, "NAME,...", "initial spectrum: well (condition number 2) | ill (1000)");
  c->init_cond_option =
      list("--init-cond", c->init_cond, "NUM,...", "initial condition number lambda_1/lambda_2 of cov(Z), 1..1e12 (instead of --init)");
  list("--epochs", c->epochs, "INT,...", "epochs of 512 points (16 iterations each at batch 32)");
  list("--batch", c->batch, "INT,...", "batch size, 4..512 (the remainder of an epoch is dropped)");
  list("--lr", c->lr, "NUM,...", "SGD learning rate (no momentum, no weight decay)");
  list("--noise", c->noise, "NUM,...", "standard deviation of the Gaussian noise that makes each view");
  list("--blobs", c->blobs, "INT,...", "number of Gaussian blobs, 1..512");
  add_common_options(*cmd, c->common);
  cmd->callback([c] { run_command(*c); });
}

}  // namespace intl::cli
