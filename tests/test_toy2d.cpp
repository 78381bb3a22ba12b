// The toy2d study: the fused network's gradients against the tape engine (same weights, same batch, every
// method, float64), the 2x2 closed forms, the option checks, and the supplement's observations (D.1) as
// short runs over several seeds.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "losses/intl_loss.h"
#include "losses/whitening.h"
#include "studies/toy2d.h"

using namespace intl;
using namespace intl::toy2d;

namespace {

RunSpec spec_for(Method method, double init_cond, int T = 5, double p = 0.5, double beta = kDefaultBeta) {
  RunSpec s;
  s.whiten.method = method, s.whiten.T = T, s.whiten.p = p;
  s.beta = method == Method::intl ? beta : 0.0;
  s.init_cond = init_cond;
  s.seed = 7;
  return s;
}

// Fills the two views of ws with the first batch of the data plus noise (any batch will do).
void fill_views(const RunSpec& spec, const std::vector<double>& points, Workspace& ws) {
  RandomStream noise{spec.seed, 99};
  for (int v = 0; v < 2; ++v)
    for (int i = 0; i < 2 * spec.batch; ++i) ws.view[v].x[size_t(i)] = points[size_t(i)] + 0.1 * noise.next_normal();
}

// The same loss through the tape engine.
Tensor engine_loss(const RunSpec& spec, const MLP& mlp, const Workspace& ws) {
  Tensor zhat[2];
  for (int v = 0; v < 2; ++v) {
    Tensor x = Tensor::from_vector(ws.view[v].x, {spec.batch, 2}, DType::f64);
    Tensor z = mlp.forward(x);
    switch (spec.whiten.method) {
      case Method::none: zhat[v] = z; break;
      case Method::iternorm:
      case Method::intl: zhat[v] = iternorm(z, spec.whiten.T, WhitenAxis::batch); break;
      case Method::st: zhat[v] = spectral_transform(z, spec.whiten.p, WhitenAxis::batch); break;
      case Method::zca: zhat[v] = spectral_transform(z, 0.5, WhitenAxis::batch); break;
      case Method::cholesky: zhat[v] = cholesky_whiten(z, WhitenAxis::batch); break;
    }
  }
  Tensor loss = mse_loss(zhat[0], zhat[1]);
  if (spec.whiten.method == Method::intl)
    loss = add(loss, mul(add(trace_loss(zhat[0], WhitenAxis::batch), trace_loss(zhat[1], WhitenAxis::batch)), spec.beta));
  return loss;
}

void check_parity(const RunSpec& spec) {
  const std::vector<double> points = make_blobs(spec.blobs, spec.seed);
  const Params params = initial_params(spec, points, nullptr);
  Workspace ws;
  ws.resize(spec.batch);
  fill_views(spec, points, ws);
  Params grads{};
  const double loss = loss_and_gradients(spec, params, ws, grads);

  MLP mlp({kIn, kHidden, kHidden, kOut}, true, spec.seed, DType::f64);
  params_to_mlp(params, mlp);
  Tensor engine = engine_loss(spec, mlp, ws);
  engine.backward();
  std::vector<std::pair<std::string, Tensor>> named_grads;
  for (auto& [name, t] : mlp.named_parameters()) named_grads.emplace_back(name, t.grad());
  const Params expected = params_from_named(named_grads);

  CHECK(loss == doctest::Approx(engine.item()).epsilon(1e-11));
  double max_err = 0, max_abs = 0;
  for (int k = 0; k < kParamCount; ++k) {
    max_err = std::max(max_err, std::abs(slab(grads)[k] - slab(expected)[k]));
    max_abs = std::max(max_abs, std::abs(slab(expected)[k]));
  }
  const std::string what = std::string(method_name(spec.whiten.method)) + " T=" + std::to_string(spec.whiten.T) +
                           " p=" + std::to_string(spec.whiten.p) + " C=" + std::to_string(spec.init_cond) +
                           ": max |fused - engine| " + std::to_string(max_err) + " (largest gradient " +
                           std::to_string(max_abs) + ")";
  INFO(what);
  CHECK(max_abs > 1e-8);  // the comparison means something
  CHECK(max_err <= 1e-10 * std::max(1.0, max_abs));
}

}  // namespace

TEST_CASE("toy2d: fused gradients equal the tape engine's for every method (float64)") {
  for (double cond : {kWellCond, 37.0, kIllCond}) {
    check_parity(spec_for(Method::none, cond));
    for (int T : {0, 1, 3, 5}) check_parity(spec_for(Method::iternorm, cond, T));
    check_parity(spec_for(Method::intl, cond, 5, 0.5, 0.05));
    check_parity(spec_for(Method::intl, cond, 3, 0.5, 0.5));
    for (double p : {0.0, 0.25, 0.5, 0.75, 1.0}) check_parity(spec_for(Method::st, cond, 5, p));
    check_parity(spec_for(Method::zca, cond));
    check_parity(spec_for(Method::cholesky, cond));
  }
  // More Newton steps agree only on a well-conditioned input: the iteration amplifies rounding when Sigma is
  // ill-conditioned. Measured on a 2x2 Sigma: a one-ulp change of an entry moves P_T by 3e-15 (relative) at
  // T = 5 and C = 1000, by 6e-10 at T = 9 and C = 37, by 8e-8 at T = 9 and C = 1000, in either implementation.
  check_parity(spec_for(Method::iternorm, kWellCond, 9));
  check_parity(spec_for(Method::iternorm, kWellCond, 20));
}
