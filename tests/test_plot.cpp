// SVG charts and study figures: a golden toy2d figure compared structurally (elements, classes, texts), that
// every coordinate is finite and tags balance, XML escaping, the log-axis choice, NaN breaking a line,
// Figure IV's crash markers and table, and `intl plot` writing its files (SVG only, never over an input).
// INTL_UPDATE_GOLDEN=1 rewrites tests/golden/toy2d_figure.svg after a deliberate change of the drawing.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "engine/error.h"
#include "plot/figures.h"
#include "tests/intl_binary.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace intl::plot;
using intl::results::Curve;
using intl::results::Result;
using intl::results::Run;

namespace {

const fs::path golden_path = fs::path(INTL_SOURCE_DIR) / "tests" / "golden" / "toy2d_figure.svg";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
  return n;
}

// A small toy2d result: two runs, four eigenvalue curves each; the second run has a NaN and a crash.
Result toy2d_result() {
  Result r;
  r.header.command = "run toy2d";
  r.header.study = "toy2d";
  const std::vector<double> it{0, 1, 2, 3, 4, 5, 6, 7};
  const char* names[] = {"z_eig_min", "z_eig_max", "zhat_eig_min", "zhat_eig_max"};
  for (const char* run_name : {"iternorm T=5 init=well", "ill <cond> & \"quoted\""}) {
    Run run;
    run.name = run_name;
    for (int k = 0; k < 4; ++k) {
      Curve c{"iteration", it, {}};
      for (double x : it) c.y.push_back(std::pow(10.0, -double(k % 2 == 0 ? 4 : 0)) * (1 + x) / (k + 1));
      run.curves[names[k]] = c;
    }
    run.arrays["points"] = intl::results::Array::matrix(2, {1, 2, -3, 4, 5, -6});
    r.runs.push_back(run);
  }
  r.runs[1].curves["zhat_eig_min"].y[5] = NAN;
  r.runs[1].events.push_back({"crash", 6, "non-finite loss", intl::results::json::object()});
  return r;
}

