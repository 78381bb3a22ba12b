// The convolution-layer kernels (engine/cpu/conv_kernels.h): every float32 kernel against the float64 reference on
// small random NHWC shapes, and central-difference gradient checks of the reference backward kernels in double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/conv_kernels.h"

using namespace intl::cpu;

namespace {

std::vector<double> random_values(size_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// Float kernels are compared with the double reference by the largest error relative to the largest reference
// value: max |fast - ref| <= tol * max(1, max |ref|).
double relative_error(const std::vector<float>& fast, const std::vector<double>& ref) {
  REQUIRE(fast.size() == ref.size());
  double err = 0, scale = 1;
  for (size_t i = 0; i < ref.size(); ++i) {
    err = std::max(err, std::abs(double(fast[i]) - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return err / scale;
}

// Central differences of loss() with respect to each entry of p, compared with `analytic`:
// |analytic - numeric| <= 1e-5 + 1e-3 |numeric|.
void check_gradient(const char* what, std::vector<double>& p, const std::vector<double>& analytic,
                    const std::function<double()>& loss) {
  CAPTURE(what);
  REQUIRE(p.size() == analytic.size());
  const double eps = 1e-6;
  for (size_t i = 0; i < p.size(); ++i) {
    const double keep = p[i];
    p[i] = keep + eps;
    const double up = loss();
    p[i] = keep - eps;
    const double down = loss();
    p[i] = keep;
    const double numeric = (up - down) / (2 * eps);
    CAPTURE(i);
    CHECK(std::abs(analytic[i] - numeric) <= 1e-5 + 1e-3 * std::abs(numeric));
  }
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

size_t input_count(const Conv2dShape& s) { return size_t(s.n) * s.h * s.w * s.c_in; }
size_t output_count(const Conv2dShape& s) { return size_t(s.n) * s.h_out() * s.w_out() * s.c_out; }
size_t weight_count(const Conv2dShape& s) { return size_t(s.c_out) * s.c_in * s.kh * s.kw; }

std::string describe(const Conv2dShape& s) {
  return "n" + std::to_string(s.n) + " c" + std::to_string(s.c_in) + "->" + std::to_string(s.c_out) + " " +
         std::to_string(s.h) + "x" + std::to_string(s.w) + " k" + std::to_string(s.kh) + "x" + std::to_string(s.kw) +
         " s" + std::to_string(s.stride) + " p" + std::to_string(s.pad);
}

// Forward, backward-data and backward-filter of the fast kernels against the reference, with beta 0 and 1.
void compare_conv(const Conv2dShape& s, bool bias, double tol, uint32_t seed) {
  CAPTURE(describe(s));
  CAPTURE(bias);
  const auto x = random_values(input_count(s), seed), w = random_values(weight_count(s), seed + 1);
  const auto b = random_values(size_t(s.c_out), seed + 2), dy = random_values(output_count(s), seed + 3);
  const auto dx0 = random_values(input_count(s), seed + 4), dw0 = random_values(weight_count(s), seed + 5);
  const auto db0 = random_values(size_t(s.c_out), seed + 6);
  const auto xf = to_float(x), wf = to_float(w), bf = to_float(b), dyf = to_float(dy);

  std::vector<double> y(output_count(s));
  conv2d_forward_reference(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
  std::vector<float> yf(y.size());
  conv2d_forward(s, xf.data(), wf.data(), 0, bias ? bf.data() : nullptr, yf.data());
  CHECK(relative_error(yf, y) <= tol);

  for (const double beta : {0.0, 1.0}) {
    CAPTURE(beta);
    std::vector<double> dx = dx0, dw = dw0, db = db0;
    conv2d_backward_data_reference(s, dy.data(), w.data(), dx.data(), beta);
    conv2d_backward_filter_reference(s, x.data(), dy.data(), dw.data(), bias ? db.data() : nullptr, beta);
    std::vector<float> dxf = to_float(dx0), dwf = to_float(dw0), dbf = to_float(db0);
    if (beta == 0.0) std::fill(dxf.begin(), dxf.end(), std::nanf(""));  // beta = 0 must not read dx
    conv2d_backward_data(s, dyf.data(), wf.data(), 0, dxf.data(), float(beta));
    conv2d_backward_filter(s, xf.data(), dyf.data(), dwf.data(), bias ? dbf.data() : nullptr, float(beta));
    CHECK(relative_error(dxf, dx) <= tol);
    CHECK(relative_error(dwf, dw) <= tol);
    if (bias) CHECK(relative_error(dbf, db) <= tol);
  }
}

const Conv2dShape kConvShapes[] = {
    // n, c_in, h, w, c_out, kh, kw, stride, pad
    {2, 3, 8, 8, 16, 3, 3, 1, 1},     // CIFAR stem
    {2, 16, 8, 8, 16, 3, 3, 1, 1},    // Winograd-eligible
    {3, 32, 6, 10, 48, 3, 3, 1, 1},   // Winograd, non-square
    {2, 16, 9, 9, 32, 3, 3, 2, 1},    // downsampling 3x3
    {2, 16, 8, 8, 32, 1, 1, 2, 0},    // projection shortcut
    {2, 8, 7, 5, 12, 1, 1, 1, 0},     // bottleneck 1x1
    {1, 3, 15, 15, 8, 7, 7, 2, 3},    // ImageNet stem
    {2, 5, 7, 6, 6, 5, 5, 1, 2},      // odd channels, 5x5
    {2, 4, 6, 6, 4, 3, 3, 1, 0},      // no padding
    {1, 16, 4, 4, 16, 3, 3, 3, 1},    // stride larger than padding
    {16, 4, 8, 8, 8, 1, 1, 2, 0},     // narrow projection shortcut: fewer channels than a SIMD block
    {2, 4, 5, 5, 6, 1, 1, 2, 1},      // padded strided 1x1
    {2, 16, 4, 4, 256, 3, 3, 1, 1},   // deep 4x4 layer: im2col + sgemm in all three passes on AVX2
    {2, 32, 8, 8, 128, 3, 3, 2, 1},   // downsampling to 128: im2col + sgemm for the filter gradient on AVX2
};

// Sets the calling thread's convolution kernels for a scope, and restores the default however it ends.
struct KernelsForScope {
  explicit KernelsForScope(ConvKernels k) { conv2d_set_kernels(k); }
  ~KernelsForScope() { conv2d_set_kernels(ConvKernels::fastest); }
};

}  // namespace

TEST_CASE("conv2d float kernels match the double reference") {
  // Tolerance 2e-5 relative to the largest output: the direct kernels err by ~5e-7 on these shapes, Winograd
  // F(4x4, 3x3) by ~1e-6 (its transforms about double the rounding).
  uint32_t seed = 10;
  for (const Conv2dShape& s : kConvShapes)
    for (const bool bias : {false, true}) compare_conv(s, bias, 2e-5, seed += 10);
  const KernelsForScope direct(ConvKernels::direct);
  compare_conv(kConvShapes[1], true, 1e-5, 500);
  compare_conv(kConvShapes[2], false, 1e-5, 510);
}

TEST_CASE("conv2d as im2col + sgemm matches the double reference on every shape") {
  // The kernel the AVX2 build picks for deep 3x3 layers, forced here for every shape (stem, 1x1, 5x5, 7x7,
  // padding, strides, odd channel counts) on any machine.
  const KernelsForScope gemm(ConvKernels::gemm);
  uint32_t seed = 600;
  for (const Conv2dShape& s : kConvShapes)
    for (const bool bias : {false, true}) compare_conv(s, bias, 1e-5, seed += 10);
  // 720 K column entries per image: two chunks of images (two, then one), the filter gradient summed over both.
  compare_conv({3, 32, 50, 50, 8, 3, 3, 1, 1}, true, 1e-5, 700);
}

TEST_CASE("conv2d as Winograd F(4x4, 3x3) matches the double reference") {
  // Forced for every 3x3 stride-1 shape it takes (channels in multiples of 8, padding 0 to 2), on any machine,
  // in all three passes: forward and data gradient a block of tiles per thread up to 512 channels in and out
  // together, phases shared among the threads above. Tolerance 2e-5: the transforms about double the direct
  // form's rounding error.
  const KernelsForScope winograd(ConvKernels::winograd);
  uint32_t seed = 800;
  for (const Conv2dShape& s : kConvShapes)
    for (const bool bias : {false, true}) compare_conv(s, bias, 2e-5, seed += 10);
  const Conv2dShape shapes[] = {
      // n, c_in, h, w, c_out, kh, kw, stride, pad
      {2, 8, 7, 5, 16, 3, 3, 1, 1},     // outputs not a multiple of the 4x4 tile: cropped edge tiles
      {2, 16, 9, 6, 8, 3, 3, 1, 0},     // no padding (the data gradient pads by 2)
      {1, 8, 5, 5, 8, 3, 3, 1, 2},      // padding 2 (the data gradient has none)
      {2, 8, 1, 1, 8, 3, 3, 1, 1},      // one pixel
      {6, 8, 100, 100, 8, 3, 3, 1, 1},  // 625 tiles an image: the filter gradient in two chunks of images
      {4, 8, 24, 24, 512, 3, 3, 1, 1},  // 520 channels in and out: every pass shares its phases, in two chunks
  };
  for (const Conv2dShape& s : shapes)
    for (const bool bias : {false, true}) compare_conv(s, bias, 2e-5, seed += 10);
}

TEST_CASE("a strided 1x1 filter gradient is the same on every call") {
  // oneDNN's AVX2 kernel for this shape (4 input channels, under its 8-channel block, stride 2) gave a different,
  // wrong gradient on most calls on two threads; conv2d_backward_filter gathers the pixels itself instead.
  const Conv2dShape s{16, 4, 8, 8, 8, 1, 1, 2, 0};
  const auto x = to_float(random_values(input_count(s), 7)), dy = to_float(random_values(output_count(s), 8));
  std::vector<float> first(weight_count(s)), again(weight_count(s));
  conv2d_backward_filter(s, x.data(), dy.data(), first.data(), nullptr, 0.f);
  int differ = 0;
  for (int call = 0; call < 50; ++call) {
    conv2d_backward_filter(s, x.data(), dy.data(), again.data(), nullptr, 0.f);
    differ += again != first;
  }
  CHECK(differ == 0);
}

TEST_CASE("conv2d keeps a reordered weight per version and re-reads it when the version changes") {
  // Under each kernel family's own weight copy: oneDNN's reorder, OHWI for im2col + sgemm, Winograd's transform.
  for (const ConvKernels kernels : {ConvKernels::fastest, ConvKernels::gemm, ConvKernels::winograd}) {
    CAPTURE(int(kernels));
    const KernelsForScope scope(kernels);
    const Conv2dShape s{2, 16, 6, 6, 32, 3, 3, 1, 1};
    const auto x = random_values(input_count(s), 1), w1 = random_values(weight_count(s), 2);
    const auto w2 = random_values(weight_count(s), 3);
    const auto xf = to_float(x);
    std::vector<float> wf = to_float(w1), yf(output_count(s));
    std::vector<double> y(output_count(s));
    conv2d_forward(s, xf.data(), wf.data(), 7, nullptr, yf.data());
    conv2d_forward_reference(s, x.data(), w1.data(), nullptr, y.data());
    CHECK(relative_error(yf, y) <= 2e-5);
    wf = to_float(w2);  // same address (same size), new values, new version
    conv2d_forward(s, xf.data(), wf.data(), 8, nullptr, yf.data());
    conv2d_forward_reference(s, x.data(), w2.data(), nullptr, y.data());
    CHECK(relative_error(yf, y) <= 2e-5);
    wf = to_float(w1);  // same version, new values: the sampled values give the stale copy away
    conv2d_forward(s, xf.data(), wf.data(), 8, nullptr, yf.data());
    conv2d_forward_reference(s, x.data(), w1.data(), nullptr, y.data());
    CHECK(relative_error(yf, y) <= 2e-5);
    wf = to_float(w2);  // version 0: always re-read
    conv2d_forward(s, xf.data(), wf.data(), 0, nullptr, yf.data());
    conv2d_forward_reference(s, x.data(), w2.data(), nullptr, y.data());
    CHECK(relative_error(yf, y) <= 2e-5);
  }
}

TEST_CASE("batchnorm2d float kernels match the double reference") {
  const NhwcShape s{3, 5, 4, 24};
  const size_t n = size_t(s.rows()) * s.c, c = size_t(s.c);
  const auto x = random_values(n, 21, -1.0, 3.0), res = random_values(n, 22), dy = random_values(n, 23);
  const auto gamma = random_values(c, 24, 0.5, 1.5), beta = random_values(c, 25);
  const auto rm0 = random_values(c, 26), rv0 = random_values(c, 27, 0.5, 2.0);
  const auto acc = random_values(n, 28), acc_c = random_values(c, 29);
  const auto xf = to_float(x), resf = to_float(res), dyf = to_float(dy), gf = to_float(gamma), bf = to_float(beta);
  const double tol = 1e-5;

  for (const bool relu : {false, true})
    for (const bool residual : {false, true})
      for (const bool affine : {false, true})
        for (const double gb : {0.0, 1.0}) {
          CAPTURE(relu);
          CAPTURE(residual);
          CAPTURE(affine);
          CAPTURE(gb);
          const double* g = affine ? gamma.data() : nullptr;
          const double* b = affine ? beta.data() : nullptr;
          const float* g_f = affine ? gf.data() : nullptr;
          const float* b_f = affine ? bf.data() : nullptr;
          const double* r = residual ? res.data() : nullptr;
          const float* r_f = residual ? resf.data() : nullptr;

          // Training forward and backward.
          std::vector<double> y(n), mean(c), invstd(c), rm = rm0, rv = rv0;
          batchnorm2d_forward_train_reference(s, x.data(), g, b, r, relu, 1e-5, 0.1, y.data(), mean.data(),
                                              invstd.data(), rm.data(), rv.data());
          std::vector<float> yf(n), meanf(c), invstdf(c), rmf = to_float(rm0), rvf = to_float(rv0);
          batchnorm2d_forward_train(s, xf.data(), g_f, b_f, r_f, relu, 1e-5f, 0.1f, yf.data(), meanf.data(),
                                    invstdf.data(), rmf.data(), rvf.data());
          CHECK(relative_error(yf, y) <= tol);
          CHECK(relative_error(meanf, mean) <= tol);
          CHECK(relative_error(invstdf, invstd) <= tol);
          CHECK(relative_error(rmf, rm) <= tol);
          CHECK(relative_error(rvf, rv) <= tol);

          std::vector<double> dx = acc, dg = acc_c, db = acc_c, dr = acc;
          batchnorm2d_backward_train_reference(s, x.data(), relu ? y.data() : nullptr, dy.data(), g, mean.data(),
                                               invstd.data(), dx.data(), dg.data(), db.data(),
                                               residual ? dr.data() : nullptr, gb);
          std::vector<float> dxf = to_float(acc), dgf = to_float(acc_c), dbf = to_float(acc_c), drf = to_float(acc);
          batchnorm2d_backward_train(s, xf.data(), relu ? yf.data() : nullptr, dyf.data(), g_f, meanf.data(),
                                     invstdf.data(), dxf.data(), dgf.data(), dbf.data(),
                                     residual ? drf.data() : nullptr, float(gb));
          CHECK(relative_error(dxf, dx) <= tol);
          CHECK(relative_error(dgf, dg) <= tol);
          CHECK(relative_error(dbf, db) <= tol);
          if (residual) CHECK(relative_error(drf, dr) <= tol);

          // Evaluation forward and backward with the running statistics.
          batchnorm2d_forward_eval_reference(s, x.data(), g, b, r, relu, 1e-5, rm0.data(), rv0.data(), y.data());
          const auto rm0f = to_float(rm0), rv0f = to_float(rv0);
          batchnorm2d_forward_eval(s, xf.data(), g_f, b_f, r_f, relu, 1e-5f, rm0f.data(), rv0f.data(), yf.data());
          CHECK(relative_error(yf, y) <= tol);
          dx = acc, dg = acc_c, db = acc_c, dr = acc;
          batchnorm2d_backward_eval_reference(s, x.data(), relu ? y.data() : nullptr, dy.data(), g, rm0.data(),
                                              rv0.data(), 1e-5, dx.data(), dg.data(), db.data(),
                                              residual ? dr.data() : nullptr, gb);
          dxf = to_float(acc), dgf = to_float(acc_c), dbf = to_float(acc_c), drf = to_float(acc);
          batchnorm2d_backward_eval(s, xf.data(), relu ? yf.data() : nullptr, dyf.data(), g_f, rm0f.data(),
                                    rv0f.data(), 1e-5f, dxf.data(), dgf.data(), dbf.data(),
                                    residual ? drf.data() : nullptr, float(gb));
          CHECK(relative_error(dxf, dx) <= tol);
          CHECK(relative_error(dgf, dg) <= tol);
          CHECK(relative_error(dbf, db) <= tol);
          if (residual) CHECK(relative_error(drf, dr) <= tol);
        }
}

TEST_CASE("batchnorm2d statistics survive a large mean") {
  // One-pass sums would cancel here; the shifted sums keep the variance.
  const NhwcShape s{4, 8, 8, 16};
  const size_t n = size_t(s.rows()) * s.c, c = size_t(s.c);
  const auto x = random_values(n, 31, 999.0, 1001.0);
  std::vector<double> y(n), mean(c), invstd(c);
  batchnorm2d_forward_train_reference(s, x.data(), nullptr, nullptr, nullptr, false, 1e-5, 0.1, y.data(),
                                      mean.data(), invstd.data(), nullptr, nullptr);
  const auto xf = to_float(x);
  std::vector<float> yf(n), meanf(c), invstdf(c);
  batchnorm2d_forward_train(s, xf.data(), nullptr, nullptr, nullptr, false, 1e-5f, 0.1f, yf.data(), meanf.data(),
                            invstdf.data(), nullptr, nullptr);
  CHECK(relative_error(invstdf, invstd) <= 1e-3);
  CHECK(relative_error(yf, y) <= 1e-3);  // x itself carries float rounding of ~6e-5 here
}

TEST_CASE("pooling float kernels match double") {
  const Pool2dShape shapes[] = {{2, 8, 9, 9, 3, 2, 1}, {2, 5, 8, 6, 2, 2, 0}, {1, 16, 7, 7, 3, 1, 1}};
  for (const Pool2dShape& s : shapes) {
    const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.h_out() * s.w_out() * s.c;
    const auto x = random_values(nx, 41), dy = random_values(ny, 42), acc = random_values(nx, 43);
    const auto xf = to_float(x), dyf = to_float(dy);
    std::vector<double> y(ny), dx = acc;
    std::vector<float> yf(ny), dxf = to_float(acc);
    std::vector<int32_t> idx(ny), idxf(ny);
    maxpool2d_forward(s, x.data(), y.data(), idx.data());
    maxpool2d_forward(s, xf.data(), yf.data(), idxf.data());
    CHECK(relative_error(yf, y) <= 1e-7);
    CHECK(idx == idxf);
    for (const double beta : {0.0, 1.0}) {
      dx = acc, dxf = to_float(acc);
      maxpool2d_backward(s, dy.data(), idx.data(), dx.data(), beta);
      maxpool2d_backward(s, dyf.data(), idxf.data(), dxf.data(), float(beta));
      CHECK(relative_error(dxf, dx) <= 1e-6);
    }
  }
  // Ties go to the first maximum in scan order, as in PyTorch.
  const Pool2dShape s{1, 1, 2, 2, 2, 2, 0};
  const float x[4] = {1.f, 3.f, 3.f, 0.f};
  float y = 0;
  int32_t idx = -1;
  maxpool2d_forward(s, x, &y, &idx);
  CHECK(y == 3.f);
  CHECK(idx == 1);

  const NhwcShape g{3, 4, 5, 16};
  const size_t nx = size_t(g.rows()) * g.c, ny = size_t(g.n) * g.c;
  const auto gx = random_values(nx, 44), gdy = random_values(ny, 45), gacc = random_values(nx, 46);
  std::vector<double> gy(ny), gdx = gacc;
  std::vector<float> gyf(ny), gdxf = to_float(gacc);
  const auto gxf = to_float(gx), gdyf = to_float(gdy);
  avgpool2d_global_forward(g, gx.data(), gy.data());
  avgpool2d_global_forward(g, gxf.data(), gyf.data());
  CHECK(relative_error(gyf, gy) <= 1e-6);
  avgpool2d_global_backward(g, gdy.data(), gdx.data(), 1.0);
  avgpool2d_global_backward(g, gdyf.data(), gdxf.data(), 1.f);
  CHECK(relative_error(gdxf, gdx) <= 1e-6);
}

// Each output of the backward kernels is optional: asking for dbeta alone (a frozen gamma) still fills it, and
// leaves the outputs not asked for alone.
TEST_CASE("batchnorm2d backward kernels fill dbeta when dgamma is not asked for") {
  const NhwcShape s{2, 3, 3, 4};
  const size_t n = size_t(s.rows()) * s.c, c = size_t(s.c);
  const auto x = random_values(n, 71), dy = random_values(n, 72), gamma = random_values(c, 73, 0.5, 2.0);
  const auto rm = random_values(c, 74), rv = random_values(c, 75, 0.5, 2.0);
  const auto xf = to_float(x), dyf = to_float(dy), gf = to_float(gamma), rmf = to_float(rm), rvf = to_float(rv);
  std::vector<double> sums(c, 0.0);
  for (size_t i = 0; i < n; ++i) sums[i % c] += dy[i];
  std::vector<float> mean(c), invstd(c), y(n);
  batchnorm2d_forward_train(s, xf.data(), gf.data(), nullptr, nullptr, false, 1e-5f, 0.1f, y.data(), mean.data(),
                            invstd.data(), nullptr, nullptr);
  std::vector<float> dbeta(c, -1.f);
  batchnorm2d_backward_train(s, xf.data(), nullptr, dyf.data(), gf.data(), mean.data(), invstd.data(), nullptr,
                             nullptr, dbeta.data(), nullptr, 0.f);
  CHECK(relative_error(dbeta, sums) <= 1e-6);
  dbeta.assign(c, -1.f);
  batchnorm2d_backward_eval(s, xf.data(), nullptr, dyf.data(), gf.data(), rmf.data(), rvf.data(), 1e-5f, nullptr,
                            nullptr, dbeta.data(), nullptr, 0.f);
  CHECK(relative_error(dbeta, sums) <= 1e-6);
  // dresidual alone (the block's shortcut), in evaluation: the gradient reaching the output, as it is.
  std::vector<float> dres(n, -1.f);
  batchnorm2d_backward_eval(s, xf.data(), nullptr, dyf.data(), gf.data(), rmf.data(), rvf.data(), 1e-5f, nullptr,
                            nullptr, nullptr, dres.data(), 0.f);
  CHECK(relative_error(dres, dy) <= 1e-7);
  dres.assign(n, -1.f);
  batchnorm2d_backward_train(s, xf.data(), nullptr, dyf.data(), gf.data(), mean.data(), invstd.data(), nullptr,
                             nullptr, nullptr, dres.data(), 0.f);
  CHECK(relative_error(dres, dy) <= 1e-7);
}

// The backward kernels write dx = beta dx + gradient: beta 0 overwrites (even a NaN), other betas scale what is
// there. Float and double share the template, so the oracle here is the beta = 0 result, not the other dtype.
TEST_CASE("pooling backward kernels scale what dx holds by beta, and beta 0 overwrites it") {
  const Pool2dShape s{2, 3, 5, 5, 3, 2, 1};
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.h_out() * s.w_out() * s.c;
  const auto x = random_values(nx, 61), dy = random_values(ny, 62), acc = random_values(nx, 63);
  std::vector<double> y(ny);
  std::vector<int32_t> idx(ny);
  maxpool2d_forward(s, x.data(), y.data(), idx.data());
  std::vector<double> fresh(nx, std::nan(""));
  maxpool2d_backward(s, dy.data(), idx.data(), fresh.data(), 0.0);
  for (const double v : fresh) REQUIRE(std::isfinite(v));
  for (const double beta : {0.5, 1.0, -2.0}) {
    CAPTURE(beta);
    std::vector<double> dx = acc;
    maxpool2d_backward(s, dy.data(), idx.data(), dx.data(), beta);
    for (size_t i = 0; i < nx; ++i) CHECK(dx[i] == doctest::Approx(beta * acc[i] + fresh[i]));
  }

  const NhwcShape g{2, 3, 4, 5};
  const size_t gx = size_t(g.rows()) * g.c, gy = size_t(g.n) * g.c;
  const auto gdy = random_values(gy, 64), gacc = random_values(gx, 65);
  std::vector<double> gfresh(gx, std::nan(""));
  avgpool2d_global_backward(g, gdy.data(), gfresh.data(), 0.0);
  for (size_t i = 0; i < gx; ++i) REQUIRE(gfresh[i] == doctest::Approx(gdy[(i / (12 * 5)) * 5 + i % 5] / 12.0));
  for (const double beta : {0.5, 1.0, -2.0}) {
    CAPTURE(beta);
    std::vector<double> dx = gacc;
    avgpool2d_global_backward(g, gdy.data(), dx.data(), beta);
    for (size_t i = 0; i < gx; ++i) CHECK(dx[i] == doctest::Approx(beta * gacc[i] + gfresh[i]));
  }
}

// Without an argmax buffer (a forward that will not be differentiated) max pooling gives the same values,
// a NaN in a window included (it propagates, as in PyTorch).
TEST_CASE("max pooling without an argmax buffer gives the same values, NaN included") {
  const Pool2dShape s{1, 2, 4, 4, 2, 2, 0};
  auto x = random_values(size_t(s.n) * s.h * s.w * s.c, 66);
  x[2 * 4 * 2 + 1] = std::nan("");  // row 2, column 0, channel 1: the window at output (1, 0)
  const size_t ny = size_t(s.h_out()) * s.w_out() * s.c;
  std::vector<double> with(ny), without(ny);
  std::vector<int32_t> idx(ny);
  maxpool2d_forward(s, x.data(), with.data(), idx.data());
  maxpool2d_forward(s, x.data(), without.data(), static_cast<int32_t*>(nullptr));
  for (size_t i = 0; i < ny; ++i) {
    CAPTURE(i);
    if (i == (1 * 2 + 0) * 2 + 1) {
      CHECK(std::isnan(with[i]));
      CHECK(std::isnan(without[i]));
    } else {
      CHECK(std::isfinite(with[i]));
      CHECK(without[i] == with[i]);
    }
  }
}

// Padding beyond half the window would make a window of padding only: refused, as PyTorch does.
TEST_CASE("max pooling refuses padding over half the kernel") {
  const Pool2dShape s{1, 1, 4, 4, 3, 1, 2};
  std::vector<double> x(16, 0.0), y(size_t(s.h_out()) * s.w_out());
  std::vector<int32_t> idx(y.size());
  CHECK_THROWS_WITH(maxpool2d_forward(s, x.data(), y.data(), idx.data()),
                    "maxpool2d: invalid shape (n 1, c 1, h 4, w 4, kernel 3, stride 1, pad 2; pad must be at most "
                    "kernel / 2)");
}

// ---------------------------------------------------------------------------------------------------------------
// Gradient checks of the double references: loss = sum(y * r) for a fixed random r, so dL/dy = r.

TEST_CASE("conv2d reference gradients match central differences") {
  const Conv2dShape shapes[] = {{2, 2, 5, 4, 3, 3, 3, 2, 1}, {1, 3, 4, 4, 2, 3, 3, 1, 1}, {2, 2, 3, 3, 2, 1, 1, 1, 0}};
  for (const Conv2dShape& s : shapes) {
    CAPTURE(describe(s));
    auto x = random_values(input_count(s), 51), w = random_values(weight_count(s), 52);
    auto b = random_values(size_t(s.c_out), 53);
    const auto r = random_values(output_count(s), 54);
    std::vector<double> y(output_count(s));
    auto loss = [&] {
      conv2d_forward_reference(s, x.data(), w.data(), b.data(), y.data());
      return dot(y, r);
    };
    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    conv2d_backward_data_reference(s, r.data(), w.data(), dx.data(), 0.0);
    conv2d_backward_filter_reference(s, x.data(), r.data(), dw.data(), db.data(), 0.0);
    check_gradient("conv input", x, dx, loss);
    check_gradient("conv weight", w, dw, loss);
    check_gradient("conv bias", b, db, loss);
  }
}

TEST_CASE("batchnorm2d reference gradients match central differences") {
  const NhwcShape s{2, 3, 2, 3};
  const size_t n = size_t(s.rows()) * s.c, c = size_t(s.c);
  auto x = random_values(n, 61, -1.0, 2.0), gamma = random_values(c, 62, 0.5, 1.5);
  auto beta = random_values(c, 63), res = random_values(n, 64);
  const auto r = random_values(n, 65), rm = random_values(c, 66), rv = random_values(c, 67, 0.5, 2.0);
  for (const bool fused : {false, true}) {  // fused: + residual, then ReLU
    CAPTURE(fused);
    std::vector<double> y(n), mean(c), invstd(c);
    auto train_loss = [&] {
      batchnorm2d_forward_train_reference(s, x.data(), gamma.data(), beta.data(), fused ? res.data() : nullptr,
                                          fused, 1e-5, 0.1, y.data(), mean.data(), invstd.data(), nullptr, nullptr);
      return dot(y, r);
    };
    train_loss();
    if (fused) {  // stay away from the ReLU's kink
      std::vector<double> pre(n);
      batchnorm2d_forward_train_reference(s, x.data(), gamma.data(), beta.data(), res.data(), false, 1e-5, 0.1,
                                          pre.data(), mean.data(), invstd.data(), nullptr, nullptr);
      for (double v : pre) REQUIRE(std::abs(v) > 1e-3);
      train_loss();
    }
    std::vector<double> dx(n), dg(c), db(c), dr(n);
    batchnorm2d_backward_train_reference(s, x.data(), fused ? y.data() : nullptr, r.data(), gamma.data(),
                                         mean.data(), invstd.data(), dx.data(), dg.data(), db.data(),
                                         fused ? dr.data() : nullptr, 0.0);
    check_gradient("bn train input", x, dx, train_loss);
    check_gradient("bn train gamma", gamma, dg, train_loss);
    check_gradient("bn train beta", beta, db, train_loss);
    if (fused) check_gradient("bn train residual", res, dr, train_loss);

    auto eval_loss = [&] {
      batchnorm2d_forward_eval_reference(s, x.data(), gamma.data(), beta.data(), fused ? res.data() : nullptr,
                                         fused, 1e-5, rm.data(), rv.data(), y.data());
      return dot(y, r);
    };
    if (fused) {
      std::vector<double> pre(n);
      batchnorm2d_forward_eval_reference(s, x.data(), gamma.data(), beta.data(), res.data(), false, 1e-5,
                                         rm.data(), rv.data(), pre.data());
      for (double v : pre) REQUIRE(std::abs(v) > 1e-3);
    }
    eval_loss();
    batchnorm2d_backward_eval_reference(s, x.data(), fused ? y.data() : nullptr, r.data(), gamma.data(), rm.data(),
                                        rv.data(), 1e-5, dx.data(), dg.data(), db.data(),
                                        fused ? dr.data() : nullptr, 0.0);
    check_gradient("bn eval input", x, dx, eval_loss);
    check_gradient("bn eval gamma", gamma, dg, eval_loss);
    check_gradient("bn eval beta", beta, db, eval_loss);
    if (fused) check_gradient("bn eval residual", res, dr, eval_loss);
  }
}

TEST_CASE("pooling gradients match central differences") {
  // Distinct random values: no ties, so the max is differentiable at x.
  const Pool2dShape s{2, 3, 5, 5, 3, 2, 1};
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, ny = size_t(s.n) * s.h_out() * s.w_out() * s.c;
  auto x = random_values(nx, 71);
  const auto r = random_values(ny, 72);
  std::vector<double> y(ny), dx(nx);
  std::vector<int32_t> idx(ny);
  maxpool2d_forward(s, x.data(), y.data(), idx.data());
  maxpool2d_backward(s, r.data(), idx.data(), dx.data(), 0.0);
  check_gradient("maxpool input", x, dx, [&] {
    maxpool2d_forward<double>(s, x.data(), y.data(), nullptr);
    return dot(y, r);
  });

  const NhwcShape g{2, 3, 4, 5};
  auto gx = random_values(size_t(g.rows()) * g.c, 73);
  const auto gr = random_values(size_t(g.n) * g.c, 74);
  std::vector<double> gy(gr.size()), gdx(gx.size());
  avgpool2d_global_backward(g, gr.data(), gdx.data(), 0.0);
  check_gradient("avgpool input", gx, gdx, [&] {
    avgpool2d_global_forward(g, gx.data(), gy.data());
    return dot(gy, gr);
  });
}
