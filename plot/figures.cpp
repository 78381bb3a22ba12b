// Study figures: which curves and arrays each study's figure reads, how runs become panels and series, and
// how several result files overlay (panels matched by key, legend entries prefixed by the file's label).
#include "plot/figures.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include "engine/error.h"

namespace intl::plot {
namespace {

using results::Array;
using results::Curve;
using results::Result;
using results::Run;

struct Source {
  const Result& result;
  std::string prefix;  // "<label>: " when several results are overlaid, else ""
  int file;
};

// Panels by key in order of creation, and colours that stay with a key (a run, a d) across panels.
struct Canvas {
  std::vector<Chart> charts;
  std::map<std::string, size_t> index;
  std::map<std::string, int> colors;

  Chart& panel(const std::string& key, const std::string& title, const std::string& x_label,
               const std::string& y_label, YScale scale = YScale::automatic) {
    auto [it, fresh] = index.emplace(key, charts.size());
    if (fresh) {
      Chart c;
      c.title = title, c.x_label = x_label, c.y_label = y_label, c.y_scale = scale;
      charts.push_back(c);
    }
    return charts[it->second];
  }
  int color(const std::string& key) { return colors.emplace(key, int(colors.size())).first->second; }
};

Series line(const std::string& label, const Curve& c, int color, bool dashed = false) {
  Series s;
  s.label = label, s.x = c.x, s.y = c.y, s.color = color, s.dashed = dashed;
  return s;
}

// An X at the curve's last finite point at or before the run's first crash event, if it crashed.
void add_crash_marker(Chart& chart, const Run& run, const Curve& curve, int color, const std::string& who) {
  const results::Event* crash = run.first_event("crash");
  if (!crash) return;
  for (size_t i = curve.y.size(); i-- > 0;) {
    if (!std::isfinite(curve.y[i]) || !std::isfinite(curve.x[i]) || (crash->step >= 0 && curve.x[i] > double(crash->step)))
      continue;
    std::string tip = who + ": crash at step " + std::to_string(crash->step);
    if (!crash->message.empty()) tip += " (" + crash->message + ")";
    chart.markers.push_back(Marker{curve.x[i], curve.y[i], color, "crash", tip});
    return;
  }
}

// Figure III: one panel per run; eigenvalues of cov(Z) dashed, of cov(Zhat) solid; min and max share colours.
void toy2d_panels(const Source& s, Canvas& canvas) {
  struct Line {
    const char* curve;
    const char* legend;
    bool dashed;
    int pair;
  };
  const Line lines[] = {{"z_eig_min", "λmin cov(Z)", true, 0}, {"z_eig_max", "λmax cov(Z)", true, 1},
                        {"zhat_eig_min", "λmin cov(Ẑ)", false, 0}, {"zhat_eig_max", "λmax cov(Ẑ)", false, 1}};
  for (const Run& run : s.result.runs) {
    const Curve* marker_curve = nullptr;
    for (const Line& l : lines) {
      auto it = run.curves.find(l.curve);
      if (it == run.curves.end()) continue;
      Chart& c = canvas.panel(run.name, run.name, it->second.x_label, "eigenvalue");
      c.series.push_back(line(s.prefix + l.legend, it->second, 2 * s.file + l.pair, l.dashed));
      if (!marker_curve || std::string(l.curve) == "zhat_eig_min") marker_curve = &it->second;
    }
    if (marker_curve) add_crash_marker(canvas.charts[canvas.index.at(run.name)], run, *marker_curve, 2 * s.file + 3,
                                       s.prefix + run.name);
  }
}

// Figure IV: log10(λmin/λmax) of Σ per run, one colour per embedding size d, crashes marked, and a table of
// crashes per d when some d has several runs (seeds).
void instability_panels(const Source& s, Canvas& canvas) {
  struct Group {
    std::string name;
    int runs = 0;
    std::vector<int64_t> crash_steps;
  };
  std::vector<Group> groups;
  for (const Run& run : s.result.runs) {
    auto it = run.curves.find("log10_inv_cond");
    if (it == run.curves.end()) continue;
    Chart& c = canvas.panel("instability", "Hard whitening (ZCA): inverse condition number of Σ", it->second.x_label,
                            "log10(λmin / λmax)", YScale::linear);
    const auto d = run.config.find("d");
    const std::string group = d != run.config.end() ? "d=" + d->dump() : run.name;
    const bool first_of_group = !canvas.colors.count(s.prefix + group);
    const int color = canvas.color(s.prefix + group);
    c.series.push_back(line(first_of_group ? s.prefix + group : "", it->second, color));
    add_crash_marker(c, run, it->second, color, s.prefix + run.name);
    auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) { return x.name == group; });
    if (g == groups.end()) g = groups.insert(groups.end(), Group{group, 0, {}});
    ++g->runs;
    if (const results::Event* crash = run.first_event("crash")) g->crash_steps.push_back(crash->step);
  }
  bool seeds = false;
  for (const Group& g : groups) seeds = seeds || g.runs > 1;
  if (!seeds) return;
  Chart& c = canvas.charts[canvas.index.at("instability")];
  for (const Group& g : groups) {
    std::string note = s.prefix + g.name + ": " + std::to_string(g.crash_steps.size()) + " of " +
                       std::to_string(g.runs) + " runs crashed";
    for (size_t i = 0; i < g.crash_steps.size(); ++i)
      note += (i == 0 ? " (at steps " : ", ") + std::to_string(g.crash_steps[i]) + (i + 1 == g.crash_steps.size() ? ")" : "");
    c.notes.push_back(note);
  }
}

