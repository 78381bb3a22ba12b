// See results/out_dir.h.
#include "results/out_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "results/result.h"

namespace intl::results {

namespace fs = std::filesystem;

std::string default_out_dir(const std::string& name) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  const std::string base = "runs/" + name + "-" + stamp;
  std::string dir = base;
  std::error_code ec;
  for (int n = 2; fs::exists(dir, ec); ++n) dir = base + "-" + std::to_string(n);
  return dir;
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
