// The paper's closed forms as oracles: Theorem 1 (IterNorm is the spectral transformation x -> x f_T(x)^2),
// hard whitening gives the identity covariance, and the trace loss of Theorem 2.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/ops.h"
#include "losses/intl_loss.h"
#include "losses/whitening.h"

using namespace intl;

namespace {

double f_T(double x, int T) {
  double f = 1.0;
  for (int k = 0; k < T; ++k) f = 1.5 * f - 0.5 * x * f * f * f;
  return f;
}

// h_T(x) = x f_T(x)^2: where IterNorm maps a normalised eigenvalue x = lambda / tr (Theorem 1).
double h_T(double x, int T) { return x * f_T(x, T) * f_T(x, T); }

// Samples (m x d) whose BW covariance is exactly diag(lambda) in a rotated basis: Z = Q diag(sqrt(l)) R with
// orthonormal columns Q (m x d) centred over the batch.
Tensor data_with_spectrum(const std::vector<double>& lambda, int64_t m) {
  const int64_t d = int64_t(lambda.size());
  Tensor a = Tensor::randn({m, d}, 3, 1, DType::f64);
  a = sub(a, mean(a, {0}, true));
  // Orthonormalise the columns by whitening them with their own covariance (ZCA).
  Tensor q = spectral_transform(a, 0.5, WhitenAxis::batch);  // cov(q) = I
  Tensor rot = eigh(add(matmul(transpose(a), a), eye(d, DType::f64))).vectors;  // some orthogonal matrix
  std::vector<double> sq;
  for (double l : lambda) sq.push_back(std::sqrt(l));
  return matmul(mul(q, reshape(Tensor::from_vector(sq, {d}, DType::f64), {1, d})), rot);
}

// Backpropagates `loss` and returns dL/dz1 followed by dL/dz2, leaving both gradients cleared for the next loss.
std::vector<double> view_gradients(const Tensor& loss, Tensor& z1, Tensor& z2) {
  loss.backward();
  std::vector<double> g = z1.grad().to_vector();
  const std::vector<double> g2 = z2.grad().to_vector();
  g.insert(g.end(), g2.begin(), g2.end());
  z1.zero_grad();
  z2.zero_grad();
  return g;
}

std::vector<double> cov_eigenvalues(const Tensor& z) {
  return eigh(center_and_covariance(z, WhitenAxis::batch).sigma).values.to_vector();
}

}  // namespace

TEST_CASE("Theorem 1: the scalar map x f_T(x)^2 matches the published values") {
  CHECK(0.1 * std::pow(f_T(0.1, 4), 2) == doctest::Approx(0.919).epsilon(1e-3));
  CHECK(0.01 * std::pow(f_T(0.01, 4), 2) == doctest::Approx(0.226).epsilon(2e-3));
  CHECK(0.1 * std::pow(f_T(0.1, 5), 2) == doctest::Approx(0.995).epsilon(1e-3));
}

TEST_CASE("Theorem 1: IterNorm's output covariance has eigenvalues x f_T(x)^2") {
  // tr = 1 so x = lambda directly.
  const std::vector<double> lambda = {0.01, 0.1, 0.29, 0.6};
  Tensor z = data_with_spectrum(lambda, 64);
  const std::vector<double> in = cov_eigenvalues(z);
  for (size_t i = 0; i < lambda.size(); ++i) CHECK(in[i] == doctest::Approx(lambda[i]).epsilon(1e-9));
  for (int T : {1, 3, 4, 5}) {
    const std::vector<double> out = cov_eigenvalues(iternorm(z, T, WhitenAxis::batch));
    for (size_t i = 0; i < lambda.size(); ++i) {
      const double x = lambda[i];
      CHECK(out[i] == doctest::Approx(x * f_T(x, T) * f_T(x, T)).epsilon(1e-9));
    }
  }
}

