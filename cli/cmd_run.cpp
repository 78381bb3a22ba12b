// `intl run STUDY`: the paper's studies, one subcommand each, registered by the study's own CLI file
// (studies/<study>_cli.cpp).
#include "cli/command.h"

namespace intl::cli {

void add_run_toy2d(CLI::App& run);  // studies/toy2d_cli.cpp
void add_run_whiten_instability(CLI::App& run);  // studies/whiten_instability_cli.cpp
void add_run_iternorm_cifar(CLI::App& run);      // studies/iternorm_cifar_cli.cpp

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "run one of the paper's studies (toy2d, whiten-instability, iternorm-cifar)");
  cmd->require_subcommand(1);
  add_run_toy2d(*cmd);
  add_run_whiten_instability(*cmd);
  add_run_iternorm_cifar(*cmd);
}

}  // namespace intl::cli
