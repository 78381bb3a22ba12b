// A fresh folder under /tmp for one test (/tmp/intl-test-NAME-XXXXXX), removed with everything in it when the
// test ends, passed or failed.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name = "") {
    std::string pattern = "/tmp/intl-test-" + (name.empty() ? "" : name + "-") + "XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot create a folder under /tmp for the test");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::string str() const { return path.string(); }
  // The path of `relative` inside, its parent folders created.
  std::string file(const std::string& relative) const {
    std::filesystem::create_directories((path / relative).parent_path());
    return (path / relative).string();
  }
};