// x and y of a spectrum array: 1-D values against their index 1..n, or 2-D rows [index, value].
Series spectrum(const std::string& label, const Array& a, int color) {
  Series s;
  s.label = label, s.color = color;
  for (size_t i = 0; i < a.rows(); ++i) {
    s.x.push_back(a.cols >= 2 ? a.at(i, 0) : double(i + 1));
    s.y.push_back(a.cols >= 2 ? a.at(i, 1) : a.at(i, 0));
  }
  return s;
}

struct CurvePanel {
  std::string curve, title, y_label;
  YScale scale = YScale::automatic;
};

// One panel per curve name, one series per run.
void curve_panels(const Source& s, Canvas& canvas, const std::vector<CurvePanel>& panels) {
  for (const CurvePanel& p : panels)
    for (const Run& run : s.result.runs) {
      auto it = run.curves.find(p.curve);
      if (it == run.curves.end()) continue;
      const int color = canvas.color(s.prefix + run.name);
      Chart& c = canvas.panel("curve " + p.curve, p.title, it->second.x_label, p.y_label, p.scale);
      c.series.push_back(line(s.prefix + run.name, it->second, color));
      add_crash_marker(c, run, it->second, color, s.prefix + run.name);
    }
}

void every_curve_panels(const Source& s, Canvas& canvas) {
  std::vector<CurvePanel> panels;
  for (const Run& run : s.result.runs)
    for (const auto& kv : run.curves)
      if (std::none_of(panels.begin(), panels.end(), [&](const CurvePanel& p) { return p.curve == kv.first; }))
        panels.push_back({kv.first, kv.first, kv.first});
  curve_panels(s, canvas, panels);
}

void iternorm_panels(const Source& s, Canvas& canvas) {
  const std::pair<const char*, const char*> spectra[] = {{"final_zhat_spectrum", "Spectrum of Ẑ at the end of training"},
                                                         {"final_z_spectrum", "Spectrum of Z at the end of training"}};
  for (const auto& [name, title] : spectra)
    for (const Run& run : s.result.runs) {
      auto it = run.arrays.find(name);
      if (it == run.arrays.end()) continue;
      Chart& c = canvas.panel(name, title, "index", "eigenvalue", YScale::log10);
      c.series.push_back(spectrum(s.prefix + run.name, it->second, canvas.color(s.prefix + run.name)));
    }
  curve_panels(s, canvas, {{"knn_top1", "kNN top-1 accuracy", "top-1 (%)"}});
}

std::string figure_title(const std::string& study) {
  if (study == "toy2d") return "Figure III (toy2d): eigenvalues of cov(Z) (dashed) and cov(Ẑ) (solid)";
  if (study == "whiten-instability") return "Figure IV (whiten-instability): hard whitening stability";
  if (study == "iternorm-cifar") return "IterNorm on CIFAR: spectra at the end of training and kNN accuracy";
  if (study == "pretrain") return "Pre-training";
  return study.empty() ? "Curves" : "Curves (" + study + ")";
}

std::string prefix_of(const std::vector<results::Result>& results, const std::vector<std::string>& labels, size_t i) {
  if (results.size() < 2) return "";
  return (i < labels.size() ? labels[i] : std::to_string(i + 1)) + ": ";
}

