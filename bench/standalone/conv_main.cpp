// A small executable that runs only `bench conv`, for timing the conv-layer kernels while the rest of the CLI is
// elsewhere: `ninja intl_bench_conv && ./intl_bench_conv bench conv --batch 32 256`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "engine/error.h"

namespace intl::cli {
void add_bench_conv(CLI::App& bench);
}

int main(int argc, char** argv) {
  CLI::App app{"intl conv-layer kernel benchmark"};
  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  intl::cli::add_bench_conv(*bench);
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const intl::UsageError& e) {
    std::fprintf(stderr, "intl: %s\n", e.what());
    return 2;
  } catch (const intl::Error& e) {
    std::fprintf(stderr, "intl: %s\n", e.what());
    return 1;
  }
  return 0;
}
