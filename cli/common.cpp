// Options shared by every command (--device, --seed, --out, --config, --verbose), and the JSON reader behind
// --config: a flat object whose keys are option names without dashes ("T", "method", "init-cond"); a list
// value gives several values; the command line wins over the file.
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"

namespace intl::cli {
namespace {

std::string scalar_text(const nlohmann::json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) {
    std::ostringstream s;
    s.precision(17);
    s << v.get<double>();
    return s.str();
  }
  throw CLI::ConversionError("--config: key '" + key + "' has a value that is not a string, number or boolean");
}

class JsonConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return "{}"; }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(input);
    } catch (const nlohmann::json::parse_error& e) {
      throw CLI::ConversionError(std::string("--config: not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object()) throw CLI::ConversionError("--config: the file must hold one JSON object of options");
    std::vector<CLI::ConfigItem> items;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key().rfind("_", 0) == 0) continue;  // "_comment" and similar notes
      CLI::ConfigItem item;
      item.name = it.key();
      if (it->is_array()) {
        std::string joined;
        for (const auto& v : *it) joined += (joined.empty() ? "" : ",") + scalar_text(v, it.key());
        item.inputs = {joined};
      } else if (it->is_object()) {
        throw CLI::ConversionError("--config: key '" + it.key() + "' holds an object; options are flat");
      } else {
        item.inputs = {scalar_text(*it, it.key())};
      }
      items.push_back(std::move(item));
    }
    return items;
  }
};

}  // namespace

void add_common_options(CLI::App& cmd, CommonOptions& opts) {
  cmd.add_option("--device", opts.device, "cpu | cuda | auto (cuda when a GPU is usable)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  cmd.add_option("--seed", opts.seed, "random seed (data, initialisation, augmentation)")->capture_default_str();
  cmd.add_option("--out", opts.out, "output folder for RESULT.json, figures, checkpoints (default: runs/<study>-<time>)");
  cmd.config_formatter(std::make_shared<JsonConfig>());
  cmd.set_config("--config", "", "JSON file with any of this command's options (keys without dashes); the command line wins");
  cmd.allow_config_extras(CLI::config_extras_mode::error);
  cmd.add_flag("--verbose,-v", opts.verbose, "print allocator counters and more detail");
}

}  // namespace intl::cli
