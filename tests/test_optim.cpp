// Optimizer steps and schedules against values computed by hand (PyTorch's update rules).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "train/supervised.h"

using namespace intl;

namespace {
Tensor param(std::vector<double> v) {
  Tensor t = Tensor::from_vector(v, {int64_t(v.size())}, DType::f64);
  t.requires_grad_(true);
  return t;
}
void set_grad(Tensor& p, std::vector<double> g) {
  p.zero_grad();
  p.backward(Tensor::from_vector(g, {int64_t(g.size())}, DType::f64));
}
}  // namespace

TEST_CASE("SGD with momentum and weight decay follows PyTorch's rule") {
  Tensor w = param({1.0, -2.0});
  Sgd sgd({{"w", w}}, SgdOptions{0.9, 0.1, false, true});
  set_grad(w, {0.5, 0.5});
  sgd.step(0.1);
  // d = g + 0.1 w = (0.6, 0.3); buf = d; w -= 0.1 d
  CHECK(w.to_vector()[0] == doctest::Approx(1.0 - 0.06));
  CHECK(w.to_vector()[1] == doctest::Approx(-2.0 - 0.03));
  set_grad(w, {0.5, 0.5});
  sgd.step(0.1);
  // d = 0.5 + 0.1 * 0.94 = 0.594; buf = 0.9 * 0.6 + 0.594 = 1.134; w = 0.94 - 0.1134
  CHECK(w.to_vector()[0] == doctest::Approx(0.94 - 0.1134));
}

TEST_CASE("SGD with Nesterov momentum follows PyTorch's rule (g + momentum * buf)") {
  Tensor w = param({1.0});
  Sgd sgd({{"w", w}}, SgdOptions{0.9, 0.1, true, true});
  set_grad(w, {0.5});
  sgd.step(0.1);
  // d = 0.5 + 0.1 * 1 = 0.6; buf = 0.6; d + 0.9 buf = 1.14; w = 1 - 0.114
  CHECK(w.to_vector()[0] == doctest::Approx(0.886).epsilon(1e-12));
  set_grad(w, {0.5});
  sgd.step(0.1);
  // d = 0.5 + 0.0886 = 0.5886; buf = 0.54 + 0.5886 = 1.1286; d + 0.9 buf = 1.60434; w = 0.886 - 0.160434
  CHECK(w.to_vector()[0] == doctest::Approx(0.725566).epsilon(1e-12));
}

TEST_CASE("SGD can exclude 1-D parameters from weight decay") {
  Tensor b = param({1.0});
  Tensor m = Tensor::from_vector({1.0, 1.0, 1.0, 1.0}, {2, 2}, DType::f64);
  m.requires_grad_(true);
  Sgd sgd({{"b", b}, {"m", m}}, SgdOptions{0.0, 0.5, false, false});
  set_grad(b, {0.0});
  m.backward(Tensor::zeros({2, 2}, DType::f64));
  sgd.step(1.0);
  CHECK(b.to_vector()[0] == doctest::Approx(1.0));  // no decay on 1-D
  CHECK(m.to_vector()[0] == doctest::Approx(0.5));  // 1 - 1.0 * 0.5 * 1
}

TEST_CASE("SGD steps every parameter with a gradient at once and leaves the others as they were") {
  Tensor a = param({1.0, 2.0}), b = param({3.0}), c = param({-1.0, 0.5, 4.0});
  Sgd sgd({{"a", a}, {"b", b}, {"c", c}}, SgdOptions{0.9, 0.0, false, true});
  set_grad(a, {1.0, 1.0});
  set_grad(c, {2.0, -2.0, 0.0});
  const uint64_t va = a.version(), vb = b.version();
  sgd.step(0.5);
  CHECK(a.to_vector() == std::vector<double>{0.5, 1.5});
  CHECK(b.to_vector() == std::vector<double>{3.0});  // no gradient: untouched, and so is its momentum
  CHECK(c.to_vector() == std::vector<double>{-2.0, 1.5, 4.0});
  CHECK(sgd.state()[1].tensor.to_vector() == std::vector<double>{0.0});
  CHECK(sgd.state()[2].tensor.to_vector() == std::vector<double>{2.0, -2.0, 0.0});
  CHECK(a.version() != va);  // an updated parameter's cached copies (e.g. a GPU weight relayout) are stale
  CHECK(b.version() == vb);
}

