// `intl bench`: placeholder until the command lands.
#include "cli/command.h"
#include "engine/error.h"

namespace intl::cli {

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "(not yet available)");
  cmd->allow_extras();
  cmd->callback([] { throw UsageError("'intl bench' is not available in this build yet"); });
}

}  // namespace intl::cli
