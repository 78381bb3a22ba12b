// SVG rendering of charts. Each panel is a <g> translated to its grid cell: title, grid and tick labels,
// one <path class="series"> per line series (the only <path> elements), dots, markers, legend, axis labels.
#include "plot/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "results/result.h"

namespace intl::plot {
namespace {

const char* const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
std::string color_of(int i) { return palette[((i % 10) + 10) % 10]; }

constexpr double char_width = 6.2;  // average width of an 11 px sans-serif character
constexpr size_t max_label_chars = 36;
constexpr double line_height = 14;

std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", std::clamp(v, -1e5, 1e5));
  return buf;
}

std::string tick_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

size_t utf8_length(const std::string& s) {
  return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// The first n characters, never splitting a multi-byte one, and "..." to mark the cut.
std::string utf8_truncate(const std::string& s, size_t n) {
  if (utf8_length(s) <= n) return s;
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i)  // i stops at the first byte of character n + 1
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars++ == n) break;
  return s.substr(0, i) + "...";
}

// A value a chart can place: finite, and small enough that a range's width (hi - lo) stays finite. Others are
// left out as NaN and infinities are.
bool plottable(double v) { return std::fabs(v) <= 1e300; }

struct Axis {
  double lo = 0, hi = 1;  // data range, or log10 of it
  bool log = false;
  double pixel_lo = 0, pixel_hi = 1;
  bool usable(double v) const { return plottable(v) && (!log || v > 0); }
  double to_pixel(double v) const {
    const double t = ((log ? std::log10(v) : v) - lo) / (hi - lo);
    return pixel_lo + t * (pixel_hi - pixel_lo);
  }
};

struct Tick {
  double value;      // data value
  std::string text;  // empty: a grid line without a label
  bool power = false;  // text is an exponent of 10
};

