// Each augmentation against values worked out by hand on tiny images (the arithmetic is in the comments),
// the crop sampler's ranges, rounding and fallback, and the determinism of a whole view.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <vector>

#include "data/transforms.h"

namespace {

using namespace intl;

ImageF make_image(int c, int h, int w, std::vector<float> values) {
  ImageF img;
  img.reshape(c, h, w);
  REQUIRE(values.size() == img.size());
  img.data = std::move(values);
  return img;
}

ImageF rgb_pixels(std::vector<std::array<float, 3>> px) {  // a 1 x n RGB image
  ImageF img;
  img.reshape(3, 1, int(px.size()));
  for (size_t p = 0; p < px.size(); ++p)
    for (int c = 0; c < 3; ++c) img.at(c, 0, int(p)) = px[p][c];
  return img;
}

std::vector<float> resize_row(const std::vector<float>& row, int out, Resample mode) {
  ImageF src = make_image(1, 1, int(row.size()), row), dst;
  ResizeScratch scratch;
  resize_crop(src, CropBox{0, 0, 1, int(row.size())}, 1, out, mode, dst, scratch);
  return dst.data;
}

}  // namespace

TEST_CASE("resized crop: box inside the image, area and ratio in range, seeded") {
  RandomStream rng{1, kStreamAugment, 0};
  int min_area = 1 << 30, max_area = 0;
  for (int i = 0; i < 4000; ++i) {
    const CropBox b = sample_resized_crop(32, 32, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, rng);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= 32);
    REQUIRE(b.left + b.width <= 32);
    const double ratio = double(b.width) / b.height;
    CHECK(ratio > 0.6);  // 3/4 and 4/3 widened by rounding to whole pixels
    CHECK(ratio < 1.7);
    min_area = std::min(min_area, b.width * b.height);
    max_area = std::max(max_area, b.width * b.height);
  }
  CHECK(min_area >= 72);   // 0.08 * 1024 = 81.9, less a rounding margin
  CHECK(min_area < 100);   // the low end is reached
  CHECK(max_area == 1024);
  RandomStream a{5, kStreamAugment, 77}, b{5, kStreamAugment, 77};
  const CropBox x = sample_resized_crop(32, 32, 0.08, 1.0, 0.75, 4.0 / 3.0, a);
  const CropBox y = sample_resized_crop(32, 32, 0.08, 1.0, 0.75, 4.0 / 3.0, b);
  CHECK((x.top == y.top && x.left == y.left && x.height == y.height && x.width == y.width));
}

TEST_CASE("resized crop: fixed size, every position reachable, Python rounding") {
  RandomStream rng{2, kStreamAugment, 0};
  std::set<int> tops, lefts;
  for (int i = 0; i < 2000; ++i) {
    const CropBox b = sample_resized_crop(32, 32, 0.25, 0.25, 1.0, 1.0, rng);  // area 256: 16 x 16
    CHECK(b.height == 16);
    CHECK(b.width == 16);
    tops.insert(b.top);
    lefts.insert(b.left);
  }
  CHECK(tops.size() == 17);  // 0..16
  CHECK(lefts.size() == 17);
  // Area 110.25 = 441/4096 of 1024: sqrt gives 10.5 exactly, and round(10.5) is 10 (half to even).
  const CropBox b = sample_resized_crop(32, 32, 441.0 / 4096, 441.0 / 4096, 1.0, 1.0, rng);
  CHECK(b.width == 10);
  CHECK(b.height == 10);
}

TEST_CASE("resized crop: central fallback when no attempt fits") {
  RandomStream rng{3, kStreamAugment, 0};
  CropBox b = sample_resized_crop(32, 32, 2.0, 3.0, 0.75, 4.0 / 3.0, rng);  // ratio 1 in range: whole image
  CHECK((b.top == 0 && b.left == 0 && b.height == 32 && b.width == 32));
  b = sample_resized_crop(10, 40, 2.0, 3.0, 0.75, 4.0 / 3.0, rng);  // too wide: h 10, w round(13.33) = 13
  CHECK((b.top == 0 && b.left == 13 && b.height == 10 && b.width == 13));
  b = sample_resized_crop(40, 10, 2.0, 3.0, 0.75, 4.0 / 3.0, rng);  // too tall: w 10, h round(10 / 0.75) = 13
  CHECK((b.top == 13 && b.left == 0 && b.height == 13 && b.width == 10));
}

