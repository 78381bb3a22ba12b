// The gradient-check table: every differentiable op and loss, every differentiable input, in float64 against
// central differences. Adding an op adds one line here.
#include "tests/gradcheck.h"

#include <cmath>

#include "engine/backend.h"
#include "losses/intl_loss.h"
#include "losses/whitening.h"

using namespace intl;
using intl::testing::gradcheck;

namespace {

Tensor rnd(const Shape& s, uint64_t stream, double scale = 1.0, double shift = 0.0) {
  Tensor t = Tensor::randn(s, 7, stream, DType::f64);
  return add(mul(t, scale), shift);
}
Tensor pos(const Shape& s, uint64_t stream) { return Tensor::rand(s, 0.5, 2.0, 7, stream, DType::f64); }
// A symmetric positive definite matrix with well-separated eigenvalues (no ties).
Tensor spd(int64_t n, uint64_t stream) {
  Tensor a = rnd({n, n}, stream);
  Tensor s = add(matmul(a, transpose(a)), mul(eye(n, DType::f64), double(n)));
  return s;
}
Tensor sym(const Tensor& x) { return mul(add(x, transpose(x)), 0.5); }

struct Case {
  const char* name;
  intl::testing::Fn f;
  std::vector<Tensor> inputs;
};

std::vector<Case> cases() {
  using V = const std::vector<Tensor>&;
  Tensor labels = Tensor::from_vector({0, 2, 1, 2}, {4}, DType::i64);
  return {
      {"add broadcast", [](V x) { return add(x[0], x[1]); }, {rnd({3, 4}, 1), rnd({1, 4}, 2)}},
      {"sub broadcast", [](V x) { return sub(x[0], x[1]); }, {rnd({3, 4}, 1), rnd({3, 1}, 2)}},
      {"sub, first operand broadcast", [](V x) { return sub(x[0], x[1]); }, {rnd({3, 1}, 1), rnd({3, 4}, 2)}},
      {"div, first operand broadcast", [](V x) { return div(x[0], x[1]); }, {rnd({3, 1}, 1), pos({3, 4}, 2)}},
      {"mul broadcast", [](V x) { return mul(x[0], x[1]); }, {rnd({2, 3, 4}, 1), rnd({4}, 2)}},
      {"div", [](V x) { return div(x[0], x[1]); }, {rnd({3, 4}, 1), pos({3, 4}, 2)}},
      {"add scalar", [](V x) { return add(x[0], 0.75); }, {rnd({3, 4}, 1)}},
      {"mul scalar", [](V x) { return mul(x[0], -1.5); }, {rnd({3, 4}, 1)}},
      {"neg", [](V x) { return neg(x[0]); }, {rnd({5}, 1)}},
      {"pow 2.5", [](V x) { return pow(x[0], 2.5); }, {pos({6}, 1)}},
      {"square", [](V x) { return square(x[0]); }, {rnd({6}, 1)}},
      {"sqrt", [](V x) { return sqrt(x[0]); }, {pos({6}, 1)}},
      {"rsqrt", [](V x) { return rsqrt(x[0]); }, {pos({6}, 1)}},
      {"exp", [](V x) { return exp(x[0]); }, {rnd({6}, 1)}},
      {"log", [](V x) { return log(x[0]); }, {pos({6}, 1)}},
      {"abs", [](V x) { return abs(x[0]); }, {add(pos({6}, 1), -1.25)}},
      {"relu", [](V x) { return relu(x[0]); }, {add(pos({8}, 1), -1.25)}},
      {"matmul", [](V x) { return matmul(x[0], x[1]); }, {rnd({3, 4}, 1), rnd({4, 2}, 2)}},
      {"matmul transposed", [](V x) { return matmul(transpose(x[0]), x[1]); }, {rnd({4, 3}, 1), rnd({4, 2}, 2)}},
      {"matmul batched", [](V x) { return matmul(x[0], x[1]); }, {rnd({2, 3, 4}, 1), rnd({2, 4, 2}, 2)}},
      {"transpose", [](V x) { return transpose(x[0]).contiguous(); }, {rnd({3, 4}, 1)}},
      {"reshape", [](V x) { return reshape(x[0], {2, 6}); }, {rnd({3, 4}, 1)}},
      {"slice", [](V x) { return slice(x[0], 1, 1, 3); }, {rnd({3, 4}, 1)}},
      {"expand", [](V x) { return expand(x[0], {3, 4}); }, {rnd({1, 4}, 1)}},
      {"diagonal", [](V x) { return diagonal(x[0]); }, {rnd({4, 4}, 1)}},
      {"concat axis 0", [](V x) { return concat({x[0], x[1]}, 0); }, {rnd({2, 3}, 1), rnd({1, 3}, 2)}},
      {"concat axis 1", [](V x) { return concat({x[0], x[1]}, 1); }, {rnd({2, 3}, 1), rnd({2, 2}, 2)}},
      {"sum all", [](V x) { return sum(x[0]); }, {rnd({3, 4}, 1)}},
      {"sum axis", [](V x) { return sum(x[0], {1}); }, {rnd({3, 4}, 1)}},
      {"sum axes keepdim", [](V x) { return sum(x[0], {0, 2}, true); }, {rnd({2, 3, 4}, 1)}},
      {"mean", [](V x) { return mean(x[0], {0}); }, {rnd({3, 4}, 1)}},
      {"l2 normalize rows", [](V x) { return l2_normalize_rows(x[0]); }, {rnd({3, 4}, 1)}},
      {"linear", [](V x) { return linear(x[0], x[1], x[2]); }, {rnd({3, 4}, 1), rnd({2, 4}, 2), rnd({2}, 3)}},
      {"linear no bias", [](V x) { return linear(x[0], x[1], Tensor()); }, {rnd({3, 4}, 1), rnd({2, 4}, 2)}},
      {"batch norm train", [](V x) { return batch_norm_1d(x[0], x[1], x[2], Tensor(), Tensor(), true); },
       {rnd({5, 3}, 1), pos({3}, 2), rnd({3}, 3)}},
      {"batch norm eval",
       [](V x) {
         return batch_norm_1d(x[0], x[1], x[2], Tensor::from_vector({0.1, -0.2, 0.3}, {3}, DType::f64),
                              Tensor::from_vector({1.5, 0.7, 1.1}, {3}, DType::f64), false);
       },
       {rnd({5, 3}, 1), pos({3}, 2), rnd({3}, 3)}},
      {"batch norm train, no gamma or beta",
       [](V x) { return batch_norm_1d(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, {rnd({5, 3}, 1)}},
      {"batch norm eval, no gamma or beta",
       [](V x) {
         return batch_norm_1d(x[0], Tensor(), Tensor(), Tensor::from_vector({0.1, -0.2, 0.3}, {3}, DType::f64),
                              Tensor::from_vector({1.5, 0.7, 1.1}, {3}, DType::f64), false);
       },
       {rnd({5, 3}, 1)}},
      {"conv2d 3x3 s1 p1", [](V x) { return conv2d(x[0], x[1], x[2], 1, 1); },
       {rnd({2, 5, 5, 2}, 1), rnd({3, 2, 3, 3}, 2), rnd({3}, 3)}},
      {"conv2d 3x3 s2 p1", [](V x) { return conv2d(x[0], x[1], x[2], 2, 1); },
       {rnd({2, 6, 5, 2}, 1), rnd({3, 2, 3, 3}, 2), rnd({3}, 3)}},
      {"conv2d 3x2 s2 p0 no bias", [](V x) { return conv2d(x[0], x[1], Tensor(), 2, 0); },
       {rnd({2, 5, 6, 2}, 1), rnd({2, 2, 3, 2}, 2)}},
      {"conv2d 1x1 s1 p0", [](V x) { return conv2d(x[0], x[1], x[2], 1, 0); },
       {rnd({2, 3, 4, 3}, 1), rnd({2, 3, 1, 1}, 2), rnd({2}, 3)}},
      {"conv2d 1x1 s2 p0 (projection)", [](V x) { return conv2d(x[0], x[1], Tensor(), 2, 0); },
       {rnd({2, 5, 5, 3}, 1), rnd({4, 3, 1, 1}, 2)}},
      {"conv2d 5x5 s3 p2", [](V x) { return conv2d(x[0], x[1], x[2], 3, 2); },
       {rnd({1, 7, 7, 2}, 1), rnd({2, 2, 5, 5}, 2), rnd({2}, 3)}},
      {"batch norm 2d train", [](V x) { return batch_norm_2d(x[0], x[1], x[2], Tensor(), Tensor(), true); },
       {rnd({3, 2, 3, 2}, 1), pos({2}, 2), rnd({2}, 3)}},
      {"batch norm 2d eval",
       [](V x) {
         return batch_norm_2d(x[0], x[1], x[2], Tensor::from_vector({0.1, -0.2}, {2}, DType::f64),
                              Tensor::from_vector({1.5, 0.7}, {2}, DType::f64), false);
       },
       {rnd({3, 2, 3, 2}, 1), pos({2}, 2), rnd({2}, 3)}},
      // BN fused with the residual add and ReLU (a ResNet block's tail): every input, both modes. Inputs keep
      // their values away from the ReLU's kink by more than the finite-difference step.
      {"batch norm 2d train + residual + relu",
       [](V x) { return batch_norm_2d_fused(x[0], x[3], true, x[1], x[2], Tensor(), Tensor(), true); },
       {rnd({2, 3, 2, 3}, 1), pos({3}, 2), rnd({3}, 3), rnd({2, 3, 2, 3}, 4)}},
      {"batch norm 2d train + residual",
       [](V x) { return batch_norm_2d_fused(x[0], x[3], false, x[1], x[2], Tensor(), Tensor(), true); },
       {rnd({2, 3, 2, 3}, 1), pos({3}, 2), rnd({3}, 3), rnd({2, 3, 2, 3}, 4)}},
      {"batch norm 2d train + relu",
       [](V x) { return batch_norm_2d_fused(x[0], Tensor(), true, x[1], x[2], Tensor(), Tensor(), true); },
       {rnd({2, 3, 2, 3}, 1), pos({3}, 2), rnd({3}, 3)}},
      {"batch norm 2d eval + residual + relu",
       [](V x) {
         return batch_norm_2d_fused(x[0], x[3], true, x[1], x[2], Tensor::from_vector({0.1, -0.2, 0.3}, {3}, DType::f64),
                                    Tensor::from_vector({1.5, 0.7, 1.1}, {3}, DType::f64), false);
       },
       {rnd({2, 3, 2, 3}, 1), pos({3}, 2), rnd({3}, 3), rnd({2, 3, 2, 3}, 4)}},
      // Continuous random inputs: no two values of a window lie within eps of each other (no ties).
      {"max pool 3 s2 p1", [](V x) { return max_pool2d(x[0], 3, 2, 1); }, {rnd({2, 5, 6, 2}, 1)}},
      {"max pool 2 s2 p0", [](V x) { return max_pool2d(x[0], 2, 2, 0); }, {rnd({1, 4, 4, 3}, 1)}},
      {"global average pool", [](V x) { return global_avg_pool(x[0]); }, {rnd({2, 3, 2, 3}, 1)}},
      {"mse", [](V x) { return mse_loss(x[0], x[1]); }, {rnd({3, 4}, 1), rnd({3, 4}, 2)}},
      {"softmax cross-entropy", [labels](V x) { return softmax_cross_entropy(x[0], labels); }, {rnd({4, 3}, 1)}},
      {"eigh values", [](V x) { return eigh(sym(x[0])).values; }, {spd(4, 1)}},
      {"eigh vectors (sign-fixed)",
       [](V x) {
         EighResult e = eigh(sym(x[0]));
         // Eigenvectors are defined up to sign: use v v^T, which is not.
         Tensor v = slice(e.vectors, 1, 0, 1);
         return matmul(v, transpose(v));
       },
       {spd(4, 1)}},
      // Every eigenvector: V diag(c) V^T = sum_k c_k v_k v_k^T, sign-invariant, with distinct weights c_k.
      {"eigh vectors, all of them (sign-fixed)",
       [](V x) {
         const Tensor v = eigh(sym(x[0])).vectors;
         return matmul(mul(v, Tensor::from_vector({0.3, -1.1, 2.0, 0.7}, {1, 4}, DType::f64)), transpose(v));
       },
       {spd(4, 1)}},
      {"cholesky", [](V x) { return cholesky(sym(x[0])); }, {spd(4, 1)}},
      {"triangular solve", [](V x) { return triangular_solve(cholesky(sym(x[0])), x[1]); }, {spd(3, 1), rnd({3, 2}, 2)}},
      {"triangular solve transposed",
       [](V x) { return triangular_solve(cholesky(sym(x[0])), x[1], true); }, {spd(3, 1), rnd({3, 2}, 2)}},
      {"iternorm CW T=4", [](V x) { return iternorm(x[0], 4, WhitenAxis::channel); }, {rnd({4, 6}, 1)}},
      {"iternorm BW T=5", [](V x) { return iternorm(x[0], 5, WhitenAxis::batch); }, {rnd({8, 3}, 1)}},
      {"spectral p=0.5 BW", [](V x) { return spectral_transform(x[0], 0.5, WhitenAxis::batch); }, {rnd({8, 3}, 1)}},
      {"spectral p=0.25 CW", [](V x) { return spectral_transform(x[0], 0.25, WhitenAxis::channel); }, {rnd({3, 8}, 1)}},
      {"cholesky whitening BW", [](V x) { return cholesky_whiten(x[0], WhitenAxis::batch); }, {rnd({8, 3}, 1)}},
      {"cholesky whitening CW", [](V x) { return cholesky_whiten(x[0], WhitenAxis::channel); }, {rnd({3, 8}, 1)}},
      {"trace loss", [](V x) { return trace_loss(x[0], WhitenAxis::channel); }, {rnd({4, 5}, 1)}},
      {"trace loss BW", [](V x) { return trace_loss(x[0], WhitenAxis::batch); }, {rnd({6, 4}, 1)}},
      {"norm_mse", [](V x) { return norm_mse(x[0], x[1]); }, {rnd({4, 5}, 1), rnd({4, 5}, 2)}},
      {"INTL loss", [](V x) { return intl_loss(x[0], x[1], 4, 0.05); }, {rnd({4, 6}, 1), rnd({4, 6}, 2)}},
      // The CPU's training path: one eigensolve per view, a hand-written backward (divided differences).
      {"INTL loss, spectral form", [](V x) { return intl_loss(x[0], x[1], 4, 0.05, IntlLossForm::spectral); },
       {rnd({4, 6}, 1), rnd({4, 6}, 2)}},
      // The EMA target carries no gradient: it is a constant here.
      {"INTL multi-crop", [target = rnd({4, 6}, 3)](V x) { return intl_multicrop_loss({x[0], x[1]}, target, 3, 0.05); },
       {rnd({4, 6}, 1), rnd({4, 6}, 2)}},
      {"INTL multi-crop, no EMA", [](V x) { return intl_anchored_crops_loss({x[0], x[1], x[2]}, 3, 0.05); },
       {rnd({4, 6}, 1), rnd({4, 6}, 2), rnd({4, 6}, 3)}},
  };
}

}  // namespace

TEST_CASE("gradients match central differences for every op") {
  for (const Case& c : cases()) {
    SUBCASE(c.name) {
      const auto r = gradcheck(c.f, c.inputs);
      const std::string what = std::string(c.name) + ": " + r.message;
      INFO(what);
      CHECK(r.ok);
    }
  }
}

// Finite differences cannot see a cast to a narrower dtype (the rounding swamps them): cast's backward is checked
// exactly instead. A gradient w that float32 and bfloat16 do not represent reaches x rounded through the cast's
// dtype (the gradient of the output is in that dtype) and widened back to x's.
TEST_CASE("cast's backward returns the gradient in the input's dtype, rounded through the output's") {
  const Tensor w = rnd({3, 4}, 2);  // float64
  for (const DType to : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(to));
    Tensor x = rnd({3, 4}, 1);
    x.requires_grad_(true);
    const Tensor y = cast(x, to);
    CHECK(y.dtype() == to);
    // CPU kernels compute in float32 or float64: a bfloat16 y is widened to float32 for the product.
    const Tensor y32 = to == DType::bf16 ? cast(y, DType::f32) : y;
    sum(mul(y32, w.to(DType::f32))).backward();
    const Tensor want = w.to(DType::f32).to(to).to(DType::f64);
    REQUIRE(x.grad().defined());
    CHECK(x.grad().dtype() == DType::f64);
    CHECK(x.grad().to_vector() == want.to_vector());
    CHECK(want.to_vector() != w.to_vector());  // the rounding is visible
  }
  // Widening: float32 x, float64 y; the float64 gradient comes back rounded to float32.
  Tensor x = rnd({3, 4}, 1).to(DType::f32);
  x.requires_grad_(true);
  sum(mul(cast(x, DType::f64), w)).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == DType::f32);
  CHECK(x.grad().to_vector() == w.to(DType::f32).to_vector());
}

