// `intl run STUDY`: the paper's studies, one subcommand each, registered by the study's own CLI file
// (studies/<study>_cli.cpp).
#include "cli/command.h"

namespace intl::cli {

void add_run_toy2d(CLI::App& run);  // studies/toy2d_cli.cpp

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "run one of the paper's studies (toy2d)");
  cmd->require_subcommand(1);
  add_run_toy2d(*cmd);
}

}  // namespace intl::cli
