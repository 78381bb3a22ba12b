// Safetensors reading and writing. The reader checks every header field against the file before it reads a
// byte of data, so a bad file is an Error naming what is wrong, never an out-of-range read.
#include "models/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "engine/durable.h"
#include "engine/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian, as is this host");

namespace intl {
namespace {

using Json = nlohmann::ordered_json;

// The safetensors library refuses headers over 100 MB; so do we, before allocating for one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* safetensors_dtype(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::bf16: return "BF16";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType& out) {
  for (DType d : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8, DType::bf16})
    if (s == safetensors_dtype(d)) {
      out = d;
      return true;
    }
  return false;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Closes the FILE on every path out.
struct File {
  FILE* f = nullptr;
  ~File() {
    if (f) std::fclose(f);
  }
};

}  // namespace

void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;  // contiguous CPU copies, in header order
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    check(name != "__metadata__" && !name.empty(), "safetensors file " + quoted(path) + ": invalid tensor name " +
                                                       quoted(name));
    check(seen.insert(name).second, "safetensors file " + quoted(path) + ": tensor " + quoted(name) +
                                        " appears twice");
    check(t.defined(), "safetensors file " + quoted(path) + ": tensor " + quoted(name) + " is undefined");
    Tensor c = t.detach().to(Device::cpu);
    if (!c.is_contiguous()) c = c.contiguous();
    const uint64_t bytes = uint64_t(c.numel()) * dtype_size(c.dtype());
    header[name] = {{"dtype", safetensors_dtype(c.dtype())}, {"shape", c.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    host.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the reference writer does
  const uint64_t header_len = text.size();

  const std::string tmp = path + ".tmp";
  {
    File out{std::fopen(tmp.c_str(), "wb")};
    if (!out.f)
      throw Error("cannot write safetensors file " + quoted(tmp) + ": " + std::strerror(errno) +
                  " (does the folder exist and is it writable?)");
    bool ok = std::fwrite(&header_len, 8, 1, out.f) == 1 && std::fwrite(text.data(), 1, text.size(), out.f) ==
                                                                 text.size();
    for (const Tensor& c : host) {
      const size_t bytes = size_t(c.numel()) * dtype_size(c.dtype());
      if (ok && bytes) ok = std::fwrite(c.raw_data(), 1, bytes, out.f) == bytes;
    }
    ok = ok && std::fflush(out.f) == 0 && fsync(fileno(out.f)) == 0;
    if (!ok) {
      const std::string why = std::strerror(errno);
      std::remove(tmp.c_str());
      throw Error("cannot write safetensors file " + quoted(tmp) + ": " + why);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("cannot rename " + quoted(tmp) + " to " + quoted(path) + ": " + why);
  }
  sync_folder_of(path);  // the rename itself, durable, before an older checkpoint is pruned
}

SafetensorsContents read_safetensors(const std::string& path) {
  const std::string where = "safetensors file " + quoted(path);
  // fopen opens a folder too, and its size then reads as LLONG_MAX: the type is checked first.
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status))
    throw Error(quoted(path) + " is a folder, not a checkpoint file; give the .safetensors file (e.g. "
                "RUN/backbone.safetensors)");
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw Error(quoted(path) + " is not a regular file (a device, pipe or socket); give the .safetensors file");
  File in{std::fopen(path.c_str(), "rb")};
  if (!in.f) throw Error("cannot open " + where + ": " + std::strerror(errno));
  std::fseek(in.f, 0, SEEK_END);
  const long end = std::ftell(in.f);
  std::fseek(in.f, 0, SEEK_SET);
  check(end >= 0, "cannot read the size of " + where);
  const uint64_t file_size = uint64_t(end);
  uint64_t header_len = 0;
  check(file_size >= 8 && std::fread(&header_len, 8, 1, in.f) == 1,
        where + " is truncated: " + std::to_string(file_size) + " bytes, expected at least the 8-byte header length");
  check(header_len <= kMaxHeaderBytes && header_len <= file_size - 8,
        where + ": header length " + std::to_string(header_len) + " runs past the end of the file (" +
            std::to_string(file_size) + " bytes): the file is truncated, or is not a safetensors file");
  std::string text(size_t(header_len), '\0');
  check(std::fread(text.data(), 1, text.size(), in.f) == text.size(), where + ": cannot read the header");
  Json header;
  try {
    header = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": the header is not valid JSON (" + e.what() + ")");
  }
  check(header.is_object(), where + ": the header must be a JSON object, found " + std::string(header.type_name()));

  const uint64_t data_start = 8 + header_len, data_size = file_size - data_start;
  SafetensorsContents out;
  std::vector<std::pair<uint64_t, size_t>> order;  // (begin, index into out.tensors)
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      check(entry.is_object(), where + ": __metadata__ must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        check(value.is_string(), where + ": __metadata__ value of " + quoted(key) + " must be a string");
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string what = where + ", tensor " + quoted(name);
    check(entry.is_object() && entry.contains("dtype") && entry.contains("shape") && entry.contains("data_offsets"),
          what + ": expected an object with dtype, shape and data_offsets, found " + entry.dump());
    DType dtype{};
    check(entry["dtype"].is_string() && parse_dtype(entry["dtype"].get<std::string>(), dtype),
          what + ": dtype " + entry["dtype"].dump() + " is not one of F32, F64, I32, I64, U8, BF16");
    const Json& js = entry["shape"];
    check(js.is_array(), what + ": shape must be an array, found " + js.dump());
    Shape shape;
    for (const Json& e : js) {
      check(e.is_number_unsigned(), what + ": shape " + js.dump() + " must hold non-negative integers");
      shape.push_back(e.get<int64_t>());
    }
    const Json& jo = entry["data_offsets"];
    check(jo.is_array() && jo.size() == 2 && jo[0].is_number_unsigned() && jo[1].is_number_unsigned(),
          what + ": data_offsets must be [begin, end], found " + jo.dump());
    const uint64_t begin = jo[0].get<uint64_t>(), stop = jo[1].get<uint64_t>();
    check(begin <= stop && stop <= data_size, what + ": data_offsets [" + std::to_string(begin) + ", " +
                                                  std::to_string(stop) + "] lie outside the data section (" +
                                                  std::to_string(data_size) + " bytes; is the file truncated?)");
    const uint64_t bytes = uint64_t(shape_numel(shape)) * dtype_size(dtype);
    check(stop - begin == bytes, what + ": shape " + shape_str(shape) + " of " + safetensors_dtype(dtype) +
                                     " needs " + std::to_string(bytes) + " bytes, data_offsets span " +
                                     std::to_string(stop - begin));
    Tensor t = Tensor::empty(shape, dtype);
    if (bytes) {
      check(std::fseek(in.f, long(data_start + begin), SEEK_SET) == 0 &&
                std::fread(t.raw_data(), 1, size_t(bytes), in.f) == size_t(bytes),
            what + ": cannot read its " + std::to_string(bytes) + " bytes");
    }
    order.emplace_back(begin, out.tensors.size());
    out.tensors.emplace_back(name, t);
  }
  std::sort(order.begin(), order.end());
  NamedTensorList sorted;
  for (const auto& [begin, i] : order) sorted.push_back(std::move(out.tensors[i]));
  out.tensors = std::move(sorted);
  return out;
}

