// `intl bench`: the benchmarks behind the speed claims (run by hand, reported in notes; never timed tests).
#include "bench/bench_decode.h"
#include "bench/bench_iternorm.h"
#include "bench/bench_loader.h"
#include "bench/bench_train.h"
#include "cli/command.h"

namespace intl::cli {

void add_bench_conv(CLI::App& bench);  // bench/bench_conv.cpp

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "benchmarks: iternorm, train, conv, loader, decode");
  bench->require_subcommand(1);
  bench::add_bench_iternorm(*bench);
  bench::add_bench_loader(*bench);
  bench::add_bench_train(*bench);
  add_bench_conv(*bench);
  bench::add_bench_decode(*bench);
}

}  // namespace intl::cli
