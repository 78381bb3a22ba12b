// The sweep driver every multi-run study shares (studies/sweep.h): which runs a resumed folder keeps, which
// option changes a resume refuses, the wall time carried across sittings, and the study's data.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "data/cifar.h"
#include "engine/error.h"
#include "results/result.h"
#include "studies/sweep.h"
#include "tests/temp_dir.h"

using namespace intl;
using json = nlohmann::json;

namespace {

const json kConfig = {{"lr", 0.1}, {"d", {4, 8}}, {"workers", 2}, {"device", "cpu"}, {"out", "x"}};

studies::Sweep open_sweep(const std::string& out, bool resume, const json& config = kConfig,
                          const std::string& study = "whiten-instability") {
  return studies::Sweep(study, "run " + study, out, resume, Device::cpu, 0, config);
}

}  // namespace

TEST_CASE("sweep: a resumed folder keeps its finished runs and its wall time, and drops an unfinished one") {
  TempDir dir("sweep");
  const std::string out = dir / "out";
  double first_wall = 0;
  {
    studies::Sweep s = open_sweep(out, false);
    s.begin_run("d=4", {{"d", 4}}).metrics["m"] = 1.5;
    s.finish_run("d=4", "crashed");
    s.begin_run("d=8", {{"d", 8}});  // stopped before it finished
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    s.publish();
    first_wall = s.result().header.wall_s;
    CHECK(first_wall >= 0.2);
  }
  json moved = kConfig;  // where and how it runs may change between sittings
  moved["workers"] = 1;
  moved["device"] = "cuda";
  moved["out"] = "y";
  studies::Sweep s = open_sweep(out, true, moved);
  CHECK(s.finished("d=4"));
  CHECK_FALSE(s.finished("d=8"));
  REQUIRE(s.result().runs.size() == 1);
  CHECK(s.result().runs[0].metrics.at("m") == 1.5);
  CHECK(s.result().runs[0].extra.at("status") == "crashed");
  CHECK_THROWS_AS(s.begin_run("d=4", {}), Error);  // a finished run is not trained again
  s.publish();
  CHECK(s.result().header.wall_s >= first_wall);  // the first sitting's time counts
  CHECK(results::load_result(s.result_path()).header.wall_s >= first_wall);
}

TEST_CASE("sweep: a resume with another training option, or of another study, is refused naming the difference") {
  TempDir dir("sweep");
  const std::string out = dir / "out";
  {
    studies::Sweep s = open_sweep(out, false);
    s.publish();
  }
  json other = kConfig;
  other["lr"] = 0.2;
  CHECK_THROWS_WITH_AS(open_sweep(out, true, other), doctest::Contains("lr: saved 0.1, now 0.2"), UsageError);
  json extra = kConfig;
  extra["seeds"] = 3;
  CHECK_THROWS_WITH_AS(open_sweep(out, true, extra), doctest::Contains("seeds: saved (not set), now 3"), UsageError);
  CHECK_THROWS_WITH_AS(open_sweep(out, true, kConfig, "iternorm-cifar"),
                       doctest::Contains("study: saved whiten-instability, now iternorm-cifar"), UsageError);
  CHECK_THROWS_WITH_AS(open_sweep(dir / "elsewhere", true), doctest::Contains("does not exist"), UsageError);
  CHECK_THROWS_WITH_AS(open_sweep(out, false), doctest::Contains("--resume"), UsageError);  // never overwritten
  CHECK_NOTHROW(open_sweep(out, true));
}

TEST_CASE("sweep: the study's CIFAR-10 images are each split's first N, all of them for 0; synthetic needs 5") {
  TempDir dir("sweep");
  const std::string data = dir / "cifar";
  make_synthetic_cifar(data, CifarKind::cifar10, 20, 10, 7);
  const CifarDataset all = load_cifar(data, CifarKind::cifar10, Split::train);
  for (auto [train, test] : {std::pair{19, 9}, std::pair{1, 1}, std::pair{0, 0}, std::pair{20, 10}}) {
    CAPTURE(train);
    const studies::StudyData d = studies::load_study_data("cifar10", data, train, test, 0, dir / "out");
    CHECK(d.train.size() == (train ? train : 20));
    CHECK(d.test.size() == (test ? test : 10));
    CHECK(std::equal(d.train.labels.begin(), d.train.labels.end(), all.labels.begin()));
  }
  const studies::StudyData no_test = studies::load_study_data("cifar10", data, 0, -1, 0, dir / "out");
  CHECK(no_test.test.size() == 0);
  CHECK_THROWS_WITH_AS(studies::load_study_data("synthetic", "", 4, -1, 0, dir / "out"),
                       doctest::Contains("at least 5"), UsageError);
  CHECK(studies::load_study_data("synthetic", "", 5, -1, 0, dir / "out").train.size() == 5);
  CHECK_THROWS_WITH_AS(studies::load_study_data("cifar10", "", 0, -1, 0, dir / "out"),
                       doctest::Contains("--data-dir is required"), UsageError);
  CHECK_THROWS_WITH_AS(studies::load_study_data("svhn", data, 0, -1, 0, dir / "out"),
                       doctest::Contains("not one of"), UsageError);
}
