// The project's one result format: every command writes a RESULT.json of this shape, `intl diff` compares
// them and `intl plot` draws them. docs/results.md describes the file field by field and how it may grow.
// Reading is lenient about what it does not know (extra fields are kept, missing optional fields default)
// and strict about what it does (a wrong type or a curve whose x and y differ in length is an error).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace intl::results {

using json = nlohmann::json;

inline constexpr const char* result_format_name = "intl-result";
inline constexpr int result_format_version = 1;  // bumped only by an incompatible change (docs/results.md)

// Who wrote the file, with what build, on what machine, and when.
struct Header {
  std::string command;          // e.g. "run toy2d", "pretrain cifar10", "paper"
  std::string study;            // selects the figure `intl plot` draws: toy2d, whiten-instability, ...
  std::string program_version;  // INTL_VERSION
  std::string git_revision;     // intl::git_revision() (results/version.h)
  std::string build_type;       // INTL_BUILD_TYPE
  std::string device;           // cpu | cuda
  std::string device_name;      // e.g. "NVIDIA H200" or the CPU model
  int threads = 0;              // omp_get_max_threads() when the run started
  std::string started_at;       // UTC, ISO 8601: 2026-11-29T07:00:00Z
  double wall_s = 0.0;          // wall-clock seconds of the whole command
  uint64_t seed = 0;
  json extra = json::object();  // fields this reader does not know, written back unchanged
};

// A series against a step axis (iteration, epoch). x and y have the same length; y may hold NaN/inf.
struct Curve {
  std::string x_label = "step";
  std::vector<double> x;
  std::vector<double> y;
};

// 1-D (a list of numbers) or 2-D (a list of rows of equal length, e.g. [[x, y], ...]) numeric data.
struct Array {
  std::vector<double> values;  // row-major
  size_t cols = 0;             // 0: 1-D; otherwise values.size() / cols rows of cols numbers
  size_t rows() const { return cols == 0 ? values.size() : values.size() / cols; }
  double at(size_t row, size_t col) const { return values[row * (cols == 0 ? 1 : cols) + col]; }
  static Array vector(std::vector<double> values);
  static Array matrix(size_t cols, std::vector<double> values);  // throws unless values.size() % cols == 0
};

// Something that happened at a step: kind "crash" (non-finite loss, solver failure), "note", ...
struct Event {
  std::string kind;
  int64_t step = -1;  // -1: not tied to a step
  std::string message;
  json extra = json::object();
};

// One configuration of a study (one line of a sweep) and everything it measured.
struct Run {
  std::string name;
  json config = json::object();         // what differs for this run from the result's config
  std::map<std::string, double> metrics;  // scalars, e.g. linear_top1
  std::map<std::string, Curve> curves;    // e.g. loss, z_eig_min
  std::map<std::string, Array> arrays;    // e.g. points, final_zhat_spectrum
  std::vector<Event> events;
  json extra = json::object();

  const Event* first_event(const std::string& kind) const;  // nullptr when there is none
};

struct Result {
  int format_version = result_format_version;
  Header header;
  json config = json::object();  // the command's fully resolved options
  std::vector<Run> runs;
  json extra = json::object();

  const Run* find_run(const std::string& name) const;  // nullptr when there is none
};

// JSON conversion. from_json errors name the field (e.g. "runs[2].curves.loss: x and y differ in length
// (10 vs 9)"); load_result adds the file name. Non-finite numbers are written as "nan", "inf", "-inf".
void to_json(json& j, const Header& h);
void from_json(const json& j, Header& h);
void to_json(json& j, const Curve& c);
void from_json(const json& j, Curve& c);
void to_json(json& j, const Array& a);
void from_json(const json& j, Array& a);
void to_json(json& j, const Event& e);
void from_json(const json& j, Event& e);
void to_json(json& j, const Run& r);
void from_json(const json& j, Run& r);
void to_json(json& j, const Result& r);
void from_json(const json& j, Result& r);

// A double as JSON (non-finite as the strings "nan", "inf", "-inf") and back (numbers, those strings, and
// null read as NaN). `where` names the field in the error message.
json number_to_json(double v);
double number_from_json(const json& j, const std::string& where);
// A list of doubles as a JSON array of number_to_json's, and back (an error naming `where` for anything else).
json numbers_to_json(const std::vector<double>& v);
std::vector<double> read_numbers(const json& j, const std::string& where);

// Reads and validates a result file. Throws intl::Error naming the file and the field at fault, e.g.
// "out/RESULT.json: runs[0].metrics.linear_top1: expected a number, found string \"abc\"".
Result load_result(const std::string& path);

// Writes the result atomically: path.tmp.<pid>, fsync, rename. Readers never see a half-written file.
void save_result(const Result& result, const std::string& path);

// Writes text to path via path.tmp.<pid>, fsync and rename, creating missing folders. Throws intl::Error
// naming the path. Used for result files and figures.
void write_file_atomically(const std::string& path, const std::string& text);

// The result as text: two-space indentation, arrays of numbers on one line. save_result writes this.
std::string result_to_text(const Result& result);

// A header with the build facts (INTL_VERSION, intl::git_revision(), INTL_BUILD_TYPE, omp_get_max_threads()) and
// started_at = now. The caller fills device, device_name, seed and, when done, wall_s.
Header make_header(const std::string& command, const std::string& study);
// What to put in Header::device_name: the processor's model name for the CPU, the GPU's name for CUDA.
std::string device_description(bool cuda);
// Records in `config` the process-wide settings that decide a run's arithmetic besides its options:
// `precision` (the one in effect on that device), and on a GPU `conv_algo` (engine/conv_algorithms.h).
void add_compute_settings(json& config, bool cuda);
std::string utc_timestamp();  // now, as 2026-11-29T07:00:00Z

}  // namespace intl::results