TEST_CASE("Adam marks the parameters it steps changed, and only those") {
  Tensor a = param({1.0, 2.0}), b = param({3.0});
  Adam adam({{"a", a}, {"b", b}}, AdamOptions{});
  set_grad(a, {1.0, -1.0});
  const uint64_t va = a.version(), vb = b.version();
  adam.step(0.1);
  CHECK(a.version() != va);  // a convolution's cached weight layout keyed on the version must be rebuilt
  CHECK(b.version() == vb);
  CHECK(b.to_vector() == std::vector<double>{3.0});
}

TEST_CASE("Adam and AdamW first steps") {
  Tensor w = param({1.0});
  Adam adam({{"w", w}}, AdamOptions{0.9, 0.999, 1e-8, 0.0, false});
  set_grad(w, {2.0});
  adam.step(0.01);
  // Bias-corrected first step moves by lr * g / |g| = 0.01.
  CHECK(w.to_vector()[0] == doctest::Approx(0.99).epsilon(1e-9));
  set_grad(w, {-1.0});
  adam.step(0.01);
  const double m = 0.9 * 0.2 + 0.1 * -1.0, v = 0.999 * 0.004 + 0.001 * 1.0;
  const double mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999);
  CHECK(w.to_vector()[0] == doctest::Approx(0.99 - 0.01 * mhat / (std::sqrt(vhat) + 1e-8)).epsilon(1e-9));

  Tensor u = param({1.0});
  Adam adamw({{"u", u}}, AdamOptions{0.9, 0.999, 1e-8, 0.1, true});
  set_grad(u, {2.0});
  adamw.step(0.01);
  CHECK(u.to_vector()[0] == doctest::Approx(1.0 * (1 - 0.001) - 0.01).epsilon(1e-9));
}

namespace {
// torch.optim.Adam on one value (lr 0.1, wd 0.5, default betas and eps): weight decay is added to the gradient
// (L2), or, decoupled (AdamW), shrinks the value by lr * wd before the moment update.
struct AdamReference {
  bool decoupled;
  double p, m = 0, v = 0;
  int t = 0;
  void step(double g) {
    ++t;
    if (decoupled) p *= 1 - 0.1 * 0.5;
    else g += 0.5 * p;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    p -= 0.1 * (m / (1 - std::pow(0.9, t))) / (std::sqrt(v / (1 - std::pow(0.999, t))) + 1e-8);
  }
};
}  // namespace

TEST_CASE("Adam's L2 weight decay and AdamW's decoupled decay over three steps match PyTorch") {
  // Gradients small next to wd * p, so the decay's sign decides the direction of every step.
  const std::vector<double> grads{0.05, -0.02, 0.01};
  for (const bool decoupled : {false, true}) {
    CAPTURE(decoupled);
    Tensor w = param({2.0, -3.0});
    Adam adam({{"w", w}}, AdamOptions{0.9, 0.999, 1e-8, 0.5, decoupled});
    AdamReference r0{decoupled, 2.0}, r1{decoupled, -3.0};
    for (double g : grads) {
      set_grad(w, {g, -g});
      adam.step(0.1);
      r0.step(g);
      r1.step(-g);
      CHECK(w.to_vector()[0] == doctest::Approx(r0.p).epsilon(1e-9));
      CHECK(w.to_vector()[1] == doctest::Approx(r1.p).epsilon(1e-9));
    }
  }
  // By hand, L2's first step: d = 0.05 + 0.5 * 2 = 1.05, so p moves a full lr against it.
  AdamReference r{false, 2.0};
  r.step(0.05);
  CHECK(r.p == doctest::Approx(1.9));
}

