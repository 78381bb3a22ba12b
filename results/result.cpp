// JSON conversion of the result structs. Readers check every field they know (type, lengths) and name it in
// the error; fields they do not know go to `extra` and are written back, so files survive older readers.
#include "results/result.h"

#include <cmath>
#include <limits>

#include "engine/error.h"

namespace intl::results {
namespace {

std::string join(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

std::string indexed(const std::string& where, size_t i) { return where + "[" + std::to_string(i) + "]"; }

[[noreturn]] void field_error(const std::string& where, const std::string& what) {
  throw Error((where.empty() ? std::string("(top level)") : where) + ": " + what);
}

// "string \"abc\"", "array of 3", "object", ... for messages.
std::string describe(const json& j) {
  if (j.is_string()) {
    std::string s = j.get<std::string>();
    if (s.size() > 40) s = s.substr(0, 40) + "...";
    return "string \"" + s + "\"";
  }
  if (j.is_array()) return "an array of " + std::to_string(j.size());
  if (j.is_object()) return "an object";
  if (j.is_null()) return "null";
  if (j.is_boolean()) return std::string("boolean ") + (j.get<bool>() ? "true" : "false");
  return "number " + j.dump();
}

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

void require_object(const json& j, const std::string& where) {
  if (!j.is_object()) field_error(where, "expected an object, found " + describe(j));
}

void read_string(const json& obj, const char* key, const std::string& where, std::string& out) {
  const json* v = member(obj, key);
  if (!v) return;
  if (!v->is_string()) field_error(join(where, key), "expected a string, found " + describe(*v));
  out = v->get<std::string>();
}

template <typename Int>
void read_integer(const json& obj, const char* key, const std::string& where, Int& out) {
  const json* v = member(obj, key);
  if (!v) return;
  const bool whole = v->is_number_integer() || (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>());
  const bool sign_ok = whole && (!std::is_unsigned_v<Int> || v->get<double>() >= 0);
  if (!sign_ok)
    field_error(join(where, key), std::string("expected ") + (std::is_unsigned_v<Int> ? "a non-negative" : "an") +
                                      " integer, found " + describe(*v));
  out = v->is_number_float() ? Int(v->get<double>()) : v->get<Int>();
}

void read_number(const json& obj, const char* key, const std::string& where, double& out) {
  if (const json* v = member(obj, key)) out = number_from_json(*v, join(where, key));
}

void read_config(const json& obj, const char* key, const std::string& where, json& out) {
  const json* v = member(obj, key);
  if (!v) return;
  require_object(*v, join(where, key));
  out = *v;
}

// Everything in obj except the known keys.
json unknown_fields(const json& obj, std::initializer_list<const char*> known) {
  json extra = json::object();
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool is_known = false;
    for (const char* k : known) is_known = is_known || it.key() == k;
    if (!is_known) extra[it.key()] = it.value();
  }
  return extra;
}

}  // namespace

std::vector<double> read_numbers(const json& j, const std::string& where) {
  if (!j.is_array()) field_error(where, "expected an array of numbers, found " + describe(j));
  std::vector<double> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) out.push_back(number_from_json(j[i], indexed(where, i)));
  return out;
}

json numbers_to_json(const std::vector<double>& v) {
  json out = json::array();
  for (double x : v) out.push_back(number_to_json(x));
  return out;
}

