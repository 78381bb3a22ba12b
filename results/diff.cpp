// Building a Comparison: matching metrics and curves by key across files, the tolerance verdict, flattened
// configuration differences and curve summaries. Rendering lives in diff_report.cpp.
#include "results/diff.h"

#include <fnmatch.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

namespace intl::results {
namespace {

// Rows in order of first appearance, found by key.
template <typename Row>
struct RowIndex {
  std::vector<Row> rows;
  std::map<std::string, size_t> at;
  Row& get(const std::string& key, size_t files) {
    auto [it, fresh] = at.emplace(key, rows.size());
    if (fresh) {
      rows.emplace_back();
      rows.back().key = key;
      rows.back().values.resize(files);
    }
    return rows[it->second];
  }
};

// The row-key prefix of each run: "" where the file has one run (matched by bare name), else "run/".
// A one-run file keeps its run name when another file has a run/name key with that very run name.
std::string key_for(const Result& r, const Run& run, const std::string& name, const std::set<std::string>& multi) {
  const std::string full = run.name + "/" + name;
  return r.runs.size() == 1 && !multi.count(full) ? name : full;
}

bool key_selected(const std::string& key, const std::vector<std::string>& patterns) {
  if (patterns.empty()) return true;
  const std::string bare = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
  for (const std::string& p : patterns)
    if (fnmatch(p.c_str(), key.c_str(), 0) == 0 || fnmatch(p.c_str(), bare.c_str(), 0) == 0) return true;
  return false;
}

void flatten(const json& j, const std::string& prefix, std::map<std::string, json>& out) {
  if (j.is_object()) {  // an empty object adds no key
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix + "." + it.key(), out);
  } else {
    out[prefix] = j;
  }
}

std::map<std::string, json> flat_config(const Result& r) {
  std::map<std::string, json> out;
  const Header& h = r.header;
  out["header.command"] = h.command;
  out["header.study"] = h.study;
  out["header.program_version"] = h.program_version;
  out["header.git_revision"] = h.git_revision;
  out["header.build_type"] = h.build_type;
  out["header.device"] = h.device;
  out["header.device_name"] = h.device_name;
  out["header.threads"] = h.threads;
  out["header.seed"] = h.seed;
  flatten(r.config, "config", out);
  for (const Run& run : r.runs) {
    const std::string prefix = r.runs.size() == 1 ? "run" : "runs[" + run.name + "]";
    if (r.runs.size() == 1) out["run.name"] = run.name;
    flatten(run.config, prefix + ".config", out);
  }
  return out;
}

CurveSummary summarize(const Curve& c, const Run& run) {
  CurveSummary s;
  s.x_label = c.x_label;
  s.points = c.y.size();
  if (!c.y.empty()) {
    s.last_x = c.x.back();
    s.final_value = c.y.back();
  }
  bool any = false;
  for (double y : c.y) {
    if (!std::isfinite(y)) continue;
    s.min = any ? std::min(s.min, y) : y;
    s.max = any ? std::max(s.max, y) : y;
    any = true;
  }
  if (!any) s.min = s.max = std::nan("");
  if (const Event* crash = run.first_event("crash")) s.crash_step = crash->step;
  return s;
}

std::optional<PointDiff> pointwise(const Curve& c, const Curve& reference) {
  std::map<double, double> ref;
  for (size_t i = 0; i < reference.x.size(); ++i) ref.emplace(reference.x[i], reference.y[i]);
  PointDiff d;
  for (size_t i = 0; i < c.x.size(); ++i) {
    auto it = ref.find(c.x[i]);
    if (it == ref.end()) continue;
    const double a = c.y[i], b = it->second;
    double diff = 0;
    if (std::isfinite(a) && std::isfinite(b)) diff = std::fabs(a - b);
    else if (!within_tolerance(a, b, 0, 0)) diff = INFINITY;
    if (d.matched == 0 || diff > d.max_abs) {
      d.max_abs = diff;
      d.at_x = c.x[i];
    }
    ++d.matched;
  }
  if (d.matched == 0) return std::nullopt;
  return d;
}

}  // namespace

bool within_tolerance(double value, double reference, double atol, double rtol) {
  if (std::isnan(value) || std::isnan(reference)) return std::isnan(value) && std::isnan(reference);
  if (std::isinf(value) || std::isinf(reference)) return value == reference;
  return std::fabs(value - reference) <= atol + rtol * std::fabs(reference);
}

std::vector<std::string> column_names(const std::vector<std::string>& paths) {
  std::vector<std::string> names;
  std::map<std::string, int> count;
  for (const std::string& p : paths) names.push_back(std::filesystem::path(p).stem().string());
  for (const std::string& n : names) ++count[n];
  for (size_t i = 0; i < names.size(); ++i)
    if (count[names[i]] > 1) names[i] = paths[i];
  return names;
}