TEST_CASE("bicubic legacy (a = -0.75, clamped taps): 2 -> 4 by hand") {
  // Output i samples x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25. At x = -0.25 the taps -2..1 clamp to
  // 0, 0, 0, 1 and the last weight is k(1.25) = -0.75 (1.953125 - 5 * 1.5625 + 8 * 1.25 - 4) = -0.10546875:
  // 0.2 + 0.4 * -0.10546875 = 0.1578125. At x = 0.25: k(1.25), k(0.25) = 0.87890625, k(0.75) = 0.26171875,
  // k(1.75) = -0.03515625 on 0.2, 0.2, 0.6, 0.6: 0.2 * 0.7734375 + 0.6 * 0.2265625 = 0.290625. The other
  // two mirror these: 0.8 - v.
  const auto out = resize_row({0.2f, 0.6f}, 4, Resample::bicubic_legacy);
  CHECK(out[0] == doctest::Approx(0.1578125).epsilon(1e-6));
  CHECK(out[1] == doctest::Approx(0.290625).epsilon(1e-6));
  CHECK(out[2] == doctest::Approx(0.509375).epsilon(1e-6));
  CHECK(out[3] == doctest::Approx(0.6421875).epsilon(1e-6));
}

TEST_CASE("bicubic antialias (PIL, a = -0.5): 2 -> 4 and 4 -> 2 by hand") {
  // Up: output 0 has centre 0.25; taps 0, 1 with k(0.25) = 0.8671875, k(1.25) = -0.0703125, normalised by
  // their sum 0.796875: 0.2 + 0.4 * (-0.0703125 / 0.796875) = 0.16470588. Output 1 (centre 0.75): k(0.25),
  // k(0.75) = 0.2265625, sum 1.09375: 0.2 + 0.4 * 0.2265625 / 1.09375 = 0.28285714.
  auto out = resize_row({0.2f, 0.6f}, 4, Resample::bicubic_antialias);
  CHECK(out[0] == doctest::Approx(0.16470588).epsilon(1e-6));
  CHECK(out[1] == doctest::Approx(0.28285714).epsilon(1e-6));
  CHECK(out[2] == doctest::Approx(0.51714286).epsilon(1e-6));
  CHECK(out[3] == doctest::Approx(0.63529412).epsilon(1e-6));
  // Down by 2: the kernel stretches to support 4; output 0 (centre 1) weighs inputs 0..3 by k(-0.25),
  // k(0.25), k(0.75), k(1.25) = 0.8671875, 0.8671875, 0.2265625, -0.0703125 (sum 1.890625):
  // (0.08671875 + 0.43359375 + 0.20390625 - 0.02109375) / 1.890625 = 0.703125 / 1.890625; output 1 mirrors the
  // weights: (-0.00703125 + 0.11328125 + 0.78046875 + 0.26015625) / 1.890625 = 1.146875 / 1.890625.
  out = resize_row({0.1f, 0.5f, 0.9f, 0.3f}, 2, Resample::bicubic_antialias);
  CHECK(out[0] == doctest::Approx(0.703125 / 1.890625).epsilon(1e-6));
  CHECK(out[1] == doctest::Approx(1.146875 / 1.890625).epsilon(1e-6));
}

TEST_CASE("resize: same size is an exact copy of the crop; overshoot is clamped") {
  ImageF src = make_image(1, 3, 3, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f}), dst;
  ResizeScratch scratch;
  for (Resample mode : {Resample::bicubic_antialias, Resample::bicubic_legacy}) {
    resize_crop(src, CropBox{1, 1, 2, 2}, 2, 2, mode, dst, scratch);
    CHECK(dst.data == std::vector<float>{0.5f, 0.6f, 0.8f, 0.9f});
  }
  const auto out = resize_row({0.0f, 1.0f}, 4, Resample::bicubic_legacy);  // -0.105 and 1.105 before clamping
  CHECK(out[0] == 0.0f);
  CHECK(out[3] == 1.0f);
}

