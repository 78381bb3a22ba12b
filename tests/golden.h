// Golden files under tests/golden/: a test computes its numbers (`now`) and compares them with the file's.
#pragma once
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

// The contents of tests/golden/NAME. With INTL_UPDATE_GOLDEN set, rewrites the file with `now` instead and
// returns nothing (the test then ends; the file's diff shows what moved). A missing file fails the test.
inline std::optional<nlohmann::json> golden_file(const std::string& name, const nlohmann::json& now) {
  const std::string path = std::string(INTL_SOURCE_DIR) + "/tests/golden/" + name;
  if (std::getenv("INTL_UPDATE_GOLDEN")) {
    std::ofstream(path) << now.dump(1) << "\n";
    MESSAGE("rewrote " << path);
    return std::nullopt;
  }
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "missing " << path << " (INTL_UPDATE_GOLDEN=1 writes it)");
  return nlohmann::json::parse(in);
}
