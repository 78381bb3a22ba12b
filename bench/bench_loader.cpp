// `intl bench loader`: writes a small synthetic CIFAR dataset to a temporary folder, reads it back with the
// real reader, and times the two-view augmentation loader over --images images.
#include "bench/bench_loader.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "data/cifar.h"
#include "data/loader.h"
#include "engine/error.h"

namespace intl::bench {

namespace fs = std::filesystem;

TemporaryFolder::TemporaryFolder(const std::string& name)
    : path(fs::temp_directory_path() / ("intl-bench-" + name + "-" + std::to_string(getpid()))) {}

TemporaryFolder::~TemporaryFolder() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

LoaderTiming time_loader(Loader& loader, long long images) {
  loader.start_epoch(0);
  loader.next();
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  LoaderTiming t;
  for (int epoch = 1; t.images < images; ++epoch) {
    loader.start_epoch(epoch);
    while (t.images < images) {
      const Batch* batch = loader.next();
      if (!batch) break;
      t.images += batch->n;
    }
  }
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.cpu_seconds = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  return t;
}

namespace {

struct LoaderBenchOptions {
  std::string dataset = "cifar10";
  int workers = int(std::max(1u, std::thread::hardware_concurrency()));
  int batch = 256;
  int images = 20000;
  uint64_t seed = 0;
};

// Removes the temporary dataset folder however the benchmark ends.
void run_bench_loader(const LoaderBenchOptions& opts) {
  if (opts.workers < 0 || opts.batch < 1 || opts.images < 1)
    throw UsageError("bench loader: --workers must be >= 0, --batch and --images >= 1");
  const CifarKind kind = parse_cifar_kind(opts.dataset);
  TemporaryFolder folder("loader");
  const int n_train = std::max(opts.batch, std::min(opts.images, 10000));
  make_synthetic_cifar(folder.path.string(), kind, n_train, 10, opts.seed);
  const CifarDataset data = load_cifar(folder.path.string(), kind, Split::train);

  Loader loader(data, cifar_train_loader_config(opts.batch, opts.seed, opts.workers));
  const LoaderTiming t = time_loader(loader, opts.images);
  const long long done = t.images;
  const double seconds = t.seconds, cpu_seconds = t.cpu_seconds;
  const double rate = double(done) / seconds;
  const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
  std::printf("dataset: %s (synthetic, %d images)\n", opts.dataset.c_str(), data.size());
  std::printf("workers: %d  batch: %d  hardware threads: %d\n", opts.workers, opts.batch, hardware);
  std::printf("augmented images: %lld (2 views each) in %.3f s wall, %.3f s CPU\n", done, seconds, cpu_seconds);
  // Per core: images per CPU-second, which does not depend on how busy the machine is.
  std::printf("images_per_s_per_core: %.0f\n", cpu_seconds > 0 ? double(done) / cpu_seconds : 0.0);
  std::printf("images_per_s: %.0f\n", rate);
}

}  // namespace

void add_bench_loader(CLI::App& bench) {
  auto opts = std::make_shared<LoaderBenchOptions>();
  auto* cmd = bench.add_subcommand("loader", "throughput of the two-view CIFAR augmentation loader");
  cmd->add_option("--dataset", opts->dataset, "cifar10 | cifar100 (synthetic images in that format)")
      ->check(CLI::IsMember({"cifar10", "cifar100"}))
      ->capture_default_str();
  cmd->add_option("--workers", opts->workers, "loader threads (0: on the calling thread)")->capture_default_str();
  cmd->add_option("--batch", opts->batch, "batch size")->capture_default_str();
  cmd->add_option("--images", opts->images, "images to time")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "seed of the data and the augmentations")->capture_default_str();
  cmd->callback([opts] { run_bench_loader(*opts); });
}

}  // namespace intl::bench
