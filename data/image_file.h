// Image files on disk through stb_image and stb_image_write (Debian libstb-dev); data/image_file.cpp is the
// one translation unit that compiles their implementations. Decoding always yields RGB: grey is replicated
// and alpha dropped, as PIL's Image.convert("RGB") does.
#pragma once
#include <string>

#include "data/image.h"

namespace intl {

// Decodes a JPEG or PNG (or another format stb_image reads: BMP, PGM/PPM, TGA, GIF's first frame) to float
// CHW RGB in [0, 1]. Returns false and sets `error` when the file cannot be opened or decoded (what the file
// is by its first bytes, e.g. "a corrupt or truncated JPEG", with stb's reason); never throws for a bad file.
// Thread-safe.
// stb_image is not libjpeg: chroma upsampling differs slightly (a few 8-bit levels at colour edges), and a
// truncated baseline JPEG may decode with its missing part grey instead of failing.
bool decode_image_file(const std::string& path, ImageF& image, std::string& error);

// Writes an 8-bit image (1 or 3 channels) as PNG, or as baseline JPEG of `quality` in [1, 100]. Throws
// intl::Error naming the file when it cannot be written.
void write_png(const std::string& path, const ImageU8& image);
void write_jpeg(const std::string& path, const ImageU8& image, int quality);

}  // namespace intl