// A label outside the logits' classes is the caller's error, named, not a NaN loss that reads as a divergence.
TEST_CASE("softmax cross-entropy names a label outside the classes") {
  const Tensor logits = rnd({3, 4}, 1);
  for (const int64_t bad : {int64_t(4), int64_t(-1)}) {
    const Tensor labels = Tensor::from_vector({0, 3, double(bad)}, {3}, DType::i64);
    CHECK_THROWS_WITH(softmax_cross_entropy(logits, labels),
                      ("softmax_cross_entropy: label " + std::to_string(bad) +
                       " of row 2 is outside the 4 classes of the logits").c_str());
  }
}

// The row maximum is subtracted before exp: logits a thousand apart give the exact loss, not inf or NaN.
TEST_CASE("softmax cross-entropy is exact at logits far apart") {
  const Tensor logits = Tensor::from_vector({1000, 0, -1000, 0, 1000, -1000}, {2, 3}, DType::f64);
  CHECK(softmax_cross_entropy(logits, Tensor::from_vector({1, 1}, {2}, DType::i64)).item() == doctest::Approx(500.0));
  CHECK(softmax_cross_entropy(logits, Tensor::from_vector({2, 2}, {2}, DType::i64)).item() == doctest::Approx(2000.0));
}

// The kernel itself (which the CUDA path reaches without the host-side label check) makes an out-of-range
// label's row NaN, and reads nothing outside the row.
TEST_CASE("the softmax cross-entropy kernel gives NaN for a label outside the classes") {
  const Tensor logits = rnd({3, 4}, 1);
  const Tensor labels = Tensor::from_vector({4, -1, 2}, {3}, DType::i64);
  const Tensor loss = Tensor::empty({3}, DType::f64);
  backend(Device::cpu).softmax_xent(logits, labels, loss, Tensor());
  const std::vector<double> l = loss.to_vector();
  CHECK(std::isnan(l[0]));
  CHECK(std::isnan(l[1]));
  CHECK(std::isfinite(l[2]));
}

