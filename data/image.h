// The two image types the data pipeline passes around: 8-bit images as files store them (CIFAR records are
// planar R, G, B; stb_image decodes interleaved) and float images in CHW order with values in [0, 1], which
// every transform reads and writes. Both are plain buffers; nothing here knows about tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace intl {

// 8-bit image with interleaved channels (HWC), the layout stb_image returns.
struct ImageU8 {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (height, width, channels)

  uint8_t at(int y, int x, int c) const { return pixels[(size_t(y) * width + x) * channels + c]; }
};

// Float image in CHW order. `reshape` keeps the buffer's capacity, so an ImageF used as scratch stops
// allocating once it has seen the largest image.
struct ImageF {
  int channels = 0, height = 0, width = 0;
  std::vector<float> data;  // (channels, height, width)

  void reshape(int c, int h, int w) {
    channels = c;
    height = h;
    width = w;
    data.resize(size_t(c) * h * w);
  }
  size_t plane_size() const { return size_t(height) * width; }
  size_t size() const { return size_t(channels) * plane_size(); }
  float* plane(int c) { return data.data() + c * plane_size(); }
  const float* plane(int c) const { return data.data() + c * plane_size(); }
  float& at(int c, int y, int x) { return data[c * plane_size() + size_t(y) * width + x]; }
  float at(int c, int y, int x) const { return data[c * plane_size() + size_t(y) * width + x]; }
};

// 8-bit planar CHW (the CIFAR record layout) to float CHW in [0, 1] (v / 255, as ToTensor).
inline void planar_u8_to_float(const uint8_t* src, int channels, int height, int width, ImageF& dst) {
  dst.reshape(channels, height, width);
  const size_t n = dst.size();
  for (size_t i = 0; i < n; ++i) dst.data[i] = float(src[i]) * (1.0f / 255.0f);
}

// 8-bit interleaved HWC (stb_image) to float CHW in [0, 1].
inline void interleaved_u8_to_float(const ImageU8& src, ImageF& dst) {
  dst.reshape(src.channels, src.height, src.width);
  const size_t plane = dst.plane_size();
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < src.channels; ++c)
      dst.data[c * plane + p] = float(src.pixels[p * src.channels + c]) * (1.0f / 255.0f);
}

}  // namespace intl
