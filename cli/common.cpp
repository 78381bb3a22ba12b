// Options shared by every command (--device, --seed, --out, --config, --verbose), and the JSON reader behind
// --config: a flat object whose keys are option names without dashes ("T", "method", "init-cond"); a list
// value gives several values; the command line wins over the file.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "engine/conv_algorithms.h"
#include "engine/precision.h"
#include "engine/error.h"

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

// CLI11 2.1.2 reads a config file for the top-level app only, and every intl command is a subcommand; so the
// command reads its own file once its command line is parsed (before its callback), filling only the options
// the command line left unset.
void apply_config_file(CLI::App& cmd) {
  CLI::Option* config = cmd.get_config_ptr();
  if (!config || config->count() == 0) return;
  const std::string path = config->as<std::string>();
  std::ifstream in(path);
  if (!in) throw UsageError("--config: cannot read '" + path + "'; give a JSON file of options");
  std::vector<CLI::ConfigItem> items;
  try {
    items = JsonConfig().from_config(in);
  } catch (const CLI::ConversionError& e) {
    throw UsageError(std::string(e.what()) + " in '" + path + "'");
  }
  for (const CLI::ConfigItem& item : items) {
    CLI::Option* opt = cmd.get_option_no_throw("--" + item.name);
    if (!opt || opt == config)
      throw UsageError("--config: '" + path + "' sets '" + item.name + "', which is not an option of 'intl " +
                       cmd.get_parent()->get_name() + " " + cmd.get_name() + "' (see --help)");
    if (opt->count() > 0) continue;  // the command line wins
    opt->add_result(item.inputs);
    opt->run_callback();
  }
}

}  // namespace

namespace {
bool g_verbose = false;
}  // namespace

void add_common_options(CLI::App& cmd, CommonOptions& opts) {
  cmd.add_option("--device", opts.device, "cpu | cuda | auto (cuda when a GPU is usable)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  // A 64-bit unsigned seed: "-1" would otherwise wrap to 2^64 - 1 without a word.
  cmd.add_option("--seed", opts.seed, "random seed (data, initialisation, augmentation)")
      ->check(CLI::Validator(
          [](const std::string& value) -> std::string {
            return value.find('-') == std::string::npos ? "" : "'" + value + "' is negative; give an integer >= 0";
          },
          "", "non-negative"))
      ->capture_default_str();
  cmd.add_option("--out", opts.out, "output folder for RESULT.json, figures, checkpoints (default: runs/<study>-<time>)");
  cmd.config_formatter(std::make_shared<JsonConfig>());
  cmd.set_config("--config", "", "JSON file with any of this command's options (keys without dashes); the command line wins");
  cmd.allow_config_extras(CLI::config_extras_mode::error);
  cmd.parse_complete_callback([&cmd] { apply_config_file(cmd); });
  cmd.add_flag("--verbose,-v", opts.verbose, "print allocator counters and more detail")
      ->each([](const std::string&) { g_verbose = true; });
  cmd.add_option("--precision", opts.precision,
                 "GPU GEMMs and convolutions: fp32 | bf16 (bfloat16 operands on tensor cores, float32 accumulation "
                 "and master weights; whitening, eigensolvers and losses stay float32); the CPU ignores it")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->each([](const std::string& name) { set_matmul_precision(parse_matmul_precision(name)); })
      ->capture_default_str();
  cmd.add_option("--conv-algo", opts.conv_algo,
                 "how a GPU picks each convolution's cuDNN algorithm: heuristic (cuDNN's ranking, deterministic, the "
                 "same on every run) | measured (times every algorithm once per shape, the fastest deterministic "
                 "one) | fastest (as measured, non-deterministic ones allowed); the CPU ignores it")
      ->check(CLI::IsMember({"heuristic", "measured", "fastest"}))
      ->each([](const std::string& name) { set_conv_algo_search(parse_conv_algo_search(name)); })
      ->capture_default_str();
}

std::vector<results::Result> load_result_files(const std::vector<std::string>& paths) {
  std::vector<results::Result> loaded;
  for (const std::string& path : paths) {
    try {
      loaded.push_back(results::load_result(path));
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  return loaded;
}

CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(text, &used);
          if (used == text.size() && v >= 0) return "";
        } catch (const std::exception&) {
        }
        return "must be a number >= 0, found '" + text + "'";
      },
      "NUMBER >= 0");
}

void add_loss_form_option(CLI::App& cmd, IntlLossForm& form) {
  cmd.add_option_function<std::string>(
         "--loss-form", [&form](const std::string& name) { form = parse_intl_loss_form(name); },
         "how the INTL loss is computed, the same value either way: auto (default: spectral on the CPU, newton on "
         "a GPU) | spectral (one eigensolve per view) | newton (IterNorm's matrix products literally)")
      ->check(CLI::IsMember({"auto", "spectral", "newton"}));
}

bool verbose_requested() { return g_verbose; }

}  // namespace intl::cli
