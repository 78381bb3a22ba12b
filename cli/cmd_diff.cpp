// `intl diff A.json B.json [C.json ...]`: compares result files (or a result with experiments/paper/*.json).
// Exit 0 when every metric held by the first file and another agrees within tolerance, 1 when some do not or
// none could be compared, 2 for bad options or unreadable files. --out DIR also writes DIR/diff.json.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "engine/error.h"
#include "results/diff.h"
#include "results/out_dir.h"

namespace intl::cli {

void add_diff_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> files;
    results::DiffOptions diff;
    std::string format = "text";
    std::string out;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("diff", "compare result files, or a result with experiments/paper/*.json");
  cmd->footer(
      "Metrics match by \"run/metric\"; a file with one run matches by the metric name alone. The first file is\n"
      "the reference: x agrees when |x - first| <= atol + rtol * |first|. Metrics missing from some files are\n"
      "listed but not compared, as are timings (names ending in _s) unless --keys picks them; curves and\n"
      "configuration are reported, never judged.\n"
      "Exit status: 0 all compared metrics agree, 1 some differ or none could be compared (no metric held by\n"
      "both the reference and another file; a line on stderr says why), 2 bad options or unreadable files.");
  cmd->add_option("files", opts->files, "result files (two or more); the first is the reference")->required();
  cmd->add_option("--rtol", opts->diff.rtol, "relative tolerance, times |reference|")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("--atol", opts->diff.atol, "absolute tolerance")->check(non_negative())->capture_default_str();
  cmd->add_option("--keys", opts->diff.key_patterns,
                  "only metrics and curves whose \"run/metric\" key or metric name matches one of these shell globs "
                  "(comma-separated, may be repeated; e.g. 'linear_*,knn*')")
      ->expected(1)  // one word per --keys, so files may follow it; split at commas below
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--format", opts->format, "text | markdown | csv (metrics only) | json")
      ->check(CLI::IsMember({"text", "markdown", "csv", "json"}))
      ->capture_default_str();
  cmd->add_option("--out", opts->out, "also write the comparison, as --format json, to DIR/diff.json")
      ->type_name("DIR");
  add_config_option(*cmd);
  cmd->callback([opts] {
    if (opts->files.size() < 2)
      throw UsageError("diff: give at least two result files (found " + std::to_string(opts->files.size()) + ")");
    std::vector<std::string> patterns;
    for (const std::string& word : opts->diff.key_patterns)
      for (size_t start = 0, comma = 0; comma != std::string::npos; start = comma + 1) {
        comma = word.find(',', start);
        const std::string p = word.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (p.empty())
          throw UsageError("--keys: '" + word + "' has an empty pattern; separate patterns by single commas, none "
                           "leading or trailing");
        patterns.push_back(p);
      }
    opts->diff.key_patterns = patterns;
    if (!opts->out.empty()) results::check_out_dir(opts->out);  // a bad path is bad usage, not a difference
    const std::vector<results::Result> loaded = load_result_files(opts->files);
    const auto comparison =
        results::compare_results(loaded, results::column_names(opts->files), opts->diff);
    const std::string report = results::format_comparison(comparison, opts->format);
    std::fwrite(report.data(), 1, report.size(), stdout);
    if (!opts->out.empty()) {
      const std::string path = (std::filesystem::path(opts->out) / "diff.json").string();
      results::write_file_atomically(path, results::format_comparison(comparison, "json"));
      if (opts->format == "text" || opts->format == "markdown") std::printf("\nwrote %s\n", path.c_str());
    }
    std::fflush(stdout);
    if (comparison.compared == 0) {
      std::fprintf(stderr, "intl: diff: nothing compared: %s\n", results::nothing_compared_reason(comparison).c_str());
      throw ExitCode{1};
    }
    if (!comparison.agree()) throw ExitCode{1};
  });
}

}  // namespace intl::cli