std::string nothing_compared_reason(const Comparison& c) {
  if (c.compared > 0) return "";
  const std::vector<std::string>& patterns = c.options.key_patterns;
  std::string keys;
  for (const std::string& p : patterns) keys += (keys.empty() ? "" : ",") + p;
  const std::string selected = patterns.empty() ? "" : " that --keys '" + keys + "' selects";
  bool in_reference = false, in_others = false, timing_in_both = false;
  for (const MetricRow& row : c.metrics) {
    bool in_another = false;
    for (size_t f = 1; f < row.values.size(); ++f) in_another = in_another || row.values[f].has_value();
    in_reference = in_reference || row.values[0].has_value();
    in_others = in_others || in_another;
    timing_in_both = timing_in_both || (row.timing && row.values[0] && in_another);
  }
  std::string why;
  if (c.metrics.empty() && !patterns.empty()) {
    why = "--keys '" + keys + "' matches no metric of the files";
  } else if (!in_reference) {
    why = c.names[0] + " (the reference, the first file) holds no metric" + selected;
  } else if (!in_others) {
    why = "no file after the reference (" + c.names[0] + ") holds a metric" + selected;
  } else if (timing_in_both) {
    why = "the only metrics held by both the reference (" + c.names[0] + ") and another file are timings (names "
          "ending in _s), judged only when --keys picks them";
  } else {
    why = "no metric" + selected + " is held by both the reference (" + c.names[0] + ") and another file";
  }
  for (const ConfigRow& row : c.config) {
    if (row.key != "header.study") continue;
    std::string studies;
    for (size_t f = 0; f < row.values.size(); ++f) {
      const auto& v = row.values[f];
      const std::string study = !v ? "(none)" : v->is_string() ? "'" + v->get<std::string>() + "'" : v->dump();
      studies += (f ? " vs " : "") + study + " (" + c.names[f] + ")";
    }
    why += "; header.study differs: " + studies;
  }
  return why;
}

bool is_timing_metric(const std::string& key) {
  const std::string name = key.substr(key.rfind('/') + 1);
  auto ends_with = [&](const std::string& tail) {
    return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends_with("_s");
}

Comparison compare_results(const std::vector<Result>& results, const std::vector<std::string>& names,
                           const DiffOptions& options) {
  const size_t n = results.size();
  Comparison cmp;
  cmp.names = names;
  cmp.options = options;

  std::set<std::string> multi;  // run/name keys of files with several runs
  for (const Result& r : results)
    if (r.runs.size() > 1)
      for (const Run& run : r.runs) {
        for (const auto& m : run.metrics) multi.insert(run.name + "/" + m.first);
        for (const auto& c : run.curves) multi.insert(run.name + "/" + c.first);
      }

  RowIndex<MetricRow> metrics;
  struct CurveSlot {
    std::string key;
    std::vector<std::optional<std::pair<const Curve*, const Run*>>> values;
  };
  RowIndex<CurveSlot> curves;
  for (size_t f = 0; f < n; ++f)
    for (const Run& run : results[f].runs) {
      for (const auto& [name, value] : run.metrics) {
        const std::string key = key_for(results[f], run, name, multi);
        if (key_selected(key, options.key_patterns)) metrics.get(key, n).values[f] = value;
      }
      for (const auto& [name, curve] : run.curves) {
        const std::string key = key_for(results[f], run, name, multi);
        if (key_selected(key, options.key_patterns)) curves.get(key, n).values[f] = std::make_pair(&curve, &run);
      }
    }

  for (MetricRow& row : metrics.rows) {
    row.timing = is_timing_metric(row.key) && options.key_patterns.empty();
    if (!row.values[0] || row.timing) {
      cmp.metrics.push_back(row);
      continue;
    }
    for (size_t f = 1; f < n; ++f) {
      if (!row.values[f]) continue;
      row.compared = true;
      row.agree = row.agree && within_tolerance(*row.values[f], *row.values[0], options.atol, options.rtol);
    }
    cmp.compared += row.compared;
    cmp.differing += row.compared && !row.agree;
    cmp.metrics.push_back(row);
  }

  for (const CurveSlot& slot : curves.rows) {
    CurveRow row;
    row.key = slot.key;
    row.summaries.resize(n);
    row.vs_reference.resize(n);
    for (size_t f = 0; f < n; ++f) {
      if (!slot.values[f]) continue;
      row.summaries[f] = summarize(*slot.values[f]->first, *slot.values[f]->second);
      if (f > 0 && slot.values[0]) row.vs_reference[f] = pointwise(*slot.values[f]->first, *slot.values[0]->first);
    }
    cmp.curves.push_back(row);
  }

  std::vector<std::map<std::string, json>> flat;
  std::set<std::string> config_keys;
  for (const Result& r : results) {
    flat.push_back(flat_config(r));
    for (const auto& kv : flat.back()) config_keys.insert(kv.first);
  }
  for (const std::string& key : config_keys) {
    ConfigRow row;
    row.key = key;
    bool same = true;
    for (size_t f = 0; f < n; ++f) {
      auto it = flat[f].find(key);
      if (it != flat[f].end()) row.values.push_back(it->second);
      else row.values.push_back(std::nullopt);
      same = same && row.values[f] == row.values[0];
    }
    if (!same) cmp.config.push_back(row);
  }
  return cmp;
}

}  // namespace intl::results