TEST_CASE("Theorem 1 in channel whitening: the m x m covariance maps the same way") {
  const std::vector<double> lambda = {0.05, 0.15, 0.3, 0.5};
  Tensor zt = data_with_spectrum(lambda, 40);  // (40 x 4): transpose to 4 samples x 40 features
  Tensor z = transpose(zt).contiguous();
  Tensor w = iternorm(z, 4, WhitenAxis::channel);
  Tensor sigma = center_and_covariance(w, WhitenAxis::channel).sigma;
  const std::vector<double> out = eigh(sigma).values.to_vector();
  // CW centring is over features, which the construction already satisfies up to the tiny column means.
  const std::vector<double> in = eigh(center_and_covariance(z, WhitenAxis::channel).sigma).values.to_vector();
  double tr = 0;
  for (double v : in) tr += v;
  for (size_t i = 0; i < in.size(); ++i) {
    const double x = in[i] / tr;
    CHECK(out[i] == doctest::Approx(x * f_T(x, 4) * f_T(x, 4)).epsilon(1e-8));
  }
}

TEST_CASE("hard whitening (ST p = 0.5) gives the identity covariance on full-rank input") {
  Tensor z = add(matmul(Tensor::randn({50, 6}, 5, 1, DType::f64), Tensor::randn({6, 6}, 5, 2, DType::f64)), 3.0);
  for (const Tensor& w : {spectral_transform(z, 0.5, WhitenAxis::batch), cholesky_whiten(z, WhitenAxis::batch)}) {
    const std::vector<double> c = center_and_covariance(w, WhitenAxis::batch).sigma.to_vector();
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 6; ++j) CHECK(c[size_t(i * 6 + j)] == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-9));
  }
  // In float32 too, to single precision.
  Tensor w32 = spectral_transform(z.to(DType::f32), 0.5, WhitenAxis::batch);
  const std::vector<double> c32 = center_and_covariance(w32, WhitenAxis::batch).sigma.to_vector();
  for (int i = 0; i < 6; ++i) CHECK(c32[size_t(i * 7)] == doctest::Approx(1.0).epsilon(1e-4));
}

TEST_CASE("trace loss: zero for a whitened batch, positive otherwise") {
  Tensor z = Tensor::randn({64, 8}, 9, 1, DType::f64);
  Tensor white = spectral_transform(z, 0.5, WhitenAxis::batch);
  CHECK(trace_loss(white, WhitenAxis::batch).item() == doctest::Approx(0.0).epsilon(1e-12));
  // IterNorm with few steps leaves an ill-conditioned spectrum away from 1: the trace loss sees it.
  Tensor ill = mul(z, reshape(Tensor::from_vector({10, 1, 1, 1, 1, 1, 1, 0.01}, {8}, DType::f64), {1, 8}));
  const double t1 = trace_loss(iternorm(ill, 1, WhitenAxis::batch), WhitenAxis::batch).item();
  const double t5 = trace_loss(iternorm(ill, 5, WhitenAxis::batch), WhitenAxis::batch).item();
  CHECK(t1 > t5);
  CHECK(t5 > 1e-3);
  CHECK(intl_beta(256) == doctest::Approx(0.05));
}

