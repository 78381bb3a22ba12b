// A small SVG chart writer: line and scatter series on a linear or log10 y axis, ticks, axis labels, legend,
// dashed lines, markers (e.g. an X where a run crashed) and several panels in one figure. The output is
// self-contained SVG 1.1 that browsers render; non-finite values break a line instead of reaching the file.
#pragma once
#include <string>
#include <vector>

namespace intl::plot {

enum class YScale { automatic, linear, log10 };

struct Series {
  std::string label;  // legend text; empty: not in the legend
  std::vector<double> x, y;
  bool dashed = false;
  bool scatter = false;  // dots instead of a line
  int color = -1;        // palette index; -1: the series' position in its chart
};

// A symbol at one point. Markers with the same non-empty legend text share one legend entry.
struct Marker {
  double x = 0, y = 0;
  int color = 0;
  std::string legend;   // e.g. "crash"
  std::string tooltip;  // shown on hover, e.g. "d=1024 seed 2: crash at 130"
};

struct Chart {
  std::string title, x_label, y_label;
  YScale y_scale = YScale::automatic;  // automatic: log10 when all values are positive and span > 2 decades
  std::vector<Series> series;
  std::vector<Marker> markers;
  std::vector<std::string> notes;  // lines of text under the chart, e.g. a table of crashes
  bool equal_axes = false;         // one data unit is as long on x as on y (2-D point clouds); linear y only
};

struct Figure {
  std::string title;
  std::vector<Chart> panels;
  int columns = 0;  // 0: min(panel count, 3)
  double panel_width = 560, panel_height = 340;
};

// Whether the chart's y axis is log10: forced by y_scale, or (automatic) when every finite y of the series
// and markers is positive and max / min > 100.
bool uses_log_axis(const Chart& chart);

// Tick positions: multiples of 1, 2 or 5 times a power of ten covering [lo, hi], about `target` of them.
std::vector<double> linear_ticks(double lo, double hi, int target);

std::string xml_escape(const std::string& text);
std::string render_svg(const Figure& figure);
// Writes render_svg(figure) to path (via path.tmp.<pid> and a rename); throws intl::Error naming the path.
void write_svg(const Figure& figure, const std::string& path);

}  // namespace intl::plot
