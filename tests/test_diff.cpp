// `intl diff`: tolerances, matching a one-run result with the paper's numbers by metric name, the Markdown
// table's shape, more than two files, curve summaries, the executable's exit codes (0 / 1 / 2, and 1 when
// nothing could be compared), --out and --config; and the command line's own errors: unknown commands, comma
// lists, --config files and options they make required.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "results/diff.h"
#include "results/version.h"
#include "tests/intl_binary.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace intl::results;

namespace {

const std::string paper_cifar10 = std::string(INTL_SOURCE_DIR) + "/experiments/paper/cifar10.json";

Result one_run(const std::string& run_name, std::map<std::string, double> metrics) {
  Result r;
  r.header = make_header("pretrain cifar10", "pretrain");
  r.config = {{"epochs", 1000}, {"lr", 0.3}};
  Run run;
  run.name = run_name;
  run.metrics = std::move(metrics);
  r.runs.push_back(run);
  return r;
}

const MetricRow* find_row(const Comparison& c, const std::string& key) {
  for (const MetricRow& row : c.metrics)
    if (row.key == key) return &row;
  return nullptr;
}

// Runs the intl executable; returns its exit status and fills `out` with stdout and stderr.
int run_intl(const std::string& args, const fs::path& dir, std::string& out) {
  const fs::path log = dir / "out.txt";
  const std::string cmd = std::string("'") + intl_binary() + "' " + args + " > '" + log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  out = s.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("within_tolerance is |x - r| <= atol + rtol * |r|, with NaN and inf") {
  CHECK(within_tolerance(1.0, 1.0, 0, 0));
  CHECK(!within_tolerance(1.0 + 1e-12, 1.0, 0, 0));
  CHECK(within_tolerance(101.0, 100.0, 0, 0.01));
  CHECK(!within_tolerance(101.5, 100.0, 0, 0.01));
  CHECK(within_tolerance(92.3, 92.6, 0.5, 0));
  CHECK(!within_tolerance(92.0, 92.6, 0.5, 0));
  CHECK(within_tolerance(NAN, NAN, 0, 0));
  CHECK(!within_tolerance(NAN, 1.0, 1e9, 1e9));
  CHECK(within_tolerance(INFINITY, INFINITY, 0, 0));
  CHECK(!within_tolerance(INFINITY, -INFINITY, 0, 0));
  CHECK(!within_tolerance(1.0, INFINITY, 1e9, 1e9));
}

TEST_CASE("the relative tolerance scales with the reference (the first file), not the other value") {
  CHECK(within_tolerance(90.0, 100.0, 0, 0.105));    // 10 <= 10.5
  CHECK(!within_tolerance(100.0, 90.0, 0, 0.105));   // 10 > 9.45
  CHECK(within_tolerance(-90.0, -100.0, 0, 0.105));  // magnitudes
  const Result big = one_run("x", {{"m", 100.0}}), small = one_run("x", {{"m", 90.0}});
  DiffOptions opts;
  opts.rtol = 0.105;
  CHECK(compare_results({big, small}, {"big", "small"}, opts).agree());
  CHECK(!compare_results({small, big}, {"small", "big"}, opts).agree());
}

TEST_CASE("a one-run result matches the paper's numbers by metric name") {
  Result paper = load_result(paper_cifar10);
  Result mine = one_run("cifar10", {{"linear_top1", 92.31}, {"knn5_top1", 90.03}, {"final_loss", -0.7}});
  DiffOptions opts;
  Comparison exact = compare_results({mine, paper}, {"RESULT", "cifar10"}, opts);
  const MetricRow* top1 = find_row(exact, "linear_top1");
  REQUIRE(top1 != nullptr);
  CHECK(*top1->values[0] == 92.31);
  CHECK(*top1->values[1] == doctest::Approx(92.60));
  CHECK(top1->compared);
  CHECK(!top1->agree);
  CHECK(find_row(exact, "knn5_top1")->agree);
  CHECK(!find_row(exact, "final_loss")->compared);   // only in mine: listed, not compared
  CHECK(!find_row(exact, "linear_top5")->compared);  // only in the paper
  CHECK(exact.compared == 2);
  CHECK(exact.differing == 1);
  CHECK(!exact.agree());

  opts.atol = 0.5;
  CHECK(compare_results({mine, paper}, {"RESULT", "cifar10"}, opts).agree());
  opts.atol = 0;
  opts.rtol = 0.01;
  CHECK(compare_results({mine, paper}, {"RESULT", "cifar10"}, opts).agree());

  opts.rtol = 0;
  opts.key_patterns = {"knn*"};
  Comparison only_knn = compare_results({mine, paper}, {"RESULT", "cifar10"}, opts);
  CHECK(only_knn.metrics.size() == 1);
  CHECK(only_knn.agree());
}

TEST_CASE("timings (names ending in _s) are listed but judged only when --keys picks them") {
  CHECK(is_timing_metric("wall_s"));
  CHECK(is_timing_metric("epoch_time_s"));
  CHECK(is_timing_metric("run 1/images_per_s"));
  CHECK(!is_timing_metric("knn5_top1"));
  CHECK(!is_timing_metric("skipped_images"));
  CHECK(!is_timing_metric("epoch_time_s/knn5_top1"));  // a run named like a timing
  const Result a = one_run("x", {{"final_loss", 1.5}, {"epoch_time_s", 2.0}, {"images_per_s", 900.0}});
  const Result b = one_run("x", {{"final_loss", 1.5}, {"epoch_time_s", 3.0}, {"images_per_s", 600.0}});
  DiffOptions opts;
  const Comparison c = compare_results({a, b}, {"a", "b"}, opts);
  CHECK(c.agree());
  CHECK(c.compared == 1);
  CHECK(find_row(c, "epoch_time_s")->timing);
  CHECK(!find_row(c, "epoch_time_s")->compared);
  CHECK(format_comparison(c, "text").find("timing (not compared; --keys picks it)") != std::string::npos);
  CHECK(format_comparison(c, "text").find("2 timings (listed, not compared)") != std::string::npos);
  opts.key_patterns = {"epoch_time_s"};  // asked for by name (an epoch time against the paper's Table G)
  const Comparison picked = compare_results({a, b}, {"a", "b"}, opts);
  CHECK(!find_row(picked, "epoch_time_s")->timing);
  CHECK(!picked.agree());
}

TEST_CASE("differing runs computed on other thread counts or devices get a note; the paper's numbers do not") {
  Result a = one_run("x", {{"final_loss", 1.5}}), b = one_run("x", {{"final_loss", 1.6}});
  a.header.threads = 2;
  b.header.threads = 8;
  const std::string note = "the files differ in header.threads; a training run's numbers change";
  CHECK(format_comparison(compare_results({a, b}, {"a", "b"}, {}), "text").find(note) != std::string::npos);
  Result same = one_run("x", {{"final_loss", 1.5}});
  same.header.threads = 8;
  CHECK(format_comparison(compare_results({a, same}, {"a", "b"}, {}), "text").find("Note:") == std::string::npos);
  b.header.study = "paper";
  CHECK(format_comparison(compare_results({a, b}, {"a", "b"}, {}), "text").find("Note:") == std::string::npos);
}

TEST_CASE("runs of several-run files match by run/metric") {
  Result a = load_result(std::string(INTL_SOURCE_DIR) + "/experiments/paper/imagenet.json");
  Result b = a;
  b.runs[0].metrics["linear_top1_100ep"] = 70.0;
  Comparison c = compare_results({a, b}, {"paper", "mine"}, DiffOptions{});
  const MetricRow* row = find_row(c, "intl/linear_top1_100ep");
  REQUIRE(row != nullptr);
  CHECK(!row->agree);
  CHECK(find_row(c, "intl multicrop+ema/linear_top1_800ep")->agree);
  CHECK(c.differing == 1);
  CHECK(c.config.empty());
}

TEST_CASE("configuration differences are flattened dotted keys") {
  Result a = one_run("r", {{"m", 1}});
  Result b = a;
  b.config["lr"] = 0.6;
  b.config["optimizer"] = {{"momentum", 0.9}};
  b.runs[0].config["T"] = 5;
  Comparison c = compare_results({a, b}, {"a", "b"}, DiffOptions{});
  std::vector<std::string> keys;
  for (const ConfigRow& row : c.config) keys.push_back(row.key);
  CHECK(keys == std::vector<std::string>{"config.lr", "config.optimizer.momentum", "run.config.T"});
  CHECK(!c.config[1].values[0].has_value());
  CHECK(*c.config[1].values[1] == 0.9);
  // The seed and a one-run file's run name are compared too: runs of other seeds or names say so.
  b = a;
  b.header.seed = 7;
  b.runs[0].name = "s";
  c = compare_results({a, b}, {"a", "b"}, DiffOptions{});
  keys.clear();
  for (const ConfigRow& row : c.config) keys.push_back(row.key);
  CHECK(keys == std::vector<std::string>{"header.seed", "run.name"});
}

TEST_CASE("markdown output is a table ready to paste") {
  Result paper = load_result(paper_cifar10);
  Result mine = one_run("cifar10", {{"linear_top1", 92.31}, {"knn5_top1", 90.03}, {"linear_top5", 99.8}});
  Comparison c = compare_results({mine, paper}, {"RESULT", "cifar10"}, DiffOptions{});
  std::istringstream md(format_comparison(c, "markdown"));
  std::vector<std::string> table;
  for (std::string line; std::getline(md, line);) {
    if (!line.empty() && line[0] == '|') table.push_back(line);
    else if (!table.empty()) break;  // the first table only
  }
  REQUIRE(table.size() == 2 + 3);  // header, separator, three metrics
  CHECK(table[0] == "| metric | RESULT | cifar10 | cifar10 - RESULT | rel | status |");
  CHECK(table[1] == "| --- | ---: | ---: | ---: | ---: | --- |");
  for (const std::string& line : table) CHECK(std::count(line.begin(), line.end(), '|') == 7);
  CHECK(table[3].find("| linear_top1 | 92.31 | 92.6 | +0.29 | +0.314% | DIFFERS |") == 0);
  const std::string csv = format_comparison(c, "csv");
  CHECK(csv.rfind("metric,RESULT,cifar10,cifar10 - RESULT,rel,status\n", 0) == 0);
  CHECK(json::parse(format_comparison(c, "json")).at("differing") == 1);
  CHECK_THROWS_AS(format_comparison(c, "html"), intl::UsageError);
}

TEST_CASE("more than two files: each compared with the first") {
  Result a = one_run("x", {{"m", 1.0}});
  Result b = one_run("y", {{"m", 1.0}});
  Result c = one_run("z", {{"m", 2.0}, {"extra", 3.0}});
  Comparison cmp = compare_results({a, b, c}, {"a", "b", "c"}, DiffOptions{});
  const MetricRow* m = find_row(cmp, "m");
  REQUIRE(m != nullptr);
  CHECK(m->values.size() == 3);
  CHECK(!m->agree);
  CHECK(cmp.compared == 1);
  const std::string text = format_comparison(cmp, "text");
  CHECK(text.find("b - a") != std::string::npos);
  CHECK(text.find("c - a") != std::string::npos);
  CHECK(text.find("rel") == std::string::npos);  // relative difference only for two files
  CHECK(compare_results({a, b}, {"a", "b"}, DiffOptions{}).agree());
}

TEST_CASE("curves: summary, crash step and the largest difference where steps match") {
  Result a = one_run("r", {});
  a.runs[0].curves["loss"] = Curve{"iteration", {0, 1, 2, 3}, {4, 3, 2, 1}};
  Result b = a;
  b.runs[0].curves["loss"] = Curve{"iteration", {1, 2, 3, 4}, {3, 2.5, NAN, NAN}};
  b.runs[0].events.push_back(Event{"crash", 3, "non-finite loss", json::object()});
  Comparison c = compare_results({a, b}, {"a", "b"}, DiffOptions{});
  REQUIRE(c.curves.size() == 1);
  const CurveRow& row = c.curves[0];
  CHECK(row.summaries[0]->final_value == 1);
  CHECK(row.summaries[0]->min == 1);
  CHECK(row.summaries[0]->max == 4);
  CHECK(row.summaries[1]->crash_step == 3);
  CHECK(std::isnan(row.summaries[1]->final_value));
  REQUIRE(row.vs_reference[1].has_value());
  CHECK(row.vs_reference[1]->matched == 3);
  CHECK(std::isinf(row.vs_reference[1]->max_abs));
  CHECK(row.vs_reference[1]->at_x == 3);
  CHECK(c.agree());  // curves are reported, never judged
  CHECK(format_comparison(c, "text").find("crash at 3") != std::string::npos);
}

TEST_CASE("curves: the summary's min and max skip non-finite points, wherever they are") {
  Result a = one_run("r", {});
  a.runs[0].curves["loss"] = Curve{"iteration", {0, 1, 2, 3, 4}, {NAN, 2, INFINITY, 1, -INFINITY}};
  a.runs[0].curves["dead"] = Curve{"iteration", {0, 1}, {NAN, INFINITY}};
  const Comparison c = compare_results({a, a}, {"a", "b"}, DiffOptions{});
  REQUIRE(c.curves.size() == 2);
  for (const CurveRow& row : c.curves) {
    CAPTURE(row.key);
    const CurveSummary& s = *row.summaries[0];
    if (row.key == "loss") {
      CHECK(s.min == 1);
      CHECK(s.max == 2);
      CHECK(s.final_value == -INFINITY);  // the last point as it is
    } else {
      CHECK(std::isnan(s.min));  // no finite value
      CHECK(std::isnan(s.max));
    }
  }
}

TEST_CASE("curves: the largest difference is placed at the first of tied maxima") {
  Result a = one_run("r", {});
  a.runs[0].curves["loss"] = Curve{"iteration", {0, 1, 2, 3}, {0, 0, 0, 0}};
  Result b = a;
  b.runs[0].curves["loss"] = Curve{"iteration", {0, 1, 2, 3}, {0, 1, 0, -1}};
  Comparison c = compare_results({a, b}, {"a", "b"}, DiffOptions{});
  REQUIRE(c.curves[0].vs_reference[1].has_value());
  CHECK(c.curves[0].vs_reference[1]->max_abs == 1);
  CHECK(c.curves[0].vs_reference[1]->at_x == 1);
  // All equal: the first matched point (x = 5 here, not the field's initial 0).
  a.runs[0].curves["loss"] = Curve{"iteration", {5, 6, 7}, {0, 0, 0}};
  c = compare_results({a, a}, {"a", "b"}, DiffOptions{});
  REQUIRE(c.curves[0].vs_reference[1].has_value());
  CHECK(c.curves[0].vs_reference[1]->max_abs == 0);
  CHECK(c.curves[0].vs_reference[1]->at_x == 5);
}

TEST_CASE("nothing_compared_reason says why no metric was compared, naming differing studies") {
  Result pretrain = one_run("cifar10", {{"linear_top1", 92.3}});
  Result toy = one_run("iternorm T=5", {{"final_loss", 0.01}});
  toy.header.study = "toy2d";
  const Comparison disjoint = compare_results({pretrain, toy}, {"a", "b"}, DiffOptions{});
  CHECK(disjoint.compared == 0);
  CHECK(nothing_compared_reason(disjoint) == "no metric is held by both the reference (a) and another file; "
                                             "header.study differs: 'pretrain' (a) vs 'toy2d' (b)");
  DiffOptions zzz;
  zzz.key_patterns = {"zzz*"};
  CHECK(nothing_compared_reason(compare_results({pretrain, pretrain}, {"a", "b"}, zzz)) ==
        "--keys 'zzz*' matches no metric of the files");
  Result killed = one_run("cifar10", {});
  CHECK(nothing_compared_reason(compare_results({killed, pretrain}, {"a", "b"}, DiffOptions{})) ==
        "a (the reference, the first file) holds no metric");
  CHECK(nothing_compared_reason(compare_results({pretrain, killed}, {"a", "b"}, DiffOptions{})) ==
        "no file after the reference (a) holds a metric");
  Result timed = one_run("cifar10", {{"wall_s", 3}});
  CHECK(nothing_compared_reason(compare_results({timed, timed}, {"a", "b"}, DiffOptions{})).find("are timings") !=
        std::string::npos);
  CHECK(nothing_compared_reason(compare_results({pretrain, pretrain}, {"a", "b"}, DiffOptions{})).empty());
  CHECK(format_comparison(disjoint, "json").find("\"nothing_compared\": \"no metric is held") != std::string::npos);
}

TEST_CASE("intl diff exits 1 with a line saying why when nothing could be compared") {
  TempDir tmp;
  const std::string pretrain = tmp / "pretrain.json", toy = tmp / "toy2d.json", killed = tmp / "killed.json";
  save_result(one_run("cifar10", {{"linear_top1", 92.3}}), pretrain);
  Result t = one_run("iternorm T=5", {{"final_loss", 0.01}});
  t.header.study = "toy2d";
  save_result(t, toy);
  save_result(one_run("cifar10", {}), killed);
  std::string out;
  CHECK(run_intl("diff '" + pretrain + "' '" + toy + "'", tmp.path, out) == 1);
  CHECK(out.find("intl: diff: nothing compared: no metric is held by both the reference (pretrain) and another "
                 "file; header.study differs: 'pretrain' (pretrain) vs 'toy2d' (toy2d)\n") != std::string::npos);
  CHECK(run_intl("diff --keys 'zzz*' '" + pretrain + "' '" + pretrain + "'", tmp.path, out) == 1);
  CHECK(out.find("intl: diff: nothing compared: --keys 'zzz*' matches no metric of the files") != std::string::npos);
  CHECK(run_intl("diff '" + killed + "' '" + pretrain + "'", tmp.path, out) == 1);
  CHECK(out.find("nothing compared: killed (the reference, the first file) holds no metric") != std::string::npos);
  CHECK(run_intl("diff --keys 'a,,b' '" + pretrain + "' '" + pretrain + "'", tmp.path, out) == 2);
  CHECK(out.find("intl: --keys: 'a,,b' has an empty pattern") == 0);
}

TEST_CASE("intl diff --out DIR writes DIR/diff.json; its options may come from --config") {
  TempDir tmp;
  const std::string mine = tmp / "RESULT.json";
  save_result(one_run("cifar10", {{"linear_top1", 92.31}, {"knn5_top1", 90.0}}), mine);
  std::string out;
  CHECK(run_intl("diff '" + mine + "' '" + paper_cifar10 + "' --out '" + (tmp / "cmp") + "'", tmp.path, out) == 1);
  CHECK(out.find("wrote " + (tmp / "cmp/diff.json")) != std::string::npos);
  const json written = json::parse(std::ifstream(tmp / "cmp/diff.json"));
  CHECK(written.at("compared") == 2);
  CHECK(written.at("differing") == 2);
  CHECK(std::distance(fs::directory_iterator(tmp / "cmp"), fs::directory_iterator()) == 1);  // no temporary left

  std::ofstream(tmp / "diff-options.json") << R"({"atol": 0.5, "format": "csv", "out": ")" << tmp / "cfg" << "\"}";
  CHECK(run_intl("diff '" + mine + "' '" + paper_cifar10 + "' --config '" + (tmp / "diff-options.json") + "'",
                 tmp.path, out) == 0);
  CHECK(out.rfind("metric,RESULT,cifar10,", 0) == 0);
  CHECK(json::parse(std::ifstream(tmp / "cfg/diff.json")).at("agree") == true);
  // The command line wins over the file.
  CHECK(run_intl("diff '" + mine + "' '" + paper_cifar10 + "' --atol 0 --config '" + (tmp / "diff-options.json") +
                     "'",
                 tmp.path, out) == 1);
  std::ofstream(tmp / "device.json") << R"({"device": "cpu"})";
  CHECK(run_intl("diff '" + mine + "' '" + mine + "' --config '" + (tmp / "device.json") + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + (tmp / "device.json") + "' sets 'device', which is not an option of 'intl diff' "
               "(see 'intl diff --help')\n");
}

TEST_CASE("intl diff exits 0 when metrics agree, 1 when they do not, 2 on bad files or options") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string mine = (dir / "RESULT.json").string();
  save_result(one_run("cifar10", {{"linear_top1", 92.31}, {"knn5_top1", 90.0}}), mine);
  std::string out;
  CHECK(run_intl("diff '" + mine + "' '" + paper_cifar10 + "'", dir, out) == 1);
  CHECK(out.find("linear_top1") != std::string::npos);
  CHECK(run_intl("diff '" + mine + "' '" + paper_cifar10 + "' --atol 0.5", dir, out) == 0);
  CHECK(run_intl("diff --keys knn5_top1 --atol 0.05 --format csv '" + mine + "' '" + paper_cifar10 + "'", dir, out) == 0);
  CHECK(out == "metric,RESULT,cifar10,cifar10 - RESULT,rel,status\nknn5_top1,90,90.03,+0.03,+0.0333%,ok\n");
  CHECK(run_intl("diff '" + mine + "' '" + mine + "'", dir, out) == 0);

  std::ofstream(dir / "bad.json") << "{\"format\": \"intl-result\", \"runs\": [";
  CHECK(run_intl("diff '" + mine + "' '" + (dir / "bad.json").string() + "'", dir, out) == 2);
  CHECK(out.find("bad.json: not valid JSON") != std::string::npos);
  CHECK(run_intl("diff '" + mine + "' '" + (dir / "missing.json").string() + "'", dir, out) == 2);
  CHECK(run_intl("diff '" + dir.string() + "' '" + mine + "'", dir, out) == 2);
  CHECK(out == "intl: " + dir.string() + ": a folder, not a result file; give '" + mine + "'\n");
  CHECK(run_intl("diff '" + mine + "'", dir, out) == 2);
  CHECK(run_intl("diff '" + mine + "' '" + mine + "' --format xml", dir, out) == 2);
  CHECK(run_intl("diff '" + mine + "' '" + mine + "' --rtol -1", dir, out) == 2);
}

TEST_CASE("two runs of the same command and seed agree under intl diff's defaults (their timings are not judged)") {
  TempDir tmp;
  std::string out;
  for (const char* name : {"a", "b"})
    REQUIRE(run_intl("run toy2d --epochs 3 --seed 5 --out '" + (tmp.path / name).string() + "'", tmp.path, out) == 0);
  CHECK(run_intl("diff '" + (tmp / "a/RESULT.json") + "' '" + (tmp / "b/RESULT.json") + "'", tmp.path, out) == 0);
  INFO(out);
  CHECK(out.find("timing (not compared") != std::string::npos);
  CHECK(out.find("0 differ") != std::string::npos);
}

TEST_CASE("the command line's own errors name the command and its --help; --seed refuses a negative") {
  TempDir tmp;
  std::string out;
  CHECK(run_intl("run whiten-instability --d 64,x", tmp.path, out) == 2);
  CHECK(out == "intl: Could not convert: --d = 64,x (see 'intl run whiten-instability --help')\n");
  CHECK(run_intl("bench train --no-such-option 2", tmp.path, out) == 2);
  CHECK(out.find("(see 'intl bench train --help')") != std::string::npos);
  CHECK(run_intl("diff a.json b.json --format xml", tmp.path, out) == 2);
  CHECK(out.rfind("intl: --format: xml not in", 0) == 0);
  CHECK(run_intl("", tmp.path, out) == 2);
  CHECK(out == "intl: A subcommand is required (see 'intl --help')\n");
  // "-1" would convert to 2^64 - 1 without a word; from a --config file as from the command line.
  CHECK(run_intl("run toy2d --seed -1", tmp.path, out) == 2);
  CHECK(out.find("intl: --seed: '-1' is not an integer >= 0") == 0);
  CHECK(run_intl("run toy2d --seed 99999999999999999999", tmp.path, out) == 2);  // would saturate
  CHECK(out.find("intl: --seed: '99999999999999999999' is larger than 2^64 - 1") == 0);
  std::ofstream(tmp.path / "seed.json") << "{\"seed\": -1}";
  CHECK(run_intl("run toy2d --config '" + (tmp.path / "seed.json").string() + "'", tmp.path, out) == 2);
  CHECK(out.find("'-1' is not an integer >= 0") != std::string::npos);
  CHECK(run_intl("--help", tmp.path, out) == 0);
  CHECK(run_intl("--version", tmp.path, out) == 0);
  CHECK(out == std::string(INTL_VERSION) + " (" + intl::git_revision() + ")\n");
  CHECK(run_intl("frobnicate", tmp.path, out) == 2);
  CHECK(out == "intl: 'frobnicate' is not an intl command; commands: run, pretrain, eval, diff, plot, bench "
               "(intl --help)\n");
  CHECK(run_intl("run frobnicate --T 3", tmp.path, out) == 2);
  CHECK(out == "intl: 'frobnicate' is not an intl run command; commands: toy2d, whiten-instability, iternorm-cifar "
               "(intl run --help)\n");
}

TEST_CASE("a comma list takes one word per occurrence and refuses empty items") {
  TempDir tmp;
  std::string out;
  const std::string empty_item = "has an empty item; separate items by single commas, none leading or trailing";
  CHECK(run_intl("run toy2d --T , --out '" + (tmp / "x") + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --T: ',' " + empty_item + " (see 'intl run toy2d --help')\n");
  CHECK(run_intl("run toy2d --T 1,,3", tmp.path, out) == 2);
  CHECK(out == "intl: --T: '1,,3' " + empty_item + " (see 'intl run toy2d --help')\n");
  CHECK(run_intl("run iternorm-cifar --T 1,", tmp.path, out) == 2);
  CHECK(out == "intl: --T: '1,' " + empty_item + " (see 'intl run iternorm-cifar --help')\n");
  CHECK(run_intl("run whiten-instability --d ''", tmp.path, out) == 2);
  CHECK(out.find("intl: --d: the value is empty") == 0);
  CHECK(run_intl("run toy2d --T 1 3", tmp.path, out) == 2);
  CHECK(out == "intl: The following argument was not expected: 3; a list is one word: --T 1,3,5 (see 'intl run "
               "toy2d --help')\n");
  // An option the command lacks is named as one (a benchmark writes no files: no --out).
  CHECK(run_intl("bench iternorm --out x", tmp.path, out) == 2);
  CHECK(out == "intl: --out: not an option of 'intl bench iternorm' (see 'intl bench iternorm --help')\n");
  // Repeated, each occurrence adds its items; a --config list is one word too.
  CHECK(run_intl("run toy2d --T 1 --T 3 --epochs 1 --out '" + (tmp / "a") + "'", tmp.path, out) == 0);
  std::ofstream(tmp / "lists.json") << R"({"T": [1, 3], "epochs": 1})";
  CHECK(run_intl("run toy2d --config '" + (tmp / "lists.json") + "' --out '" + (tmp / "b") + "'", tmp.path, out) == 0);
  const Result a = load_result(tmp / "a/RESULT.json"), b = load_result(tmp / "b/RESULT.json");
  CHECK(a.config.at("T") == json::array({1, 3}));
  CHECK(b.config.at("T") == json::array({1, 3}));
  std::ofstream(tmp / "empty-item.json") << R"({"T": [1, "", 3]})";
  CHECK(run_intl("run toy2d --config '" + (tmp / "empty-item.json") + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + (tmp / "empty-item.json") + "': key 'T': '1,,3' " + empty_item + "\n");
}

TEST_CASE("--config errors name the file and the key") {
  TempDir tmp;
  std::string out;
  auto config = [&](const std::string& name, const std::string& text) {
    std::ofstream(tmp / name) << text;
    return tmp / name;
  };
  const std::string iters = config("iters.json", R"({"iters": "abc"})");
  CHECK(run_intl("run whiten-instability --config '" + iters + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + iters + "': key 'iters': \"abc\" is not a valid INT\n");
  CHECK(run_intl("run toy2d --config '" + tmp.str() + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + tmp.str() + "' is a folder, not a JSON file; give the path of a JSON file of "
               "options\n");
  const std::string unknown = config("unknown.json", R"({"zzz": 1})");
  CHECK(run_intl("run toy2d --config '" + unknown + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + unknown + "' sets 'zzz', which is not an option of 'intl run toy2d' (see 'intl "
               "run toy2d --help')\n");
  const std::string list = config("list.json", R"([{"T": 1}])");
  CHECK(run_intl("run toy2d --config '" + list + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + list + "' must hold one JSON object of options, e.g. {\"T\": [1, 3, 5]}\n");
  const std::string nested = config("nested.json", R"({"T": {"value": 1}})");
  CHECK(run_intl("run toy2d --config '" + nested + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + nested + "': key 'T': holds an object; options are flat (a list gives several "
               "values)\n");
  const std::string twice = config("twice.json", R"({"T": 1, "epochs": 2, "T": 3})");
  CHECK(run_intl("run toy2d --config '" + twice + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + twice + "': key 'T' appears twice; keep one\n");
  const std::string flag = config("flag.json", R"({"checkpoints": 2})");
  CHECK(run_intl("run whiten-instability --config '" + flag + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + flag + "': key 'checkpoints': --checkpoints takes true or false, found 2\n");
  const std::string boolean = config("boolean.json", R"({"decay-1d": "no"})");
  CHECK(run_intl("pretrain cifar10 --data-dir x --config '" + boolean + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + boolean + "': key 'decay-1d': --decay-1d takes true or false, found \"no\"\n");
  // Values the command checks once every option is read: the file and key are named as well.
  const std::string item = config("item.json", R"({"T": [1, "x"]})");
  CHECK(run_intl("run toy2d --config '" + item + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + item + "': key 'T': 'x' is not an integer; allowed: integers 0..64\n");
  const std::string momentum = config("momentum.json", R"({"momentum": 2})");
  CHECK(run_intl("pretrain cifar10 --data-dir x --config '" + momentum + "'", tmp.path, out) == 2);
  CHECK(out == "intl: --config: '" + momentum + "': key 'momentum': must be in [0, 1), found 2\n");
  CHECK(run_intl("pretrain cifar10 --data-dir x --config '" + momentum + "' --momentum 3", tmp.path, out) == 2);
  CHECK(out == "intl: --momentum must be in [0, 1), found 3\n");  // the command line's value
}

TEST_CASE("--config: unsigned 64-bit numbers, --help whatever the file, and the command line's choice between "
          "options that exclude each other") {
  TempDir tmp;
  std::string out;
  std::ofstream(tmp / "seed.json") << R"({"seed": 18446744073709551615, "epochs": 1})";
  CHECK(run_intl("run toy2d --config '" + (tmp / "seed.json") + "' --out '" + (tmp / "s") + "'", tmp.path, out) == 0);
  CHECK(load_result(tmp / "s/RESULT.json").header.seed == 18446744073709551615ull);
  CHECK(run_intl("run toy2d --seed 010", tmp.path, out) == 2);  // CLI11 would read it as octal 8
  CHECK(out.find("intl: --seed: '010' has a leading 0") == 0);
  CHECK(run_intl("run toy2d --config '" + (tmp / "none.json") + "' --help", tmp.path, out) == 0);
  CHECK(out.find("Usage:") != std::string::npos);
  // The file sets --init; --init-cond on the command line wins over it, as any command-line option does.
  std::ofstream(tmp / "init.json") << R"({"init": ["well"], "epochs": 1})";
  CHECK(run_intl("run toy2d --config '" + (tmp / "init.json") + "' --init-cond 5 --out '" + (tmp / "i") + "'",
                 tmp.path, out) == 0);
  CHECK(load_result(tmp / "i/RESULT.json").config.at("init-cond") == json::array({5.0}));
  CHECK(run_intl("run toy2d --init well --init-cond 5", tmp.path, out) == 2);
  // diff --out that cannot be a folder is bad usage (2), not a difference (1).
  std::ofstream(tmp / "file") << "x";
  CHECK(run_intl("diff '" + (tmp / "s/RESULT.json") + "' '" + (tmp / "s/RESULT.json") + "' --out '" + (tmp / "file") +
                     "'",
                 tmp.path, out) == 2);
  CHECK(out.find("is a file, not a folder") != std::string::npos);
}

TEST_CASE("an option marked required may come from --config") {
  TempDir tmp;
  std::string out;
  const std::string missing = tmp / "no-such-folder";
  std::ofstream(tmp / "pretrain.json") << R"({"data-dir": ")" << missing << "\"}";
  CHECK(run_intl("pretrain cifar10 --config '" + (tmp / "pretrain.json") + "' --out '" + (tmp / "p") + "'", tmp.path,
                 out) == 1);
  CHECK(out.find("cannot open " + missing + "/data_batch_1.bin") != std::string::npos);
  std::ofstream(tmp / "knn.json") << R"({"checkpoint": ")" << tmp / "no.ckpt" << R"(", "data-dir": ")" << missing
                                  << "\"}";
  CHECK(run_intl("eval knn --config '" + (tmp / "knn.json") + "' --out '" + (tmp / "e") + "'", tmp.path, out) == 1);
  CHECK(out.find("is required") == std::string::npos);
  CHECK(out.find(tmp / "no.ckpt") != std::string::npos);
  // Without the file the requirement stands, and --help still marks it.
  CHECK(run_intl("pretrain cifar10", tmp.path, out) == 2);
  CHECK(out == "intl: --data-dir is required (see 'intl pretrain --help')\n");
  CHECK(run_intl("eval knn --help", tmp.path, out) == 0);
  CHECK(out.find("--checkpoint TEXT REQUIRED") != std::string::npos);
}

// A pre-training's result has one run ("intl multicrop+ema"); the paper's ImageNet file has four. The one-run
// file keeps its run name there, so its metric meets the paper's row of that run and no other.
TEST_CASE("a one-run result meets the run of its name in a several-run file; --keys matches bare metric names") {
  const Result paper = load_result(std::string(INTL_SOURCE_DIR) + "/experiments/paper/imagenet.json");
  const Result mine = one_run("intl multicrop+ema", {{"linear_top1_100ep", 73.4}, {"knn5_top1", 60.0}});
  DiffOptions o;
  o.atol = 0.2;
  const Comparison c = compare_results({paper, mine}, {"paper", "mine"}, o);
  const MetricRow* row = find_row(c, "intl multicrop+ema/linear_top1_100ep");
  REQUIRE(row != nullptr);
  CHECK(row->compared);
  CHECK(row->agree);  // |73.4 - 73.5| <= 0.2
  CHECK(find_row(c, "linear_top1_100ep") == nullptr);
  CHECK(c.compared == 1);
  // A glob on the bare name selects that metric in every run of a several-run file.
  o.key_patterns = {"linear_top1_8*"};
  const Comparison picked = compare_results({paper, paper}, {"a", "b"}, o);
  CHECK(picked.compared == 3);  // the three runs with an 800-epoch figure
  CHECK(find_row(picked, "intl/linear_top1_800ep") != nullptr);
  CHECK(find_row(picked, "intl/linear_top1_100ep") == nullptr);
}

// Every run writes RESULT.json: columns are named by the file's stem unless two files share it, then by path.
TEST_CASE("column names: the file's stem, or its path where stems repeat") {
  CHECK(column_names({"a/RESULT.json", "b/RESULT.json", "experiments/paper/cifar10.json"}) ==
        std::vector<std::string>{"a/RESULT.json", "b/RESULT.json", "cifar10"});
  CHECK(column_names({"runs/mine.json", "experiments/paper/cifar10.json"}) ==
        std::vector<std::string>{"mine", "cifar10"});
}

TEST_CASE("text report: signed differences, the relative one against |reference|, and each row's status") {
  Result a = one_run("r", {{"acc", -50}, {"zero", 0}, {"only", 3}});
  Result b = one_run("r", {{"acc", -40}, {"zero", 1}});
  const std::string two = format_comparison(compare_results({a, b}, {"a", "b"}, DiffOptions{}), "text");
  INFO(two);
  // Numbers right-aligned, words left; rel = 100 (b - a) / |a|, none against a zero reference.
  CHECK(two.find("\n  metric   a   b b - a  rel status\n"
                 "  acc    -50 -40   +10 +20% DIFFERS\n"
                 "  only     3   -     -    - only in a (not compared)\n"
                 "  zero     0   1    +1    - DIFFERS\n") != std::string::npos);
  Result c = one_run("r", {{"zero", 0}});
  const std::string three = format_comparison(compare_results({a, b, c}, {"a", "b", "c"}, DiffOptions{}), "text");
  INFO(three);
  CHECK(three.find("  acc    -50 -40 -   +10     - DIFFERS; missing in c\n") != std::string::npos);
}