// The data range of the usable points, as [lo, hi]; lo > hi when there is none.
std::pair<double, double> data_range(const Chart& c, bool x, bool log_y) {
  double lo = INFINITY, hi = -INFINITY;
  auto add = [&](double xv, double yv) {
    if (!plottable(xv) || !plottable(yv) || (log_y && yv <= 0)) return;
    const double v = x ? xv : yv;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  for (const Series& s : c.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) add(s.x[i], s.y[i]);
  for (const Marker& m : c.markers) add(m.x, m.y);
  return {lo, hi};
}

std::pair<double, double> padded(std::pair<double, double> range) {
  double lo = range.first, hi = range.second;
  if (lo > hi) lo = 0, hi = 1;
  if (lo == hi) {
    const double pad = lo != 0 ? std::fabs(lo) * 0.1 : 1.0;
    lo -= pad, hi += pad;
  }
  return {lo, hi};
}

// Ticks at round values; the axis extends to the outer ticks, or (tight) keeps the range and drops the
// ticks outside it.
std::vector<Tick> linear_axis(Axis& axis, std::pair<double, double> range, bool tight = false) {
  const auto [lo, hi] = padded(range);
  std::vector<double> values = linear_ticks(lo, hi, 6);
  axis.lo = tight ? lo : values.front();
  axis.hi = tight ? hi : values.back();
  std::vector<Tick> ticks;
  for (double v : values)
    if (v >= axis.lo - 1e-9 * (hi - lo) && v <= axis.hi + 1e-9 * (hi - lo)) ticks.push_back({v, tick_text(v)});
  return ticks;
}

// Widens the narrower of two ranges about its centre so one data unit is as long on both axes.
void equalize(std::pair<double, double>& x, std::pair<double, double>& y, double width_px, double height_px) {
  x = padded(x), y = padded(y);
  x.first -= 0.04 * (x.second - x.first), x.second += 0.04 * (x.second - x.first);
  y.first -= 0.04 * (y.second - y.first), y.second += 0.04 * (y.second - y.first);
  const double per_px = std::max((x.second - x.first) / width_px, (y.second - y.first) / height_px);
  for (auto [range, px_len] : {std::pair{&x, width_px}, std::pair{&y, height_px}}) {
    const double mid = (range->first + range->second) / 2;
    range->first = mid - per_px * px_len / 2;
    range->second = mid + per_px * px_len / 2;
  }
}

std::vector<Tick> log_axis(Axis& axis, std::pair<double, double> range) {
  axis.log = true;
  double lo = 0, hi = 1;
  if (range.first <= range.second) {
    lo = std::floor(std::log10(range.first));
    hi = std::ceil(std::log10(range.second));
    if (hi <= lo) hi = lo + 1;
  }
  axis.lo = lo, axis.hi = hi;
  const int decades = int(hi - lo);
  const int every = std::max(1, (decades + 6) / 7);  // at most about 8 labels
  std::vector<Tick> ticks;
  for (int e = int(lo); e <= int(hi); ++e) {
    ticks.push_back({std::pow(10.0, e), (e - int(lo)) % every == 0 ? std::to_string(e) : "", true});
    if (decades <= 2 && e < int(hi))
      for (double m : {2.0, 5.0}) ticks.push_back({m * std::pow(10.0, e), tick_text(m * std::pow(10.0, e))});
  }
  return ticks;
}

struct LegendEntry {
  std::string label, color;
  bool dashed = false, dot = false, cross = false;
};

std::vector<LegendEntry> legend_entries(const Chart& c) {
  std::vector<LegendEntry> out;
  for (size_t i = 0; i < c.series.size(); ++i) {
    const Series& s = c.series[i];
    if (s.label.empty()) continue;
    out.push_back({s.label, color_of(s.color >= 0 ? s.color : int(i)), s.dashed, s.scatter, false});
  }
  for (const Marker& m : c.markers) {
    if (m.legend.empty()) continue;
    bool seen = false;
    for (const LegendEntry& e : out) seen = seen || (e.cross && e.label == m.legend);
    if (!seen) out.push_back({m.legend, "#333333", false, false, true});
  }
  return out;
}

void draw_cross(std::string& out, double x, double y, const std::string& color, const std::string& tooltip) {
  const double r = 5;
  out += "<g class=\"marker\" stroke=\"" + color + "\" stroke-width=\"2.2\">";
  if (!tooltip.empty()) out += "<title>" + xml_escape(tooltip) + "</title>";
  out += "<line x1=\"" + px(x - r) + "\" y1=\"" + px(y - r) + "\" x2=\"" + px(x + r) + "\" y2=\"" + px(y + r) + "\"/>";
  out += "<line x1=\"" + px(x - r) + "\" y1=\"" + px(y + r) + "\" x2=\"" + px(x + r) + "\" y2=\"" + px(y - r) +
         "\"/></g>\n";
}

void render_panel(std::string& out, const Chart& c, int index, double w, double h) {
  const std::vector<LegendEntry> legend = legend_entries(c);
  size_t legend_chars = 0;
  for (const LegendEntry& e : legend) legend_chars = std::max(legend_chars, utf8_length(e.label));
  const double legend_w = legend.empty() ? 0 : 34 + char_width * double(std::min(legend_chars, max_label_chars + 3));
  const double left = 66, top = 30, right = w - 12 - (legend.empty() ? 0 : legend_w + 6);
  const double bottom = h - 42 - line_height * double(c.notes.size());

  Axis xa, ya;
  const bool log_y = uses_log_axis(c);
  std::vector<Tick> xticks, yticks;
  if (c.equal_axes && !log_y) {
    auto xr = data_range(c, true, false), yr = data_range(c, false, false);
    equalize(xr, yr, right - left, bottom - top);
    xticks = linear_axis(xa, xr, true);
    yticks = linear_axis(ya, yr, true);
  } else {
    xticks = linear_axis(xa, data_range(c, true, log_y));
    yticks = log_y ? log_axis(ya, data_range(c, false, true)) : linear_axis(ya, data_range(c, false, false));
  }
  xa.pixel_lo = left, xa.pixel_hi = right;
  ya.pixel_lo = bottom, ya.pixel_hi = top;
  const std::string clip = "clip-" + std::to_string(index);

  out += "<text x=\"" + px(w / 2) + "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" +
         xml_escape(c.title) + "</text>\n";
  out += "<defs><clipPath id=\"" + clip + "\"><rect x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" +
         px(right - left) + "\" height=\"" + px(bottom - top) + "\"/></clipPath></defs>\n";
  for (const Tick& t : xticks) {
    const double x = xa.to_pixel(t.value);
    out += "<line x1=\"" + px(x) + "\" y1=\"" + px(top) + "\" x2=\"" + px(x) + "\" y2=\"" + px(bottom) +
           "\" stroke=\"#e4e4e4\"/>\n<text x=\"" + px(x) + "\" y=\"" + px(bottom + 14) + "\" text-anchor=\"middle\">" +
           xml_escape(t.text) + "</text>\n";
  }
  for (const Tick& t : yticks) {
    const double y = ya.to_pixel(t.value);
    out += "<line x1=\"" + px(left) + "\" y1=\"" + px(y) + "\" x2=\"" + px(right) + "\" y2=\"" + px(y) +
           "\" stroke=\"" + (t.text.empty() && !t.power ? "#f0f0f0" : "#e4e4e4") + "\"/>\n";
    if (t.text.empty()) continue;
    out += "<text x=\"" + px(left - 5) + "\" y=\"" + px(y + 4) + "\" text-anchor=\"end\">";
    out += t.power ? "10<tspan dy=\"-5\" font-size=\"8\">" + xml_escape(t.text) + "</tspan>" : xml_escape(t.text);
    out += "</text>\n";
  }
  out += "<rect x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" + px(right - left) + "\" height=\"" +
         px(bottom - top) + "\" fill=\"none\" stroke=\"#333333\"/>\n";

  for (size_t i = 0; i < c.series.size(); ++i) {
    const Series& s = c.series[i];
    const std::string color = color_of(s.color >= 0 ? s.color : int(i));
    const size_t n = std::min(s.x.size(), s.y.size());
    std::string body;
    bool pen_down = false;
    for (size_t k = 0; k < n; ++k) {
      if (!xa.usable(s.x[k]) || !ya.usable(s.y[k])) {
        pen_down = false;  // a gap: the next usable point starts a new sub-path
        continue;
      }
      const double x = xa.to_pixel(s.x[k]), y = ya.to_pixel(s.y[k]);
      if (s.scatter) body += "<circle cx=\"" + px(x) + "\" cy=\"" + px(y) + "\" r=\"2.2\"/>";
      else body += (pen_down ? " L" : (body.empty() ? "M" : " M")) + px(x) + " " + px(y);
      pen_down = true;
    }
    if (body.empty()) continue;
    if (s.scatter)
      out += "<g class=\"scatter\" fill=\"" + color + "\" fill-opacity=\"0.65\" clip-path=\"url(#" + clip + ")\">" +
             body + "</g>\n";
    else
      out += "<path class=\"series\" d=\"" + body + "\" fill=\"none\" stroke=\"" + color +
             "\" stroke-width=\"1.6\" stroke-linejoin=\"round\"" + (s.dashed ? " stroke-dasharray=\"6 4\"" : "") +
             " clip-path=\"url(#" + clip + ")\"/>\n";
  }
  for (const Marker& m : c.markers)
    if (xa.usable(m.x) && ya.usable(m.y)) draw_cross(out, xa.to_pixel(m.x), ya.to_pixel(m.y), color_of(m.color), m.tooltip);

  const double lx = right + 10;
  const size_t fit = size_t(std::max(1.0, (bottom - top) / line_height));
  for (size_t i = 0; i < legend.size() && i < fit; ++i) {
    const LegendEntry& e = legend[i];
    const double y = top + 8 + line_height * double(i);
    if (i + 1 == fit && legend.size() > fit) {
      out += "<text x=\"" + px(lx) + "\" y=\"" + px(y + 4) + "\">+ " + std::to_string(legend.size() - i) + " more</text>\n";
      break;
    }
    if (e.cross) draw_cross(out, lx + 11, y, e.color, "");
    else if (e.dot) out += "<circle cx=\"" + px(lx + 11) + "\" cy=\"" + px(y) + "\" r=\"3\" fill=\"" + e.color + "\"/>\n";
    else
      out += "<line x1=\"" + px(lx) + "\" y1=\"" + px(y) + "\" x2=\"" + px(lx + 22) + "\" y2=\"" + px(y) + "\" stroke=\"" +
             e.color + "\" stroke-width=\"2\"" + (e.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>\n";
    out += "<text x=\"" + px(lx + 28) + "\" y=\"" + px(y + 4) + "\">" + xml_escape(utf8_truncate(e.label, max_label_chars)) +
           "</text>\n";
  }

  out += "<text x=\"" + px((left + right) / 2) + "\" y=\"" + px(bottom + 32) + "\" text-anchor=\"middle\">" +
         xml_escape(c.x_label) + "</text>\n";
  out += "<text transform=\"translate(14," + px((top + bottom) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
         xml_escape(c.y_label + (log_y ? " (log scale)" : "")) + "</text>\n";
  for (size_t i = 0; i < c.notes.size(); ++i)
    out += "<text x=\"" + px(left) + "\" y=\"" + px(bottom + 50 + line_height * double(i)) +
           "\" font-family=\"monospace\" xml:space=\"preserve\">" + xml_escape(c.notes[i]) + "</text>\n";
}

}  // namespace

bool uses_log_axis(const Chart& chart) {
  if (chart.y_scale != YScale::automatic) return chart.y_scale == YScale::log10;
  double lo = INFINITY, hi = -INFINITY;
  auto add = [&](double v, bool& ok) {
    if (!plottable(v)) return;
    ok = ok && v > 0;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  bool positive = true;
  for (const Series& s : chart.series)
    for (double v : s.y) add(v, positive);
  for (const Marker& m : chart.markers) add(m.y, positive);
  return positive && lo <= hi && hi / lo > 100;
}

std::vector<double> linear_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo, lo + 1};
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double multiple = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  const double step = multiple * magnitude;
  // k * multiple is an exact integer; dividing by an exact power of ten gives the nearest double to 0.6,
  // where multiplying by 0.1 would give 0.6000000000000001.
  auto tick = [&](double k) { return magnitude < 1 ? k * multiple / std::round(1 / magnitude) : k * multiple * magnitude; };
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last && ticks.size() < 100; k += 1) ticks.push_back(k == 0 ? 0.0 : tick(k));
  return ticks;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(ch) >= 0x20 || ch == '\n' || ch == '\t') out += ch;  // XML forbids other controls
    }
  }
  return out;
}

