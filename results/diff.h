// Comparing result files: metrics side by side with differences and a tolerance verdict, configuration keys
// that differ, and a summary of every curve. `intl diff` prints this; docs/results.md explains the matching.
// The first file is the reference: a value x agrees with the reference r when |x - r| <= atol + rtol * |r|.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "results/result.h"

namespace intl::results {

struct DiffOptions {
  double rtol = 1e-6;  // relative to the reference (first file)
  double atol = 0.0;
  std::vector<std::string> key_patterns;  // shell globs on "run/metric" or on the metric name; empty: all
};

// One metric across the files. Keys are "run/metric"; in a file with exactly one run the run name is left
// out ("linear_top1"), so a one-run result matches a paper file's one run whatever the runs are called.
struct MetricRow {
  std::string key;
  std::vector<std::optional<double>> values;  // one per file; nullopt: the file lacks it
  bool compared = false;  // the reference and at least one other file hold it, and it is judged
  bool agree = true;      // every holder agrees with the reference within tolerance
  bool timing = false;    // a wall-clock measurement (see is_timing_metric): listed, judged only when --keys picks it
};

// Metrics that measure the machine rather than the training: names ending in "_s" (seconds, as wall_s and
// epoch_time_s, or a rate, as images_per_s). Two runs of the same thing never agree on them, so they are
// listed but not judged unless DiffOptions::key_patterns selects them (comparing an epoch time with the
// paper's Table G is deliberate).
bool is_timing_metric(const std::string& name);

// A configuration or header key whose value is not the same in every file (absent counts as a value).
struct ConfigRow {
  std::string key;                          // "config.lr", "header.git_revision", "run.config.T", ...
  std::vector<std::optional<json>> values;  // one per file
};

struct CurveSummary {
  std::string x_label;
  size_t points = 0;
  double last_x = 0, final_value = 0;  // the last point (its y may be NaN)
  double min = 0, max = 0;             // over the finite values
  std::optional<int64_t> crash_step;   // step of the run's first "crash" event
};

// The largest |y - y_reference| over the points whose x equals a reference point's x.
struct PointDiff {
  size_t matched = 0;
  double max_abs = 0;  // inf when one side is finite and the other is not
  double at_x = 0;
};

struct CurveRow {
  std::string key;  // matched like metrics: "run/curve" or "curve"
  std::vector<std::optional<CurveSummary>> summaries;  // one per file
  std::vector<std::optional<PointDiff>> vs_reference;  // one per file; [0] and files without matching x: nullopt
};

struct Comparison {
  std::vector<std::string> names;  // column name of each file
  DiffOptions options;
  std::vector<MetricRow> metrics;
  std::vector<ConfigRow> config;
  std::vector<CurveRow> curves;
  size_t compared = 0;   // metrics compared
  size_t differing = 0;  // of those, how many disagree
  bool agree() const { return differing == 0; }
};

// Why a comparison compared no metric, "" when it compared some: --keys matched none, the reference or every
// other file holds none, the only metrics held by both are timings, or no metric is held by both the reference
// and another file; with the studies named when header.study differs ('pretrain' (a) vs 'toy2d' (b)).
std::string nothing_compared_reason(const Comparison& comparison);

// |value - reference| <= atol + rtol * |reference|; NaN agrees with NaN and inf with the same inf.
bool within_tolerance(double value, double reference, double atol, double rtol);

// Compares results[1..] with results[0]. names are the column names (see column_names).
Comparison compare_results(const std::vector<Result>& results, const std::vector<std::string>& names,
                           const DiffOptions& options);

// Short, distinct column names for files: the file stems, or the paths as given where stems collide.
std::vector<std::string> column_names(const std::vector<std::string>& paths);

// The comparison as "text" (aligned tables), "markdown" (tables ready to paste), "csv" (the metric table
// only) or "json". Throws UsageError for another format.
std::string format_comparison(const Comparison& comparison, const std::string& format);

}  // namespace intl::results
