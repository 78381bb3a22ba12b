// The paper-style figure of each study, drawn from result files alone (header.study selects it): toy2d
// (Figures II and III), whiten-instability (Figure IV), iternorm-cifar, pretrain, and every curve otherwise.
// The curve and array names each figure reads are listed in docs/results.md.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "plot/svg.h"
#include "results/result.h"

namespace intl::plot {

// The main figure of results[0]'s study; the curves of further results are overlaid, their legend entries
// prefixed by "<label>: ". labels: one per result (e.g. file stems); empty: "1", "2", ...
// Throws intl::Error when no result holds anything to draw.
Figure study_figure(const std::vector<results::Result>& results, const std::vector<std::string>& labels = {});

// A second figure where the study has one: toy2d's Figure II (scatter of each run's arrays "points" and
// "initial_output"). nullopt when there is none.
std::optional<Figure> data_figure(const std::vector<results::Result>& results,
                                  const std::vector<std::string>& labels = {});

// Writes study_figure to path and, when there is one, data_figure beside it as "<stem>-data.svg".
// Returns the paths written.
std::vector<std::string> write_figure(const std::vector<results::Result>& results, const std::string& path,
                                      const std::vector<std::string>& labels = {});

// What a study calls when it finishes: writes "<study>.svg" (and "<study>-data.svg") into out_dir.
// A result with nothing to draw writes nothing. Returns the paths written.
std::vector<std::string> write_study_figures(const results::Result& result, const std::string& out_dir);

}  // namespace intl::plot
