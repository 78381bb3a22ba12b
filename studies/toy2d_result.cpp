// Builds the toy2d result (see toy2d_result.h); the figures are drawn from it by plot/figures.h.
#include "studies/toy2d_result.h"

namespace intl::toy2d {

namespace {

results::Curve per_iteration(const std::vector<double>& y) {
  results::Curve c;
  c.x_label = "iteration";
  c.x.resize(y.size());
  for (size_t i = 0; i < y.size(); ++i) c.x[i] = double(i);
  c.y = y;
  return c;
}

results::json run_config(const RunSpec& s) {
  results::json j;
  j["method"] = method_name(s.whiten.method);
  if (s.whiten.method == Method::iternorm || s.whiten.method == Method::intl) j["T"] = s.whiten.T;
  if (s.whiten.method == Method::intl) j["beta"] = s.beta;
  if (s.whiten.method == Method::st) j["p"] = s.whiten.p;
  if (s.whiten.method == Method::zca) j["p"] = 0.5;
  j["init"] = s.init.empty() ? "cond" : s.init;
  j["init_cond"] = s.init_cond;
  j["epochs"] = s.epochs;
  j["batch"] = s.batch;
  j["lr"] = s.lr;
  j["noise"] = s.noise;
  j["blobs"] = s.blobs;
  return j;
}

}  // namespace

results::Result toy2d_result(const StudyOptions& o, const std::vector<RunOutput>& runs, const results::Header& header,
                             const std::string& device_requested, const std::string& out_dir) {
  results::Result r;
  r.header = header;
  results::json& c = r.config;
  c["method"] = o.method;
  c["T"] = o.T;
  c["p"] = o.p;
  c["beta"] = o.beta;
  if (o.init_cond.empty())
    c["init"] = o.init;
  else
    c["init-cond"] = o.init_cond;
  c["epochs"] = o.epochs;
  c["batch"] = o.batch;
  c["lr"] = o.lr;
  c["noise"] = o.noise;
  c["blobs"] = o.blobs;
  c["seed"] = o.seed;
  c["device"] = device_requested;
  c["out"] = out_dir;
  // The study's fixed choices, so the file says everything the numbers depend on.
  c["points"] = kPoints;
  c["data"] = "blob centres uniform in [-6, 6]^2, isotropic std 1, points assigned to blobs in turn";
  c["network"] = "Linear(2,16)+BN+ReLU, Linear(16,16)+BN+ReLU, Linear(16,2); PyTorch initialisation; BN eps 1e-5, batch statistics";
  c["optimizer"] = "SGD, no momentum, no weight decay";
  c["views"] = "two per point: x + noise * N(0, 1) per coordinate; each view is its own batch for BN and whitening";
  c["loss"] = "mean over elements of (Zhat1 - Zhat2)^2; intl adds beta (trace_loss(Zhat1) + trace_loss(Zhat2)), BW, 1/(m-1)";
  c["covariance"] = "centred over the batch, 1/(m-1) (SPEC; the PyTorch peer uses 1/m)";
  c["init_well_cond"] = kWellCond;
  c["init_ill_cond"] = kIllCond;
  c["init_rule"] = "last layer rescaled along the principal axes of the initial embedding of all points so that "
                   "lambda_1/lambda_2 = C, trace unchanged";
  c["tracking"] = "every iteration, view 1, before the update: eigenvalues of cov(Z) and cov(Zhat), and the loss";
  c["collapse_rule"] = collapse_rule();
  c["collapse_below"] = kCollapseBelow;
  c["implementation"] = "fused double-precision CPU path (studies/toy2d_net.h) on every device";

  for (const RunOutput& out : runs) {
    results::Run run;
    run.name = out.spec.name;
    run.config = run_config(out.spec);
    run.curves["z_eig_min"] = per_iteration(out.z_eig_min);
    run.curves["z_eig_max"] = per_iteration(out.z_eig_max);
    run.curves["zhat_eig_min"] = per_iteration(out.zhat_eig_min);
    run.curves["zhat_eig_max"] = per_iteration(out.zhat_eig_max);
    run.curves["loss"] = per_iteration(out.loss);
    run.arrays["points"] = results::Array::matrix(2, out.points);
    run.arrays["initial_output"] = results::Array::matrix(2, out.initial_output);
    run.metrics["natural_cond"] = out.natural_cond;
    run.metrics["initial_cond"] = out.initial_cond;
    run.metrics["z_eig_min_final"] = out.final_z_eig_min;
    run.metrics["z_eig_max_final"] = out.final_z_eig_max;
    run.metrics["zhat_eig_min_final"] = out.final_zhat_eig_min;
    run.metrics["zhat_eig_max_final"] = out.final_zhat_eig_max;
    run.metrics["loss_final"] = out.final_loss;
    run.metrics["collapsed"] = out.collapsed ? 1.0 : 0.0;
    run.metrics["iterations"] = double(out.loss.size());
    run.metrics["wall_s"] = out.wall_s;
    run.extra["verdict"] = out.verdict();
    if (out.crashed) {
      results::Event e;
      e.kind = "crash";
      e.step = out.crash_iteration;
      e.message = out.crash_message;
      run.events.push_back(e);
    }
    r.runs.push_back(std::move(run));
  }
  return r;
}

}  // namespace intl::toy2d