// Theorem 2 (supplement B.2): over normalised spectra x (x_i >= 0, sum x_i = 1) with the eigenvectors u_i fixed,
// INTL(x) = sum_j (sum_i [1 - h_T(x_i)] u_ji^2)^2 (Eqn. 7) is strictly convex, with its unique minimum at
// x_i = 1 / d. Here in batch whitening on d = 4 features: every batch's covariance is R^T diag(lambda) R with one
// rotation R (data_with_spectrum draws the same samples for every spectrum), all of trace 1.
TEST_CASE("Theorem 2: at equal trace, IterNorm's trace loss is least at equal eigenvalues and only there") {
  const int64_t m = 32, d = 4;
  auto spread = [](double t) { return std::vector<double>{0.25 + t, 0.25 - t, 0.25, 0.25}; };
  const std::vector<std::vector<double>> spectra = {
      spread(0), spread(0.01), spread(-0.05), spread(0.05), spread(0.15), {0.4, 0.3, 0.2, 0.1},
      {0.55, 0.2, 0.15, 0.1},  // the midpoint of its neighbours
      {0.7, 0.1, 0.1, 0.1}, {0.97, 0.01, 0.01, 0.01}};
  // Relative: at T = 5 the least loss is about 1e-11.
  auto close = [](double a, double b) { return std::abs(a - b) <= 1e-6 * std::abs(b); };
  auto loss_of = [&](const std::vector<double>& lambda, int T) {
    return trace_loss(iternorm(data_with_spectrum(lambda, m), T, WhitenAxis::batch), WhitenAxis::batch).item();
  };
  for (int T : {1, 3, 5}) {
    CAPTURE(T);
    std::vector<double> loss;
    for (const std::vector<double>& lambda : spectra) {
      loss.push_back(loss_of(lambda, T));
      // Eqn. 7 from the covariance's own eigenpairs (u_i the columns of the eigenvector matrix).
      const EighResult e = eigh(center_and_covariance(data_with_spectrum(lambda, m), WhitenAxis::batch).sigma);
      const std::vector<double> w = e.values.to_vector(), u = e.vectors.to_vector();
      double tr = 0, eqn7 = 0;
      for (double v : w) tr += v;
      for (int64_t j = 0; j < d; ++j) {
        double s = 0;
        for (int64_t i = 0; i < d; ++i) {
          const double u_ji = u[size_t(j * d + i)];
          s += (1 - h_T(w[size_t(i)] / tr, T)) * u_ji * u_ji;
        }
        eqn7 += s * s;
      }
      INFO("lambda " << lambda[0] << ", " << lambda[1] << ", " << lambda[2] << ", " << lambda[3] << ": loss "
                     << loss.back() << ", Eqn. 7 " << eqn7);
      CHECK(close(loss.back(), eqn7));
    }
    // The minimum, d (1 - h_T(1/d))^2, below every other spectrum.
    CHECK(close(loss[0], double(d) * (1 - h_T(0.25, T)) * (1 - h_T(0.25, T))));
    for (size_t k = 1; k < loss.size(); ++k) CHECK(loss[k] > loss[0]);
    // Rising away from the minimum along one direction; strictly convex across a chord.
    CHECK(loss[1] < loss[3]);
    CHECK(loss[3] < loss[4]);
    CHECK(loss[6] < 0.5 * (loss[5] + loss[7]));
    // Only the normalised spectrum counts (IterNorm divides by the trace): five times the trace, the same loss.
    CHECK(close(loss_of({2.0, 1.5, 1.0, 0.5}, T), loss[5]));
  }
}

TEST_CASE("norm_mse: 0 for identical, 2 for orthogonal, 4 for opposite rows") {
  Tensor a = Tensor::from_vector({1, 0, 0, 2}, {2, 2}, DType::f64);
  Tensor b = Tensor::from_vector({0, 3, 5, 0}, {2, 2}, DType::f64);
  CHECK(norm_mse(a, a).item() == doctest::Approx(0.0));
  CHECK(norm_mse(a, b).item() == doctest::Approx(2.0));
  CHECK(norm_mse(a, neg(a)).item() == doctest::Approx(4.0));
}

