// `intl bench loader`: throughput of the two-view CIFAR augmentation loader on synthetic data in the real
// file format, so it runs anywhere. cli/cmd_bench.cpp calls add_bench_loader on its `bench` command.
#pragma once
#include <CLI/CLI.hpp>

namespace intl::bench {

// Registers `loader` (--dataset cifar10|cifar100, --workers, --batch, --images, --seed) on `bench`. It
// prints wall and CPU time, `images_per_s_per_core` (images per CPU-second of all threads, which does not
// depend on how busy the machine is) and, last, `images_per_s: X` (wall clock). An image is two views.
void add_bench_loader(CLI::App& bench);

}  // namespace intl::bench
