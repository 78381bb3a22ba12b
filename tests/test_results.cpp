// The result format: round trips (NaN and inf included), atomic writes, errors that name the file and the
// field for malformed, truncated and foreign JSON or a folder, and older files without optional fields.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "engine/error.h"
#include "results/result.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace intl::results;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string load_error(const fs::path& path) {
  try {
    load_result(path.string());
  } catch (const intl::Error& e) {
    return e.what();
  }
  return "(no error)";
}

Result sample_result() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Result r;
  r.header = make_header("run toy2d", "toy2d");
  r.header.device = "cpu";
  r.header.seed = 7;
  r.header.wall_s = 1.5;
  r.config = {{"T", 5}, {"lr", 0.1}, {"method", "iternorm"}};
  Run run;
  run.name = "iternorm T=5 init=well";
  run.config = {{"init", "well"}};
  run.metrics = {{"final_loss", 0.125}, {"diverged", nan}, {"cond", inf}, {"neg", -inf}};
  run.curves["loss"] = Curve{"iteration", {0, 1, 2}, {1.0, nan, -inf}};
  run.arrays["points"] = Array::matrix(2, {1, 2, 3, 4, 5, 6});
  run.arrays["spectrum"] = Array::vector({3, 2, 1e-12});
  run.events.push_back(Event{"crash", 12, "non-finite loss", json::object()});
  r.runs.push_back(run);
  return r;
}

}  // namespace

TEST_CASE("a result round-trips through a file, NaN and inf included") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "RESULT.json").string();
  Result r = sample_result();
  save_result(r, path);
  Result back = load_result(path);
  CHECK(back.header.command == "run toy2d");
  CHECK(back.header.program_version == INTL_VERSION);
  CHECK(back.header.seed == 7);
  CHECK(back.header.threads >= 1);
  CHECK(back.header.started_at.size() == 20);
  CHECK(back.config == r.config);
  REQUIRE(back.runs.size() == 1);
  const Run& run = back.runs[0];
  CHECK(run.name == "iternorm T=5 init=well");
  CHECK(run.metrics.at("final_loss") == 0.125);
  CHECK(std::isnan(run.metrics.at("diverged")));
  CHECK(run.metrics.at("cond") == std::numeric_limits<double>::infinity());
  CHECK(run.metrics.at("neg") == -std::numeric_limits<double>::infinity());
  const Curve& loss = run.curves.at("loss");
  CHECK(loss.x_label == "iteration");
  CHECK(loss.x == std::vector<double>{0, 1, 2});
  CHECK(std::isnan(loss.y[1]));
  CHECK(std::isinf(loss.y[2]));
  CHECK(run.arrays.at("points").cols == 2);
  CHECK(run.arrays.at("points").rows() == 3);
  CHECK(run.arrays.at("points").at(2, 1) == 6);
  CHECK(run.arrays.at("spectrum").cols == 0);
  CHECK(run.arrays.at("spectrum").values[2] == 1e-12);
  REQUIRE(run.first_event("crash") != nullptr);
  CHECK(run.first_event("crash")->step == 12);
  // Non-finite values are strings in the file, so any JSON reader can read it.
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("\"nan\"") != std::string::npos);
  CHECK(text.find("\"-inf\"") != std::string::npos);
  CHECK(text.rfind("{\n  \"format\": \"intl-result\"", 0) == 0);
  CHECK_NOTHROW(json::parse(text));
}

TEST_CASE("non-finite numbers read in both spellings, and null as NaN") {
  TempDir tmp;
  write_text(tmp.path / "r.json", R"({"format": "intl-result", "runs": [{"name": "r", "metrics": {
    "a": "inf", "b": "Infinity", "c": "-inf", "d": "-Infinity", "e": "nan", "f": "NaN", "g": null, "h": 1e300}}]})");
  const std::map<std::string, double> m = load_result((tmp.path / "r.json").string()).runs.at(0).metrics;
  CHECK(m.at("a") == std::numeric_limits<double>::infinity());
  CHECK(m.at("b") == std::numeric_limits<double>::infinity());
  CHECK(m.at("c") == -std::numeric_limits<double>::infinity());
  CHECK(m.at("d") == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(m.at("e")));
  CHECK(std::isnan(m.at("f")));
  CHECK(std::isnan(m.at("g")));
  CHECK(m.at("h") == 1e300);
}