TEST_CASE("the spectral INTL loss equals the literal Newton form, value and gradients") {
  for (auto [m, d, T] : std::vector<std::tuple<int64_t, int64_t, int>>{{6, 10, 4}, {8, 5, 5}, {16, 40, 1}}) {
    Tensor z1 = Tensor::randn({m, d}, 11, 1, DType::f64), z2 = Tensor::randn({m, d}, 11, 2, DType::f64);
    z1.requires_grad_(true);
    z2.requires_grad_(true);
    const double beta = intl_beta(m);
    Tensor lit = intl_loss(z1, z2, T, beta, parse_intl_loss_form("newton"));
    lit.backward();
    const std::vector<double> g1 = z1.grad().to_vector(), g2 = z2.grad().to_vector();
    z1.zero_grad();
    z2.zero_grad();
    Tensor fast = intl_loss(z1, z2, T, beta, parse_intl_loss_form("spectral"));
    fast.backward();
    CHECK(fast.item() == doctest::Approx(lit.item()).epsilon(1e-10));
    const std::vector<double> f1 = z1.grad().to_vector(), f2 = z2.grad().to_vector();
    double err = 0, scale = 0;
    for (size_t i = 0; i < g1.size(); ++i) {
      err = std::max({err, std::abs(f1[i] - g1[i]), std::abs(f2[i] - g2[i])});
      scale = std::max({scale, std::abs(g1[i]), std::abs(g2[i])});
    }
    CHECK(err <= 1e-9 * scale);
  }
  CHECK_THROWS_AS(parse_intl_loss_form("eigen"), UsageError);
  CHECK(std::string(intl_loss_form_name(IntlLossForm::newton)) == "newton");
}

TEST_CASE("multi-crop without EMA: two crops are the two-view loss; the anchor's gradient and trace loss count") {
  const int64_t m = 6, d = 9;
  const int T = 4;
  const double beta = intl_beta(m);
  std::vector<Tensor> z;
  for (uint64_t i = 0; i < 3; ++i) z.push_back(Tensor::randn({m, d}, 21, i, DType::f64).requires_grad_(true));
  auto grads = [&] {
    std::vector<std::vector<double>> g;
    for (Tensor& t : z) {
      g.push_back(t.grad().defined() ? t.grad().to_vector() : std::vector<double>(size_t(m * d), 0.0));
      t.zero_grad();
    }
    return g;
  };
  Tensor two = intl_anchored_crops_loss({z[0], z[1]}, T, beta);
  two.backward();
  const auto g_two = grads();
  Tensor plain = intl_loss(z[1], z[0], T, beta);
  plain.backward();
  const auto g_plain = grads();
  CHECK(two.item() == doctest::Approx(plain.item()).epsilon(1e-13));
  for (size_t v = 0; v < 2; ++v)
    for (size_t i = 0; i < g_two[v].size(); ++i) CHECK(g_two[v][i] == doctest::Approx(g_plain[v][i]).epsilon(1e-12));

  // Three crops: the mean over the two pairs, each with the anchor's trace loss, as the authors' methods/intl.py.
  auto t = [&](size_t i) { return iternorm(z[i], T, WhitenAxis::channel); };
  auto pair = [&](size_t i) {
    return norm_mse(t(i), t(0)).item() +
           beta * (trace_loss(t(i), WhitenAxis::channel).item() + trace_loss(t(0), WhitenAxis::channel).item());
  };
  Tensor three = intl_anchored_crops_loss(z, T, beta);
  CHECK(three.item() == doctest::Approx(0.5 * (pair(1) + pair(2))).epsilon(1e-13));
  three.backward();
  double anchor_grad = 0;
  for (double g : z[0].grad().to_vector()) anchor_grad += std::abs(g);
  CHECK(anchor_grad > 1e-3);
  CHECK_THROWS_AS(intl_anchored_crops_loss({z[0]}, T, beta), Error);

  // Both multi-crop losses are means over the crops: a crop repeated leaves them unchanged.
  CHECK(intl_anchored_crops_loss({z[0], z[1], z[1]}, T, beta).item() ==
        doctest::Approx(intl_anchored_crops_loss({z[0], z[1]}, T, beta).item()).epsilon(1e-13));
  CHECK(intl_multicrop_loss({z[1], z[1], z[1]}, z[0], T, beta).item() ==
        doctest::Approx(intl_multicrop_loss({z[1]}, z[0], T, beta).item()).epsilon(1e-13));
}

