// `intl pretrain`: placeholder until the command lands.
#include "cli/command.h"
#include "engine/error.h"

namespace intl::cli {

void add_pretrain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("pretrain", "(not yet available)");
  cmd->allow_extras();
  cmd->callback([] { throw UsageError("'intl pretrain' is not available in this build yet"); });
}

}  // namespace intl::cli