TEST_CASE("save_result writes atomically and leaves no temporary file") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "sub" / "RESULT.json").string();
  save_result(sample_result(), path);
  save_result(sample_result(), path);  // replaces the file in place
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "sub")) {
    CHECK(entry.path().filename() == "RESULT.json");
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("unknown fields are kept and written back") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  write_text(dir / "new.json", R"({"format": "intl-result", "format_version": 1, "future_top": [1, 2],
    "header": {"command": "run x", "gpu_clock_mhz": 1980},
    "runs": [{"name": "a", "metrics": {"m": 1}, "provenance": {"host": "h"}}]})");
  Result r = load_result((dir / "new.json").string());
  CHECK(r.extra.at("future_top") == json::array({1, 2}));
  CHECK(r.header.extra.at("gpu_clock_mhz") == 1980);
  CHECK(r.runs[0].extra.at("provenance").at("host") == "h");
  save_result(r, (dir / "again.json").string());
  Result again = load_result((dir / "again.json").string());
  CHECK(again.header.extra.at("gpu_clock_mhz") == 1980);
  CHECK(again.runs[0].extra.at("provenance").at("host") == "h");
}

TEST_CASE("an older file without optional fields loads with defaults") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  write_text(dir / "old.json", R"({"format": "intl-result",
    "runs": [{"name": "r", "metrics": {"linear_top1": 90.5}, "curves": {"loss": {"y": [3, 2, 1]}}}]})");
  Result r = load_result((dir / "old.json").string());
  CHECK(r.format_version == 1);
  CHECK(r.header.command.empty());
  CHECK(r.header.threads == 0);
  CHECK(r.config.is_object());
  CHECK(r.runs[0].metrics.at("linear_top1") == 90.5);
  CHECK(r.runs[0].curves.at("loss").x == std::vector<double>{0, 1, 2});
  CHECK(r.runs[0].curves.at("loss").x_label == "step");
  CHECK(r.runs[0].events.empty());
}

