// ImageNet-size views: the multi-crop configuration of Table B and the loader's per-crop batches, the
// geometry and value ranges of every view at 224, and the evaluation view Resize(256) + CenterCrop(224)
// with PIL's bilinear filter.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/loader.h"
#include "engine/error.h"

namespace {

using namespace intl;

// An in-memory source of ImageNet-like sizes (so these tests need no files): image i is 500 x 375 (or
// 375 x 500 for odd i) with smooth colour ramps and a little pattern.
class RampSource : public ImageSource {
 public:
  explicit RampSource(int n) : n_(n) {}
  int size() const override { return n_; }
  int num_classes() const override { return 2; }
  int32_t label(int index) const override { return index % 2; }
  Normalization normalization() const override { return kImageNetNormalization; }
  int decode(int index, ImageF& image) const override {
    const int h = index % 2 ? 500 : 375, w = index % 2 ? 375 : 500;
    image.reshape(3, h, w);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        image.at(0, y, x) = float(x) / (w - 1);
        image.at(1, y, x) = float(y) / (h - 1);
        image.at(2, y, x) = ((x / 7 + y / 5 + index) % 3) * 0.5f;
      }
    return index;
  }

 private:
  int n_;
};

// Every value of an (n, side, side, 3) NHWC view lies in the normalised image of [0, 1], and not all are equal.
void check_normalised_range(const float* view, int n, int side) {
  const size_t plane = size_t(side) * side;
  for (int k = 0; k < n; ++k)
    for (int c = 0; c < 3; ++c) {
      const float lo = (0.0f - kImageNetNormalization.mean[c]) / kImageNetNormalization.std[c] - 1e-5f;
      const float hi = (1.0f - kImageNetNormalization.mean[c]) / kImageNetNormalization.std[c] + 1e-5f;
      const float* p = view + size_t(k) * 3 * plane + c;
      float mn = p[0], mx = p[0];
      size_t finite = 0;
      for (size_t i = 0; i < plane; ++i) {
        const float v = p[i * 3];
        finite += std::isfinite(v);
        mn = std::min(mn, v);
        mx = std::max(mx, v);
      }
      CHECK(finite == plane);
      CHECK(mn < mx);
      CHECK(mn >= lo);
      CHECK(mx <= hi);
    }
}

}  // namespace

TEST_CASE("multi-crop: Table B's six crops") {
  const MultiCropConfig config = imagenet_multi_crop();
  REQUIRE(config.crops.size() == 6);
  const int sizes[6] = {224, 224, 192, 160, 128, 96};
  const double lo[6] = {0.2, 0.2, 0.171, 0.143, 0.114, 0.086}, hi[6] = {1.0, 1.0, 0.857, 0.714, 0.571, 0.429};
  for (int i = 0; i < 6; ++i) {
    const AugmentConfig& c = config.crops[i];
    CHECK(c.out_size == sizes[i]);
    CHECK(c.crop_scale_min == lo[i]);
    CHECK(c.crop_scale_max == hi[i]);
    CHECK(c.blur_p == 0.5f);
    CHECK(c.solarize_p == 0.1f);
    CHECK(c.jitter_p == 0.8f);
    CHECK(c.grayscale_p == 0.2f);
    CHECK(c.flip_p == 0.5f);
    CHECK(c.resample == Resample::bicubic_antialias);
  }
}

TEST_CASE("multi-crop: crop boxes of a 500 x 375 image stay inside it with the scale range's areas") {
  for (const AugmentConfig& c : imagenet_multi_crop().crops) {
    RandomStream rng{11, kStreamAugment, 0};
    for (int i = 0; i < 200; ++i) {
      const CropBox box = sample_resized_crop(375, 500, c.crop_scale_min, c.crop_scale_max, c.crop_ratio_min,
                                              c.crop_ratio_max, rng);
      REQUIRE(box.top >= 0);
      REQUIRE(box.left >= 0);
      REQUIRE(box.top + box.height <= 375);
      REQUIRE(box.left + box.width <= 500);
      const double area = double(box.height) * box.width / (375.0 * 500.0);
      CHECK(area >= c.crop_scale_min * 0.98);  // rounding of the sides
      CHECK(area <= c.crop_scale_max * 1.02 + 0.01);
    }
  }
}