// The study's main figure, or nullopt when no run holds anything it can draw.
std::optional<Figure> build_study_figure(const std::vector<results::Result>& results,
                                         const std::vector<std::string>& labels) {
  const std::string study = results.empty() ? "" : results[0].header.study;
  Canvas canvas;
  for (size_t f = 0; f < results.size(); ++f) {
    const Source s{results[f], prefix_of(results, labels, f), int(f)};
    if (study == "toy2d") toy2d_panels(s, canvas);
    else if (study == "whiten-instability") instability_panels(s, canvas);
    else if (study == "iternorm-cifar") iternorm_panels(s, canvas);
    else if (study == "pretrain")
      curve_panels(s, canvas, {{"loss", "Training loss", "loss"}, {"lr", "Learning rate", "lr", YScale::linear},
                               {"knn_top1", "kNN top-1 accuracy", "top-1 (%)"}});
  }
  if (study == "toy2d") {  // one scale for every panel, so runs compare at a glance
    const bool log = std::any_of(canvas.charts.begin(), canvas.charts.end(), uses_log_axis);
    for (Chart& c : canvas.charts) c.y_scale = log ? YScale::log10 : YScale::linear;
  }
  const bool fallback = canvas.charts.empty();
  for (size_t f = 0; fallback && f < results.size(); ++f)
    every_curve_panels(Source{results[f], prefix_of(results, labels, f), int(f)}, canvas);
  if (canvas.charts.empty()) return std::nullopt;
  Figure fig;
  fig.title = fallback ? figure_title("") + (study.empty() ? "" : " of " + study) : figure_title(study);
  fig.panels = std::move(canvas.charts);
  return fig;
}

}  // namespace

Figure study_figure(const std::vector<results::Result>& results, const std::vector<std::string>& labels) {
  check(!results.empty(), "plot: no result to draw");
  std::optional<Figure> fig = build_study_figure(results, labels);
  if (!fig) {
    const std::string& study = results[0].header.study;
    throw Error("plot: nothing to draw: no run has a curve" +
                std::string(study.empty() ? "" : " (study \"" + study + "\")"));
  }
  return *fig;
}

std::optional<Figure> data_figure(const std::vector<results::Result>& results, const std::vector<std::string>& labels) {
  Figure fig;
  fig.title = "Figure II: the 2-D data and the network's initial outputs";
  // One panel per distinct array; runs that share it are listed in its title.
  for (const auto& [name, what, color] : {std::tuple{"points", "data", 0}, std::tuple{"initial_output", "initial output", 1}}) {
    std::vector<const Array*> drawn;
    std::vector<size_t> panel_of;
    for (size_t f = 0; f < results.size(); ++f)
      for (const Run& run : results[f].runs) {
        auto it = run.arrays.find(name);
        if (it == run.arrays.end() || it->second.cols < 2) continue;
        const Array& a = it->second;
        const std::string who = prefix_of(results, labels, f) + run.name;
        auto same = std::find_if(drawn.begin(), drawn.end(),
                                 [&](const Array* b) { return b->cols == a.cols && b->values == a.values; });
        if (same != drawn.end()) {
          std::string& title = fig.panels[panel_of[size_t(same - drawn.begin())]].title;
          if (title.size() < 70) title += ", " + who;
          else if (title.compare(title.size() - 3, 3, "...") != 0) title += ", ...";
          continue;
        }
        Chart c;
        c.title = std::string(what) + ": " + who;
        c.x_label = "first coordinate", c.y_label = "second coordinate", c.y_scale = YScale::linear;
        c.equal_axes = true;
        Series s;
        s.label = what, s.scatter = true, s.color = color;
        for (size_t i = 0; i < a.rows(); ++i) {
          s.x.push_back(a.at(i, 0));
          s.y.push_back(a.at(i, 1));
        }
        c.series.push_back(s);
        drawn.push_back(&a);
        panel_of.push_back(fig.panels.size());
        fig.panels.push_back(c);
      }
  }
  if (fig.panels.empty()) return std::nullopt;
  return fig;
}

std::vector<std::string> write_figure(const std::vector<results::Result>& results, const std::string& path,
                                      const std::vector<std::string>& labels) {
  write_svg(study_figure(results, labels), path);
  std::vector<std::string> written{path};
  if (auto data = data_figure(results, labels)) {
    const std::filesystem::path p(path);
    const std::string data_path = (p.parent_path() / (p.stem().string() + "-data.svg")).string();
    write_svg(*data, data_path);
    written.push_back(data_path);
  }
  return written;
}

std::vector<std::string> write_study_figures(const results::Result& result, const std::string& out_dir) {
  std::string name = result.header.study.empty() ? "result" : result.header.study;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  const std::filesystem::path base = std::filesystem::path(out_dir) / name;
  std::vector<std::string> written;
  if (auto fig = build_study_figure({result}, {})) {
    write_svg(*fig, base.string() + ".svg");
    written.push_back(base.string() + ".svg");
  }
  if (auto data = data_figure({result}, {})) {
    write_svg(*data, base.string() + "-data.svg");
    written.push_back(base.string() + "-data.svg");
  }
  return written;
}

}  // namespace intl::plot