// Parameters of another dtype were read as raw memory of the input's (a float32 weight read as float64 ran past
// its buffer): refused, naming both dtypes.
TEST_CASE("linear and batch_norm_1d refuse parameters of another dtype") {
  const Tensor x = rnd({2, 3}, 1);  // float64
  CHECK_THROWS_WITH(linear(x, Tensor::ones({4, 3}), Tensor()), "linear: dtypes differ (float64 and float32)");
  CHECK_THROWS_WITH(linear(x, Tensor::ones({4, 3}, DType::f64), Tensor::ones({4})),
                    "linear: dtypes differ (float64 and float32)");
  CHECK_THROWS_WITH(batch_norm_1d(x, Tensor::ones({3}), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
                    "batch_norm_1d: dtypes differ (float64 and float32)");
  CHECK_THROWS_WITH(batch_norm_1d(x, Tensor::ones({4}, DType::f64), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
                    "batch_norm_1d: parameters and statistics must be (3,), got (4,)");
}

// PyTorch's BatchNorm1d: the running variance takes the batch's unbiased variance; eval divides by
// sqrt(running variance + eps).
TEST_CASE("batch_norm_1d: running statistics as PyTorch's, and eval reads them with eps") {
  for (const DType dtype : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(dtype));
    const Tensor x = Tensor::from_vector({1, 10, 2, 20, 3, 30, 6, 60}, {4, 2}, dtype);  // column 0: mean 3, var 14/3
    Tensor rm = Tensor::from_vector({0, 1}, {2}, dtype), rv = Tensor::from_vector({1, 2}, {2}, dtype);
    batch_norm_1d(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
    const std::vector<double> mean = rm.to_vector(), var = rv.to_vector();
    CHECK(mean[0] == doctest::Approx(0.3));
    CHECK(mean[1] == doctest::Approx(0.9 + 0.1 * 30));
    CHECK(var[0] == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0));
    CHECK(var[1] == doctest::Approx(1.8 + 0.1 * 1400.0 / 3.0));
    const Tensor gamma = Tensor::from_vector({2, 1}, {2}, dtype), beta = Tensor::from_vector({0, 1}, {2}, dtype);
    const Tensor stats_m = Tensor::from_vector({1, 0}, {2}, dtype), stats_v = Tensor::from_vector({0, 3}, {2}, dtype);
    const std::vector<double> y = batch_norm_1d(x, gamma, beta, stats_m, stats_v, false, 0.1, 0.25).to_vector();
    CHECK(y[0] == doctest::Approx(0.0));                    // (1 - 1) / sqrt(0 + 0.25) x 2
    CHECK(y[2] == doctest::Approx(4.0));                    // (2 - 1) / 0.5 x 2
    CHECK(y[1] == doctest::Approx(10.0 / std::sqrt(3.25) + 1));
  }
}

// An inner extent of 0: the product of a (m, 0) and a (0, n) matrix is the (m, n) zero matrix.
TEST_CASE("matmul with an inner extent of 0 is zero in both dtypes") {
  for (const DType dtype : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dtype));
    const Tensor y = matmul(Tensor::zeros({3, 0}, dtype), Tensor::zeros({0, 4}, dtype));
    CHECK(y.shape() == Shape{3, 4});
    CHECK(y.to_vector() == std::vector<double>(12, 0.0));
    const Tensor z = linear(Tensor::zeros({2, 0}, dtype), Tensor::zeros({5, 0}, dtype), Tensor::ones({5}, dtype));
    CHECK(z.to_vector() == std::vector<double>(10, 1.0));  // the bias alone
  }
}

// Finite differences cannot see a constant: batch_norm_1d in training without gamma or beta is checked by value,
// every column at mean 0 and (biased) variance 1 (eps 0 here).
TEST_CASE("batch_norm_1d without gamma or beta standardises each column") {
  const Tensor x = rnd({6, 3}, 1, 3.0, 2.0);
  const Tensor y = batch_norm_1d(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 0.0);
  const std::vector<double> m = mean(y, {0}).to_vector(), v = mean(square(y), {0}).to_vector();
  for (size_t j = 0; j < 3; ++j) {
    CHECK(m[j] == doctest::Approx(0.0).epsilon(1e-12).scale(1.0));
    CHECK(v[j] == doctest::Approx(1.0).epsilon(1e-12));
  }
}

// As PyTorch's: abs has gradient sign(x), and 0 at 0 (no finite difference is taken at the kink).
TEST_CASE("abs passes gradient sign(x), zero at zero") {
  Tensor x = Tensor::from_vector({-2.0, 0.0, 3.0}, {3}, DType::f64);
  x.requires_grad_(true);
  sum(abs(x)).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector() == std::vector<double>{-1.0, 0.0, 1.0});
}
