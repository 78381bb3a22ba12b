// `intl plot RESULT.json [MORE.json ...] -o fig.svg`: the figure of the first result's study, with the curves
// of further results overlaid (legend entries prefixed by the file stem). toy2d also writes fig-data.svg.
// The output is SVG only: -o must end in .svg and must not be one of the inputs.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "engine/error.h"
#include "plot/figures.h"
#include "results/diff.h"

namespace intl::cli {
namespace {

// "<stem>-data.svg" beside the figure: where data_figure goes.
std::string data_figure_path(const std::string& figure) {
  const std::filesystem::path p(figure);
  return (p.parent_path() / (p.stem().string() + "-data.svg")).string();
}

// Refuses an output that is not .svg, or that is one of the input files (it would be overwritten with SVG).
void check_output(const std::string& out, const std::vector<std::string>& inputs) {
  for (const std::string& target : {out, data_figure_path(out)})
    for (const std::string& input : inputs) {
      std::error_code ec;
      if (std::filesystem::exists(target, ec) && std::filesystem::equivalent(target, input, ec))
        throw UsageError("plot: the output '" + target + "' is the input file '" + input +
                         "'; writing the figure there would replace the result with SVG; give -o a new name "
                         "ending in .svg");
    }
  std::string ext = std::filesystem::path(out).extension().string();
  for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  if (ext != ".svg")
    throw UsageError("plot: -o '" + out + "': plot writes SVG only; give a file name ending in .svg (convert it "
                     "afterwards for another format)");
}

}  // namespace

void add_plot_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> files;
    std::string out;
    std::string out_dir;
    int columns = 0;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("plot", "draw the paper-style figure of a result's study as SVG");
  cmd->footer(
      "Figures by header.study: toy2d (Figure III; Figure II of the data goes to <name>-data.svg),\n"
      "whiten-instability (Figure IV), iternorm-cifar, pretrain; any other study: one panel per curve name.\n"
      "See docs/results.md for the curve and array names each figure reads.\n"
      "Output: -o FILE.svg when given (--out is then unused), else <first file's stem>.svg in --out DIR, else\n"
      "beside the first file. SVG only; an output that is one of the inputs is refused.");
  cmd->add_option("files", opts->files, "result files; the first one's study selects the figure")->required();
  cmd->add_option("-o,--output", opts->out,
                  "SVG file to write, ending in .svg (default: the first result's name with .svg, beside it or in "
                  "--out DIR)");
  cmd->add_option("--columns", opts->columns, "panels per row (default: up to 3)")->check(CLI::Range(0, 12));
  cmd->add_option("--out", opts->out_dir, "folder for the figure(s) when -o is not given (created if missing)")
      ->type_name("DIR");
  add_config_option(*cmd);
  cmd->callback([opts] {
    std::string out = opts->out;
    if (out.empty()) {
      const std::filesystem::path first(opts->files[0]);
      const std::string name = first.stem().string() + ".svg";
      out = opts->out_dir.empty() ? (first.parent_path() / name).string()
                                  : (std::filesystem::path(opts->out_dir) / name).string();
    }
    check_output(out, opts->files);
    const std::vector<results::Result> loaded = load_result_files(opts->files);
    const std::vector<std::string> labels = results::column_names(opts->files);
    plot::Figure main = plot::study_figure(loaded, labels);
    main.columns = opts->columns;
    plot::write_svg(main, out);
    std::printf("wrote %s\n", out.c_str());
    if (auto data = plot::data_figure(loaded, labels)) {
      data->columns = opts->columns;
      const std::string data_path = data_figure_path(out);
      plot::write_svg(*data, data_path);
      std::printf("wrote %s\n", data_path.c_str());
    }
  });
}

}  // namespace intl::cli