// Start tags, end tags and self-closing tags balance; returns the first problem or "".
std::string tag_balance_problem(const std::string& svg) {
  std::vector<std::string> open;
  for (size_t p = svg.find('<'); p != std::string::npos; p = svg.find('<', p + 1)) {
    const size_t end = svg.find('>', p);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(p);
    const std::string tag = svg.substr(p + 1, end - p - 1);
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag.find('<') != std::string::npos) return "'<' inside a tag at " + std::to_string(p);
    const std::string name = tag.substr(tag[0] == '/', tag.find_first_of(" />", 1) - (tag[0] == '/'));
    if (tag[0] == '/') {
      if (open.empty() || open.back() != name) return "</" + name + "> does not close <" + (open.empty() ? "" : open.back()) + ">";
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(name);
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

// Every number in a coordinate-bearing attribute parses and is finite.
bool coordinates_finite(const std::string& svg) {
  static const std::regex attr(R"re(\s(x|y|x1|y1|x2|y2|cx|cy|r|width|height|d|transform|viewBox)="([^"]*)")re");
  static const std::regex number(R"([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attr); it != std::sregex_iterator(); ++it) {
    const std::string value = (*it)[2];
    std::string lower = value;
    for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.find("nan") != std::string::npos || lower.find("inf") != std::string::npos) return false;
    for (auto n = std::sregex_iterator(value.begin(), value.end(), number); n != std::sregex_iterator(); ++n)
      if (!std::isfinite(std::stod((*n)[0]))) return false;
  }
  return true;
}

// The structure of an SVG: element names with their class, and the texts, one per line; no coordinates.
std::string structure(const std::string& svg) {
  static const std::regex element(R"re(<([a-zA-Z]+)(?:[^>]*?class="([^"]*)")?[^>]*>([^<]*))re");
  std::string out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), element); it != std::sregex_iterator(); ++it)
    out += (*it)[1].str() + ((*it)[2].matched ? "." + (*it)[2].str() : "") +
           ((*it)[1] == "text" || (*it)[1] == "tspan" || (*it)[1] == "title" ? " " + (*it)[3].str() : "") + "\n";
  return out;
}

int run_intl(const std::string& args) {
  const int status = std::system((std::string("'") + intl_binary() + "' " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs intl with stdout and stderr to dir/out.txt; returns the exit status and fills `out` with what it printed.
int run_intl(const std::string& args, const fs::path& dir, std::string& out) {
  const fs::path log = dir / "out.txt";
  const int status =
      std::system((std::string("'") + intl_binary() + "' " + args + " > '" + log.string() + "' 2>&1").c_str());
  out = read_text(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("the toy2d figure matches the golden SVG in structure") {
  const std::string svg = render_svg(study_figure({toy2d_result()}));
  CHECK(tag_balance_problem(svg) == "");
  CHECK(coordinates_finite(svg));
  CHECK(count(svg, "<path") == 8);  // one per curve: 2 runs x 4 eigenvalue curves
  CHECK(count(svg, "<polyline") == 0);
  CHECK(count(svg, "stroke-dasharray=\"6 4\"") == 4);  // cov(Z) dashed
  CHECK(count(svg, ">λmin cov(Z)</text>") == 2);
  CHECK(count(svg, ">λmax cov(Ẑ)</text>") == 2);
  CHECK(count(svg, ">crash</text>") == 1);
  CHECK(count(svg, "class=\"marker\"") == 2);  // the crash and its legend entry
  CHECK(svg.find("ill &lt;cond&gt; &amp; &quot;quoted&quot;") != std::string::npos);
  CHECK(svg.find("<cond>") == std::string::npos);
  CHECK(svg.find("(log scale)") != std::string::npos);  // values span four decades
  if (std::getenv("INTL_UPDATE_GOLDEN")) {
    fs::create_directories(golden_path.parent_path());
    std::ofstream(golden_path, std::ios::binary) << svg;
  }
  REQUIRE(fs::exists(golden_path));
  CHECK(structure(svg) == structure(read_text(golden_path)));
}

TEST_CASE("a NaN breaks the line into two sub-paths") {
  const std::string svg = render_svg(study_figure({toy2d_result()}));
  static const std::regex path(R"re(<path class="series" d="([^"]*)")re");
  std::vector<size_t> moves;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), path); it != std::sregex_iterator(); ++it)
    moves.push_back(count((*it)[1].str(), "M"));
  REQUIRE(moves.size() == 8);
  CHECK(std::count(moves.begin(), moves.end(), 2) == 1);
  CHECK(std::count(moves.begin(), moves.end(), 1) == 7);
}

TEST_CASE("the y axis is log10 when positive values span more than two decades, or when forced") {
  Chart c;
  c.series.push_back(Series{"a", {0, 1, 2}, {1e-6, 1e-3, 1.0}});
  CHECK(uses_log_axis(c));
  c.series[0].y = {1, 20, 50};
  CHECK(!uses_log_axis(c));
  c.series[0].y = {-1, 1e-6, 1};
  CHECK(!uses_log_axis(c));
  c.series[0].y = {NAN, 1e-6, 1, INFINITY};
  CHECK(uses_log_axis(c));
  c.y_scale = YScale::linear;
  CHECK(!uses_log_axis(c));
  c.series[0].y = {1, 2, 3};
  c.y_scale = YScale::log10;
  CHECK(uses_log_axis(c));
  CHECK(linear_ticks(0, 6000, 6) == std::vector<double>{0, 1000, 2000, 3000, 4000, 5000, 6000});
  CHECK(linear_ticks(-0.3, 0.9, 6) == std::vector<double>{-0.4, -0.2, 0, 0.2, 0.4, 0.6, 0.8, 1.0});
  // Steps of 1, 2, 5 or 10 times a power of ten: 45 / 6 = 7.5 rounds up to 10; a single value gets a unit range.
  CHECK(linear_ticks(0, 45, 6) == std::vector<double>{0, 10, 20, 30, 40, 50});
  CHECK(linear_ticks(3, 3, 6) == std::vector<double>{3, 4});
  // Exactly two decades stay linear; a marker's value counts as the series' do.
  c = Chart{};
  c.series.push_back(Series{"a", {0, 1}, {1, 100}});
  CHECK(!uses_log_axis(c));
  c.series[0].y = {1, 10};
  c.markers.push_back(Marker{1, 1e-4, 0, "crash", ""});
  CHECK(uses_log_axis(c));
}

TEST_CASE("a chart of only non-finite values still renders a valid, finite SVG") {
  Figure f;
  Chart c;
  c.title = "empty";
  c.series.push_back(Series{"nothing", {0, 1}, {NAN, INFINITY}});
  c.markers.push_back(Marker{NAN, 1, 0, "crash", ""});
  f.panels.push_back(c);
  const std::string svg = render_svg(f);
  CHECK(tag_balance_problem(svg) == "");
  CHECK(coordinates_finite(svg));
  CHECK(count(svg, "<path") == 0);
  // Values near double's limit, whose range would overflow, are left out as non-finite ones are.
  f.panels[0].series.push_back(Series{"extreme", {0, 1, 2, 3}, {1e308, -1e308, 0, 1}});
  const std::string extreme = render_svg(f);
  CHECK(coordinates_finite(extreme));
  CHECK(extreme.find("nan") == std::string::npos);
}

TEST_CASE("Figure IV: one line per run, crashes marked, a crash table for several seeds") {
  Result r;
  r.header.study = "whiten-instability";
  for (int d : {64, 1024})
    for (int seed = 0; seed < 2; ++seed) {
      Run run;
      run.name = "d=" + std::to_string(d) + " seed=" + std::to_string(seed);
      run.config = {{"d", d}, {"seed", seed}};
      run.curves["log10_inv_cond"] = Curve{"iteration", {0, 1, 2, 3}, {-2, -2.5, -3, d > 512 ? NAN : -3.2}};
      if (d > 512) run.events.push_back({"crash", 3, "eigensolver failed", intl::results::json::object()});
      r.runs.push_back(run);
    }
  Figure f = study_figure({r});
  REQUIRE(f.panels.size() == 1);
  CHECK(f.panels[0].series.size() == 4);
  CHECK(f.panels[0].markers.size() == 2);
  CHECK(f.panels[0].markers[0].x == 2);  // the last finite point before the crash
  CHECK(f.panels[0].notes == std::vector<std::string>{"d=64: 0 of 2 runs crashed",
                                                      "d=1024: 2 of 2 runs crashed (at steps 3, 3)"});
  const std::string svg = render_svg(f);
  CHECK(tag_balance_problem(svg) == "");
  CHECK(count(svg, "<path") == 4);
  CHECK(count(svg, ">d=64</text>") == 1);  // one legend entry per d
}

TEST_CASE("overlaid results prefix legend entries; unknown studies draw every curve") {
  Result a;
  a.header.study = "something-new";
  Run run;
  run.name = "r";
  run.curves["alpha"] = Curve{"step", {0, 1}, {1, 2}};
  run.curves["beta"] = Curve{"step", {0, 1}, {3, 4}};
  a.runs.push_back(run);
  Figure f = study_figure({a, a}, {"first", "second"});
  REQUIRE(f.panels.size() == 2);
  CHECK(f.panels[0].title == "alpha");
  REQUIRE(f.panels[0].series.size() == 2);
  CHECK(f.panels[0].series[0].label == "first: r");
  CHECK(f.panels[0].series[1].label == "second: r");
  Result empty;
  CHECK_THROWS_AS(study_figure({empty}), intl::Error);
}

TEST_CASE("write_study_figures and intl plot write their SVG files") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  const auto written = write_study_figures(toy2d_result(), dir.string());
  CHECK(written == std::vector<std::string>{(dir / "toy2d.svg").string(), (dir / "toy2d-data.svg").string()});
  CHECK(tag_balance_problem(read_text(dir / "toy2d-data.svg")) == "");
  CHECK(count(read_text(dir / "toy2d-data.svg"), "<circle") == 3 + 1);  // shared points drawn once, a legend dot
  CHECK(write_study_figures(Result{}, dir.string()).empty());

  intl::results::save_result(toy2d_result(), (dir / "RESULT.json").string());
  CHECK(run_intl("plot '" + (dir / "RESULT.json").string() + "' -o '" + (dir / "fig.svg").string() + "'") == 0);
  CHECK(fs::exists(dir / "fig.svg"));
  CHECK(fs::exists(dir / "fig-data.svg"));
  std::ofstream(dir / "foreign.json") << R"({"name": "x"})";
  CHECK(run_intl("plot '" + (dir / "foreign.json").string() + "' -o '" + (dir / "f.svg").string() + "'") == 2);
  intl::results::save_result(Result{}, (dir / "empty.json").string());
  CHECK(run_intl("plot '" + (dir / "empty.json").string() + "' -o '" + (dir / "e.svg").string() + "'") == 1);
}

TEST_CASE("intl plot refuses an output that is an input or not .svg; --out DIR and --config place the figures") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string result = (dir / "X.json").string();
  intl::results::save_result(toy2d_result(), result);
  const std::string before = read_text(result);
  std::string out;
  CHECK(run_intl("plot '" + result + "' -o '" + result + "'", dir, out) == 2);
  CHECK(out == "intl: plot: the output '" + result + "' is the input file '" + result + "'; writing the figure there "
               "would replace the result with SVG; give -o a new name ending in .svg\n");
  fs::create_directories(dir / "sub");
  const std::string other_spelling = (dir / "sub" / ".." / "X.json").string();
  CHECK(run_intl("plot '" + result + "' -o '" + other_spelling + "'", dir, out) == 2);
  CHECK(out.find("is the input file") != std::string::npos);
  CHECK(read_text(result) == before);
  CHECK(run_intl("plot '" + result + "' -o '" + (dir / "fig.png").string() + "'", dir, out) == 2);
  CHECK(out == "intl: plot: -o '" + (dir / "fig.png").string() + "': plot writes SVG only; give a file name ending "
               "in .svg (convert it afterwards for another format)\n");
  CHECK(!fs::exists(dir / "fig.png"));
  CHECK(!fs::exists(dir / "fig-data.svg"));

  CHECK(run_intl("plot '" + result + "' --out '" + (dir / "figs").string() + "'", dir, out) == 0);
  CHECK(out == "wrote " + (dir / "figs" / "X.svg").string() + "\nwrote " + (dir / "figs" / "X-data.svg").string() +
               "\n");
  CHECK(tag_balance_problem(read_text(dir / "figs" / "X.svg")) == "");
  // -o names the file itself; --out is then unused.
  CHECK(run_intl("plot '" + result + "' --out '" + (dir / "unused").string() + "' -o '" + (dir / "o.svg").string() +
                     "'",
                 dir, out) == 0);
  CHECK(fs::exists(dir / "o.svg"));
  CHECK(!fs::exists(dir / "unused"));
  std::ofstream(dir / "plot.json") << R"({"columns": 1, "out": ")" << (dir / "cfg").string() << "\"}";
  CHECK(run_intl("plot '" + result + "' --config '" + (dir / "plot.json").string() + "'", dir, out) == 0);
  CHECK(fs::exists(dir / "cfg" / "X.svg"));
  // --columns 1 lays out both figures (two panels each: with the initial outputs the data figure has two)
  // otherwise than the default of up to 3 a row.
  Result two_panels = toy2d_result();
  two_panels.runs[0].arrays["initial_output"] = intl::results::Array::matrix(2, {0.5, 1, -1, 2});
  const std::string w = (dir / "W.json").string();
  intl::results::save_result(two_panels, w);
  CHECK(run_intl("plot '" + w + "' --out '" + (dir / "wide").string() + "'", dir, out) == 0);
  CHECK(run_intl("plot '" + w + "' --columns 1 --out '" + (dir / "tall").string() + "'", dir, out) == 0);
  CHECK(read_text(dir / "tall" / "W.svg") != read_text(dir / "wide" / "W.svg"));
  CHECK(read_text(dir / "tall" / "W-data.svg") != read_text(dir / "wide" / "W-data.svg"));
  // Without -o or --out the figures go beside the first file, wherever the command runs.
  fs::create_directories(dir / "beside");
  const std::string moved = (dir / "beside" / "X.json").string();
  fs::copy_file(result, moved);
  CHECK(run_intl("plot '" + moved + "'", dir, out) == 0);
  CHECK(fs::exists(dir / "beside" / "X.svg"));
  CHECK(fs::exists(dir / "beside" / "X-data.svg"));
  // The data figure's path is checked too: -o Y.svg would write Y-data.svg over an input of that name.
  const std::string data_named = (dir / "Y-data.svg").string();
  fs::copy_file(result, data_named);
  CHECK(run_intl("plot '" + data_named + "' -o '" + (dir / "Y.svg").string() + "'", dir, out) == 2);
  CHECK(out.find("is the input file '" + data_named + "'") != std::string::npos);
  // The extension's case does not matter.
  CHECK(run_intl("plot '" + result + "' -o '" + (dir / "upper.SVG").string() + "'", dir, out) == 0);
  CHECK(fs::exists(dir / "upper.SVG"));
  // Overlaid files: legend entries start with each file's column name.
  const std::string second = (dir / "Z.json").string();
  fs::copy_file(result, second);
  CHECK(run_intl("plot '" + result + "' '" + second + "' -o '" + (dir / "both.svg").string() + "'", dir, out) == 0);
  const std::string both = read_text(dir / "both.svg");
  CHECK(both.find(">X: ") != std::string::npos);
  CHECK(both.find(">Z: ") != std::string::npos);
  std::ofstream(dir / "seed.json") << R"({"seed": 3})";
  CHECK(run_intl("plot '" + result + "' --config '" + (dir / "seed.json").string() + "'", dir, out) == 2);
  CHECK(out.find("sets 'seed', which is not an option of 'intl plot'") != std::string::npos);
}

TEST_CASE("crash markers sit on the last finite point at or before the crash; colours and the crash table") {
  // Figure III: the marker is on cov(Zhat)'s smaller eigenvalue, the curve that collapses.
  const Result toy = toy2d_result();
  const Figure f = study_figure({toy});
  REQUIRE(f.panels.size() == 2);
  REQUIRE(f.panels[1].markers.size() == 1);
  CHECK(f.panels[1].markers[0].x == 6);
  CHECK(f.panels[1].markers[0].y == toy.runs[1].curves.at("zhat_eig_min").y[6]);
  // Overlaid files keep their own colours: file 0 the pairs 0 and 1, file 1 the pairs 2 and 3.
  const Figure both = study_figure({toy, toy}, {"a", "b"});
  std::vector<int> colors;
  for (const Series& s : both.panels[0].series) colors.push_back(s.color);
  CHECK(colors == std::vector<int>{0, 1, 0, 1, 2, 3, 2, 3});

  // Figure IV: points recorded after the crash step do not carry the marker; one run per d, no crash table.
  Result r;
  r.header.study = "whiten-instability";
  for (int d : {64, 1024}) {
    Run run;
    run.name = "d=" + std::to_string(d) + " seed=0";
    run.config = {{"d", d}, {"seed", 0}};
    run.curves["log10_inv_cond"] = Curve{"iteration", {0, 1, 2, 3, 4}, {-2, -2.5, -3, -3.5, -4}};
    if (d > 512) run.events.push_back({"crash", 2, "eigensolver failed", intl::results::json::object()});
    r.runs.push_back(run);
  }
  const Figure g = study_figure({r});
  REQUIRE(g.panels.size() == 1);
  REQUIRE(g.panels[0].markers.size() == 1);
  CHECK(g.panels[0].markers[0].x == 2);
  CHECK(g.panels[0].markers[0].y == -3);
  CHECK(g.panels[0].notes.empty());
}

namespace {
// A one-panel figure of one short line per label (a legend of `labels`).
Figure legend_figure(const std::vector<std::string>& labels) {
  Chart c;
  for (size_t i = 0; i < labels.size(); ++i) c.series.push_back({labels[i], {0, 1}, {double(i), double(i) + 1}});
  Figure f;
  f.panels.push_back(c);
  return f;
}

// The texts of the <text> elements, in order.
std::vector<std::string> texts(const std::string& svg) {
  static const std::regex text(R"re(<text[^>]*>([^<]*)</text>)re");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), text); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }
}  // namespace

