// Options shared by the commands (--device, --seed, --out, --config, --verbose, ...), the JSON reader behind
// --config: a flat object whose keys are option names without dashes ("T", "method", "init-cond"); a list
// value gives several values; the command line wins over the file; and the reading of comma-list options.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "engine/conv_algorithms.h"
#include "engine/precision.h"
#include "engine/error.h"

namespace intl::cli {
namespace {

// The option's value as CLI11 reads it from a command line; throws UsageError for an object or a null.
std::string scalar_text(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_unsigned()) return std::to_string(v.get<unsigned long long>());
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) {
    std::ostringstream s;
    s.precision(17);
    s << v.get<double>();
    return s.str();
  }
  throw UsageError(where + ": " + v.dump() + " is not a string, number or boolean");
}

// "intl run toy2d" for the toy2d command (the root App is named after argv[0] once parsed).
std::string command_name(const CLI::App& cmd) {
  std::string name;
  for (const CLI::App* at = &cmd; at->get_parent(); at = at->get_parent()) name = " " + at->get_name() + name;
  return "intl" + name;
}

// The JSON object in `path`. nlohmann keeps the last of repeated keys without a word, so the parser's
// callback refuses a repeat.
nlohmann::json read_config_object(const std::string& path) {
  const std::string where = "--config: '" + path + "'";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw UsageError(where + " is a folder, not a JSON file; give the path of a JSON file of options");
  std::ifstream in(path);
  if (!in)
    throw UsageError("--config: cannot read '" + path + "' (" + std::strerror(errno) + "); give a JSON file of "
                     "options");
  std::set<std::string> keys;
  auto no_repeats = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && !keys.insert(parsed.get<std::string>()).second)
      throw UsageError(where + ": key '" + parsed.get<std::string>() + "' appears twice; keep one");
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in, no_repeats);
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number past double's range (1e400)
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);  // drop "[json.exception...]"
    throw UsageError("--config: not valid JSON in '" + path + "' (" + what + ")");
  }
  if (!j.is_object())
    throw UsageError(where + " must hold one JSON object of options, e.g. {\"T\": [1, 3, 5]}");
  return j;
}

// The options a --config file has set in this process (set_by_config), each with its "--config: 'FILE': key
// 'KEY'" for messages.
std::map<const CLI::Option*, std::string>& config_set_options() {
  static std::map<const CLI::Option*, std::string> options;
  return options;
}

// Sets every option the file names and the command line left unset, and runs its callback, so conversion
// and checks apply as on the command line and their errors name the file and the key.
void apply_config_file(CLI::App& cmd, const std::string& path) {
  const CLI::Option* help = cmd.get_help_ptr();
  if (help && help->count() > 0) return;  // --help is answered whatever the file holds
  const nlohmann::json j = read_config_object(path);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key.rfind("_", 0) == 0) continue;  // "_comment" and similar notes
    const std::string where = "--config: '" + path + "': key '" + key + "'";
    CLI::Option* opt = cmd.get_option_no_throw("--" + key);
    if (!opt || opt->get_name() == "--config" || opt == cmd.get_help_ptr())
      throw UsageError("--config: '" + path + "' sets '" + key + "', which is not an option of '" + command_name(cmd) +
                       "' (see '" + command_name(cmd) + " --help')");
    if (opt->count() > 0) continue;  // the command line wins
    const nlohmann::json& v = it.value();
    if (v.is_object()) throw UsageError(where + ": holds an object; options are flat (a list gives several values)");
    const bool flag = opt->get_expected_min() == 0;
    if ((flag || opt->get_type_name() == "BOOLEAN") && !v.is_boolean())
      throw UsageError(where + ": " + opt->get_name() + " takes true or false, found " + v.dump());
    std::string text;
    if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) text += (i ? "," : "") + scalar_text(v[i], where);
    } else {
      text = scalar_text(v, where);
    }
    try {
      if (flag) {
        opt->add_result(opt->get_flag_value(key, text));  // "no-checkpoints": true sets checkpoints false
      } else {
        opt->add_result(text);
      }
      opt->run_callback();
      config_set_options()[opt] = where;
    } catch (const CLI::ConversionError&) {
      throw UsageError(where + ": " + v.dump() + " is not a valid " + opt->get_type_name());
    } catch (const CLI::ParseError& e) {
      std::string what = e.what();
      if (what.rfind(opt->get_name() + ": ", 0) == 0) what = what.substr(opt->get_name().size() + 2);
      throw UsageError(where + ": " + what);
    }
  }
}