std::string render_svg(const Figure& figure) {
  const int n = int(figure.panels.size());
  const int cols = figure.columns > 0 ? figure.columns : std::max(1, std::min(n, 3));
  const int rows = std::max(1, (n + cols - 1) / cols);
  size_t notes = 0;
  for (const Chart& c : figure.panels) notes = std::max(notes, c.notes.size());
  const double cell_w = figure.panel_width, cell_h = figure.panel_height + line_height * double(notes);
  const double title_h = figure.title.empty() ? 0 : 28;
  const double width = cell_w * cols, height = title_h + cell_h * rows;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + px(width) + "\" height=\"" + px(height) +
         "\" viewBox=\"0 0 " + px(width) + " " + px(height) + "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n";
  out += "<rect x=\"0\" y=\"0\" width=\"" + px(width) + "\" height=\"" + px(height) + "\" fill=\"white\"/>\n";
  if (!figure.title.empty())
    out += "<text x=\"" + px(width / 2) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" +
           xml_escape(figure.title) + "</text>\n";
  for (int i = 0; i < n; ++i) {
    out += "<g transform=\"translate(" + px(cell_w * (i % cols)) + "," + px(title_h + cell_h * (i / cols)) + ")\">\n";
    render_panel(out, figure.panels[size_t(i)], i, cell_w, cell_h);
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

void write_svg(const Figure& figure, const std::string& path) {
  results::write_file_atomically(path, render_svg(figure));
}

}  // namespace intl::plot