TEST_CASE("xml_escape escapes the five XML characters and drops the control characters XML forbids") {
  CHECK(xml_escape("a<b & 'c' > \"d\"") == "a&lt;b &amp; &apos;c&apos; &gt; &quot;d&quot;");
  CHECK(xml_escape(std::string("x\x01y\x1f") + "\tz\n") == "xy\tz\n");
  CHECK(xml_escape("d=1024 \xc3\xa9t\xc3\xa9") == "d=1024 \xc3\xa9t\xc3\xa9");  // UTF-8 passes as it is
}

// Legend labels keep their first 36 characters, counted as characters (a UTF-8 sequence is one), and "..." marks
// a cut (the legend's width allows 39). The cut kept 35 before.
TEST_CASE("legend labels are cut at 36 characters, not bytes") {
  std::string accents;
  for (int i = 0; i < 30; ++i) accents += "\xc3\xa9";  // 30 characters, 60 bytes
  const std::vector<std::string> t =
      texts(render_svg(legend_figure({accents, std::string(36, 'a'), std::string(40, 'b')})));
  CHECK(has(t, accents));
  CHECK(has(t, std::string(36, 'a')));
  CHECK(has(t, std::string(36, 'b') + "..."));
  std::string long_accents, cut;
  for (int i = 0; i < 40; ++i) long_accents += "\xc3\xa9";
  for (int i = 0; i < 36; ++i) cut += "\xc3\xa9";
  CHECK(has(texts(render_svg(legend_figure({long_accents}))), cut + "..."));
}

