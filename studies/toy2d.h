// The toy2d study (SPEC 3.1, supplement D.1, Figures II and III): a Siamese 2-16-16-2 network trained on 512
// points from 2D Gaussian blobs with two Gaussian-noise views, plain MSE between the transformed outputs, and
// one of the transforms of studies/toy2d_whiten.h; every iteration records both eigenvalues of cov(Z) and
// cov(Zhat) and the loss, and each run ends with a collapse verdict. Options may hold lists: the grid of
// their combinations runs in one call and lands in one result.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "studies/toy2d_net.h"
#include "studies/toy2d_whiten.h"

namespace intl::toy2d {

inline constexpr int kPoints = 512;           // data set size (supplement D.1)
inline constexpr double kBlobSpread = 6.0;    // blob centres uniform in [-6, 6]^2, std 1: points span ~ -8..8
// Named initial spectra: the condition number lambda_1 / lambda_2 of the initial embedding covariance.
// Theorem 1 maps the normalised small eigenvalue x = 1 / (C + 1) of cov(Z) to x f_5(x)^2 in cov(Zhat): at
// C = 2 that is 1.0000 (IterNorm T = 5 whitens), at C = 1000 it is 0.056 (far from white).
inline constexpr double kWellCond = 2.0;
inline constexpr double kIllCond = 1000.0;
// Verdict: a run has collapsed when the median over its last epoch of the smallest eigenvalue of cov(Zhat) is
// below this. Whitened outputs aim at 1; 0.5 means the weak direction keeps less than half of that.
inline constexpr double kCollapseBelow = 0.5;
// The verdict of a run whose last-epoch median is `zhat_eig_min`: a NaN median collapses; a crash is its own
// verdict, never "collapsed".
inline bool is_collapsed(double zhat_eig_min, bool crashed) { return !crashed && !(zhat_eig_min >= kCollapseBelow); }
// The rule in words, for the table's footer, --help and RESULT.json.
std::string collapse_rule();
// Default trace-loss weight for intl. SPEC's beta = 0.01 (log2 K - 3) is negative for K = 2 features, so the
// toy uses the paper's weight for T = 5 (supplement D.2).
inline constexpr double kDefaultBeta = 0.05;

// The study's options as given: every list runs the grid of all combinations (T applies to iternorm and intl,
// p to st, beta to intl).
struct StudyOptions {
  std::vector<std::string> method = {"iternorm"};  // none | iternorm | intl | st | zca | cholesky
  std::vector<int> T = {5};                        // 0..kMaxT
  std::vector<double> p = {0.5};                   // [0, 1]
  std::vector<double> beta = {kDefaultBeta};       // >= 0
  std::vector<std::string> init = {"well", "ill"}; // well | ill
  std::vector<double> init_cond;                   // >= 1; when given, replaces init
  std::vector<int> epochs = {200};
  std::vector<int> batch = {32};                   // 4..512; the remainder of an epoch is dropped
  std::vector<double> lr = {0.1};
  std::vector<double> noise = {0.1};               // std of the Gaussian noise of each view
  std::vector<int> blobs = {4};
  uint64_t seed = 0;
};
// Throws UsageError naming the option and the allowed values for anything out of range.
void validate(const StudyOptions& options);

// One point of the grid.
struct RunSpec {
  std::string name;          // e.g. "iternorm T=5, init ill (C=1000)"
  WhitenSpec whiten;
  double beta = 0.0;         // intl only
  std::string init = "well"; // well | ill | "" when set by condition number
  double init_cond = kWellCond;
  int epochs = 200, batch = 32, blobs = 4;
  double lr = 0.1, noise = 0.1;
  uint64_t seed = 0;
};
std::vector<RunSpec> expand_grid(const StudyOptions& options);

// 512 points (row-major, 512 x 2) from `blobs` isotropic Gaussian blobs; depends on the seed only.
std::vector<double> make_blobs(int blobs, uint64_t seed);

// The initial parameters: the engine MLP's initialisation for the seed (PyTorch's), then the last layer
// rescaled along the principal axes of the initial embedding of all points (BN with full-data statistics) so
// that lambda_1 / lambda_2 = init_cond with the trace unchanged. natural_cond receives the ratio before.
Params initial_params(const RunSpec& spec, const std::vector<double>& points, double* natural_cond);
// The network's output for all points (BN with full-data statistics), 512 x 2.
std::vector<double> full_data_output(const Params& params, const std::vector<double>& points);

// Buffers of one training step, allocated once.
struct Workspace {
  Activations view[2];
  BackwardScratch scratch;
  WhitenCache cache[2];
  std::vector<double> zc[2], zhat[2], dzhat[2], dz;
  void resize(int m);
};
// The loss of the two views in ws.view[0].x and ws.view[1].x and its gradients (overwrites grads):
// mean over elements of (Zhat1 - Zhat2)^2, plus beta (trace_loss(Zhat1) + trace_loss(Zhat2)) for intl.
double loss_and_gradients(const RunSpec& spec, const Params& params, Workspace& ws, Params& grads);

struct RunOutput {
  RunSpec spec;
  // Per iteration, view 1: eigenvalues of cov(Z) and cov(Zhat) (1 / (m - 1)), and the loss.
  std::vector<double> z_eig_min, z_eig_max, zhat_eig_min, zhat_eig_max, loss;
  std::vector<double> points;          // 512 x 2
  std::vector<double> initial_output;  // 512 x 2, after the init-cond rescaling
  double natural_cond = 0;             // lambda_1 / lambda_2 of the initial embedding before rescaling
  double initial_cond = 0;             // ... after
  // Medians over the last epoch (or the last iterations before a crash).
  double final_z_eig_min = 0, final_z_eig_max = 0, final_zhat_eig_min = 0, final_zhat_eig_max = 0, final_loss = 0;
  bool collapsed = false;
  bool crashed = false;                // non-finite loss or a singular covariance stopped the run
  int64_t crash_iteration = -1;
  std::string crash_message;
  double wall_s = 0;
  std::string verdict() const;  // "collapsed", "not collapsed" or "crashed"
};

// Trains one run. `on_epoch(epoch, loss)` (optional) is called after every epoch.
RunOutput run_toy2d(const RunSpec& spec, const std::function<void(int, double)>& on_epoch = {});

}  // namespace intl::toy2d
