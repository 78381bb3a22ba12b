// The augmentations of SPEC 3.4 with torchvision's semantics (transforms v1 on float tensors), each a pure
// function of its input and of a RandomStream, so a view is reproducible from (seed, epoch, sample, view).
// Images are float CHW in [0, 1] while augmented; the last step, Normalize, writes HWC into a caller-provided
// buffer (the engine's NHWC batch layout).
//
// View pipeline, in BYOL's order (supplement E, Table A): RandomResizedCrop -> horizontal flip ->
// ColorJitter (with p) -> grayscale (with p) -> Gaussian blur (with p) -> solarize (with p) -> Normalize.
// Random draws of one view, in this order, each one RandomStream call: crop attempts (scale, log-ratio and,
// when the box fits, top and left), flip, jitter (apply, then when applied the order as three swaps and one
// draw per non-zero factor), grayscale, blur (apply, then sigma when applied), solarize. "With p" means
// applied when u <= p for u uniform in (0, 1], so p = 0 never and p = 1 always applies.
//
// Where torchvision offers more than one behaviour, this is what is done:
// - Resampling (`Resample::bicubic_antialias`, the default) is PIL's bicubic, which torchvision >= 0.17 also
//   uses on tensors (antialias=True): Keys cubic with a = -0.5; when shrinking, the kernel is stretched by the
//   scale factor; taps outside the crop are dropped and the weights renormalised. `Resample::bicubic_legacy`
//   is torch.nn.functional.interpolate(mode="bicubic", align_corners=False, antialias=False): a = -0.75,
//   always 4 taps, indices clamped to the crop's edge. Both sample output pixel i at source coordinate
//   (i + 0.5) * in / out - 0.5 inside the crop, and clamp the result to [0, 1] as an 8-bit pipeline would.
//   Both passes run in float (PIL rounds to 8 bits between its two passes).
//   The authors' pipeline ran on PIL images, hence the default. `Resample::bilinear_antialias` is PIL's
//   bilinear (a triangle of support 1, stretched when shrinking): torchvision's default interpolation, which
//   the evaluation transform Resize(256) + CenterCrop(224) uses.
// - Solarize inverts v -> 1 - v where v >= 0.5. For an 8-bit value q = round(255 v) this is exactly
//   PIL.ImageOps.solarize(threshold=128) (q >= 128 -> 255 - q); on floats it is torchvision's rule with 0.5.
// - No quantisation to 8 bits between steps (PIL would round after each); all arithmetic is in float.
#pragma once
#include <cstdint>
#include <vector>

#include "data/image.h"
#include "engine/random.h"

