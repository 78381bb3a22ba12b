// `intl bench loader`: throughput of the two-view CIFAR augmentation loader on synthetic data in the real
// file format, so it runs anywhere. cli/cmd_bench.cpp calls add_bench_loader on its `bench` command.
#pragma once
#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

#include "data/loader.h"

namespace intl::bench {

// A folder under the system's temporary directory for a benchmark's data ("intl-bench-NAME-PID"), removed
// with what it holds when the benchmark ends.
struct TemporaryFolder {
  std::filesystem::path path;
  explicit TemporaryFolder(const std::string& name);
  ~TemporaryFolder();
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
};

// Draws `images` samples from `loader`, epoch after epoch from epoch 1, after one warm-up batch of epoch 0
// (threads started, scratch allocated): how many came out, in how many wall seconds, and how many CPU seconds
// of all the process's threads.
struct LoaderTiming {
  long long images = 0;
  double seconds = 0, cpu_seconds = 0;
};
LoaderTiming time_loader(Loader& loader, long long images);

// Registers `loader` (--dataset cifar10|cifar100, --workers, --batch, --images, --seed) on `bench`. It
// prints wall and CPU time, `images_per_s_per_core` (images per CPU-second of all threads, which does not
// depend on how busy the machine is) and, last, `images_per_s: X` (wall clock). An image is two views.
void add_bench_loader(CLI::App& bench);

}  // namespace intl::bench
