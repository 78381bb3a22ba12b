// `intl bench iternorm`: times the INTL loss (channel-whitening IterNorm + trace loss + norm_mse) forward and
// backward on two views, as ../shared/peers/iternorm_bench.py does in PyTorch.
#pragma once
#include <CLI/CLI.hpp>

namespace intl::bench {
void add_bench_iternorm(CLI::App& bench);
}
