// Convolutional ops (NHWC activations) against direct loops written from the definitions (float64 and float32):
// conv2d for several kernels, strides and paddings, also against the NCHW reference kernels through explicit
// transposes, max pooling, BatchNorm2d's statistics and its fused residual + ReLU form, global average pooling,
// and the argument errors. Gradients are in the gradient-check table.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/cpu/conv_reference.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "tests/layout.h"

using namespace intl;

namespace {

// y[n, i, j, o] = b[o] + sum_{c, p, q} w[o, c, p, q] x[n, i s + p - pad, j s + q - pad, c] (zero outside).
std::vector<double> direct_conv(const Tensor& x, const Tensor& w, const Tensor& b, int64_t s, int64_t pad) {
  const std::vector<double> X = x.to_vector(), W = w.to_vector();
  const std::vector<double> B = b.defined() ? b.to_vector() : std::vector<double>(size_t(w.size(0)), 0.0);
  const int64_t N = x.size(0), H = x.size(1), Wd = x.size(2), C = x.size(3), O = w.size(0), KH = w.size(2),
                KW = w.size(3);
  const int64_t HO = (H + 2 * pad - KH) / s + 1, WO = (Wd + 2 * pad - KW) / s + 1;
  std::vector<double> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < HO; ++i)
      for (int64_t j = 0; j < WO; ++j)
        for (int64_t o = 0; o < O; ++o) {
          double acc = B[size_t(o)];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < KH; ++p)
              for (int64_t q = 0; q < KW; ++q) {
                const int64_t iy = i * s + p - pad, ix = j * s + q - pad;
                if (iy >= 0 && iy < H && ix >= 0 && ix < Wd)
                  acc += W[size_t(((o * C + c) * KH + p) * KW + q)] * X[size_t(((n * H + iy) * Wd + ix) * C + c)];
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
      Tensor x = Tensor::randn({2, c.h, c.w, c.c_in}, 1, 1, dtype);
      Tensor w = Tensor::randn({c.c_out, c.c_in, c.k, c.k}, 1, 2, dtype);
      Tensor b = c.bias ? Tensor::randn({c.c_out}, 1, 3, dtype) : Tensor();
      Tensor y = conv2d(x, w, b, c.stride, c.pad);
      CHECK(y.shape() == Shape{2, (c.h + 2 * c.pad - c.k) / c.stride + 1, (c.w + 2 * c.pad - c.k) / c.stride + 1,
                               c.c_out});
      CHECK(max_abs_diff(y.to_vector(), direct_conv(x, w, b, c.stride, c.pad)) < (dtype == DType::f64 ? 1e-12 : 1e-4));
    }
}