namespace {

Header read_header(const json& j, const std::string& where) {
  require_object(j, where);
  Header h;
  read_string(j, "command", where, h.command);
  read_string(j, "study", where, h.study);
  read_string(j, "program_version", where, h.program_version);
  read_string(j, "git_revision", where, h.git_revision);
  read_string(j, "build_type", where, h.build_type);
  read_string(j, "device", where, h.device);
  read_string(j, "device_name", where, h.device_name);
  read_integer(j, "threads", where, h.threads);
  read_string(j, "started_at", where, h.started_at);
  read_number(j, "wall_s", where, h.wall_s);
  read_integer(j, "seed", where, h.seed);
  h.extra = unknown_fields(j, {"command", "study", "program_version", "git_revision", "build_type", "device",
                               "device_name", "threads", "started_at", "wall_s", "seed"});
  return h;
}

Curve read_curve(const json& j, const std::string& where) {
  require_object(j, where);
  Curve c;
  read_string(j, "x_label", where, c.x_label);
  const json* y = member(j, "y");
  if (!y) field_error(where, "no \"y\" field (a curve needs its values)");
  c.y = read_numbers(*y, join(where, "y"));
  if (const json* x = member(j, "x")) {
    c.x = read_numbers(*x, join(where, "x"));
    if (c.x.size() != c.y.size())
      field_error(where, "x and y differ in length (" + std::to_string(c.x.size()) + " vs " +
                             std::to_string(c.y.size()) + ")");
  } else {
    for (size_t i = 0; i < c.y.size(); ++i) c.x.push_back(double(i));  // older files: x is the index
  }
  return c;
}

Array read_array(const json& j, const std::string& where) {
  if (!j.is_array()) field_error(where, "expected an array, found " + describe(j));
  bool nested = !j.empty() && j[0].is_array();
  if (!nested) return Array::vector(read_numbers(j, where));
  Array a;
  a.cols = j[0].size();
  if (a.cols == 0) field_error(indexed(where, 0), "an empty row (rows need at least one number)");
  for (size_t i = 0; i < j.size(); ++i) {
    std::string row_where = indexed(where, i);
    std::vector<double> row = read_numbers(j[i], row_where);
    if (row.size() != a.cols)
      field_error(row_where, "expected " + std::to_string(a.cols) + " numbers like the first row, found " +
                                 std::to_string(row.size()));
    a.values.insert(a.values.end(), row.begin(), row.end());
  }
  return a;
}

Event read_event(const json& j, const std::string& where) {
  require_object(j, where);
  Event e;
  read_string(j, "kind", where, e.kind);
  read_integer(j, "step", where, e.step);
  read_string(j, "message", where, e.message);
  e.extra = unknown_fields(j, {"kind", "step", "message"});
  return e;
}

Run read_run(const json& j, const std::string& where) {
  require_object(j, where);
  Run r;
  read_string(j, "name", where, r.name);
  read_config(j, "config", where, r.config);
  if (const json* m = member(j, "metrics")) {
    require_object(*m, join(where, "metrics"));
    for (auto it = m->begin(); it != m->end(); ++it)
      r.metrics[it.key()] = number_from_json(it.value(), join(join(where, "metrics"), it.key()));
  }
  if (const json* c = member(j, "curves")) {
    require_object(*c, join(where, "curves"));
    for (auto it = c->begin(); it != c->end(); ++it)
      r.curves[it.key()] = read_curve(it.value(), join(join(where, "curves"), it.key()));
  }
  if (const json* a = member(j, "arrays")) {
    require_object(*a, join(where, "arrays"));
    for (auto it = a->begin(); it != a->end(); ++it)
      r.arrays[it.key()] = read_array(it.value(), join(join(where, "arrays"), it.key()));
  }
  if (const json* ev = member(j, "events")) {
    if (!ev->is_array()) field_error(join(where, "events"), "expected an array, found " + describe(*ev));
    for (size_t i = 0; i < ev->size(); ++i) r.events.push_back(read_event((*ev)[i], indexed(join(where, "events"), i)));
  }
  r.extra = unknown_fields(j, {"name", "config", "metrics", "curves", "arrays", "events"});
  return r;
}

Result read_result(const json& j) {
  if (!j.is_object())
    throw Error("not an intl result: the top level is " + describe(j) +
                ", expected an object with \"format\": \"intl-result\"");
  const json* format = member(j, "format");
  if (!format)
    throw Error("not an intl result: there is no \"format\": \"intl-result\" field (a file from another program?)");
  if (*format != result_format_name)
    throw Error("format: expected \"intl-result\", found " + describe(*format) + " (not an intl result)");
  Result r;
  read_integer(j, "format_version", "", r.format_version);
  if (r.format_version > result_format_version)
    field_error("format_version", std::to_string(r.format_version) + " is newer than this intl reads (" +
                                      std::to_string(result_format_version) + "); use a newer intl");
  if (const json* h = member(j, "header")) r.header = read_header(*h, "header");
  read_config(j, "config", "", r.config);
  if (const json* runs = member(j, "runs")) {
    if (!runs->is_array()) field_error("runs", "expected an array, found " + describe(*runs));
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < runs->size(); ++i) {
      r.runs.push_back(read_run((*runs)[i], indexed("runs", i)));
      auto [it, fresh] = seen.emplace(r.runs.back().name, i);
      if (!fresh)
        field_error(indexed("runs", i) + ".name", "\"" + r.runs.back().name + "\" repeats the name of runs[" +
                                                      std::to_string(it->second) + "]; run names must be unique");
    }
  }
  r.extra = unknown_fields(j, {"format", "format_version", "header", "config", "runs"});
  return r;
}

}  // namespace

