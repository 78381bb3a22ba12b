// `intl run`: placeholder until the command lands.
#include "cli/command.h"
#include "engine/error.h"

namespace intl::cli {

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "(not yet available)");
  cmd->allow_extras();
  cmd->callback([] { throw UsageError("'intl run' is not available in this build yet"); });
}

}  // namespace intl::cli