// The NCHW im2col + GEMM reference kernels are an independent oracle: the NHWC ops (oneDNN in float32) and their
// backward passes must agree with them once the activations are transposed.
TEST_CASE("conv2d and max_pool2d in NHWC agree with the NCHW reference kernels, forward and backward") {
  for (const DType dtype : {DType::f32, DType::f64}) {
    const double tol = dtype == DType::f64 ? 1e-12 : 1e-4;
    // A 3x3 stride-2 convolution with 16 channels and a 3x3 stride-1 one with Winograd-sized channels.
    for (const int64_t stride : {int64_t(1), int64_t(2)}) {
      CAPTURE(stride);
      const Conv2dArgs a{2, 16, 12, 12, 32, 3, 3, stride, 1};
      Tensor x = Tensor::randn({a.n, a.h, a.w, a.c_in}, 3, 1, dtype).detach();
      Tensor w = Tensor::randn({a.c_out, a.c_in, 3, 3}, 3, 2, dtype).detach();
      Tensor b = Tensor::randn({a.c_out}, 3, 3, dtype).detach();
      x.requires_grad_(true);
      w.requires_grad_(true);
      b.requires_grad_(true);
      Tensor y = conv2d(x, w, b, stride, 1);
      Tensor dy = Tensor::randn(y.shape(), 3, 4, dtype);
      sum(mul(y, dy)).backward();
      Tensor ref_y = Tensor::empty({a.n, a.c_out, a.h_out(), a.w_out()}, dtype);
      Tensor ref_dx = Tensor::empty({a.n, a.c_in, a.h, a.w}, dtype), ref_dw = Tensor::empty(w.shape(), dtype);
      Tensor ref_db = Tensor::empty({a.c_out}, dtype);
      const Tensor x_nchw = test::nhwc_to_nchw(x.detach()), dy_nchw = test::nhwc_to_nchw(dy);
      cpu::reference::conv2d_forward(a, x_nchw, w.detach(), b.detach(), ref_y);
      cpu::reference::conv2d_backward_data(a, dy_nchw, w.detach(), ref_dx);
      cpu::reference::conv2d_backward_filter(a, x_nchw, dy_nchw, ref_dw, ref_db);
      const double scale = 1 + max_abs_diff(ref_y.to_vector(), std::vector<double>(size_t(ref_y.numel()), 0.0));
      CHECK(max_abs_diff(y.to_vector(), test::nchw_to_nhwc(ref_y).to_vector()) < tol * scale);
      CHECK(max_abs_diff(x.grad().to_vector(), test::nchw_to_nhwc(ref_dx).to_vector()) < tol * scale);
      CHECK(max_abs_diff(w.grad().to_vector(), ref_dw.to_vector()) < tol * scale * 10);
      CHECK(max_abs_diff(b.grad().to_vector(), ref_db.to_vector()) < tol * scale * 10);
    }
    const Pool2dArgs p{2, 5, 9, 7, 3, 2, 1};
    Tensor x = Tensor::randn({p.n, p.h, p.w, p.c}, 5, 1, dtype).detach();
    x.requires_grad_(true);
    Tensor y = max_pool2d(x, 3, 2, 1);
    Tensor dy = Tensor::randn(y.shape(), 5, 2, dtype);
    sum(mul(y, dy)).backward();
    Tensor ref_y = Tensor::empty({p.n, p.c, p.h_out(), p.w_out()}, dtype);
    Tensor idx = Tensor::empty(ref_y.shape(), DType::i32), ref_dx = Tensor::empty({p.n, p.c, p.h, p.w}, dtype);
    cpu::reference::maxpool2d_forward(p, test::nhwc_to_nchw(x.detach()), ref_y, idx);
    cpu::reference::maxpool2d_backward(p, test::nhwc_to_nchw(dy), idx, ref_dx);
    CHECK(y.to_vector() == test::nchw_to_nhwc(ref_y).to_vector());
    CHECK(max_abs_diff(x.grad().to_vector(), test::nchw_to_nhwc(ref_dx).to_vector()) == 0.0);
  }
}

TEST_CASE("max_pool2d takes the window maximum; padding never wins") {
  // One 4x4 plane of negative values: with padding 1 the padded border must not contribute zeros.
  Tensor x = Tensor::from_vector({-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16}, {1, 4, 4, 1},
                                 DType::f64);
  CHECK(max_pool2d(x, 3, 2, 1).to_vector() == std::vector<double>{-1, -2, -5, -6});
  CHECK(max_pool2d(x, 2, 2, 0).to_vector() == std::vector<double>{-1, -3, -9, -11});
  Tensor r = Tensor::randn({2, 9, 7, 3}, 4, 1, DType::f64);
  Tensor y = max_pool2d(r, 3, 2, 1);
  CHECK(y.shape() == Shape{2, 5, 4, 3});
  const std::vector<double> v = r.to_vector(), out = y.to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          double best = -INFINITY;
          for (int64_t p = 2 * i - 1; p <= 2 * i + 1; ++p)
            for (int64_t q = 2 * j - 1; q <= 2 * j + 1; ++q)
              if (p >= 0 && p < 9 && q >= 0 && q < 7) best = std::max(best, v[size_t(((n * 9 + p) * 7 + q) * 3 + c)]);
          CHECK(out[size_t(((n * 5 + i) * 4 + j) * 3 + c)] == best);
        }
}

