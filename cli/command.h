// How the command line is put together: each command file defines one `add_*_command` that registers a
// CLI11 subcommand and its callback. main.cpp calls them all. Callbacks throw intl::UsageError for bad
// options (exit 2) and intl::Error for failures (exit 1); main prints "intl: <message>" on one line.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "losses/intl_loss.h"
#include "results/result.h"

namespace intl::cli {

void add_run_command(CLI::App& app);       // intl run toy2d | whiten-instability | iternorm-cifar
void add_pretrain_command(CLI::App& app);  // intl pretrain cifar10 | cifar100 | imagenet100 | imagenet
void add_eval_command(CLI::App& app);      // intl eval knn | linear | semi
void add_diff_command(CLI::App& app);      // intl diff A.json B.json ...
void add_plot_command(CLI::App& app);      // intl plot RESULT.json ... -o fig.svg
void add_bench_command(CLI::App& app);     // intl bench iternorm | train | loader

// Thrown by a callback that finished but wants a specific exit code (e.g. `intl diff` disagreeing: 1).
struct ExitCode {
  int code;
};

// The options of commands that compute (run, pretrain, eval, bench iternorm | train). Filled by
// add_common_options; read by the command's callback.
struct CommonOptions {
  std::string device = "auto";   // cpu | cuda | auto
  uint64_t seed = 0;
  std::string out;               // result folder; empty: runs/<study>-<time>
  bool verbose = false;
  std::string precision = "fp32";  // GPU GEMMs and convolutions: fp32 | bf16 (engine/precision.h)
  std::string conv_algo = "heuristic";  // GPU convolution algorithms (engine/conv_algorithms.h)
};
// Adds --device, --seed, --out, --config (add_config_option), --verbose, --precision and --conv-algo, and makes
// every comma-list option added before it (->delimiter(',')) take exactly one word per occurrence ("--T 1,3,5",
// repeatable: "--T 1 --T 3"), refusing empty items ("1,,3", "1,", ","). Call it after the command's options.
// Such a list option must be bound to a variable (it keeps CLI11's conversion), and its ->check() validators see
// the whole word ("1,3,5"): check the items in the command instead.
void add_common_options(CLI::App& cmd, CommonOptions& opts);

// --config FILE.json: any of the command's options from a JSON object (keys without dashes; a list gives
// several values; keys starting with "_" are notes); the command line wins. The file is applied before CLI11
// checks ->required(), so a required option may come from it. Errors name the file and the key.
void add_config_option(CLI::App& cmd);

// Whether `option`'s value came from a --config file rather than the command line: for options that exclude
// each other, where the command line's should win over the file's.
bool set_by_config(const CLI::Option* option);

// A usage error about an option ("--NAME: what") whose value a --config file gave, retold as one about the file
// ("--config: 'FILE': key 'KEY': what"), as errors found while reading the file are; other messages unchanged.
std::string name_config_source(const std::string& message);

// --loss-form auto | spectral | newton: how a two-view INTL loss is computed (losses/intl_loss.h).
void add_loss_form_option(CLI::App& cmd, IntlLossForm& form);

// Checks for options that must be a finite number >= 0 or > 0, whose message names the value found (CLI11's
// NonNegativeNumber prints the largest double as the upper bound, and its Range lets NaN through).
CLI::Validator non_negative();
CLI::Validator positive();

// The result files named on a command line; one that cannot be read or parsed is a UsageError (exit 2) naming
// the file and what is wrong.
std::vector<results::Result> load_result_files(const std::vector<std::string>& paths);

// Whether any command was given --verbose: main then prints the allocators' counters when the command ends.
bool verbose_requested();

}  // namespace intl::cli