json number_to_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double number_from_json(const json& j, const std::string& where) {
  if (j.is_number()) return j.get<double>();
  if (j.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s == "nan" || s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf" || s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-inf" || s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  field_error(where, "expected a number (or \"nan\", \"inf\", \"-inf\"), found " + describe(j));
}

Array Array::vector(std::vector<double> values) {
  Array a;
  a.values = std::move(values);
  return a;
}

Array Array::matrix(size_t cols, std::vector<double> values) {
  check(cols > 0 && values.size() % cols == 0,
        "Array::matrix: " + std::to_string(values.size()) + " values do not fill rows of " + std::to_string(cols));
  Array a;
  a.cols = cols;
  a.values = std::move(values);
  return a;
}

const Event* Run::first_event(const std::string& kind) const {
  for (const Event& e : events)
    if (e.kind == kind) return &e;
  return nullptr;
}

const Run* Result::find_run(const std::string& name) const {
  for (const Run& r : runs)
    if (r.name == name) return &r;
  return nullptr;
}

void to_json(json& j, const Header& h) {
  j = h.extra.is_object() ? h.extra : json::object();
  j["command"] = h.command;
  j["study"] = h.study;
  j["program_version"] = h.program_version;
  j["git_revision"] = h.git_revision;
  j["build_type"] = h.build_type;
  j["device"] = h.device;
  j["device_name"] = h.device_name;
  j["threads"] = h.threads;
  j["started_at"] = h.started_at;
  j["wall_s"] = number_to_json(h.wall_s);
  j["seed"] = h.seed;
}

void to_json(json& j, const Curve& c) {
  j = json{{"x_label", c.x_label}, {"x", numbers_to_json(c.x)}, {"y", numbers_to_json(c.y)}};
}

void to_json(json& j, const Array& a) {
  if (a.cols == 0) {
    j = numbers_to_json(a.values);
    return;
  }
  j = json::array();
  for (size_t r = 0; r < a.rows(); ++r)
    j.push_back(numbers_to_json(std::vector<double>(a.values.begin() + r * a.cols, a.values.begin() + (r + 1) * a.cols)));
}

void to_json(json& j, const Event& e) {
  j = e.extra.is_object() ? e.extra : json::object();
  j["kind"] = e.kind;
  if (e.step >= 0) j["step"] = e.step;
  j["message"] = e.message;
}

void to_json(json& j, const Run& r) {
  j = r.extra.is_object() ? r.extra : json::object();
  j["name"] = r.name;
  j["config"] = r.config;
  json metrics = json::object();
  for (const auto& [k, v] : r.metrics) metrics[k] = number_to_json(v);
  j["metrics"] = metrics;
  j["curves"] = json::object();
  for (const auto& [k, c] : r.curves) j["curves"][k] = c;
  j["arrays"] = json::object();
  for (const auto& [k, a] : r.arrays) j["arrays"][k] = a;
  j["events"] = json::array();
  for (const Event& e : r.events) j["events"].push_back(e);
}

void to_json(json& j, const Result& r) {
  j = r.extra.is_object() ? r.extra : json::object();
  j["format"] = result_format_name;
  j["format_version"] = r.format_version;
  j["header"] = r.header;
  j["config"] = r.config;
  j["runs"] = json::array();
  for (const Run& run : r.runs) j["runs"].push_back(run);
}

void from_json(const json& j, Header& h) { h = read_header(j, ""); }
void from_json(const json& j, Curve& c) { c = read_curve(j, ""); }
void from_json(const json& j, Array& a) { a = read_array(j, ""); }
void from_json(const json& j, Event& e) { e = read_event(j, ""); }
void from_json(const json& j, Run& r) { r = read_run(j, ""); }
void from_json(const json& j, Result& r) { r = read_result(j); }

}  // namespace intl::results
