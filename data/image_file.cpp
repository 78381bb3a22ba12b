// stb_image and stb_image_write, compiled here and nowhere else, behind the functions of data/image_file.h.
#include "data/image_file.h"

#include <memory>

#include "engine/error.h"

// Third-party code: its warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace intl {

bool decode_image_file(const std::string& path, ImageF& image, std::string& error) {
  int width = 0, height = 0, channels_in_file = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &width, &height, &channels_in_file, 3),
                                                  stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    error = reason ? reason : "unknown decoding error";
    return false;
  }
  image.reshape(3, height, width);
  const size_t plane = image.plane_size();
  const stbi_uc* src = pixels.get();
  float* r = image.plane(0);
  float* g = image.plane(1);
  float* b = image.plane(2);
  for (size_t p = 0; p < plane; ++p) {
    r[p] = float(src[3 * p]) * (1.0f / 255.0f);
    g[p] = float(src[3 * p + 1]) * (1.0f / 255.0f);
    b[p] = float(src[3 * p + 2]) * (1.0f / 255.0f);
  }
  return true;
}

namespace {

void check_writable(const ImageU8& image, const std::string& path) {
  check(image.height > 0 && image.width > 0 && (image.channels == 1 || image.channels == 3) &&
            image.pixels.size() == size_t(image.height) * image.width * image.channels,
        "cannot write " + path + ": the image must be non-empty with 1 or 3 channels and match its pixels");
}

}  // namespace

void write_png(const std::string& path, const ImageU8& image) {
  check_writable(image, path);
  if (!stbi_write_png(path.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                      image.width * image.channels))
    throw Error("cannot write " + path + " (check that its folder exists and is writable)");
}

void write_jpeg(const std::string& path, const ImageU8& image, int quality) {
  check_writable(image, path);
  check(quality >= 1 && quality <= 100, "cannot write " + path + ": JPEG quality " + std::to_string(quality) +
                                             " is outside 1..100");
  if (!stbi_write_jpg(path.c_str(), image.width, image.height, image.channels, image.pixels.data(), quality))
    throw Error("cannot write " + path + " (check that its folder exists and is writable)");
}

}  // namespace intl
