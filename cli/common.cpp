// Options shared by every command (--device, --seed, --out, --config, --verbose).
#include "cli/command.h"

namespace intl::cli {

void add_common_options(CLI::App& cmd, CommonOptions& opts) {
  cmd.add_option("--device", opts.device, "cpu | cuda | auto (cuda when a GPU is usable)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  cmd.add_option("--seed", opts.seed, "random seed (data, initialisation, augmentation)")->capture_default_str();
  cmd.add_option("--out", opts.out, "output folder for RESULT.json, figures, checkpoints (default: runs/<study>-<time>)");
  cmd.add_option("--config", opts.config, "JSON file with any of this command's options; the command line wins");
  cmd.add_flag("--verbose,-v", opts.verbose, "print allocator counters and more detail");
}

}  // namespace intl::cli
