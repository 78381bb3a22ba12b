// Rendering a Comparison as aligned text, Markdown tables, CSV (metrics only) or JSON.
#include <cmath>
#include <cstdio>

#include "engine/error.h"
#include "results/diff.h"

namespace intl::results {
namespace {

struct Table {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // right-aligned columns
  std::vector<std::vector<std::string>> rows;
};

std::string number(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string value_cell(const std::optional<double>& v) { return v ? number(*v, 8) : "-"; }

std::string signed_number(double v, int digits) { return (v > 0 ? "+" : "") + number(v, digits); }

std::string metric_status(const MetricRow& row, const std::vector<std::string>& names) {
  if (row.timing) return "timing (not compared; --keys picks it)";
  if (!row.values[0]) return "not in " + names[0] + " (not compared)";
  std::string missing;
  for (size_t f = 1; f < row.values.size(); ++f)
    if (!row.values[f]) missing += (missing.empty() ? "" : ", ") + names[f];
  if (!row.compared) return "only in " + names[0] + " (not compared)";
  std::string s = row.agree ? "ok" : "DIFFERS";
  return missing.empty() ? s : s + "; missing in " + missing;
}

Table metric_table(const Comparison& c) {
  const size_t n = c.names.size();
  Table t;
  t.header.push_back("metric");
  for (const std::string& name : c.names) t.header.push_back(name);
  for (size_t f = 1; f < n; ++f) t.header.push_back(c.names[f] + " - " + c.names[0]);
  if (n == 2) t.header.push_back("rel");
  t.header.push_back("status");
  t.numeric.assign(t.header.size(), true);
  t.numeric.front() = t.numeric.back() = false;
  for (const MetricRow& row : c.metrics) {
    std::vector<std::string> cells{row.key};
    for (const auto& v : row.values) cells.push_back(value_cell(v));
    for (size_t f = 1; f < n; ++f)
      cells.push_back(row.values[0] && row.values[f] ? signed_number(*row.values[f] - *row.values[0], 4) : "-");
    if (n == 2) {
      const bool can = row.values[0] && row.values[1] && *row.values[0] != 0;
      cells.push_back(can ? signed_number(100 * (*row.values[1] - *row.values[0]) / std::fabs(*row.values[0]), 3) + "%"
                          : "-");
    }
    cells.push_back(metric_status(row, c.names));
    t.rows.push_back(cells);
  }
  return t;
}

Table config_table(const Comparison& c) {
  Table t;
  t.header.push_back("key");
  for (const std::string& name : c.names) t.header.push_back(name);
  t.numeric.assign(t.header.size(), false);
  for (const ConfigRow& row : c.config) {
    std::vector<std::string> cells{row.key};
    for (const auto& v : row.values) cells.push_back(v ? v->dump(-1, ' ', false, json::error_handler_t::replace) : "(absent)");
    t.rows.push_back(cells);
  }
  return t;
}

std::string curve_cell(const std::optional<CurveSummary>& s) {
  if (!s) return "-";
  std::string cell = "final " + number(s->final_value, 5) + " (" + s->x_label + " " + number(s->last_x, 6) +
                     "), min " + number(s->min, 5) + ", max " + number(s->max, 5) + ", " +
                     std::to_string(s->points) + " points";
  if (s->crash_step) cell += ", crash at " + std::to_string(*s->crash_step);
  return cell;
}

Table curve_table(const Comparison& c) {
  const size_t n = c.names.size();
  Table t;
  t.header.push_back("curve");
  for (const std::string& name : c.names) t.header.push_back(name);
  for (size_t f = 1; f < n; ++f) t.header.push_back("max |" + c.names[f] + " - " + c.names[0] + "|");
  t.numeric.assign(t.header.size(), false);
  for (const CurveRow& row : c.curves) {
    std::vector<std::string> cells{row.key};
    for (const auto& s : row.summaries) cells.push_back(curve_cell(s));
    for (size_t f = 1; f < n; ++f) {
      const auto& d = row.vs_reference[f];
      cells.push_back(d ? number(d->max_abs, 4) + " at " + number(d->at_x, 6) + " (" + std::to_string(d->matched) +
                              " matching steps)"
                        : "no matching steps");
    }
    t.rows.push_back(cells);
  }
  return t;
}

std::string render_text(const Table& t) {
  std::vector<size_t> width(t.header.size());
  for (size_t i = 0; i < t.header.size(); ++i) width[i] = t.header[i].size();
  for (const auto& row : t.rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = " ";
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string pad(width[i] - cells[i].size(), ' ');
      out += " " + (t.numeric[i] ? pad + cells[i] : cells[i] + (i + 1 < cells.size() ? pad : ""));
    }
    return out + "\n";
  };
  std::string out = line(t.header);
  for (const auto& row : t.rows) out += line(row);
  return out;
}

std::string markdown_cell(std::string s) {
  for (size_t p = s.find('|'); p != std::string::npos; p = s.find('|', p + 2)) s.replace(p, 1, "\\|");
  return s;
}

std::string render_markdown(const Table& t) {
  std::string out = "|";
  for (const auto& h : t.header) out += " " + markdown_cell(h) + " |";
  out += "\n|";
  for (bool num : t.numeric) out += num ? " ---: |" : " --- |";
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (const auto& cell : row) out += " " + markdown_cell(cell) + " |";
    out += "\n";
  }
  return out;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string render_csv(const Table& t) {
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + csv_cell(cells[i]);
    out += "\n";
  };
  line(t.header);
  for (const auto& row : t.rows) line(row);
  return out;
}

std::string verdict(const Comparison& c) {
  size_t uncompared = 0, timings = 0;
  for (const MetricRow& row : c.metrics) {
    timings += row.timing;
    uncompared += !row.compared && !row.timing;
  }
  std::string s = std::to_string(c.compared) + " metric" + (c.compared == 1 ? "" : "s") + " compared: " +
                  std::to_string(c.compared - c.differing) + " agree, " + std::to_string(c.differing) + " differ";
  if (uncompared) s += "; " + std::to_string(uncompared) + " present in only some files (listed, not compared)";
  if (timings) s += "; " + std::to_string(timings) + " timing" + (timings == 1 ? "" : "s") + " (listed, not compared)";
  return s + ".";
}

// When metrics differ between runs of one study computed on different devices or CPU thread counts: a line
// saying that those alone change the bits of a training run (docs/pretrain.md), so the differences may be no
// more than that. Not against the paper's numbers (another study), where a tolerance is given anyway.
std::string where_computed_differs(const Comparison& c) {
  if (c.agree()) return "";
  std::string keys;
  for (const ConfigRow& row : c.config) {
    if (row.key == "header.study") return "";
    if (row.key == "header.threads" || row.key == "header.device") keys += (keys.empty() ? "" : " and ") + row.key;
  }
  if (keys.empty()) return "";
  return "Note: the files differ in " + keys + "; a training run's numbers change with the device and the CPU "
         "thread count alone (docs/pretrain.md), so compare them with a tolerance, e.g. --rtol 0.01.";
}

std::string tolerance_line(const Comparison& c) {
  return "agree when |x - " + c.names[0] + "| <= atol + rtol * |" + c.names[0] + "|, atol " +
         number(c.options.atol, 6) + ", rtol " + number(c.options.rtol, 6);
}

json optional_json(const std::optional<double>& v) { return v ? number_to_json(*v) : json(nullptr); }

json render_json(const Comparison& c) {
  json out = {{"files", c.names}, {"atol", c.options.atol}, {"rtol", c.options.rtol}, {"agree", c.agree()},
              {"compared", c.compared}, {"differing", c.differing}};
  if (c.compared == 0) out["nothing_compared"] = nothing_compared_reason(c);
  out["metrics"] = json::array();
  for (const MetricRow& row : c.metrics) {
    json values = json::array();
    for (const auto& v : row.values) values.push_back(optional_json(v));
    out["metrics"].push_back({{"key", row.key}, {"values", values}, {"compared", row.compared}, {"agree", row.agree},
                              {"timing", row.timing}});
  }
  out["config"] = json::array();
  for (const ConfigRow& row : c.config) {
    json values = json::array();
    for (const auto& v : row.values) values.push_back(v ? *v : json(nullptr));
    out["config"].push_back({{"key", row.key}, {"values", values}});
  }
  out["curves"] = json::array();
  for (const CurveRow& row : c.curves) {
    json files = json::array();
    for (size_t f = 0; f < row.summaries.size(); ++f) {
      const auto& s = row.summaries[f];
      if (!s) {
        files.push_back(nullptr);
        continue;
      }
      json j = {{"points", s->points}, {"last_x", s->last_x}, {"final", number_to_json(s->final_value)},
                {"min", number_to_json(s->min)}, {"max", number_to_json(s->max)}};
      if (s->crash_step) j["crash_step"] = *s->crash_step;
      if (const auto& d = row.vs_reference[f])
        j["vs_reference"] = {{"matched", d->matched}, {"max_abs", number_to_json(d->max_abs)}, {"at_x", d->at_x}};
      files.push_back(j);
    }
    out["curves"].push_back({{"key", row.key}, {"files", files}});
  }
  return out;
}

}  // namespace

std::string format_comparison(const Comparison& c, const std::string& format) {
  if (format == "json") return render_json(c).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  if (format == "csv") return render_csv(metric_table(c));
  if (format != "text" && format != "markdown")
    throw UsageError("--format: expected text, markdown, csv or json, found \"" + format + "\"");
  const bool md = format == "markdown";
  auto table = [&](const Table& t) { return md ? render_markdown(t) : render_text(t); };
  auto heading = [&](const std::string& h) { return md ? "### " + h + "\n\n" : h + "\n"; };
  std::string out;
  out += heading("Metrics (" + tolerance_line(c) + ")");
  out += c.metrics.empty() ? std::string("  (no metrics)\n") : table(metric_table(c));
  out += "\n" + std::string(md ? "" : "  ") + verdict(c) + "\n";
  if (const std::string why = where_computed_differs(c); !why.empty())
    out += std::string(md ? "" : "  ") + why + "\n";
  if (!c.config.empty()) out += "\n" + heading("Configuration that differs") + table(config_table(c));
  if (!c.curves.empty()) out += "\n" + heading("Curves") + table(curve_table(c));
  return out;
}

}  // namespace intl::results
