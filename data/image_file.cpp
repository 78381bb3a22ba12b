// stb_image and stb_image_write, compiled here and nowhere else, behind the functions of data/image_file.h.
#include "data/image_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
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

namespace {

// stb_image tries one format after another, so its reason for a damaged JPEG can be the last format's ("Not a
// PNG"): the file's first bytes say what it was meant to be.
std::string failure_description(const std::string& path, const char* reason) {
  const std::string stb = reason ? reason : "unknown decoding error";
  unsigned char magic[4] = {0, 0, 0, 0};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "cannot be opened: " + std::string(std::strerror(errno));
  const size_t got = std::fread(magic, 1, sizeof magic, f);
  std::fclose(f);
  if (got == 0) return "an empty file";
  if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF)
    return "a corrupt or truncated JPEG (stb_image: " + stb + ")";
  if (got == 4 && magic[0] == 0x89 && magic[1] == 'P' && magic[2] == 'N' && magic[3] == 'G')
    return "a corrupt or truncated PNG (stb_image: " + stb + ")";
  return "not an image format stb_image reads (JPEG, PNG, BMP, PPM, TGA, GIF; stb_image: " + stb + ")";
}

}  // namespace

bool decode_image_file(const std::string& path, ImageF& image, std::string& error) {
  int width = 0, height = 0, channels_in_file = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &width, &height, &channels_in_file, 3),
                                                  stbi_image_free);
  if (!pixels) {
    error = failure_description(path, stbi_failure_reason());
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