// The legend lists what fits the plot's height (19 lines of a 340-pixel panel) and counts the rest.
TEST_CASE("a legend longer than the panel ends with how many entries are left out") {
  std::vector<std::string> labels;
  for (int i = 0; i < 25; ++i) labels.push_back("run " + std::to_string(i));
  const std::vector<std::string> fits = texts(render_svg(legend_figure({labels.begin(), labels.begin() + 19})));
  CHECK(has(fits, "run 18"));
  CHECK(std::none_of(fits.begin(), fits.end(), [](const std::string& s) { return s.find("more") != std::string::npos; }));
  const std::vector<std::string> over = texts(render_svg(legend_figure(labels)));
  CHECK(has(over, "run 17"));
  CHECK_FALSE(has(over, "run 18"));
  CHECK(has(over, "+ 7 more"));
}

// Panels fill at most three columns by default; rows grow with the panel count and with the notes under a chart.
TEST_CASE("a figure's size follows its panels, columns and notes") {
  auto size_of = [](const Figure& f) {
    const std::string svg = render_svg(f);
    std::smatch m;
    REQUIRE(std::regex_search(svg, m, std::regex(R"re(<svg [^>]*width="([0-9.]+)" height="([0-9.]+)")re")));
    return std::pair<double, double>{std::stod(m[1]), std::stod(m[2])};
  };
  Figure f = legend_figure({"a"});
  f.panels.resize(4, f.panels[0]);
  CHECK(size_of(f) == std::pair<double, double>{3 * 560.0, 2 * 340.0});
  f.columns = 4;
  CHECK(size_of(f) == std::pair<double, double>{4 * 560.0, 340.0});
  f.columns = 0;
  f.panels[2].notes = {"crashes:", "d=1024: 2 of 3"};
  f.title = "Figure";
  CHECK(size_of(f) == std::pair<double, double>{3 * 560.0, 28 + 2 * (340.0 + 2 * 14)});
}