namespace intl {

// Per-channel normalisation (x - mean) / std.
struct Normalization {
  float mean[3];
  float std[3];
};
constexpr Normalization kCifar10Normalization{{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
constexpr Normalization kCifar100Normalization{{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
constexpr Normalization kImageNetNormalization{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

// ---- RandomResizedCrop ----

// A crop rectangle in source pixels: torchvision's (i, j, h, w).
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

// torchvision RandomResizedCrop.get_params: 10 attempts with area fraction uniform in [scale_min, scale_max]
// and aspect ratio log-uniform in [ratio_min, ratio_max], sizes rounded half to even (Python's round); if
// none fits, the central crop of the whole image clamped to the ratio range.
CropBox sample_resized_crop(int height, int width, double scale_min, double scale_max, double ratio_min,
                            double ratio_max, RandomStream& rng);

enum class Resample { bicubic_antialias, bicubic_legacy, bilinear_antialias };

// Filter taps of a 1D resize, reused between images. Every output reads the same number of consecutive
// source samples (zero weights pad the short ones), which keeps the inner loops fixed-length.
struct ResizeTaps {
  std::vector<int> first;      // (out) first source index of each output sample; first + taps <= in_size
  std::vector<float> weights;  // (taps, out): tap k of output i at [k * out + i]
  int taps = 0;
  std::vector<double> scratch;  // one output's weights while they are computed
};

// Computes the taps that resize `in_size` samples to `out_size` (see the header note for the two modes).
void resize_taps(int in_size, int out_size, Resample mode, ResizeTaps& taps);

// The source rows of one output row and their weights, while a pass adds them up.
struct TapRows {
  std::vector<const float*> src;
  std::vector<float> w;
};

struct ResizeScratch {
  ResizeTaps taps_x, taps_y;
  std::vector<float> columns;          // (crop width, crop height): one channel of the crop, transposed
  std::vector<float> resized_columns;  // (out width, crop height): the horizontal pass, transposed
  std::vector<float> rows;             // (crop height, out width) after the horizontal pass
  TapRows tap_rows;
};

// Crops `box` out of src and resizes it to (out_height, out_width), clamped to [0, 1]; separable, rows
// (the horizontal pass) first, as PIL.
void resize_crop(const ImageF& src, const CropBox& box, int out_height, int out_width, Resample mode,
                 ImageF& dst, ResizeScratch& scratch);

// ---- Geometric and photometric transforms (in place, 3-channel RGB unless said otherwise) ----

void flip_horizontal(ImageF& img);  // any channel count

// ITU-R 601-2 luma 0.299 R + 0.587 G + 0.114 B, written to all three channels (RandomGrayscale).
void to_grayscale(ImageF& img);

// torchvision's adjust_*: brightness scales; contrast blends with the mean of the grayscale image;
// saturation blends with the per-pixel grayscale; each clamps to [0, 1]. blend(a, b, f) = f a + (1 - f) b.
void adjust_brightness(ImageF& img, float factor);
void adjust_contrast(ImageF& img, float factor);
void adjust_saturation(ImageF& img, float factor);
// Adds `shift` (in turns, [-0.5, 0.5]) to the hue in HSV space, modulo 1.
void adjust_hue(ImageF& img, float shift);

// torchvision's _rgb2hsv / _hsv2rgb for one pixel; h, s, v in [0, 1].
void rgb_to_hsv(float r, float g, float b, float& h, float& s, float& v);
void hsv_to_rgb(float h, float s, float v, float& r, float& g, float& b);

// v -> 1 - v where v >= threshold (see the header note for why 0.5 matches PIL's 128).
void solarize(ImageF& img, float threshold = 0.5f);

// torchvision's _get_gaussian_kernel1d: exp(-x^2 / (2 sigma^2)) at x = -(k-1)/2 .. (k-1)/2, normalised.
void gaussian_kernel(int kernel_size, float sigma, float* weights);

struct BlurScratch {
  ImageF rows;
  std::vector<float> weights;
  std::vector<int> index_x, index_y;  // reflect-padded source index of each padded position
  std::vector<float> padded;          // one reflect-padded row
  TapRows tap_rows;
};
// Separable Gaussian blur with reflect padding (torchvision gaussian_blur); kernel_size odd. Reflection
// repeats when the kernel is wider than the image (torchvision refuses that case).
void gaussian_blur(ImageF& img, int kernel_size, float sigma, BlurScratch& scratch);

// (x - mean[c]) / std[c] written to out, which holds img.size() floats in HWC order (channels interleaved):
// the engine's NHWC image layout, so that a batch goes to the network as written.
void normalize(const ImageF& img, const Normalization& norm, float* out);

// ---- ColorJitter ----

struct ColorJitter {
  float brightness = 0.4f, contrast = 0.4f, saturation = 0.2f, hue = 0.1f;  // 0 disables one
};

// One draw of ColorJitter.get_params: the order of the four adjustments (0 brightness, 1 contrast,
// 2 saturation, 3 hue) and their factors, uniform in [max(0, 1 - x), 1 + x] (hue: [-x, x]). An identity
// factor (1, or hue 0) skips its adjustment, as torchvision skips a disabled one.
struct JitterDraw {
  int order[4] = {0, 1, 2, 3};
  float brightness = 1.0f, contrast = 1.0f, saturation = 1.0f, hue = 0.0f;
};
JitterDraw sample_color_jitter(const ColorJitter& jitter, RandomStream& rng);
void color_jitter(ImageF& img, const JitterDraw& draw);

// ---- A view ----

// Everything random about one view. Defaults are SPEC 3.4's CIFAR view 1.
struct AugmentConfig {
  int out_size = 32;
  double crop_scale_min = 0.08, crop_scale_max = 1.0;
  double crop_ratio_min = 3.0 / 4.0, crop_ratio_max = 4.0 / 3.0;
  Resample resample = Resample::bicubic_antialias;
  float flip_p = 0.5f;
  float jitter_p = 0.8f;
  ColorJitter jitter;
  float grayscale_p = 0.2f;
  float blur_p = 0.0f;
  // Odd taps, +-3 sigma at blur_sigma_max on every crop size: the authors' PIL GaussianBlur(radius=sigma) has no
  // fixed size (23, torchvision's BYOL setting for 224 crops, spans +-5.5 sigma at 2.0 and differs by < 0.3%).
  int blur_kernel = 13;
  float blur_sigma_min = 0.1f, blur_sigma_max = 2.0f;
  float solarize_p = 0.0f;
};

struct TwoViewConfig {
  AugmentConfig view1, view2;
};
// SPEC 3.4: CIFAR (32 crops, no blur, solarize p 0.0 / 0.2) and ImageNet (224 crops, blur p 1.0 / 0.1,
// solarize p 0.0 / 0.2).
TwoViewConfig cifar_two_views();
TwoViewConfig imagenet_two_views();

// Multi-crop (SPEC 3.4, Table B; the authors' `multicrop 3`): 2 x 224 (scale 0.2-1.0), then 192 (0.171-0.857),
// 160 (0.143-0.714), 128 (0.114-0.571) and 96 (0.086-0.429); every crop has blur p 0.5 and solarize p 0.1,
// and the two-view settings otherwise. Crop 0 is the one the EMA network sees (the target).
struct MultiCropConfig {
  std::vector<AugmentConfig> crops;
};
MultiCropConfig imagenet_multi_crop();

// ---- The evaluation view ----

// torchvision Resize(resize) then CenterCrop(crop): the shorter side becomes `resize`, the longer
// int(resize * long / short) (truncated, as torchvision), then the central crop x crop. The ImageNet
// protocol is 256 / 224 with torchvision's default interpolation, bilinear (PIL's, antialiased).
struct CenterCropConfig {
  int resize = 256;
  int crop = 224;
  Resample resample = Resample::bilinear_antialias;
};

// (height, width) after Resize(resize) of a (height, width) image.
void resized_shorter_side(int height, int width, int resize, int& out_height, int& out_width);
// torchvision CenterCrop's box: top = round((height - crop) / 2) with Python's rounding (half to even), as
// left; the image must be at least crop x crop.
CropBox center_crop_box(int height, int width, int crop);

// Scratch memory for producing views on one thread; keep one per thread and reuse it.
class Augmenter {
 public:
  // One augmented view of src (3-channel, [0, 1]) written normalised to out (3 x out_size x out_size).
  void augment(const ImageF& src, const AugmentConfig& config, const Normalization& norm, RandomStream& rng,
               float* out);
  // No randomness: src resized to out_size (if it differs) and normalised, for feature extraction.
  void evaluate(const ImageF& src, int out_size, const Normalization& norm, float* out);
  // Resize + CenterCrop (CenterCropConfig) and Normalize; out holds 3 x crop x crop floats.
  void evaluate_center_crop(const ImageF& src, const CenterCropConfig& config, const Normalization& norm,
                            float* out);

 private:
  ImageF resized_, view_;
  ResizeScratch resize_;
  BlurScratch blur_;
};

}  // namespace intl