// The horizontal pass runs on the crop transposed in 8 x 8 blocks: crops and outputs whose sides are not
// multiples of 8, at an offset in a wider image, against the two passes written directly from the taps.
TEST_CASE("resize_crop equals its two passes computed directly, for any crop and output size") {
  ImageF src;
  src.reshape(3, 37, 53);
  for (size_t i = 0; i < src.data.size(); ++i) src.data[i] = float((i * 7919) % 1000) / 999.0f;
  struct Case {
    CropBox box;
    int out_h, out_w;
  };
  for (const Case& c : {Case{{0, 0, 37, 53}, 16, 16}, Case{{3, 5, 29, 17}, 13, 40}, Case{{1, 2, 8, 9}, 24, 7},
                        Case{{10, 11, 5, 3}, 9, 11}, Case{{0, 4, 33, 48}, 32, 8}}) {
    CAPTURE(c.box.height);
    CAPTURE(c.box.width);
    for (Resample mode : {Resample::bicubic_antialias, Resample::bicubic_legacy, Resample::bilinear_antialias}) {
      ImageF dst;
      ResizeScratch scratch;
      resize_crop(src, c.box, c.out_h, c.out_w, mode, dst, scratch);
      ResizeTaps tx, ty;
      resize_taps(c.box.width, c.out_w, mode, tx);
      resize_taps(c.box.height, c.out_h, mode, ty);
      double worst = 0;
      for (int ch = 0; ch < 3; ++ch) {
        std::vector<double> rows(size_t(c.box.height) * c.out_w);  // horizontal pass first, as PIL
        for (int y = 0; y < c.box.height; ++y)
          for (int x = 0; x < c.out_w; ++x)
            for (int k = 0; k < tx.taps; ++k)
              rows[size_t(y) * c.out_w + x] += double(tx.weights[size_t(k) * c.out_w + x]) *
                                                src.at(ch, c.box.top + y, c.box.left + tx.first[x] + k);
        for (int y = 0; y < c.out_h; ++y)
          for (int x = 0; x < c.out_w; ++x) {
            double v = 0;
            for (int k = 0; k < ty.taps; ++k)
              v += double(ty.weights[size_t(k) * c.out_h + y]) * rows[size_t(ty.first[y] + k) * c.out_w + x];
            worst = std::max(worst, std::fabs(std::clamp(v, 0.0, 1.0) - double(dst.at(ch, y, x))));
          }
      }
      CHECK(worst < 2e-6);
    }
  }
}

TEST_CASE("flip, grayscale weights, brightness, contrast, saturation by hand") {
  ImageF img = make_image(1, 2, 3, {1, 2, 3, 4, 5, 6});
  flip_horizontal(img);
  CHECK(img.data == std::vector<float>{3, 2, 1, 6, 5, 4});

  img = rgb_pixels({{1, 0, 0}, {0.5f, 0.5f, 1.0f}});
  to_grayscale(img);
  for (int c = 0; c < 3; ++c) {
    CHECK(img.at(c, 0, 0) == doctest::Approx(0.299));
    CHECK(img.at(c, 0, 1) == doctest::Approx(0.1495 + 0.2935 + 0.114));
  }

  img = rgb_pixels({{0.5f, 0.8f, 0.0f}});
  adjust_brightness(img, 1.5f);  // 0.75, 1.2 clamped to 1, 0
  CHECK(img.data == std::vector<float>{0.75f, 1.0f, 0.0f});

  img = rgb_pixels({{0.2f, 0.2f, 0.2f}, {0.6f, 0.6f, 0.6f}});  // grayscale mean 0.4
  adjust_contrast(img, 0.5f);  // 0.5 v + 0.5 * 0.4
  CHECK(img.at(0, 0, 0) == doctest::Approx(0.3));
  CHECK(img.at(2, 0, 1) == doctest::Approx(0.5));
  img = rgb_pixels({{0.2f, 0.2f, 0.2f}, {0.6f, 0.6f, 0.6f}});
  adjust_contrast(img, 2.0f);  // 2 v - 0.4: -0 clamped, 0.8
  CHECK(img.at(1, 0, 0) == 0.0f);
  CHECK(img.at(1, 0, 1) == doctest::Approx(0.8));

  img = rgb_pixels({{0.5f, 0.3f, 0.1f}});  // gray 0.1495 + 0.1761 + 0.0114 = 0.337
  adjust_saturation(img, 2.0f);           // 2 v - 0.337
  CHECK(img.at(0, 0, 0) == doctest::Approx(0.663));
  CHECK(img.at(1, 0, 0) == doctest::Approx(0.263));
  CHECK(img.at(2, 0, 0) == 0.0f);  // -0.137 clamped
  img = rgb_pixels({{0.5f, 0.3f, 0.1f}});
  adjust_saturation(img, 0.0f);  // grayscale
  for (int c = 0; c < 3; ++c) CHECK(img.at(c, 0, 0) == doctest::Approx(0.337));
}

