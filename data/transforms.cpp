// The augmentations of data/transforms.h. Loops run over whole planes or rows so the compiler vectorises
// them; no function allocates once its scratch has seen the largest image.
#include "data/transforms.h"

#ifdef __AVX__
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/error.h"

namespace intl {
namespace {

float clamp01(float v) { return std::min(1.0f, std::max(0.0f, v)); }

// Keys' cubic convolution kernel with parameter a (PIL: -0.5, PyTorch's non-antialiased bicubic: -0.75).
double cubic(double x, double a) {
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// PIL's bilinear filter: the triangle 1 - |x| on [-1, 1].
double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

float uniform(RandomStream& rng, double lo, double hi) { return float(lo + (hi - lo) * rng.next_uniform()); }
bool happens(RandomStream& rng, float p) { return rng.next_uniform() <= double(p); }

// Mirror index without repeating the edge (torch "reflect" padding), repeated for wide kernels.
int reflect(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

}  // namespace

CropBox sample_resized_crop(int height, int width, double scale_min, double scale_max, double ratio_min,
                            double ratio_max, RandomStream& rng) {
  check(height > 0 && width > 0, "sample_resized_crop: empty image");
  const double area = double(height) * width;
  const double log_min = std::log(ratio_min), log_max = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * (scale_min + (scale_max - scale_min) * rng.next_uniform());
    const double ratio = std::exp(log_min + (log_max - log_min) * rng.next_uniform());
    // nearbyint in the default rounding mode rounds half to even, as Python's round().
    const int w = int(std::nearbyint(std::sqrt(target_area * ratio)));
    const int h = int(std::nearbyint(std::sqrt(target_area / ratio)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      CropBox box;
      box.height = h;
      box.width = w;
      box.top = int(rng.next_below(uint64_t(height - h + 1)));
      box.left = int(rng.next_below(uint64_t(width - w + 1)));
      return box;
    }
  }
  CropBox box;  // central crop fallback
  const double in_ratio = double(width) / height;
  if (in_ratio < std::min(ratio_min, ratio_max)) {
    box.width = width;
    box.height = int(std::nearbyint(width / std::min(ratio_min, ratio_max)));
  } else if (in_ratio > std::max(ratio_min, ratio_max)) {
    box.height = height;
    box.width = int(std::nearbyint(height * std::max(ratio_min, ratio_max)));
  } else {
    box.width = width;
    box.height = height;
  }
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

namespace {

// Stores the taps of output i: weights w[0..count) for source samples first..first+count-1, shifted left
// where needed so that all outputs read taps.taps samples inside the input.
void place_taps(ResizeTaps& taps, int i, int first, int count, const double* w, int in_size) {
  const int start = std::min(first, in_size - taps.taps);
  taps.first[i] = start;
  const size_t out_size = taps.first.size();
  for (int k = 0; k < count; ++k) taps.weights[size_t(first - start + k) * out_size + i] += float(w[k]);
}

}  // namespace

void resize_taps(int in_size, int out_size, Resample mode, ResizeTaps& taps) {
  check(in_size > 0 && out_size > 0, "resize: empty input or output size");
  const double scale = double(in_size) / out_size;
  const bool antialias = mode != Resample::bicubic_legacy;
  // PIL's precompute_coeffs: when shrinking, the kernel widens by the scale factor.
  const double filter_scale = antialias ? std::max(scale, 1.0) : 1.0;
  const double kernel_support = mode == Resample::bilinear_antialias ? 1.0 : 2.0;
  const double support = kernel_support * filter_scale;
  const int max_taps = antialias ? int(std::ceil(support)) * 2 + 1 : 4;
  taps.taps = std::min(max_taps, in_size);
  taps.first.resize(out_size);
  taps.weights.assign(size_t(out_size) * taps.taps, 0.0f);
  std::vector<double>& w = taps.scratch;
  w.resize(max_taps);
  for (int i = 0; i < out_size; ++i) {
    if (antialias) {
      const double center = (i + 0.5) * scale;
      const int lo = std::max(0, int(center - support + 0.5));
      const int hi = std::min(in_size, int(center + support + 0.5));
      double sum = 0.0;
      for (int k = 0; k < hi - lo; ++k) {
        const double x = (k + lo - center + 0.5) / filter_scale;
        w[k] = mode == Resample::bilinear_antialias ? triangle(x) : cubic(x, -0.5);
        sum += w[k];
      }
      for (int k = 0; k < hi - lo; ++k) w[k] = sum != 0.0 ? w[k] / sum : 0.0;
      place_taps(taps, i, lo, hi - lo, w.data(), in_size);
    } else {
      // PyTorch upsample_bicubic2d (align_corners=False): 4 taps around floor(x), indices clamped to the edge.
      const double x = (i + 0.5) * scale - 0.5;
      const int f = int(std::floor(x));
      const double t = x - f;
      const double c[4] = {cubic(t + 1.0, -0.75), cubic(t, -0.75), cubic(1.0 - t, -0.75), cubic(2.0 - t, -0.75)};
      const int lo = std::clamp(f - 1, 0, in_size - 1), hi = std::clamp(f + 2, 0, in_size - 1);
      std::fill(w.begin(), w.end(), 0.0);
      for (int k = 0; k < 4; ++k) w[std::clamp(f - 1 + k, 0, in_size - 1) - lo] += c[k];
      place_taps(taps, i, lo, hi - lo + 1, w.data(), in_size);
    }
  }
}

namespace {

// dst[j * dst_stride + i] = src[i * src_stride + j] for an 8 x 8 block.
inline void transpose8x8(const float* src, size_t src_stride, float* dst, size_t dst_stride) {
#ifdef __AVX__
  // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves swapped across: 24 shuffles for 64
  // values, where a scalar copy is 64 loads and 64 stores.
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * dst_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dst_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
#else
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < 8; ++i) dst[j * dst_stride + i] = src[i * src_stride + j];
#endif
}

// dst (cols, rows) = the transpose of src (rows, cols; `stride` floats from one row to the next), 8 x 8 blocks
// at a time, the ragged edges one value at a time.
void transpose(const float* __restrict src, size_t stride, int rows, int cols, float* __restrict dst) {
  const int rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (int r = 0; r < rows8; r += 8) {
    for (int c = 0; c < cols8; c += 8) transpose8x8(src + size_t(r) * stride + c, stride, dst + size_t(c) * rows + r, rows);
    for (int c = cols8; c < cols; ++c)
      for (int i = r; i < r + 8; ++i) dst[size_t(c) * rows + i] = src[size_t(i) * stride + c];
  }
  for (int r = rows8; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[size_t(c) * rows + r] = src[size_t(r) * stride + c];
}

// out[x] = sum_k w[k] * src[k][x] for x < n, the taps added in order k = 0, 1, ... (as a loop over k of
// out[x] += w[k] * src[k][x] would, to the bit): 16 outputs at a time held in two 8-float registers across
// the taps, stored once, where that loop loads and stores every output once per tap. Float8 is GCC's (and
// Clang's) vector of 8 floats, 4-byte aligned so that any offset may be loaded.
typedef float Float8 __attribute__((vector_size(32), aligned(4)));
void weighted_sum(const float* const* src, const float* w, int taps, int n, float* __restrict out) {
  int x = 0;
  for (; x + 16 <= n; x += 16) {
    Float8 a = {}, b = {};
    for (int k = 0; k < taps; ++k) {
      const float wk = w[k];
      a += wk * *reinterpret_cast<const Float8*>(src[k] + x);
      b += wk * *reinterpret_cast<const Float8*>(src[k] + x + 8);
    }
    *reinterpret_cast<Float8*>(out + x) = a;
    *reinterpret_cast<Float8*>(out + x + 8) = b;
  }
  for (; x < n; ++x) {
    float acc = 0.0f;
    for (int k = 0; k < taps; ++k) acc += w[k] * src[k][x];
    out[x] = acc;
  }
}

// Resizes along the rows of `in`: output row i = sum_k w[k][i] * input row (first[i] + k), for rows of n
// contiguous floats (each output sample adds its taps in order k = 0, 1, ..., so the result does not depend on
// which axis is contiguous).
void resize_rows(const float* in, int n, const ResizeTaps& taps, int out_size, float* out, TapRows& rows) {
  rows.src.resize(taps.taps);
  rows.w.resize(taps.taps);
  for (int i = 0; i < out_size; ++i) {
    for (int k = 0; k < taps.taps; ++k) {
      rows.src[k] = in + size_t(taps.first[i] + k) * n;
      rows.w[k] = taps.weights[size_t(k) * out_size + i];
    }
    weighted_sum(rows.src.data(), rows.w.data(), taps.taps, n, out + size_t(i) * n);
  }
}

}  // namespace

void resize_crop(const ImageF& src, const CropBox& box, int out_height, int out_width, Resample mode,
                 ImageF& dst, ResizeScratch& scratch) {
  check(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 && box.top + box.height <= src.height &&
            box.left + box.width <= src.width,
        "resize_crop: crop box outside the image");
  resize_taps(box.width, out_width, mode, scratch.taps_x);
  resize_taps(box.height, out_height, mode, scratch.taps_y);
  const size_t crop_h = size_t(box.height);
  scratch.columns.resize(size_t(box.width) * crop_h);
  scratch.resized_columns.resize(size_t(out_width) * crop_h);
  scratch.rows.resize(crop_h * out_width);
  dst.reshape(src.channels, out_height, out_width);
  for (int c = 0; c < src.channels; ++c) {
    // The horizontal pass runs along the columns of the transposed crop, where a tap's samples of all rows are
    // contiguous and the loop vectorises (along a row each output reads its taps at its own offset, a gather).
    transpose(src.plane(c) + size_t(box.top) * src.width + box.left, size_t(src.width), box.height, box.width,
              scratch.columns.data());
    resize_rows(scratch.columns.data(), box.height, scratch.taps_x, out_width, scratch.resized_columns.data(),
                scratch.tap_rows);
    transpose(scratch.resized_columns.data(), crop_h, out_width, box.height, scratch.rows.data());
    // rows: (box.height, out_width); the vertical pass, then the clamp.
    float* out = dst.plane(c);
    resize_rows(scratch.rows.data(), out_width, scratch.taps_y, out_height, out, scratch.tap_rows);
    for (size_t i = 0; i < size_t(out_height) * out_width; ++i) out[i] = clamp01(out[i]);
  }
}

void flip_horizontal(ImageF& img) {
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < img.height; ++y) {
      float* row = img.plane(c) + size_t(y) * img.width;
      std::reverse(row, row + img.width);
    }
}

void to_grayscale(ImageF& img) {
  check(img.channels == 3, "to_grayscale: expected 3 channels, found " + std::to_string(img.channels));
  float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
  for (size_t p = 0; p < img.plane_size(); ++p) r[p] = g[p] = b[p] = 0.299f * r[p] + 0.587f * g[p] + 0.114f * b[p];
}

void adjust_brightness(ImageF& img, float factor) {
  for (float& v : img.data) v = clamp01(factor * v);
}

void adjust_contrast(ImageF& img, float factor) {
  check(img.channels == 3, "adjust_contrast: expected 3 channels, found " + std::to_string(img.channels));
  const float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
  double sum = 0.0;
  for (size_t p = 0; p < img.plane_size(); ++p) sum += 0.299f * r[p] + 0.587f * g[p] + 0.114f * b[p];
  const float offset = (1.0f - factor) * float(sum / double(img.plane_size()));
  for (float& v : img.data) v = clamp01(factor * v + offset);
}

void adjust_saturation(ImageF& img, float factor) {
  check(img.channels == 3, "adjust_saturation: expected 3 channels, found " + std::to_string(img.channels));
  float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
  for (size_t p = 0; p < img.plane_size(); ++p) {
    const float gray = (1.0f - factor) * (0.299f * r[p] + 0.587f * g[p] + 0.114f * b[p]);
    r[p] = clamp01(factor * r[p] + gray);
    g[p] = clamp01(factor * g[p] + gray);
    b[p] = clamp01(factor * b[p] + gray);
  }
}

namespace {

// floor for |x| < 2^31 as a conversion to int, which vectorises on AVX2 (no rounding instruction needed).
inline float floor_small(float x) {
  const float t = float(int(x));
  return t > x ? t - 1.0f : t;
}

// torchvision's _rgb2hsv for one pixel, with selects instead of branches so loops vectorise (this file compiles
// with -fno-trapping-math, without which GCC keeps a select whose arm does arithmetic as a branch). The hue
// before wrapping, x = hue / 6 + 1, lies in [5/6, 11/6], where x - floor(x) equals torch.fmod(x, 1) exactly.
inline void rgb_to_hsv_pixel(float r, float g, float b, float& h, float& s, float& v) {
  const float maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  const bool equal = maxc == minc;
  const float cr = maxc - minc;
  s = cr / (equal ? 1.0f : maxc);
  const float divisor = equal ? 1.0f : cr;
  const float rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
  const float hue = maxc == r ? bc - gc : (maxc == g ? 2.0f + rc - bc : 4.0f + gc - rc);
  const float x = hue / 6.0f + 1.0f;
  h = x - floor_small(x);
  v = maxc;
}

// torchvision's _hsv2rgb for one pixel; `sector` is floor(6 h) mod 6.
inline void hsv_to_rgb_pixel(float h, float s, float v, float sector, float& r, float& g, float& b) {
  const float f = h * 6.0f - floor_small(h * 6.0f);
  const float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * f)), t = clamp01(v * (1.0f - s * (1.0f - f)));
  r = (sector == 0.0f || sector == 5.0f) ? v : sector == 1.0f ? q : sector == 4.0f ? t : p;
  g = sector == 0.0f ? t : (sector == 1.0f || sector == 2.0f) ? v : sector == 3.0f ? q : p;
  b = sector <= 1.0f ? p : sector == 2.0f ? t : sector == 5.0f ? q : v;
}

}  // namespace

void rgb_to_hsv(float r, float g, float b, float& h, float& s, float& v) { rgb_to_hsv_pixel(r, g, b, h, s, v); }

void hsv_to_rgb(float h, float s, float v, float& r, float& g, float& b) {
  const int sector = ((int(std::floor(h * 6.0f)) % 6) + 6) % 6;
  hsv_to_rgb_pixel(h, s, v, float(sector), r, g, b);
}

void adjust_hue(ImageF& img, float shift) {
  check(img.channels == 3, "adjust_hue: expected 3 channels, found " + std::to_string(img.channels));
  float* __restrict r = img.plane(0);
  float* __restrict g = img.plane(1);
  float* __restrict b = img.plane(2);
  const size_t n = img.plane_size();
  for (size_t p = 0; p < n; ++p) {
    float h, s, v;
    rgb_to_hsv_pixel(r[p], g[p], b[p], h, s, v);
    h += shift;
    h -= floor_small(h);  // Python's %: the result takes the divisor's sign
    const float i = floor_small(h * 6.0f);
    hsv_to_rgb_pixel(h, s, v, i >= 6.0f ? i - 6.0f : i, r[p], g[p], b[p]);
  }
}

void solarize(ImageF& img, float threshold) {
  for (float& v : img.data) v = v >= threshold ? 1.0f - v : v;
}

void gaussian_kernel(int kernel_size, float sigma, float* weights) {
  check(kernel_size > 0 && kernel_size % 2 == 1 && sigma > 0.0f,
        "gaussian_kernel: kernel size must be odd and positive and sigma positive (found " +
            std::to_string(kernel_size) + ", " + std::to_string(sigma) + ")");
  const float half = (kernel_size - 1) * 0.5f;
  float sum = 0.0f;
  for (int k = 0; k < kernel_size; ++k) {
    const float x = (k - half) / sigma;
    weights[k] = std::exp(-0.5f * x * x);
    sum += weights[k];
  }
  for (int k = 0; k < kernel_size; ++k) weights[k] /= sum;
}

void gaussian_blur(ImageF& img, int kernel_size, float sigma, BlurScratch& scratch) {
  scratch.weights.resize(kernel_size);
  gaussian_kernel(kernel_size, sigma, scratch.weights.data());
  const int half = kernel_size / 2, width = img.width, height = img.height;
  scratch.index_x.resize(width + kernel_size - 1);
  scratch.index_y.resize(height + kernel_size - 1);
  scratch.padded.resize(width + kernel_size - 1);
  for (int i = 0; i < width + kernel_size - 1; ++i) scratch.index_x[i] = reflect(i - half, width);
  for (int i = 0; i < height + kernel_size - 1; ++i) scratch.index_y[i] = reflect(i - half, height);
  const float* w = scratch.weights.data();
  scratch.tap_rows.src.resize(kernel_size);
  const float** src = scratch.tap_rows.src.data();
  scratch.rows.reshape(img.channels, height, width);
  for (int c = 0; c < img.channels; ++c) {
    for (int y = 0; y < height; ++y) {  // along x, into scratch, through a reflect-padded copy of the row
      const float* in = img.plane(c) + size_t(y) * width;
      float* __restrict padded = scratch.padded.data();
      for (int i = 0; i < width + kernel_size - 1; ++i) padded[i] = in[scratch.index_x[i]];
      for (int k = 0; k < kernel_size; ++k) src[k] = padded + k;
      weighted_sum(src, w, kernel_size, width, scratch.rows.plane(c) + size_t(y) * width);
    }
    for (int y = 0; y < height; ++y) {  // along y, back into img
      for (int k = 0; k < kernel_size; ++k) src[k] = scratch.rows.plane(c) + size_t(scratch.index_y[y + k]) * width;
      weighted_sum(src, w, kernel_size, width, img.plane(c) + size_t(y) * width);
    }
  }
}

void normalize(const ImageF& img, const Normalization& norm, float* out) {
  check(img.channels <= 3, "normalize: at most 3 channels, found " + std::to_string(img.channels));
  const size_t plane = img.plane_size();
  const int channels = img.channels;
  for (int c = 0; c < channels; ++c) {
    const float* in = img.plane(c);
    const float mean = norm.mean[c], std = norm.std[c];
    float* o = out + c;
    for (size_t p = 0; p < plane; ++p) o[p * channels] = (in[p] - mean) / std;
  }
}

JitterDraw sample_color_jitter(const ColorJitter& jitter, RandomStream& rng) {
  JitterDraw draw;
  for (int i = 3; i > 0; --i) std::swap(draw.order[i], draw.order[rng.next_below(uint64_t(i) + 1)]);
  if (jitter.brightness > 0) draw.brightness = uniform(rng, std::max(0.0f, 1 - jitter.brightness), 1 + jitter.brightness);
  if (jitter.contrast > 0) draw.contrast = uniform(rng, std::max(0.0f, 1 - jitter.contrast), 1 + jitter.contrast);
  if (jitter.saturation > 0) draw.saturation = uniform(rng, std::max(0.0f, 1 - jitter.saturation), 1 + jitter.saturation);
  if (jitter.hue > 0) draw.hue = uniform(rng, -jitter.hue, jitter.hue);
  return draw;
}

void color_jitter(ImageF& img, const JitterDraw& draw) {
  for (int k = 0; k < 4; ++k) {
    switch (draw.order[k]) {
      case 0: if (draw.brightness != 1.0f) adjust_brightness(img, draw.brightness); break;
      case 1: if (draw.contrast != 1.0f) adjust_contrast(img, draw.contrast); break;
      case 2: if (draw.saturation != 1.0f) adjust_saturation(img, draw.saturation); break;
      default: if (draw.hue != 0.0f) adjust_hue(img, draw.hue); break;
    }
  }
}

TwoViewConfig cifar_two_views() {
  TwoViewConfig views;
  views.view2.solarize_p = 0.2f;
  return views;
}

TwoViewConfig imagenet_two_views() {
  TwoViewConfig views;
  for (AugmentConfig* v : {&views.view1, &views.view2}) v->out_size = 224;
  views.view1.blur_p = 1.0f;
  views.view2.blur_p = 0.1f;
  views.view2.solarize_p = 0.2f;
  return views;
}

MultiCropConfig imagenet_multi_crop() {
  const int sizes[6] = {224, 224, 192, 160, 128, 96};
  const double scale_min[6] = {0.2, 0.2, 0.171, 0.143, 0.114, 0.086};
  const double scale_max[6] = {1.0, 1.0, 0.857, 0.714, 0.571, 0.429};
  MultiCropConfig config;
  for (int i = 0; i < 6; ++i) {
    AugmentConfig crop;
    crop.out_size = sizes[i];
    crop.crop_scale_min = scale_min[i];
    crop.crop_scale_max = scale_max[i];
    crop.blur_p = 0.5f;
    crop.solarize_p = 0.1f;
    config.crops.push_back(crop);
  }
  return config;
}

void resized_shorter_side(int height, int width, int resize, int& out_height, int& out_width) {
  check(height > 0 && width > 0 && resize > 0, "resize: empty image or size");
  const int shorter = std::min(height, width), longer = std::max(height, width);
  const int new_longer = int(double(int64_t(resize) * longer) / shorter);
  out_height = height <= width ? resize : new_longer;
  out_width = height <= width ? new_longer : resize;
}

CropBox center_crop_box(int height, int width, int crop) {
  check(crop > 0 && crop <= height && crop <= width,
        "center crop: " + std::to_string(crop) + " does not fit a " + std::to_string(height) + "x" +
            std::to_string(width) + " image");
  CropBox box;
  box.height = box.width = crop;
  box.top = int(std::nearbyint((height - crop) / 2.0));
  box.left = int(std::nearbyint((width - crop) / 2.0));
  return box;
}

void Augmenter::augment(const ImageF& src, const AugmentConfig& config, const Normalization& norm,
                        RandomStream& rng, float* out) {
  check(src.channels == 3, "augment: expected a 3-channel image, found " + std::to_string(src.channels));
  const CropBox box = sample_resized_crop(src.height, src.width, config.crop_scale_min, config.crop_scale_max,
                                          config.crop_ratio_min, config.crop_ratio_max, rng);
  resize_crop(src, box, config.out_size, config.out_size, config.resample, view_, resize_);
  if (happens(rng, config.flip_p)) flip_horizontal(view_);
  if (happens(rng, config.jitter_p)) color_jitter(view_, sample_color_jitter(config.jitter, rng));
  if (happens(rng, config.grayscale_p)) to_grayscale(view_);
  if (happens(rng, config.blur_p))
    gaussian_blur(view_, config.blur_kernel, uniform(rng, config.blur_sigma_min, config.blur_sigma_max), blur_);
  if (happens(rng, config.solarize_p)) solarize(view_);
  normalize(view_, norm, out);
}

void Augmenter::evaluate(const ImageF& src, int out_size, const Normalization& norm, float* out) {
  if (src.height == out_size && src.width == out_size) {
    normalize(src, norm, out);
    return;
  }
  const CropBox whole{0, 0, src.height, src.width};
  resize_crop(src, whole, out_size, out_size, Resample::bicubic_antialias, view_, resize_);
  normalize(view_, norm, out);
}

void Augmenter::evaluate_center_crop(const ImageF& src, const CenterCropConfig& config, const Normalization& norm,
                                     float* out) {
  check(config.resize >= config.crop && config.crop > 0,
        "evaluation view: resize " + std::to_string(config.resize) + " must be at least the crop " +
            std::to_string(config.crop));
  int height = 0, width = 0;
  resized_shorter_side(src.height, src.width, config.resize, height, width);
  const CropBox whole{0, 0, src.height, src.width};
  resize_crop(src, whole, height, width, config.resample, resized_, resize_);
  const CropBox box = center_crop_box(height, width, config.crop);
  view_.reshape(src.channels, box.height, box.width);
  for (int c = 0; c < src.channels; ++c)
    for (int y = 0; y < box.height; ++y)
      std::copy_n(resized_.plane(c) + size_t(box.top + y) * width + box.left, box.width,
                  view_.plane(c) + size_t(y) * box.width);
  normalize(view_, norm, out);
}

}  // namespace intl