TEST_CASE("the spectral and Newton forms agree on a sample whose embedding is constant: finite, the same gradient") {
  const int64_t m = 6, d = 10;
  std::vector<double> rows = Tensor::randn({m, d}, 13, 1, DType::f64).to_vector();
  std::fill(rows.begin(), rows.begin() + d, 0.7);  // row 0 constant over its features: a zero centred row
  Tensor z1 = Tensor::from_vector(rows, {m, d}, DType::f64), z2 = Tensor::randn({m, d}, 13, 2, DType::f64);
  z1.requires_grad_(true);
  z2.requires_grad_(true);
  std::vector<std::vector<double>> grads;
  std::vector<double> values;
  for (const char* form : {"newton", "spectral"}) {
    Tensor loss = intl_loss(z1, z2, 4, 0.05, parse_intl_loss_form(form));
    values.push_back(loss.item());
    grads.push_back(view_gradients(loss, z1, z2));
  }
  CHECK(values[1] == doctest::Approx(values[0]).epsilon(1e-10));
  double err = 0, scale = 0;
  for (size_t i = 0; i < grads[0].size(); ++i) {
    REQUIRE(std::isfinite(grads[1][i]));
    err = std::max(err, std::abs(grads[1][i] - grads[0][i]));
    scale = std::max(scale, std::abs(grads[0][i]));
  }
  INFO("largest gradient " << scale << ", largest difference " << err);
  CHECK(err <= 1e-6 * scale);
}

TEST_CASE("--loss-form auto is the spectral form on the CPU and the Newton form on a GPU") {
  CHECK(parse_intl_loss_form("auto") == IntlLossForm::automatic);
  CHECK(std::string(intl_loss_form_name(IntlLossForm::automatic)) == "auto");
  CHECK(resolve_intl_loss_form(IntlLossForm::automatic, Device::cpu) == IntlLossForm::spectral);
  CHECK(resolve_intl_loss_form(IntlLossForm::automatic, Device::cuda) == IntlLossForm::newton);
  for (IntlLossForm form : {IntlLossForm::spectral, IntlLossForm::newton})
    for (Device device : {Device::cpu, Device::cuda}) CHECK(resolve_intl_loss_form(form, device) == form);
  Tensor z1 = Tensor::randn({8, 16}, 5, 0), z2 = Tensor::randn({8, 16}, 5, 1);
  CHECK(intl_loss(z1, z2, 4, 0.05, IntlLossForm::automatic).item() ==
        intl_loss(z1, z2, 4, 0.05, IntlLossForm::spectral).item());  // the same computation, bit for bit
}

// Sigma = U diag(lambda) U^T and Phi = U diag(lambda^-p) U^T give cov(Zhat) = Phi Sigma Phi = U diag(lambda^(1-2p))
// U^T: p = 0 leaves the spectrum, 0.5 whitens it, 0.75 inverts its order.
TEST_CASE("spectral transformation: power p maps each covariance eigenvalue lambda to lambda^(1 - 2p), either axis") {
  const std::vector<double> lambda = {0.05, 0.2, 0.5, 1.5};
  const Tensor bw = data_with_spectrum(lambda, 64);                   // 64 samples x 4 features
  const Tensor cw = transpose(data_with_spectrum(lambda, 40)).contiguous();  // 4 samples x 40 features
  for (const auto& [z, axis] : {std::pair{bw, WhitenAxis::batch}, std::pair{cw, WhitenAxis::channel}}) {
    const std::vector<double> in = eigh(center_and_covariance(z, axis).sigma).values.to_vector();
    for (double p : {0.0, 0.25, 0.5, 0.75, 1.0}) {
      CAPTURE(p);
      std::vector<double> want;
      for (double l : in) want.push_back(std::pow(l, 1 - 2 * p));
      std::sort(want.begin(), want.end());
      const std::vector<double> out =
          eigh(center_and_covariance(spectral_transform(z, p, axis), axis).sigma).values.to_vector();
      for (size_t i = 0; i < want.size(); ++i) CHECK(out[i] == doctest::Approx(want[i]).epsilon(1e-9));
    }
  }
  CHECK_THROWS_WITH_AS(spectral_transform(bw, 1.5, WhitenAxis::batch), doctest::Contains("[0, 1]"), Error);
  CHECK_THROWS_WITH_AS(spectral_transform(bw, -0.1, WhitenAxis::batch), doctest::Contains("[0, 1]"), Error);
}