TEST_CASE("hue: HSV by hand, shifts, wrap-around and round trip") {
  float h, s, v;
  // (0.2, 0.4, 0.8): max 0.8 is blue, range 0.6, s = 0.75; h = (4 + (0.8-0.4)/0.6 - (0.8-0.2)/0.6) / 6 = 11/18.
  rgb_to_hsv(0.2f, 0.4f, 0.8f, h, s, v);
  CHECK(h == doctest::Approx(11.0 / 18.0));
  CHECK(s == doctest::Approx(0.75));
  CHECK(v == doctest::Approx(0.8));
  rgb_to_hsv(0.3f, 0.3f, 0.3f, h, s, v);  // grey: h = s = 0
  CHECK((h == 0.0f && s == 0.0f));

  ImageF img = rgb_pixels({{1, 0, 0}, {1, 0, 0}});
  adjust_hue(img, 1.0f / 3.0f);  // red -> green
  CHECK(img.at(0, 0, 0) == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(img.at(1, 0, 0) == doctest::Approx(1.0));
  img = rgb_pixels({{1, 0, 0}});
  adjust_hue(img, -0.1f);  // h = 0.9: sector 5, f = 0.4 -> (v, p, q) = (1, 0, 0.6)
  CHECK(img.at(0, 0, 0) == doctest::Approx(1.0));
  CHECK(img.at(1, 0, 0) == doctest::Approx(0.0));
  CHECK(img.at(2, 0, 0) == doctest::Approx(0.6).epsilon(1e-5));

  RandomStream rng{4, kStreamAugment, 0};
  for (int i = 0; i < 500; ++i) {
    const float r = float(rng.next_uniform()), g = float(rng.next_uniform()), b = float(rng.next_uniform());
    float r2, g2, b2;
    rgb_to_hsv(r, g, b, h, s, v);
    hsv_to_rgb(h, s, v, r2, g2, b2);
    CHECK(std::fabs(r - r2) + std::fabs(g - g2) + std::fabs(b - b2) < 1e-5f);
    img = rgb_pixels({{r, g, b}});
    adjust_hue(img, 0.3f);
    adjust_hue(img, -0.3f);
    CHECK(std::fabs(img.data[0] - r) + std::fabs(img.data[1] - g) + std::fabs(img.data[2] - b) < 1e-5f);
  }
}

TEST_CASE("solarize: v >= 0.5 inverts, matching PIL's 8-bit threshold 128") {
  ImageF img = make_image(1, 1, 4, {0.49f, 0.5f, 0.75f, 1.0f});
  solarize(img);
  CHECK(img.data == std::vector<float>{0.49f, 0.5f, 0.25f, 0.0f});
  std::vector<float> levels(256);
  for (int q = 0; q < 256; ++q) levels[q] = q / 255.0f;
  img = make_image(1, 1, 256, levels);
  solarize(img);
  for (int q = 0; q < 256; ++q) CHECK(std::lround(img.data[q] * 255.0f) == (q >= 128 ? 255 - q : q));
  // torchvision's solarize inverts from the threshold itself (img >= threshold), whatever the threshold.
  img = make_image(1, 1, 3, {0.2f, 0.25f, 0.3f});
  solarize(img, 0.25f);
  CHECK(img.data == std::vector<float>{0.2f, 0.75f, 0.7f});
}

TEST_CASE("normalize with the CIFAR statistics") {
  ImageF img = rgb_pixels({{0.5f, 0.0f, 1.0f}});
  float out[3];
  normalize(img, kCifar10Normalization, out);
  CHECK(out[0] == doctest::Approx((0.5 - 0.4914) / 0.2470));
  CHECK(out[1] == doctest::Approx(-0.4822 / 0.2435));
  CHECK(out[2] == doctest::Approx((1.0 - 0.4465) / 0.2616));
  normalize(img, kCifar100Normalization, out);
  CHECK(out[0] == doctest::Approx((0.5 - 0.5071) / 0.2673));
  CHECK(out[2] == doctest::Approx((1.0 - 0.4409) / 0.2762));
}

TEST_CASE("normalization constants are SPEC 3.4's, every channel in RGB order") {
  auto same = [](const Normalization& n, std::array<float, 3> mean, std::array<float, 3> std) {
    for (int c = 0; c < 3; ++c) {
      CAPTURE(c);
      CHECK(n.mean[c] == mean[c]);
      CHECK(n.std[c] == std[c]);
    }
  };
  same(kCifar10Normalization, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f});
  same(kCifar100Normalization, {0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f});
  same(kImageNetNormalization, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
}

TEST_CASE("gaussian blur: kernel values, reflect padding, constant images stay constant") {
  float k[3];
  gaussian_kernel(3, 1.0f, k);  // exp(-1/2) = 0.60653, 1, 0.60653 over 2.21306
  CHECK(k[0] == doctest::Approx(0.27406862));
  CHECK(k[1] == doctest::Approx(0.45186276));
  BlurScratch scratch;
  // One row [0, 1, 0]: reflect padding mirrors index -1 to 1 and 3 to 1, so the ends get k0 + k2.
  ImageF img = make_image(1, 1, 3, {0, 1, 0});
  gaussian_blur(img, 3, 1.0f, scratch);
  CHECK(img.data[0] == doctest::Approx(2 * 0.27406862));
  CHECK(img.data[1] == doctest::Approx(0.45186276));
  CHECK(img.data[2] == doctest::Approx(2 * 0.27406862));
  // A delta in a 5 x 5 image spreads as the outer product of the kernel.
  std::vector<float> delta(25, 0.0f);
  delta[12] = 1.0f;
  img = make_image(1, 5, 5, delta);
  gaussian_blur(img, 3, 1.0f, scratch);
  CHECK(img.at(0, 1, 1) == doctest::Approx(k[0] * k[0]));
  CHECK(img.at(0, 2, 1) == doctest::Approx(k[1] * k[0]));
  CHECK(img.at(0, 2, 2) == doctest::Approx(k[1] * k[1]));
  CHECK(img.at(0, 0, 0) == 0.0f);
  img = make_image(3, 8, 8, std::vector<float>(192, 0.3f));  // kernel wider than the image
  gaussian_blur(img, 23, 2.0f, scratch);
  for (float v : img.data) CHECK(v == doctest::Approx(0.3f));
}

TEST_CASE("color jitter draws: factor ranges and every order") {
  RandomStream rng{6, kStreamAugment, 0};
  std::set<std::vector<int>> orders;
  for (int i = 0; i < 2000; ++i) {
    const JitterDraw d = sample_color_jitter(ColorJitter{}, rng);
    orders.insert({d.order[0], d.order[1], d.order[2], d.order[3]});
    CHECK((d.brightness >= 0.6f && d.brightness <= 1.4f));
    CHECK((d.contrast >= 0.6f && d.contrast <= 1.4f));
    CHECK((d.saturation >= 0.8f && d.saturation <= 1.2f));
    CHECK((d.hue >= -0.1f && d.hue <= 0.1f));
  }
  CHECK(orders.size() == 24);
  // Order matters once brightness clamps. Pixel (0.75, 0.25, 0.125), brightness 2 and contrast 0.5.
  // Brightness first: (1 clamped, 0.5, 0.25), gray 0.621, then v / 2 + 0.3105 = (0.8105, 0.5605, 0.4355).
  // Contrast first: gray 0.38525, v / 2 + 0.192625 = (0.567625, 0.317625, 0.255125), then doubled and
  // clamped: (1, 0.63525, 0.51025).
  JitterDraw d;
  d.contrast = 0.5f;
  d.brightness = 2.0f;
  ImageF img = rgb_pixels({{0.75f, 0.25f, 0.125f}});
  color_jitter(img, d);  // order 0 1 2 3: brightness first
  CHECK(img.data[0] == doctest::Approx(0.8105));
  CHECK(img.data[1] == doctest::Approx(0.5605));
  CHECK(img.data[2] == doctest::Approx(0.4355));
  std::swap(d.order[0], d.order[1]);
  img = rgb_pixels({{0.75f, 0.25f, 0.125f}});
  color_jitter(img, d);
  CHECK(img.data[0] == doctest::Approx(1.0));
  CHECK(img.data[1] == doctest::Approx(0.63525));
  CHECK(img.data[2] == doctest::Approx(0.51025));
}

TEST_CASE("color jitter draws: the hue shifts both ways, as often left as right") {
  RandomStream rng{10, kStreamAugment, 0};
  int negative = 0;
  float lowest = 0, highest = 0;
  for (int i = 0; i < 2000; ++i) {
    const float hue = sample_color_jitter(ColorJitter{}, rng).hue;
    negative += hue < 0;
    lowest = std::min(lowest, hue);
    highest = std::max(highest, hue);
  }
  CHECK(negative > 900);  // 1000 expected
  CHECK(negative < 1100);
  CHECK(lowest < -0.099f);
  CHECK(highest > 0.099f);
}

TEST_CASE("resized crop: aspect ratio log-uniform, as many crops wider as taller") {
  // Area 0.1 of 1000 x 1000 always fits, and sides near 316 make rounding's ties rare. A ratio uniform in
  // [3/4, 4/3] would be below 1 with probability 0.25 / 0.5833 = 0.43.
  RandomStream rng{11, kStreamAugment, 0};
  int taller = 0, wider = 0;
  for (int i = 0; i < 10000; ++i) {
    const CropBox b = sample_resized_crop(1000, 1000, 0.1, 0.1, 3.0 / 4.0, 4.0 / 3.0, rng);
    taller += b.height > b.width;
    wider += b.width > b.height;
  }
  CHECK(taller > 4700);
  CHECK(wider > 4700);
}

TEST_CASE("a view: grayscale with its own p 0.2, whatever the jitter's p") {
  RandomStream fill{12, kStreamData, 0};
  ImageF src;
  src.reshape(3, 16, 16);
  for (float& v : src.data) v = float(fill.next_below(256)) / 255.0f;
  AugmentConfig config = cifar_two_views().view1;  // jitter p 0.8, grayscale p 0.2
  config.out_size = 8;
  const Normalization identity{{0, 0, 0}, {1, 1, 1}};
  Augmenter aug;
  RandomStream rng{12, kStreamAugment, 0};
  std::vector<float> out(3 * 8 * 8);
  int gray = 0;
  for (int i = 0; i < 1000; ++i) {
    aug.augment(src, config, identity, rng, out.data());
    bool all_equal = true;
    for (size_t p = 0; p < out.size(); p += 3) all_equal = all_equal && out[p] == out[p + 1] && out[p] == out[p + 2];
    gray += all_equal;
  }
  CHECK(gray > 120);  // 200 expected
  CHECK(gray < 300);
}

TEST_CASE("ImageNet two views: 224 crops, blur p 1.0 / 0.1, solarize p 0.0 / 0.2") {
  const TwoViewConfig views = imagenet_two_views();
  CHECK(views.view1.out_size == 224);
  CHECK(views.view2.out_size == 224);
  CHECK(views.view1.blur_p == 1.0f);
  CHECK(views.view2.blur_p == 0.1f);
  CHECK(views.view1.solarize_p == 0.0f);
  CHECK(views.view2.solarize_p == 0.2f);
  for (const AugmentConfig* v : {&views.view1, &views.view2}) {
    CHECK(v->jitter_p == 0.8f);
    CHECK(v->grayscale_p == 0.2f);
    CHECK(v->flip_p == 0.5f);
  }
}

TEST_CASE("two views, CIFAR and ImageNet: SPEC 3.4's crops (scale 0.08-1, ratio 3/4-4/3) and blur sigma 0.1-2.0") {
  for (const TwoViewConfig& views : {cifar_two_views(), imagenet_two_views()})
    for (const AugmentConfig* v : {&views.view1, &views.view2}) {
      CAPTURE(v->out_size);
      CHECK(v->blur_sigma_min == 0.1f);
      CHECK(v->blur_sigma_max == 2.0f);
      CHECK(v->crop_ratio_min == doctest::Approx(3.0 / 4.0));
      CHECK(v->crop_ratio_max == doctest::Approx(4.0 / 3.0));
      // The crops the view draws from a 1000 x 1000 image: areas from 8 % to the whole image.
      RandomStream rng{3, kStreamAugment, 0};
      double smallest = 1.0, largest = 0.0;
      for (int i = 0; i < 2000; ++i) {
        const CropBox box = sample_resized_crop(1000, 1000, v->crop_scale_min, v->crop_scale_max, v->crop_ratio_min,
                                                v->crop_ratio_max, rng);
        const double area = double(box.height) * box.width / 1e6;
        smallest = std::min(smallest, area);
        largest = std::max(largest, area);
      }
      CHECK(smallest >= 0.0799);
      CHECK(smallest < 0.09);
      CHECK(largest > 0.95);
    }
}

TEST_CASE("a view: identity settings reproduce Normalize; seeded; flip with p 1") {
  RandomStream fill{7, kStreamData, 0};
  ImageF src;
  src.reshape(3, 32, 32);
  for (float& v : src.data) v = float(fill.next_below(256)) / 255.0f;
  AugmentConfig id;
  id.crop_scale_min = id.crop_scale_max = 1.0;
  id.crop_ratio_min = id.crop_ratio_max = 1.0;
  id.flip_p = id.jitter_p = id.grayscale_p = id.blur_p = id.solarize_p = 0.0f;
  Augmenter aug;
  std::vector<float> out(3 * 32 * 32), expected(3 * 32 * 32), again(3 * 32 * 32);
  RandomStream rng{1, kStreamAugment, 0};
  aug.augment(src, id, kCifar10Normalization, rng, out.data());
  normalize(src, kCifar10Normalization, expected.data());
  CHECK(out == expected);
  id.flip_p = 1.0f;
  aug.augment(src, id, kCifar10Normalization, rng, out.data());
  ImageF flipped = src;
  flip_horizontal(flipped);
  normalize(flipped, kCifar10Normalization, expected.data());
  CHECK(out == expected);

  const TwoViewConfig views = cifar_two_views();
  CHECK(views.view1.solarize_p == 0.0f);
  CHECK(views.view2.solarize_p == 0.2f);
  CHECK(views.view1.blur_p == 0.0f);
  RandomStream a{9, kStreamAugment, 1 << 12}, b{9, kStreamAugment, 1 << 12}, c{9, kStreamAugment, 2 << 12};
  aug.augment(src, views.view2, kCifar10Normalization, a, out.data());
  Augmenter other;
  other.augment(src, views.view2, kCifar10Normalization, b, again.data());
  CHECK(out == again);
  other.augment(src, views.view2, kCifar10Normalization, c, again.data());
  CHECK(out != again);

  AugmentConfig big = imagenet_two_views().view1;  // blur p 1 on a larger image
  big.out_size = 48;
  src.reshape(3, 64, 64);
  for (float& v : src.data) v = float(fill.next_below(256)) / 255.0f;
  std::vector<float> large(3 * 48 * 48);
  aug.augment(src, big, kImageNetNormalization, a, large.data());
  for (float v : large) REQUIRE(std::isfinite(v));
}