// A series' colour index picks its palette colour (negative indices wrap from the end); markers sharing a legend
// text share one entry.
TEST_CASE("series and marker colours, and one legend entry per marker legend") {
  Chart c;
  c.series.push_back({"red", {0, 1}, {0, 1}});
  c.series.back().color = 3;
  c.series.push_back({"blue", {0, 1}, {1, 2}});
  for (int i = 0; i < 3; ++i) c.markers.push_back({double(i) / 2, 1.0, -1, "crash", "run " + std::to_string(i)});
  Figure f;
  f.panels.push_back(c);
  const std::string svg = render_svg(f);
  CHECK(count(svg, "<path class=\"series\" d=\"M") == 2);
  CHECK(svg.find("stroke=\"#d62728\" stroke-width=\"1.6\"") != std::string::npos);  // palette[3]
  CHECK(svg.find("stroke=\"#ff7f0e\" stroke-width=\"1.6\"") != std::string::npos);  // the second series: palette[1]
  CHECK(count(svg, "<g class=\"marker\" stroke=\"#17becf\"") == 3);                 // -1: palette[9]
  const std::vector<std::string> t = texts(svg);
  CHECK(std::count(t.begin(), t.end(), "crash") == 1);
}

// On a log axis of at most two decades the 2 and 5 multiples are labelled, none beyond the top decade.
TEST_CASE("a log axis of two decades labels 2 and 5 times each power inside it only") {
  Chart c;
  c.y_scale = YScale::log10;
  c.series.push_back({"", {0, 1, 2}, {1, 10, 100}});
  Figure f;
  f.panels.push_back(c);
  const std::vector<std::string> t = texts(render_svg(f));
  for (const char* label : {"2", "5", "20", "50"}) CHECK(has(t, label));
  CHECK_FALSE(has(t, "200"));
  CHECK_FALSE(has(t, "500"));
}