// W-MSE's whitening, W = L^-1 with Sigma = L L^T: W Sigma W^T = I whichever axis the covariance is taken over.
TEST_CASE("Cholesky whitening gives the identity covariance in channel whitening as in batch whitening") {
  const Tensor z = add(matmul(Tensor::randn({5, 7}, 6, 1, DType::f64), Tensor::randn({7, 30}, 6, 2, DType::f64)), 2.0);
  const std::vector<double> c = center_and_covariance(cholesky_whiten(z, WhitenAxis::channel), WhitenAxis::channel)
                                    .sigma.to_vector();
  REQUIRE(c.size() == 25);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) CHECK(c[size_t(i * 5 + j)] == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-9));
}

TEST_CASE("IterNorm and the INTL losses refuse a negative T; the spectral form an embedding of infinite trace") {
  const Tensor z1 = Tensor::randn({6, 10}, 17, 1), z2 = Tensor::randn({6, 10}, 17, 2);
  CHECK_THROWS_WITH_AS(iternorm_matrix(center_and_covariance(z1, WhitenAxis::channel).sigma, -1),
                       doctest::Contains("T must be >= 0"), Error);
  for (IntlLossForm form : {IntlLossForm::spectral, IntlLossForm::newton})
    CHECK_THROWS_WITH_AS(intl_loss(z1, z2, -1, 0.05, form), doctest::Contains("T must be >= 0"), Error);
  // Finite float32 values whose squares overflow: tr S is +inf, which the spectral form names rather than
  // eigendecomposing a matrix of NaNs.
  std::vector<double> big = z1.to_vector();
  big[0] = 3e38;
  big[1] = -3e38;
  const Tensor huge = Tensor::from_vector(big, {6, 10}, DType::f32);
  CHECK_THROWS_WITH_AS(intl_loss(huge, z2, 4, 0.05, IntlLossForm::spectral), doctest::Contains("has trace inf"),
                       Error);
}

// The spectral form's backward computes its gradient for an incoming gradient of 1 and scales the product by
// the one it is given: a loss used inside a larger expression (a weighted sum, a mean over crops) gets its share.
TEST_CASE("the spectral INTL loss's gradient scales with the incoming gradient, as the Newton form's") {
  Tensor z1 = Tensor::randn({8, 12}, 19, 1, DType::f64).requires_grad_(true);
  Tensor z2 = Tensor::randn({8, 12}, 19, 2, DType::f64).requires_grad_(true);
  std::vector<std::vector<double>> g;
  for (double scale : {1.0, -2.5})
    g.push_back(view_gradients(mul(intl_loss(z1, z2, 4, 0.05, IntlLossForm::spectral), scale), z1, z2));
  for (size_t i = 0; i < g[0].size(); ++i) CHECK(g[1][i] == doctest::Approx(-2.5 * g[0][i]).epsilon(1e-12));
}

// Figure I(b): the target branch (crop 0 through the momentum network) is a constant of the loss, even when the
// tensor handed in carries a graph.
TEST_CASE("multi-crop with EMA: no gradient reaches the target") {
  Tensor online = Tensor::randn({6, 9}, 23, 1, DType::f64).requires_grad_(true);
  Tensor target = Tensor::randn({6, 9}, 23, 2, DType::f64).requires_grad_(true);
  intl_multicrop_loss({online}, target, 4, 0.05).backward();
  CHECK(online.grad().defined());
  CHECK_FALSE(target.grad().defined());
}
