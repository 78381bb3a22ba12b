// What the command lines of the sweep studies (whiten-instability, iternorm-cifar) share: the loader,
// progress, checkpoint and --resume options, the options of every command, and a callback that hands
// --device, --seed and --out to the study and turns an interruption into exit status 130.
#pragma once
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "studies/sweep.h"

namespace intl::cli {

// Registers those options on `cmd` (after the study's own) and its callback, which runs `run(*options)`.
// Options has the fields workers, log_every, checkpoints (its default says "on" or "off" in --help), resume,
// device, seed and out.
template <class Options, class Run>
void add_sweep_options(CLI::App& cmd, std::shared_ptr<Options> options, Run run) {
  auto common = std::make_shared<CommonOptions>();
  cmd.add_option("--workers", options->workers, "data loader threads")->capture_default_str();
  cmd.add_option("--log-every", options->log_every, "seconds between progress lines when not on a terminal")
      ->check(positive())
      ->capture_default_str();
  cmd.add_flag("--checkpoints,!--no-checkpoints", options->checkpoints,
               std::string("checkpoint every epoch, for --resume midway (default: ") +
                   (options->checkpoints ? "on" : "off") + ")");
  cmd.add_flag("--resume", options->resume, "continue the study in --out: finished runs are kept");
  add_common_options(cmd, *common);
  cmd.callback([options, common, run] {
    options->device = common->device;
    options->seed = common->seed;
    options->out = common->out;
    try {
      run(*options);
    } catch (const studies::Interrupted& e) {
      std::fprintf(stderr, "intl: %s\n", e.what());
      throw ExitCode{130};
    }
  });
}

}  // namespace intl::cli
