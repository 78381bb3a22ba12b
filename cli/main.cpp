// The `intl` executable: registers every command and turns exceptions into one-line messages and exit codes
// (0 success, 1 failure, 2 usage error; `intl diff` also returns 1 when results disagree).
#include <cstdio>

#include "cli/command.h"
#include "engine/allocator.h"
#include "engine/error.h"

int main(int argc, char** argv) {
  intl::configure_process_memory();
  CLI::App app{"intl: Spectral Transformation and INTL (ICLR 2024), reproduced and extended"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(INTL_VERSION) + " (" + INTL_GIT_REV + ")");
  intl::cli::add_run_command(app);
  intl::cli::add_pretrain_command(app);
  intl::cli::add_eval_command(app);
  intl::cli::add_diff_command(app);
  intl::cli::add_plot_command(app);
  intl::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const intl::cli::ExitCode& e) {
    return e.code;
  } catch (const intl::UsageError& e) {
    std::fprintf(stderr, "intl: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "intl: %s\n", e.what());
    return 1;
  }
  return 0;
}
