// Result files on disk: reading with errors that name the file, atomic writing, the readable text layout
// (known keys first, arrays of numbers on one line), and the header's build facts.
#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/backend.h"
#include "engine/conv_algorithms.h"
#include "engine/durable.h"
#include "engine/error.h"
#include "engine/precision.h"
#include "results/result.h"
#include "results/version.h"

namespace intl::results {
namespace {

// Keys written first, in this order; the rest follow alphabetically.
const std::vector<std::string> preferred_keys = {
    "format", "format_version", "header", "command", "study", "program_version", "git_revision", "build_type",
    "device", "device_name", "threads", "started_at", "wall_s", "seed", "config", "runs", "name", "metrics",
    "curves", "arrays", "events", "x_label", "x", "y", "kind", "step", "message"};

std::string dump_scalar(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool holds_objects(const json& j) {
  for (const json& e : j)
    if (e.is_object() || (e.is_array() && holds_objects(e))) return true;
  return false;
}

void write_compact(std::string& out, const json& j) {
  if (!j.is_array()) {
    out += dump_scalar(j);
    return;
  }
  out += '[';
  for (size_t i = 0; i < j.size(); ++i) {
    if (i) out += ", ";
    write_compact(out, j[i]);
  }
  out += ']';
}

void write_pretty(std::string& out, const json& j, int indent) {
  const std::string pad(indent + 2, ' ');
  if (j.is_object() && !j.empty()) {
    std::vector<std::string> keys;
    for (const std::string& k : preferred_keys)
      if (j.contains(k)) keys.push_back(k);
    for (auto it = j.begin(); it != j.end(); ++it)
      if (std::find(preferred_keys.begin(), preferred_keys.end(), it.key()) == preferred_keys.end())
        keys.push_back(it.key());
    out += "{\n";
    for (size_t i = 0; i < keys.size(); ++i) {
      out += pad + dump_scalar(json(keys[i])) + ": ";
      write_pretty(out, j.at(keys[i]), indent + 2);
      out += i + 1 < keys.size() ? ",\n" : "\n";
    }
    out += std::string(indent, ' ') + "}";
  } else if (j.is_array() && holds_objects(j)) {
    out += "[\n";
    for (size_t i = 0; i < j.size(); ++i) {
      out += pad;
      write_pretty(out, j[i], indent + 2);
      out += i + 1 < j.size() ? ",\n" : "\n";
    }
    out += std::string(indent, ' ') + "]";
  } else {
    write_compact(out, j);
  }
}

// Throws the error of `what` failing on `path`, with errno's text.
[[noreturn]] void io_error(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what + " (" + std::strerror(errno) + ")");
}

void write_all(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) io_error(path, "cannot write");
    done += size_t(n);
  }
}

}  // namespace

std::string result_to_text(const Result& result) {
  std::string out;
  write_pretty(out, json(result), 0);
  out += '\n';
  return out;
}

Result load_result(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    const std::filesystem::path inside = std::filesystem::path(path) / "RESULT.json";
    throw Error(path + ": a folder, not a result file; give " +
                (std::filesystem::is_regular_file(inside, ec) ? "'" + inside.string() + "'"
                                                               : std::string("the path of a RESULT.json file")));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) io_error(path, "cannot open the result file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // a syntax error, or a number past double's range (1e400)
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);  // drop "[json.exception...]"
    const auto* syntax = dynamic_cast<const json::parse_error*>(&e);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) what = "the file is empty";
    else if (syntax && syntax->byte >= text.size()) what += " (the file ends early: was it truncated?)";
    throw Error(path + ": not valid JSON: " + what);
  }
  try {
    return j.get<Result>();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  } catch (const json::exception& e) {
    throw Error(path + ": " + e.what());
  }
}

void save_result(const Result& result, const std::string& path) {
  // Refuse what load_result would refuse, before touching the disk.
  for (size_t i = 0; i < result.runs.size(); ++i) {
    for (const auto& [name, c] : result.runs[i].curves)
      check(c.x.size() == c.y.size(), path + ": runs[" + std::to_string(i) + "].curves." + name +
                                          ": x and y differ in length (" + std::to_string(c.x.size()) + " vs " +
                                          std::to_string(c.y.size()) + ")");
    for (size_t k = 0; k < i; ++k)
      check(result.runs[k].name != result.runs[i].name,
            path + ": runs[" + std::to_string(i) + "].name: \"" + result.runs[i].name + "\" repeats runs[" +
                std::to_string(k) + "]; run names must be unique");
  }
  write_file_atomically(path, result_to_text(result));
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::filesystem::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) throw Error(path + ": cannot create the folder (" + ec.message() + ")");
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error(path, "cannot write it: creating " + tmp + " failed");
  try {
    write_all(fd, text, tmp);
    if (::fsync(fd) != 0) io_error(tmp, "cannot flush to disk");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    io_error(tmp, "cannot close");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    io_error(path, "cannot rename " + tmp + " to it");
  }
  sync_folder_of(path);  // the rename itself, durable
}

std::string utc_timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string device_description(bool cuda) {
  if (cuda) return cuda_device_name();
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      const size_t start = line.find_first_not_of(' ', line.find(':') + 1);
      return start == std::string::npos ? "cpu" : line.substr(start);
    }
  return "cpu";
}

void add_compute_settings(json& config, bool cuda) {
  config["precision"] = effective_precision_name(cuda ? Device::cuda : Device::cpu);
  if (cuda) config["conv_algo"] = conv_algo_search_name(conv_algo_search());
}

Header make_header(const std::string& command, const std::string& study) {
  Header h;
  h.command = command;
  h.study = study;
  h.program_version = INTL_VERSION;
  h.git_revision = git_revision();
  h.build_type = INTL_BUILD_TYPE;
  h.threads = omp_get_max_threads();
  h.started_at = utc_timestamp();
  return h;
}

}  // namespace intl::results