TEST_CASE("load errors name the file and the field") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string file = (dir / "RESULT.json").string();

  SUBCASE("curve lengths differ") {
    write_text(file, R"({"format": "intl-result", "runs": [{"name": "a"}, {"name": "b"}, {"name": "c",
      "curves": {"loss": {"x": [0,1,2,3,4,5,6,7,8,9], "y": [1,1,1,1,1,1,1,1,1]}}}]})");
    CHECK(load_error(file) == file + ": runs[2].curves.loss: x and y differ in length (10 vs 9)");
  }
  SUBCASE("a metric of the wrong type") {
    write_text(file, R"({"format": "intl-result", "runs": [{"name": "a", "metrics": {"linear_top1": "abc"}}]})");
    CHECK(load_error(file) == file + ": runs[0].metrics.linear_top1: expected a number (or \"nan\", \"inf\", "
                                     "\"-inf\"), found string \"abc\"");
  }
  SUBCASE("a header field of the wrong type") {
    write_text(file, R"({"format": "intl-result", "header": {"seed": -3}})");
    CHECK(load_error(file) == file + ": header.seed: expected a non-negative integer, found number -3");
  }
  SUBCASE("a whole-number field that is not whole") {
    write_text(file, R"({"format": "intl-result", "header": {"threads": 2.5}})");
    CHECK(load_error(file) == file + ": header.threads: expected an integer, found number 2.5");
  }
  SUBCASE("ragged 2-D array") {
    write_text(file, R"({"format": "intl-result", "runs": [{"name": "a", "arrays": {"points": [[1,2],[3]]}}]})");
    CHECK(load_error(file) == file + ": runs[0].arrays.points[1]: expected 2 numbers like the first row, found 1");
  }
  SUBCASE("repeated run names") {
    write_text(file, R"({"format": "intl-result", "runs": [{"name": "a"}, {"name": "a"}]})");
    CHECK(load_error(file).find(file + ": runs[1].name: \"a\" repeats") == 0);
  }
  SUBCASE("truncated JSON") {
    write_text(file, R"({"format": "intl-result", "runs": [{"name": "a", "metrics": {"linear_top1": 9)");
    std::string e = load_error(file);
    CHECK(e.find(file + ": not valid JSON: parse error at line 1, column") == 0);
    CHECK(e.find("truncated") != std::string::npos);
  }
  SUBCASE("malformed JSON") {
    write_text(file, "{\"format\": \"intl-result\",\n \"runs\": [}\n");
    std::string e = load_error(file);
    CHECK(e.find(file + ": not valid JSON: parse error at line 2, column") == 0);
    CHECK(e.find("truncated") == std::string::npos);
  }
  SUBCASE("a number past double's range") {
    write_text(file, R"({"format": "intl-result", "runs": [{"name": "a", "metrics": {"x": 1e400}}]})");
    CHECK(load_error(file) == file + ": not valid JSON: number overflow parsing '1e400'");
  }
  SUBCASE("empty file") {
    write_text(file, "");
    CHECK(load_error(file) == file + ": not valid JSON: the file is empty");
  }
  SUBCASE("foreign JSON") {
    write_text(file, R"({"name": "package.json", "version": "1.0"})");
    CHECK(load_error(file).find(file + ": not an intl result: there is no \"format\": \"intl-result\"") == 0);
    write_text(file, R"([1, 2, 3])");
    CHECK(load_error(file).find(file + ": not an intl result: the top level is an array") == 0);
    write_text(file, R"({"format": "other-tool"})");
    CHECK(load_error(file) == file + ": format: expected \"intl-result\", found string \"other-tool\" (not an intl result)");
  }
  SUBCASE("a newer incompatible version") {
    write_text(file, R"({"format": "intl-result", "format_version": 2})");
    CHECK(load_error(file).find(file + ": format_version: 2 is newer") == 0);
  }
  SUBCASE("a missing file") {
    CHECK(load_error(dir / "nope.json").find("nope.json: cannot open the result file (No such file") != std::string::npos);
  }
  SUBCASE("a folder") {
    fs::create_directories(dir / "run");
    CHECK(load_error(dir / "run") == (dir / "run").string() + ": a folder, not a result file; give the path of a "
                                                              "RESULT.json file");
    save_result(sample_result(), (dir / "run" / "RESULT.json").string());
    CHECK(load_error(dir / "run") == (dir / "run").string() + ": a folder, not a result file; give '" +
                                         (dir / "run" / "RESULT.json").string() + "'");
  }
}

TEST_CASE("an event at step 0 keeps its step; save_result refuses repeated run names, adjacent ones too") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  Result r = sample_result();
  r.runs[0].events.push_back(Event{"crash", 0, "at the first iteration", json::object()});
  save_result(r, (dir / "R.json").string());
  const Result back = load_result((dir / "R.json").string());
  CHECK(back.runs.at(0).events.back().step == 0);
  Run other = r.runs[0];
  other.name = "other";
  r.runs.push_back(other);
  r.runs.push_back(other);  // runs[2] repeats runs[1]
  CHECK_THROWS_WITH(save_result(r, (dir / "dup.json").string()),
                    doctest::Contains("runs[2].name: \"other\" repeats runs[1]"));
  CHECK(!fs::exists(dir / "dup.json"));
}

TEST_CASE("save_result refuses a curve whose x and y differ in length") {
  TempDir tmp;
  const fs::path& dir = tmp.path;
  Result r = sample_result();
  r.runs[0].curves["bad"] = Curve{"epoch", {0, 1}, {1}};
  CHECK_THROWS_AS(save_result(r, (dir / "R.json").string()), intl::Error);
  CHECK(!fs::exists(dir / "R.json"));
}
