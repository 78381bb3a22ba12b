// `intl bench decode`: writes photo-like JPEGs (smooth shading, shapes, texture and sensor noise, so that
// they compress like photographs: tens of KB at 500x375, quality 90) into a temporary image folder, times
// decoding alone on one thread, then the loader decoding and augmenting them on its workers.
#include "bench/bench_decode.h"
#include "bench/bench_loader.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "data/image_file.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "engine/error.h"
#include "engine/random.h"

namespace intl::bench {
namespace {

namespace fs = std::filesystem;

struct DecodeBenchOptions {
  int files = 32;
  int width = 500, height = 375;
  int quality = 90;
  int images = 256;
  int workers = int(std::max(1u, std::thread::hardware_concurrency()));
  int batch = 32;
  std::string mode = "two-view";
  uint64_t seed = 0;
  std::string keep_files;  // write the JPEGs here and keep them (for bench/decode_peer.py), not in a temporary folder
};

// Removes the temporary folder however the benchmark ends.
// A photo-like RGB image: a colour gradient, a few shaded discs, a fine texture and noise of +-8 levels.
ImageU8 photo_like_image(int width, int height, uint64_t seed) {
  RandomStream rng{seed, kStreamData, 0};
  ImageU8 img{height, width, 3, std::vector<uint8_t>(size_t(width) * height * 3)};
  double base[3], slope_x[3], slope_y[3];
  for (int c = 0; c < 3; ++c) {
    base[c] = 40 + 150 * rng.next_uniform();
    slope_x[c] = (rng.next_uniform() - 0.5) * 120.0 / width;
    slope_y[c] = (rng.next_uniform() - 0.5) * 120.0 / height;
  }
  struct Disc {
    double x, y, r, colour[3];
  } discs[6];
  for (Disc& d : discs) {
    d.x = width * rng.next_uniform();
    d.y = height * rng.next_uniform();
    d.r = std::min(width, height) * (0.05 + 0.25 * rng.next_uniform());
    for (double& v : d.colour) v = 255 * rng.next_uniform();
  }
  const double freq = 0.05 + 0.2 * rng.next_uniform();
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      double rgb[3];
      for (int c = 0; c < 3; ++c) rgb[c] = base[c] + slope_x[c] * x + slope_y[c] * y;
      for (const Disc& d : discs) {
        const double dist = std::hypot(x - d.x, y - d.y) / d.r;
        if (dist < 1.0)
          for (int c = 0; c < 3; ++c) rgb[c] = d.colour[c] * (1.0 - 0.4 * dist * dist);
      }
      const double texture = 10.0 * std::sin(freq * x) * std::cos(0.7 * freq * y);
      const Philox4 noise = rng.block(uint64_t(1000) + uint64_t(y) * width + x);
      for (int c = 0; c < 3; ++c) {
        const double v = rgb[c] + texture + double(noise.v[c] % 17) - 8.0;
        img.pixels[(size_t(y) * width + x) * 3 + c] = uint8_t(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return img;
}

LoaderConfig bench_loader_config(const DecodeBenchOptions& opts) {
  if (opts.mode == "two-view") return imagenet_train_loader_config(opts.batch, opts.seed, opts.workers);
  if (opts.mode == "multi-crop") return imagenet_multi_crop_loader_config(opts.batch, opts.seed, opts.workers);
  return imagenet_eval_loader_config(opts.batch, opts.workers);
}

void run_bench_decode(const DecodeBenchOptions& opts) {
  if (opts.files < 1 || opts.width < 1 || opts.height < 1 || opts.images < 1 || opts.workers < 0 || opts.batch < 1)
    throw UsageError("bench decode: --files, --width, --height, --images and --batch must be >= 1, --workers >= 0");
  if (opts.batch > opts.files)
    throw UsageError("bench decode: --batch " + std::to_string(opts.batch) + " exceeds --files " +
                     std::to_string(opts.files) + " (an epoch must hold a batch)");
  std::unique_ptr<TemporaryFolder> temporary;
  if (opts.keep_files.empty()) temporary = std::make_unique<TemporaryFolder>("decode");
  const fs::path root = opts.keep_files.empty() ? temporary->path : fs::path(opts.keep_files);
  std::error_code ec;
  fs::create_directories(root / "synthetic", ec);
  if (ec)
    throw UsageError("bench decode: --keep-files: cannot make the folder '" + (root / "synthetic").string() + "' (" +
                     ec.message() + "); give a folder that can be written");
  uintmax_t bytes = 0;
  for (int i = 0; i < opts.files; ++i) {
    const std::string file = (root / "synthetic" / ("image_" + std::to_string(i) + ".JPEG")).string();
    write_jpeg(file, photo_like_image(opts.width, opts.height, opts.seed * 1000003 + i), opts.quality);
    bytes += fs::file_size(file);
  }
  const ImageFolder data(root.string());

  // Decoding alone, on this thread.
  ImageF image;
  data.decode(0, image);  // warm-up
  const int decodes = std::max(opts.files, std::min(opts.images, 64));
  const std::clock_t decode_start = std::clock();  // no other thread runs yet
  for (int i = 0; i < decodes; ++i) data.decode(i % data.size(), image);
  const double decode_seconds = double(std::clock() - decode_start) / CLOCKS_PER_SEC;

  // Decoding and augmenting through the loader.
  Loader loader(data, bench_loader_config(opts));
  const LoaderTiming t = time_loader(loader, opts.images);
  const long long done = t.images;
  const double seconds = t.seconds, cpu_seconds = t.cpu_seconds;
  std::string sizes;
  const LoaderConfig& config = loader.config();
  if (!config.augment) {
    sizes = std::to_string(config.center_crop->crop);
  } else if (!config.crops.empty()) {
    for (const AugmentConfig& c : config.crops) sizes += (sizes.empty() ? "" : ", ") + std::to_string(c.out_size);
  } else {
    sizes = "2 x " + std::to_string(config.views.view1.out_size);
  }
  std::printf("files: %d JPEGs of %dx%d, quality %d, %.0f KB on average\n", opts.files, opts.width, opts.height,
              opts.quality, double(bytes) / opts.files / 1024.0);
  std::printf("decode only (1 thread): %.1f images per CPU-second, %.2f ms each\n", decodes / decode_seconds,
              1000.0 * decode_seconds / decodes);
  std::printf("mode: %s (views %s)  workers: %d  batch: %d  hardware threads: %u\n", opts.mode.c_str(),
              sizes.c_str(), opts.workers, opts.batch, std::max(1u, std::thread::hardware_concurrency()));
  std::printf("decoded and augmented images: %lld in %.3f s wall, %.3f s CPU\n", done, seconds, cpu_seconds);
  std::printf("images_per_s_per_core: %.1f\n", cpu_seconds > 0 ? double(done) / cpu_seconds : 0.0);
  std::printf("images_per_s: %.1f\n", double(done) / seconds);
}

}  // namespace

void add_bench_decode(CLI::App& bench) {
  auto opts = std::make_shared<DecodeBenchOptions>();
  auto* cmd = bench.add_subcommand("decode", "JPEG decoding + augmentation at 224 through the image-folder loader");
  cmd->add_option("--files", opts->files, "JPEG files written (the timed images cycle through them)")
      ->capture_default_str();
  cmd->add_option("--width", opts->width, "image width")->capture_default_str()->check(CLI::Range(8, 8192));
  cmd->add_option("--height", opts->height, "image height")->capture_default_str()->check(CLI::Range(8, 8192));
  cmd->add_option("--quality", opts->quality, "JPEG quality")->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_option("--images", opts->images, "images to time through the loader")->capture_default_str();
  cmd->add_option("--workers", opts->workers, "loader threads (0: on the calling thread)")->capture_default_str();
  cmd->add_option("--batch", opts->batch, "batch size (at most --files)")->capture_default_str();
  cmd->add_option("--mode", opts->mode, "two-view (2 x 224) | multi-crop (Table B) | eval (256 / centre 224)")
      ->check(CLI::IsMember({"two-view", "multi-crop", "eval"}))
      ->capture_default_str();
  cmd->add_option("--seed", opts->seed, "seed of the images and the augmentations")->capture_default_str();
  cmd->add_option("--keep-files", opts->keep_files,
                  "write the JPEGs into DIR/synthetic/ and keep them (bench/decode_peer.py times the same files)")
      ->type_name("DIR");
  cmd->callback([opts] { run_bench_decode(*opts); });
}

}  // namespace intl::bench