TEST_CASE("a NaN in a max-pooling window propagates (the first NaN wins), with or without gradients") {
  for (const DType dtype : {DType::f32, DType::f64}) {
    // One 4x4 plane with NaN at (1, 1) and (3, 3), each the last of its 2x2 window (stride 2), after numbers.
    std::vector<double> v(16);
    for (size_t i = 0; i < 16; ++i) v[i] = double(i);
    v[5] = NAN;
    v[15] = NAN;
    for (const bool grad : {true, false}) {
      CAPTURE(grad);
      Tensor x = Tensor::from_vector(v, {1, 4, 4, 1}, dtype).requires_grad_(grad);
      Tensor y = max_pool2d(x, 2, 2, 0);
      const std::vector<double> out = y.to_vector();
      CHECK(std::isnan(out[0]));
      CHECK(out[1] == 7.0);
      CHECK(out[2] == 13.0);
      CHECK(std::isnan(out[3]));
      if (!grad) continue;
      sum(mul(y, Tensor::from_vector({1, 2, 3, 4}, {1, 2, 2, 1}, dtype))).backward();
      const std::vector<double> g = x.grad().to_vector();
      CHECK(g[5] == 1.0);   // the NaN took the first window's gradient
      CHECK(g[15] == 4.0);  // and the other NaN the last one's
      CHECK(g[7] == 2.0);
      CHECK(g[13] == 3.0);
    }
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
      for (int64_t k = 0; k < 4; ++k) idx.push_back(size_t((n * 4 + k) * 2 + c));  // (3, 2, 2, 2) NHWC
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

TEST_CASE("batch_norm_2d_fused is batch_norm_2d, plus the residual, through ReLU") {
  for (const DType dtype : {DType::f64, DType::f32})
    for (const bool training : {true, false}) {
      CAPTURE(training);
      Tensor x = Tensor::randn({2, 3, 4, 16}, 6, 1, dtype), r = Tensor::randn({2, 3, 4, 16}, 6, 2, dtype);
      Tensor gamma = Tensor::rand({16}, 0.5, 2.0, 6, 3, dtype), beta = Tensor::randn({16}, 6, 4, dtype);
      Tensor rm1 = Tensor::randn({16}, 6, 5, dtype), rv1 = Tensor::rand({16}, 0.5, 2.0, 6, 6, dtype);
      Tensor rm2 = mul(rm1, 1.0), rv2 = mul(rv1, 1.0);  // copies: each path updates its own
      const std::vector<double> fused =
          batch_norm_2d_fused(x, r, true, gamma, beta, rm1, rv1, training).to_vector();
      const std::vector<double> plain =
          relu(add(batch_norm_2d(x, gamma, beta, rm2, rv2, training), r)).to_vector();
      CHECK(max_abs_diff(fused, plain) < (dtype == DType::f64 ? 1e-12 : 1e-5));
      CHECK(max_abs_diff(rm1.to_vector(), rm2.to_vector()) < 1e-6);
      CHECK(max_abs_diff(rv1.to_vector(), rv2.to_vector()) < 1e-6);
    }
}

// The float32 kernel sums rows in per-thread slots: a call whose parallel region gets fewer threads than the
// slots (here a nested region, which runs on one thread) must not add the slots an earlier call left.
TEST_CASE("batch_norm_2d in float32 gives the same statistics when called inside a parallel region") {
  Tensor x = Tensor::randn({4, 3, 5, 8}, 9, 1, DType::f32);
  auto running_mean = [&] {
    Tensor rm = Tensor::zeros({8}), rv = Tensor::ones({8});
    batch_norm_2d(x, Tensor(), Tensor(), rm, rv, true, 1.0, 1e-5);
    return rm.to_vector();
  };
  const std::vector<double> outside = running_mean();
  Tensor shifted = add(x, 100.0);  // leaves large sums in the slots of every thread
  {
    Tensor rm = Tensor::zeros({8}), rv = Tensor::ones({8});
    batch_norm_2d(shifted, Tensor(), Tensor(), rm, rv, true, 1.0, 1e-5);
  }
  std::vector<double> inside;
#pragma omp parallel num_threads(2)
  {
#pragma omp master
    inside = running_mean();
  }
  CHECK(max_abs_diff(inside, outside) < 1e-6);
}

TEST_CASE("global_avg_pool averages each plane") {
  Tensor x = Tensor::from_vector({1, 10, 2, 20, 3, 30, 4, 40}, {1, 2, 2, 2}, DType::f64);  // NHWC
  Tensor y = global_avg_pool(x);
  CHECK(y.shape() == Shape{1, 2});
  CHECK(y.to_vector() == std::vector<double>{2.5, 25});
}

TEST_CASE("convolutional ops name the offending shapes") {
  Tensor x = Tensor::zeros({2, 8, 8, 3});
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), 1, 1),
                       doctest::Contains("weight must be (c_out, 3, kh, kw)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({3}), 1, 1),
                       doctest::Contains("bias must be (4)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({4, 3, 3, 3}), Tensor(), 1, 1),
                       doctest::Contains("(N, H, W, C)"), Error);
  CHECK_THROWS_WITH_AS(batch_norm_2d(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("must be (3)"), Error);
  CHECK_THROWS_WITH_AS(batch_norm_2d(Tensor::zeros({1, 1, 1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 3, 2, 2), doctest::Contains("padding"), Error);
}
