// `intl plot RESULT.json [MORE.json ...] -o fig.svg`: the figure of the first result's study, with the curves
// of further results overlaid (legend entries prefixed by the file stem). toy2d also writes fig-data.svg.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "engine/error.h"
#include "plot/figures.h"
#include "results/diff.h"

namespace intl::cli {

void add_plot_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> files;
    std::string out;
    int columns = 0;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("plot", "draw the paper-style figure of a result's study as SVG");
  cmd->footer(
      "Figures by header.study: toy2d (Figure III; Figure II of the data goes to <name>-data.svg),\n"
      "whiten-instability (Figure IV), iternorm-cifar, pretrain; any other study: one panel per curve name.\n"
      "See docs/results.md for the curve and array names each figure reads.");
  cmd->add_option("files", opts->files, "result files; the first one's study selects the figure")->required();
  cmd->add_option("-o,--output", opts->out, "SVG file to write (default: the first result's name with .svg)");
  cmd->add_option("--columns", opts->columns, "panels per row (default: up to 3)")->check(CLI::Range(0, 12));
  cmd->callback([opts] {
    const std::vector<results::Result> loaded = load_result_files(opts->files);
    std::string out = opts->out;
    if (out.empty()) out = std::filesystem::path(opts->files[0]).replace_extension(".svg").string();
    const std::vector<std::string> labels = results::column_names(opts->files);
    plot::Figure main = plot::study_figure(loaded, labels);
    main.columns = opts->columns;
    plot::write_svg(main, out);
    std::printf("wrote %s\n", out.c_str());
    if (auto data = plot::data_figure(loaded, labels)) {
      data->columns = opts->columns;
      const std::filesystem::path p(out);
      const std::string data_path = (p.parent_path() / (p.stem().string() + "-data.svg")).string();
      plot::write_svg(*data, data_path);
      std::printf("wrote %s\n", data_path.c_str());
    }
  });
}

}  // namespace intl::cli
