// `intl bench decode`: JPEG decoding plus augmentation at 224 through the image-folder loader, on
// ImageNet-size JPEGs the benchmark writes itself. cli/cmd_bench.cpp calls add_bench_decode on `bench`.
#pragma once
#include <CLI/CLI.hpp>

namespace intl::bench {

// Registers `decode` (--files, --width, --height, --quality, --images, --workers, --batch, --mode
// two-view|multi-crop|eval, --seed) on `bench`. It prints the decode-only rate of one thread, wall and CPU
// time of the loader, `images_per_s_per_core` (images per CPU-second of all threads, which does not depend on
// how busy the machine is) and, last, `images_per_s: X` (wall clock). An image is decoded once and
// augmented into every view of the mode.
void add_bench_decode(CLI::App& bench);

}  // namespace intl::bench
