// A command's --out folder and option checks that must fail before any work: another run's RESULT.json is
// not overwritten, a file or unwritable path is refused at once, and impossible pre-training options are
// named with the value given.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "engine/error.h"
#include "results/out_dir.h"
#include "tests/intl_process.h"
#include "tests/temp_dir.h"

namespace {
namespace fs = std::filesystem;
using namespace intl;

std::string usage_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("prepare_out_dir makes the folder, refuses a file; refuse_existing_result names the writer") {
  TempDir t("outdir");
  CHECK(results::prepare_out_dir(t.file("a/b")));
  CHECK(fs::is_directory(t.file("a/b")));
  CHECK_FALSE(results::prepare_out_dir(t.file("a/b")));
  CHECK(fs::is_empty(t.file("a/b")));  // the probe file is gone
  std::ofstream(t.file("plain")) << "x";
  CHECK(usage_error([&] { results::prepare_out_dir(t.file("plain")); }).find("is a file, not a folder; give a folder for --out") !=
        std::string::npos);

  CHECK_NOTHROW(results::refuse_existing_result(t.file("a/b"), "go on"));
  std::ofstream(t.file("a/b/RESULT.json")) << "{";
  CHECK(usage_error([&] { results::refuse_existing_result(t.file("a/b"), "go on"); }) ==
        "--out: '" + t.file("a/b") + "' already holds a RESULT.json (unreadable); go on");
}

// Runs started together (a script launching several in the background) never share a default folder: each
// is made as it is named. Those a command never wrote to are removed as it ends, and runs/ with them.
TEST_CASE("default_out_dir claims a fresh folder each call; unused ones are removed at the end") {
  TempDir t("outdir-default");
  struct InFolder {  // the working folder is t's for this test, whatever happens in it
    fs::path before = fs::current_path();
    explicit InFolder(const fs::path& p) { fs::current_path(p); }
    ~InFolder() { fs::current_path(before); }
  } in_t(t.path);
  const std::string a = results::default_out_dir("study"), b = results::default_out_dir("study");
  CHECK(a != b);
  CHECK(a.rfind("runs/study-", 0) == 0);
  CHECK((fs::is_directory(a) && fs::is_directory(b)));
  std::ofstream(b + "/RESULT.json") << "{}";
  results::remove_unused_out_dirs();
  CHECK_FALSE(fs::exists(a));
  CHECK(fs::exists(b + "/RESULT.json"));
  fs::remove_all("runs");

  const std::string c = results::default_out_dir("study");
  CHECK(fs::is_directory(c));
  results::remove_unused_out_dirs();
  CHECK_FALSE(fs::exists("runs"));  // made for c alone

  // An --out folder the command made goes too if nothing was written there; one that existed stays.
  fs::create_directory("kept");
  CHECK(results::prepare_out_dir("made"));
  CHECK_FALSE(results::prepare_out_dir("kept"));
  results::remove_unused_out_dirs();
  CHECK_FALSE(fs::exists("made"));
  CHECK(fs::is_directory("kept"));
}

TEST_CASE("run toy2d and pretrain refuse a folder holding another run's RESULT.json, before any work") {
  TempDir t("outdir-cli");
  const std::string out = t.file("run");
  REQUIRE(run_intl({"run", "toy2d", "--T", "5", "--epochs", "1", "--out", out}, t.file("log1")) == 0);
  const std::string before = read_text(out + "/RESULT.json");
  CHECK(run_intl({"run", "toy2d", "--T", "3", "--epochs", "1", "--out", out}, t.file("log2")) == 2);
  CHECK(read_text(t.file("log2")).find("already holds a RESULT.json (from 'run toy2d')") != std::string::npos);
  // The data folder does not exist: the folder check comes first.
  CHECK(run_intl({"pretrain", "cifar10", "--data-dir", t.file("none"), "--out", out}, t.file("log3")) == 2);
  CHECK(read_text(t.file("log3")).find("already holds a RESULT.json (from 'run toy2d')") != std::string::npos);
  CHECK(read_text(out + "/RESULT.json") == before);

  // A run that fails on its data leaves no empty folder behind.
  CHECK(run_intl({"pretrain", "cifar10", "--data-dir", t.file("none"), "--out", t.file("new")}, t.file("log5")) == 1);
  CHECK(read_text(t.file("log5")).find("cannot open") != std::string::npos);
  CHECK_FALSE(fs::exists(t.file("new")));

  std::ofstream(t.file("afile")) << "x";
  CHECK(run_intl({"pretrain", "cifar10", "--data-dir", t.file("none"), "--out", t.file("afile")}, t.file("log4")) ==
        2);
  CHECK(read_text(t.file("log4")).find("'" + t.file("afile") + "' is a file, not a folder") != std::string::npos);
}

TEST_CASE("pretrain names impossible options with their values") {
  TempDir t("pretrain-options");
  const struct {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"--momentum", "2"}, "--momentum must be in [0, 1), found 2"},
      {{"--weight-decay", "-1"}, "--weight-decay must be >= 0, found -1"},
      {{"--beta", "-1"}, "--beta must be >= 0"},
      {{"--batch-size", "4"}, "which is negative at batch 4; below batch 8 give --beta"},
      {{"--epochs", "1"}, "--warmup-epochs 2 must be in 0..--epochs (1)"},
      {{"--train-images", "-1"}, "--train-images and --test-images must be >= 0"},
      {{"--log-every", "nan"}, "--log-every: must be a finite number > 0, found 'nan'"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"pretrain", "cifar10", "--data-dir", t.file("none"), "--out", t.file("o")};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CAPTURE(c.message);
    CHECK(run_intl(args, t.file("log")) == 2);
    CHECK(read_text(t.file("log")).find(c.message) != std::string::npos);
  }
  CHECK_FALSE(fs::exists(t.file("o")));  // nothing was written
}
