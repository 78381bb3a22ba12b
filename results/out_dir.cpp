// See results/out_dir.h.
#include "results/out_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <vector>

#include "engine/error.h"
#include "results/result.h"

namespace intl::results {

namespace fs = std::filesystem;

namespace {
std::vector<std::string> claimed_dirs;  // made by default_out_dir or prepare_out_dir in this process
bool made_runs_dir = false;
}  // namespace

std::string default_out_dir(const std::string& name) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  const std::string base = "runs/" + name + "-" + stamp;
  std::error_code ec;
  if (!fs::exists("runs", ec) && fs::create_directory("runs", ec)) made_runs_dir = true;
  for (int n = 1;; ++n) {
    const std::string dir = n == 1 ? base : base + "-" + std::to_string(n);
    if (::mkdir(dir.c_str(), 0777) == 0) {
      claimed_dirs.push_back(dir);
      return dir;
    }
    // Taken (by an earlier run, or one that started in this second): the next suffix. Any other failure is
    // left to the command's own check of the folder, which names it.
    if (errno != EEXIST) return dir;
  }
}

void remove_unused_out_dirs() {
  std::error_code ec;
  for (const std::string& dir : claimed_dirs)
    if (fs::is_directory(dir, ec) && fs::is_empty(dir, ec)) fs::remove(dir, ec);
  claimed_dirs.clear();
  if (made_runs_dir && fs::is_directory("runs", ec) && fs::is_empty("runs", ec)) fs::remove("runs", ec);
  made_runs_dir = false;
}

void check_out_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw UsageError("--out: '" + dir + "' is a file, not a folder; give a folder for --out");
  fs::path existing = fs::absolute(dir, ec);
  while (!fs::exists(existing, ec) && existing.has_parent_path() && existing != existing.parent_path())
    existing = existing.parent_path();
  if (!fs::is_directory(existing, ec))
    throw UsageError("--out: '" + existing.string() + "' is a file, not a folder; give a folder for --out");
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    throw UsageError("--out: cannot write into '" + existing.string() + "' (" + std::strerror(errno) +
                     "); give a writable folder");
}

bool prepare_out_dir(const std::string& dir) {
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  if (existed && !fs::is_directory(dir, ec))
    throw UsageError("--out: '" + dir + "' is a file, not a folder; give a folder for --out");
  if (!existed && !fs::create_directories(dir, ec))
    throw UsageError("--out: cannot create folder '" + dir + "' (" + ec.message() + "); give a writable folder");
  const fs::path probe = fs::path(dir) / (".intl-probe." + std::to_string(getpid()));
  {
    std::ofstream f(probe);
    if (!f || !(f << "probe") || !f.flush()) {
      if (!existed) fs::remove(dir, ec);
      throw UsageError("--out: folder '" + dir + "' is not writable; give a writable folder");
    }
  }
  fs::remove(probe, ec);
  if (!existed) claimed_dirs.push_back(dir);
  return !existed;
}

void refuse_existing_result(const std::string& dir, const std::string& to_go_on) {
  const fs::path path = fs::path(dir) / "RESULT.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  std::string writer;
  try {
    writer = " (from '" + load_result(path.string()).header.command + "')";
  } catch (const Error&) {
    writer = " (unreadable)";
  }
  throw UsageError("--out: '" + dir + "' already holds a RESULT.json" + writer + "; " + to_go_on);
}

}  // namespace intl::results
