// `intl bench train`: times the pre-training step of SPEC 3.4 (CIFAR ResNet-18 + projector 512-2048-2048-2048
// + INTL loss (spectral) + SGD step, two views, float32) on fixed random views, as
// ../shared/peers/resnet18_cifar_bench.py does in PyTorch; also peak memory and whether the step allocates.
#pragma once
#include <CLI/CLI.hpp>

namespace intl::bench {
void add_bench_train(CLI::App& bench);
}
