// `intl eval`: placeholder until the command lands.
#include "cli/command.h"
#include "engine/error.h"

namespace intl::cli {

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "(not yet available)");
  cmd->allow_extras();
  cmd->callback([] { throw UsageError("'intl eval' is not available in this build yet"); });
}

}  // namespace intl::cli