TEST_CASE("multi-crop loader: one batch per crop at its own size, seeded, same for any workers") {
  const RampSource source(4);
  LoaderConfig config = imagenet_multi_crop_loader_config(2, 5, 0);
  config.chunk = 1;
  Loader serial(source, config);
  config.workers = 2;
  Loader threaded(source, config);
  serial.start_epoch(0);
  threaded.start_epoch(0);
  const Batch* a = serial.next();
  const Batch* b = threaded.next();
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  REQUIRE(a->views.size() == 6);
  const int sizes[6] = {224, 224, 192, 160, 128, 96};
  for (int v = 0; v < 6; ++v) {
    CHECK(a->views[v].height == sizes[v]);
    CHECK(a->views[v].width == sizes[v]);
    const size_t floats = size_t(a->n) * 3 * sizes[v] * sizes[v];
    check_normalised_range(a->views[v].data, a->n, sizes[v]);
    CHECK(std::vector<float>(a->views[v].data, a->views[v].data + floats) ==
          std::vector<float>(b->views[v].data, b->views[v].data + floats));
  }
  CHECK(a->view1 == a->views[0].data);
  CHECK(a->view2 == a->views[1].data);
  CHECK(a->height == 224);
  const size_t floats = size_t(a->n) * 3 * 224 * 224;
  CHECK(std::vector<float>(a->view1, a->view1 + floats) != std::vector<float>(a->view2, a->view2 + floats));
  for (int k = 0; k < a->n; ++k) CHECK(a->labels[k] == a->indices[k] % 2);

  LoaderConfig too_many = config;
  too_many.crops.resize(17, too_many.crops[0]);
  CHECK_THROWS_AS(Loader(source, too_many), Error);
}

TEST_CASE("two views at 224: shapes and normalised ranges") {
  const RampSource source(2);
  LoaderConfig config = imagenet_train_loader_config(2, 3, 0);
  Loader loader(source, config);
  loader.start_epoch(0);
  const Batch* b = loader.next();
  REQUIRE(b != nullptr);
  CHECK(b->views.size() == 2);
  CHECK(b->height == 224);
  CHECK(b->width == 224);
  check_normalised_range(b->view1, b->n, 224);
  check_normalised_range(b->view2, b->n, 224);
}

TEST_CASE("bilinear antialias (PIL's triangle filter): 2 -> 4 and 4 -> 2 by hand") {
  ImageF src, dst;
  ResizeScratch scratch;
  src.reshape(1, 1, 2);
  src.data = {0.2f, 0.6f};
  resize_crop(src, CropBox{0, 0, 1, 2}, 1, 4, Resample::bilinear_antialias, dst, scratch);
  // Output centres at source x = 0.25, 0.75, 1.25, 1.75 (minus 0.5): edge outputs keep the edge value.
  CHECK(dst.data[0] == doctest::Approx(0.2));
  CHECK(dst.data[1] == doctest::Approx(0.75 * 0.2 + 0.25 * 0.6));
  CHECK(dst.data[2] == doctest::Approx(0.25 * 0.2 + 0.75 * 0.6));
  CHECK(dst.data[3] == doctest::Approx(0.6));
  src.reshape(1, 1, 4);
  src.data = {0.0f, 0.7f, 0.14f, 0.35f};
  resize_crop(src, CropBox{0, 0, 1, 4}, 1, 2, Resample::bilinear_antialias, dst, scratch);
  // Shrinking by 2 stretches the triangle to support 2: weights 3/7, 3/7, 1/7 (and mirrored).
  CHECK(dst.data[0] == doctest::Approx((3 * 0.0 + 3 * 0.7 + 0.14) / 7));
  CHECK(dst.data[1] == doctest::Approx((0.7 + 3 * 0.14 + 3 * 0.35) / 7));
}

TEST_CASE("evaluation view: Resize(256) sizes, CenterCrop with Python rounding") {
  int h = 0, w = 0;
  resized_shorter_side(375, 500, 256, h, w);
  CHECK(h == 256);
  CHECK(w == 341);  // int(256 * 500 / 375) = int(341.33)
  resized_shorter_side(500, 375, 256, h, w);
  CHECK(h == 341);
  CHECK(w == 256);
  resized_shorter_side(300, 300, 256, h, w);
  CHECK((h == 256 && w == 256));
  resized_shorter_side(100, 399, 256, h, w);
  CHECK(w == 1021);  // int(1021.44)
  resized_shorter_side(375, 499, 256, h, w);
  CHECK(w == 340);  // int(340.65): truncated, as torchvision's Resize, not rounded
  const CropBox box = center_crop_box(256, 341, 224);
  CHECK(box.top == 16);
  CHECK(box.left == 58);  // round(58.5) = 58, half to even
  CHECK(box.height == 224);
  CHECK(box.width == 224);
  CHECK(center_crop_box(256, 343, 224).left == 60);  // round(59.5) = 60
  CHECK_THROWS_AS(center_crop_box(200, 300, 224), Error);
}