std::string first_non_finite_tensor(const NamedTensorList& tensors) {
  for (const auto& [name, t] : tensors) {
    if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) continue;
    Tensor c = t.detach().to(Device::cpu);
    if (c.dtype() == DType::bf16) c = c.to(DType::f32);
    if (!c.is_contiguous()) c = c.contiguous();
    const int64_t n = c.numel();
    bool finite = true;
    if (c.dtype() == DType::f64) {
      const double* p = c.data<double>();
      for (int64_t i = 0; i < n && finite; ++i) finite = std::isfinite(p[i]);
    } else {
      const float* p = c.data<float>();
      for (int64_t i = 0; i < n && finite; ++i) finite = std::isfinite(p[i]);
    }
    if (!finite) return name;
  }
  return "";
}

void save_safetensors(const Module& module, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  NamedTensorList all = module.named_parameters();
  for (auto& nt : module.named_buffers()) all.push_back(nt);
  write_safetensors(path, all, metadata);
}

SafetensorsLoadReport load_safetensors(Module& module, const std::string& path, bool strict) {
  const SafetensorsContents file = read_safetensors(path);
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : file.tensors) by_name[name] = &t;

  NamedTensorList targets = module.named_parameters();
  for (auto& nt : module.named_buffers()) targets.push_back(nt);
  SafetensorsLoadReport report;
  std::vector<std::pair<Tensor, const Tensor*>> copies;  // (destination, source)
  std::set<std::string> used;
  for (const auto& [name, dst] : targets) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      report.missing.push_back(name);
      continue;
    }
    const Tensor& src = *it->second;
    const std::string what = "safetensors file " + quoted(path) + ", tensor " + quoted(name);
    check(src.dtype() == dst.dtype(), what + ": dtype " + safetensors_dtype(src.dtype()) + ", the module expects " +
                                          safetensors_dtype(dst.dtype()));
    check(src.shape() == dst.shape(), what + ": shape " + shape_str(src.shape()) + ", the module expects " +
                                          shape_str(dst.shape()));
    copies.emplace_back(dst, &src);
    used.insert(name);
  }
  for (const auto& [name, t] : file.tensors)
    if (!used.count(name)) report.unexpected.push_back(name);
  if (strict && (!report.missing.empty() || !report.unexpected.empty())) {
    auto list = [](const std::vector<std::string>& names) {
      std::string s;
      for (size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", " : "") + names[i];
      if (names.size() > 8) s += ", ... (" + std::to_string(names.size()) + " in all)";
      return s.empty() ? std::string("none") : s;
    };
    throw Error("safetensors file " + quoted(path) + " does not match the module: missing " + list(report.missing) +
                "; unexpected " + list(report.unexpected) + " (load non-strictly to skip them)");
  }
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(*src);
  }
  return report;
}

}  // namespace intl
