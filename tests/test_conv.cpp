// Convolutional ops against direct loops written from the definitions (float64 and float32): conv2d for
// several kernels, strides and paddings, max pooling, BatchNorm2d's statistics, global average pooling, and
// the argument errors. Gradients are in the gradient-check table.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "engine/ops.h"

using namespace intl;

namespace {

// y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] x[n, c, i s + p - pad, j s + q - pad] (zero outside).
std::vector<double> direct_conv(const Tensor& x, const Tensor& w, const Tensor& b, int64_t s, int64_t pad) {
  const std::vector<double> X = x.to_vector(), W = w.to_vector();
  const std::vector<double> B = b.defined() ? b.to_vector() : std::vector<double>(size_t(w.size(0)), 0.0);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), Wd = x.size(3), O = w.size(0), KH = w.size(2),
                KW = w.size(3);
  const int64_t HO = (H + 2 * pad - KH) / s + 1, WO = (Wd + 2 * pad - KW) / s + 1;
  std::vector<double> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < HO; ++i)
        for (int64_t j = 0; j < WO; ++j) {
          double acc = B[size_t(o)];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < KH; ++p)
              for (int64_t q = 0; q < KW; ++q) {
                const int64_t iy = i * s + p - pad, ix = j * s + q - pad;
                if (iy >= 0 && iy < H && ix >= 0 && ix < Wd)
                  acc += W[size_t(((o * C + c) * KH + p) * KW + q)] * X[size_t(((n * C + c) * H + iy) * Wd + ix)];
              }
          y.push_back(acc);
        }
  return y;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("conv2d matches the direct sum for several kernels, strides and paddings") {
  struct Config {
    int64_t c_in, c_out, h, w, k, stride, pad;
    bool bias;
  };
  const Config configs[] = {{3, 4, 7, 7, 7, 2, 3, false}, {2, 3, 6, 5, 3, 1, 1, true}, {4, 2, 8, 8, 3, 2, 1, false},
                            {3, 5, 5, 6, 1, 1, 0, true},  {3, 5, 7, 7, 1, 2, 0, false}, {1, 2, 4, 4, 4, 1, 0, true}};
  for (DType dtype : {DType::f64, DType::f32})
    for (const Config& c : configs) {
      CAPTURE(c.k);
      CAPTURE(c.stride);
      CAPTURE(c.pad);
      Tensor x = Tensor::randn({2, c.c_in, c.h, c.w}, 1, 1, dtype);
      Tensor w = Tensor::randn({c.c_out, c.c_in, c.k, c.k}, 1, 2, dtype);
      Tensor b = c.bias ? Tensor::randn({c.c_out}, 1, 3, dtype) : Tensor();
      Tensor y = conv2d(x, w, b, c.stride, c.pad);
      CHECK(y.shape() == Shape{2, c.c_out, (c.h + 2 * c.pad - c.k) / c.stride + 1,
                               (c.w + 2 * c.pad - c.k) / c.stride + 1});
      CHECK(max_abs_diff(y.to_vector(), direct_conv(x, w, b, c.stride, c.pad)) < (dtype == DType::f64 ? 1e-12 : 1e-4));
    }
}

TEST_CASE("max_pool2d takes the window maximum; padding never wins") {
  // One 4x4 plane of negative values: with padding 1 the padded border must not contribute zeros.
  Tensor x = Tensor::from_vector({-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16}, {1, 1, 4, 4},
                                 DType::f64);
  CHECK(max_pool2d(x, 3, 2, 1).to_vector() == std::vector<double>{-1, -2, -5, -6});
  CHECK(max_pool2d(x, 2, 2, 0).to_vector() == std::vector<double>{-1, -3, -9, -11});
  Tensor r = Tensor::randn({2, 3, 9, 7}, 4, 1, DType::f64);
  Tensor y = max_pool2d(r, 3, 2, 1);
  CHECK(y.shape() == Shape{2, 3, 5, 4});
  const std::vector<double> v = r.to_vector(), out = y.to_vector();
  for (int64_t plane = 0; plane < 6; ++plane)
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        double best = -INFINITY;
        for (int64_t p = 2 * i - 1; p <= 2 * i + 1; ++p)
          for (int64_t q = 2 * j - 1; q <= 2 * j + 1; ++q)
            if (p >= 0 && p < 9 && q >= 0 && q < 7) best = std::max(best, v[size_t((plane * 9 + p) * 7 + q)]);
        CHECK(out[size_t((plane * 5 + i) * 4 + j)] == best);
      }
}

TEST_CASE("batch_norm_2d normalises per channel and updates running statistics as PyTorch") {
  Tensor x = Tensor::randn({3, 2, 2, 2}, 5, 1, DType::f64);
  Tensor gamma = Tensor::from_vector({2.0, 0.5}, {2}, DType::f64);
  Tensor beta = Tensor::from_vector({1.0, -1.0}, {2}, DType::f64);
  Tensor rm = Tensor::from_vector({0.5, -0.5}, {2}, DType::f64);
  Tensor rv = Tensor::from_vector({2.0, 3.0}, {2}, DType::f64);
  const std::vector<double> y = batch_norm_2d(x, gamma, beta, rm, rv, true, 0.1, 1e-5).to_vector();
  const std::vector<double> v = x.to_vector();
  for (int64_t c = 0; c < 2; ++c) {
    std::vector<size_t> idx;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t k = 0; k < 4; ++k) idx.push_back(size_t((n * 2 + c) * 4 + k));
    double mean = 0, ss = 0;
    for (size_t i : idx) mean += v[i] / 12;
    for (size_t i : idx) ss += (v[i] - mean) * (v[i] - mean);
    const double g = c == 0 ? 2.0 : 0.5, b = c == 0 ? 1.0 : -1.0;
    for (size_t i : idx) CHECK(y[i] == doctest::Approx(g * (v[i] - mean) / std::sqrt(ss / 12 + 1e-5) + b));
    CHECK(rm.to_vector()[size_t(c)] == doctest::Approx(0.9 * (c == 0 ? 0.5 : -0.5) + 0.1 * mean));
    CHECK(rv.to_vector()[size_t(c)] == doctest::Approx(0.9 * (c == 0 ? 2.0 : 3.0) + 0.1 * ss / 11));  // unbiased
  }
  // Eval mode uses the running statistics.
  const std::vector<double> e = batch_norm_2d(x, gamma, beta, rm, rv, false).to_vector();
  const double m0 = rm.to_vector()[0], v0 = rv.to_vector()[0];
  CHECK(e[0] == doctest::Approx(2.0 * (v[0] - m0) / std::sqrt(v0 + 1e-5) + 1.0));
}

TEST_CASE("global_avg_pool averages each plane") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2}, DType::f64);
  Tensor y = global_avg_pool(x);
  CHECK(y.shape() == Shape{1, 2});
  CHECK(y.to_vector() == std::vector<double>{2.5, 25});
}

TEST_CASE("convolutional ops name the offending shapes") {
  Tensor x = Tensor::zeros({2, 3, 8, 8});
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), 1, 1),
                       doctest::Contains("weight must be (c_out, 3, kh, kw)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({3}), 1, 1),
                       doctest::Contains("bias must be (4)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({4, 3, 3, 3}), Tensor(), 1, 1),
                       doctest::Contains("(N, C, H, W)"), Error);
  CHECK_THROWS_WITH_AS(batch_norm_2d(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("must be (3)"), Error);
  CHECK_THROWS_WITH_AS(batch_norm_2d(Tensor::zeros({1, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 3, 2, 2), doctest::Contains("padding"), Error);
}