TEST_CASE("evaluation view: a linear ramp lands where the geometry says") {
  const RampSource source(2);
  ImageF image;
  source.decode(0, image);  // 375 x 500: red = x / 499, green = y / 374
  Augmenter augmenter;
  std::vector<float> out(3 * 224 * 224);
  augmenter.evaluate_center_crop(image, CenterCropConfig{}, kImageNetNormalization, out.data());
  // Resized to 256 x 341, crop at (16, 58); output pixel j samples the source at (j + offset + 0.5) * s - 0.5.
  const double sx = 500.0 / 341, sy = 375.0 / 256;
  for (int y = 8; y < 224; y += 53)
    for (int x = 8; x < 224; x += 47) {
      const double red = ((x + 58 + 0.5) * sx - 0.5) / 499, green = ((y + 16 + 0.5) * sy - 0.5) / 374;
      const size_t at = (size_t(y) * 224 + x) * 3;  // HWC
      const float r = out[at] * kImageNetNormalization.std[0] + kImageNetNormalization.mean[0];
      const float g = out[at + 1] * kImageNetNormalization.std[1] + kImageNetNormalization.mean[1];
      CHECK(r == doctest::Approx(red).epsilon(1e-4));
      CHECK(g == doctest::Approx(green).epsilon(1e-4));
    }

  LoaderConfig config = imagenet_eval_loader_config(2, 0);
  Loader loader(source, config);
  loader.start_epoch(0);
  const Batch* b = loader.next();
  REQUIRE(b != nullptr);
  CHECK(b->views.size() == 1);
  CHECK(b->view2 == nullptr);
  CHECK(b->height == 224);
  CHECK(std::vector<float>(b->view1, b->view1 + out.size()) == out);  // sample 0 in dataset order
  check_normalised_range(b->view1, 2, 224);
}

TEST_CASE("every transform at 224 keeps the geometry and the [0, 1] range") {
  const RampSource source(1);
  ImageF image, view;
  source.decode(0, image);
  ResizeScratch resize;
  BlurScratch blur;
  RandomStream rng{3, kStreamAugment, 0};
  const CropBox box = sample_resized_crop(image.height, image.width, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, rng);
  resize_crop(image, box, 224, 224, Resample::bicubic_antialias, view, resize);
  auto check_view = [&](const char* what) {
    INFO(what);
    CHECK(view.channels == 3);
    CHECK(view.height == 224);
    CHECK(view.width == 224);
    CHECK(*std::min_element(view.data.begin(), view.data.end()) >= 0.0f);
    CHECK(*std::max_element(view.data.begin(), view.data.end()) <= 1.0f);
  };
  check_view("resized crop");
  flip_horizontal(view);
  check_view("flip");
  JitterDraw strong;
  strong.brightness = 1.4f;
  strong.contrast = 1.4f;
  strong.saturation = 1.2f;
  strong.hue = 0.1f;
  color_jitter(view, strong);
  check_view("color jitter");
  gaussian_blur(view, 23, 2.0f, blur);
  check_view("gaussian blur");
  solarize(view);
  check_view("solarize");
  to_grayscale(view);
  check_view("grayscale");
  CHECK(view.at(0, 100, 100) == view.at(2, 100, 100));
  std::vector<float> out(view.size());
  normalize(view, kImageNetNormalization, out.data());
  for (int c = 0; c < 3; ++c) {  // out is HWC
    float mn = out[size_t(c)], mx = mn;
    for (size_t i = size_t(c); i < out.size(); i += 3) {
      mn = std::min(mn, out[i]);
      mx = std::max(mx, out[i]);
    }
    CHECK(mn >= -kImageNetNormalization.mean[c] / kImageNetNormalization.std[c]);
    CHECK(mx <= (1.0f - kImageNetNormalization.mean[c]) / kImageNetNormalization.std[c] + 1e-6f);
  }
}