// CLI11 2.1.2 splits a word at an option's delimiter as it reads it and drops the empty items ("1,,3" reads as
// 1 and 3), and an option whose word yields no item ("," or "") goes on to take the next word, an option name
// included. A comma list is therefore read one whole word per occurrence and split here, refusing empty items
// with a message. CLI::Option keeps its conversion callback protected, with no setter; OptionCallback reaches it.
struct OptionCallback : CLI::Option {
  static CLI::callback_t& of(CLI::Option& option) { return option.*&OptionCallback::callback_; }
};

void read_comma_lists_whole(CLI::App& cmd) {
  for (CLI::Option* opt : cmd.get_options()) {
    if (opt->get_delimiter() != ',') continue;
    const std::string name = opt->get_name();
    CLI::callback_t& callback = OptionCallback::of(*opt);
    callback = [name, convert = callback](const CLI::results_t& words) {
      CLI::results_t items;
      for (const std::string& word : words)
        for (size_t start = 0, comma = 0; comma != std::string::npos; start = comma + 1) {
          comma = word.find(',', start);
          items.push_back(word.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
          if (items.back().empty())
            throw CLI::ValidationError(name, word.empty() ? std::string("the value is empty; give one or more items "
                                                                        "separated by commas")
                                                          : "'" + word + "' has an empty item; separate items by "
                                                                         "single commas, none leading or trailing");
        }
      return convert(items);
    };
    opt->delimiter('\0')->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    if (opt->get_type_name().find(',') == std::string::npos) opt->type_name(opt->get_type_name() + ",...");
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
  // A 64-bit unsigned seed: "-1" would otherwise wrap to 2^64 - 1, and a longer number saturate, without a word.
  cmd.add_option("--seed", opts.seed, "random seed (data, initialisation, augmentation)")
      ->check(CLI::Validator(
          [](const std::string& value) -> std::string {
            const bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
            if (!digits) return "'" + value + "' is not an integer >= 0";
            // CLI11 reads a leading 0 as octal ("010" would be 8).
            if (value.size() > 1 && value[0] == '0') return "'" + value + "' has a leading 0; write it without";
            errno = 0;
            std::strtoull(value.c_str(), nullptr, 10);
            return errno == ERANGE ? "'" + value + "' is larger than 2^64 - 1" : "";
          },
          "", "non-negative"))
      ->capture_default_str();
  cmd.add_option("--out", opts.out, "output folder for RESULT.json, figures, checkpoints (default: runs/<study>-<time>)");
  add_config_option(cmd);
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
  read_comma_lists_whole(cmd);
}

// CLI11 2.1.2 reads a config file for the top-level app only, and every intl command is a subcommand; so the
// command reads its own file in the --config option's callback. CLI11 runs the callbacks of the options given
// in the order the options were added and checks ->required() options after all of them; the file fills only
// options that have no value yet, so an option it sets satisfies ->required().
void add_config_option(CLI::App& cmd) {
  cmd.add_option_function<std::string>(
      "--config", [&cmd](const std::string& path) { apply_config_file(cmd, path); },
      "JSON file with any of this command's options (keys without dashes); the command line wins")
      ->type_name("FILE.json");
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

namespace {
CLI::Validator finite_number(bool positive) {
  return CLI::Validator(
      [positive](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(text, &used);
          if (used == text.size() && std::isfinite(v) && (positive ? v > 0 : v >= 0)) return "";
        } catch (const std::exception&) {
        }
        return std::string("must be a finite number ") + (positive ? "> 0" : ">= 0") + ", found '" + text + "'";
      },
      positive ? "NUMBER > 0" : "NUMBER >= 0");
}
}  // namespace

CLI::Validator non_negative() { return finite_number(false); }
CLI::Validator positive() { return finite_number(true); }

bool set_by_config(const CLI::Option* option) { return config_set_options().count(option) > 0; }

std::string name_config_source(const std::string& message) {
  // "--NAME: what" or "--NAME what".
  const size_t end = message.find_first_of(": ");
  if (message.rfind("--", 0) != 0 || end == std::string::npos) return message;
  const std::string name = message.substr(0, end);
  const size_t what = message.compare(end, 2, ": ") == 0 ? end + 2 : end + 1;
  for (const auto& [option, where] : config_set_options())
    if (option->get_name() == name) return where + ": " + message.substr(what);
  return message;
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