// The authors' adjust_learning_rate: warm-up base * (step + 1) / warmup, then q = 0.5 (1 + cos(pi (step -
// warmup + 1) / (total - warmup))), lr = base q + 0.001 base (1 - q).
TEST_CASE("warm-up then cosine schedule") {
  WarmupCosine s{0.3, 10, 110, 0.001};
  auto authors = [](int64_t step) {
    const double q = 0.5 * (1 + std::cos(M_PI * double(step - 10 + 1) / 100.0));
    return 0.3 * q + 0.0003 * (1 - q);
  };
  CHECK(s.at(0) == doctest::Approx(0.03));
  CHECK(s.at(9) == doctest::Approx(0.3));
  CHECK(s.at(10) == doctest::Approx(authors(10)).epsilon(1e-12));
  CHECK(s.at(10) < 0.3);  // one step into the cosine
  CHECK(s.at(59) == doctest::Approx(0.0003 + (0.3 - 0.0003) * 0.5));
  CHECK(s.at(77) == doctest::Approx(authors(77)).epsilon(1e-12));
  CHECK(s.at(109) == doctest::Approx(0.0003).epsilon(1e-12));  // the last step is at the floor
  CHECK(s.at(500) == doctest::Approx(0.0003));
}

TEST_CASE("multi-step drops and exponential decay") {
  MultiStep m{3e-3, 500, {900, 950}, 0.2};
  CHECK(m.at(0) == doctest::Approx(3e-3 / 500));
  CHECK(m.at(899) == doctest::Approx(3e-3));
  CHECK(m.at(900) == doctest::Approx(6e-4));
  CHECK(m.at(960) == doctest::Approx(1.2e-4));
  ExponentialDecay e{1e-2, 1e-6, 500};
  CHECK(e.at(0) == doctest::Approx(1e-2));
  CHECK(e.at(250) == doctest::Approx(1e-4));
  CHECK(e.at(500) == doctest::Approx(1e-6));
}

TEST_CASE("supervised step schedule: x gamma from the first step of each milestone epoch") {
  train::SupervisedOptions o;  // step, milestones 60 and 80, gamma 0.1
  const int spe = 10;
  CHECK(train::supervised_lr_factor(o, 0, spe) == 1.0);
  CHECK(train::supervised_lr_factor(o, 59 * spe + spe - 1, spe) == 1.0);
  CHECK(train::supervised_lr_factor(o, 60 * spe, spe) == doctest::Approx(0.1));
  CHECK(train::supervised_lr_factor(o, 79 * spe + spe - 1, spe) == doctest::Approx(0.1));
  CHECK(train::supervised_lr_factor(o, 80 * spe, spe) == doctest::Approx(0.01));
  CHECK(train::supervised_lr_factor(o, 99 * spe, spe) == doctest::Approx(0.01));
}

TEST_CASE("supervised cosine schedule: half a cosine from 1 to 0 over all steps") {
  train::SupervisedOptions o;
  o.schedule = "cosine";
  o.epochs = 10;
  const int spe = 5;  // 50 steps
  CHECK(train::supervised_lr_factor(o, 0, spe) == doctest::Approx(1.0));
  CHECK(train::supervised_lr_factor(o, 25, spe) == doctest::Approx(0.5));
  CHECK(train::supervised_lr_factor(o, 10, spe) == doctest::Approx(0.5 * (1 + std::cos(M_PI * 0.2))));
  CHECK(train::supervised_lr_factor(o, 50, spe) == doctest::Approx(0.0));
  for (int64_t s = 1; s <= 50; ++s)
    CHECK(train::supervised_lr_factor(o, s, spe) < train::supervised_lr_factor(o, s - 1, spe));
}
