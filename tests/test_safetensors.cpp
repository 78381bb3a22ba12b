// Safetensors: round trips of module state and of raw tensors, the byte layout, and every malformed-file
// error (each must name the file and, where there is one, the tensor).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "models/layers.h"
#include "models/resnet.h"
#include "models/safetensors.h"
#include "tests/temp_dir.h"

using namespace intl;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}
// A file made of a header (JSON text) and `data_bytes` zero bytes of data.
std::string with_header(const std::string& json, size_t data_bytes) {
  const uint64_t n = json.size();
  std::string s(reinterpret_cast<const char*>(&n), 8);
  return s + json + std::string(data_bytes, '\0');
}

ResNetConfig tiny_resnet(uint64_t seed) {
  ResNetConfig c;
  c.base_width = 4;
  c.stem = ResNetStem::cifar;
  c.seed = seed;
  return c;
}

std::map<std::string, std::vector<double>> values(const Module& m) {
  std::map<std::string, std::vector<double>> out;
  for (auto& [name, t] : m.named_parameters()) out[name] = t.to_vector();
  for (auto& [name, t] : m.named_buffers()) out[name] = t.to_vector();
  return out;
}

// Runs `f`, which must throw intl::Error whose message contains every one of `parts`.
template <class F> void check_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("expected an intl::Error mentioning " << parts.front());
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    for (const std::string& p : parts) CHECK(msg.find(p) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("module state round-trips through safetensors") {
  TempDir dir;
  ResNet a(tiny_resnet(1)), b(tiny_resnet(2));
  {  // make the buffers non-trivial
    NoGradGuard ng;
    a.forward(Tensor::randn({2, 8, 8, 3}, 3, 1));
  }
  const std::string path = dir.file("resnet.safetensors");
  save_safetensors(a, path, {{"format", "pt"}, {"arch", "resnet18"}});
  CHECK(!fs::exists(path + ".tmp"));
  CHECK(values(a) != values(b));
  const SafetensorsLoadReport report = load_safetensors(b, path);
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  CHECK(values(a) == values(b));

  const SafetensorsContents contents = read_safetensors(path);
  CHECK(contents.metadata.at("arch") == "resnet18");
  CHECK(contents.tensors.front().first == "conv1.weight");
  std::map<std::string, Tensor> by_name(contents.tensors.begin(), contents.tensors.end());
  CHECK(by_name.at("layer1.0.bn1.num_batches_tracked").dtype() == DType::i64);
  CHECK(by_name.at("layer1.0.bn1.num_batches_tracked").shape().empty());
  CHECK(by_name.at("layer2.0.downsample.0.weight").shape() == Shape{8, 4, 1, 1});
}

TEST_CASE("safetensors layout: little-endian header length, JSON header, aligned data") {
  TempDir dir;
  const std::string path = dir.file("raw.safetensors");
  Tensor f64 = Tensor::from_vector({1.5, -2.0, 3.25, 4.0, 5.0, 6.0}, {2, 3}, DType::f64);
  Tensor f32 = transpose(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));  // strided: written contiguous
  Tensor i64 = Tensor::from_vector({7}, {}, DType::i64);
  write_safetensors(path, {{"a", f64}, {"b.t", f32}, {"c", i64}});
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  const std::string header = bytes.substr(8, n);
  CHECK(header.find(R"("a":{"dtype":"F64","shape":[2,3],"data_offsets":[0,48]})") != std::string::npos);
  CHECK(header.find(R"("b.t":{"dtype":"F32","shape":[3,2],"data_offsets":[48,72]})") != std::string::npos);
  CHECK(header.find(R"("c":{"dtype":"I64","shape":[],"data_offsets":[72,80]})") != std::string::npos);
  CHECK(bytes.size() == 8 + n + 80);
  double first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 8);
  CHECK(first == 1.5);

  const SafetensorsContents back = read_safetensors(path);
  REQUIRE(back.tensors.size() == 3);
  CHECK(back.tensors[1].first == "b.t");
  CHECK(back.tensors[1].second.to_vector() == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(back.tensors[2].second.item() == 7);
  // bfloat16 is the format's BF16, two bytes a value.
  const std::string bf16_path = dir.file("bf16.safetensors");
  write_safetensors(bf16_path, {{"h", Tensor::from_vector({0.5, -3.0}, {2}, DType::bf16)}});
  const SafetensorsContents h = read_safetensors(bf16_path);
  CHECK(h.tensors.at(0).second.dtype() == DType::bf16);
  CHECK(h.tensors.at(0).second.to_vector() == std::vector<double>{0.5, -3.0});
  check_error([&] { write_safetensors(path, {{"a", f64}, {"a", f32}}); }, {path, "'a'", "twice"});
  check_error([&] { write_safetensors(dir / "no/such/folder/x.safetensors", {{"a", f64}}); },
              {"no/such/folder/x.safetensors.tmp"});
}

TEST_CASE("malformed safetensors files are errors naming the file and the tensor") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto read_error = [&](const std::string& bytes, const std::vector<std::string>& parts) {
    write_bytes(path, bytes);
    std::vector<std::string> all = parts;
    all.insert(all.begin(), path);
    check_error([&] { read_safetensors(path); }, all);
  };
  const std::string good = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

  check_error([&] { read_safetensors(dir.file("missing.safetensors")); }, {"missing.safetensors", "cannot open"});
  read_error("abc", {"truncated", "3 bytes"});
  read_error(with_header(good, 16).substr(0, 20), {"header length", "past the end"});
  read_error(with_header(good, 8), {"'w'", "data_offsets [0, 16]", "outside the data section"});
  read_error(with_header("{\"w\": [1, 2", 0), {"not valid JSON"});
  read_error(with_header("[1, 2]", 0), {"must be a JSON object"});
  read_error(with_header(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4), {"'w'", "F16"});
  read_error(with_header(R"({"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}})", 16),
             {"'w'", "needs 24 bytes", "span 16"});
  read_error(with_header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
             {"'w'", "non-negative"});
  read_error(with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), {"'w'", "data_offsets"});
  read_error(with_header(R"({"w":{"dtype":"F32","shape":[2]}})", 8), {"'w'", "data_offsets"});
  read_error(with_header(R"({"__metadata__":{"k":3}})", 0), {"__metadata__"});
  write_bytes(path, with_header(good, 16));
  CHECK(read_safetensors(path).tensors.size() == 1);
  // A folder opens as a file and its size reads as LLONG_MAX: named as a folder instead.
  check_error([&] { read_safetensors(dir.str()); },
              {"'" + dir.str() + "' is a folder, not a checkpoint file", "RUN/backbone.safetensors"});
}

TEST_CASE("first_non_finite_tensor names the first floating tensor holding NaN or inf") {
  const double nan = std::nan(""), inf = HUGE_VAL;
  NamedTensorList list{{"steps", Tensor::from_vector({1, 2}, {2}, DType::i64)},
                       {"a", Tensor::from_vector({1, 2, 3}, {3})}};
  CHECK(first_non_finite_tensor(list) == "");
  list.emplace_back("b", Tensor::from_vector({1, -inf}, {2}, DType::f64));
  list.emplace_back("c", Tensor::from_vector({nan}, {1}));
  CHECK(first_non_finite_tensor(list) == "b");
  list.erase(list.begin() + 2);
  CHECK(first_non_finite_tensor(list) == "c");
  CHECK(first_non_finite_tensor({{"h", Tensor::from_vector({0.5, nan}, {2}).to(DType::bf16)}}) == "h");
  // A strided view: only the elements it holds count.
  const Tensor m = Tensor::from_vector({1, nan, 2, 3}, {2, 2});
  CHECK(first_non_finite_tensor({{"col0", slice(m, 1, 0, 1)}}) == "");
  CHECK(first_non_finite_tensor({{"col1", slice(m, 1, 1, 2)}}) == "col1");
}

TEST_CASE("loading checks shapes, dtypes and names; non-strict loading reports them") {
  TempDir dir;
  const std::string path = dir.file("mlp.safetensors");
  MLP source({4, 3, 2}, false, 1);
  save_safetensors(source, path);
  MLP target({4, 3, 2}, false, 2);
  const auto before = values(target);

  MLP wider({4, 5, 2}, false, 2);
  check_error([&] { load_safetensors(wider, path); }, {path, "'0.weight'", "(3, 4)", "expects (5, 4)"});
  MLP doubles({4, 3, 2}, false, 2, DType::f64);
  check_error([&] { load_safetensors(doubles, path); }, {path, "'0.weight'", "F32", "expects F64"});

  // A file without "3.bias" (the last Linear's) and with an extra name.
  NamedTensorList partial;
  for (auto& nt : source.named_parameters())
    if (nt.first != "3.bias") partial.push_back(nt);
  partial.emplace_back("fc.weight", Tensor::zeros({2, 2}));
  const std::string partial_path = dir.file("partial.safetensors");
  write_safetensors(partial_path, partial);
  check_error([&] { load_safetensors(target, partial_path); },
              {partial_path, "missing 3.bias", "1.running_mean", "unexpected fc.weight"});
  CHECK(values(target) == before);  // a failed load changes nothing

  const SafetensorsLoadReport report = load_safetensors(target, partial_path, /*strict=*/false);
  CHECK(report.unexpected == std::vector<std::string>{"fc.weight"});
  CHECK(report.missing.front() == "3.bias");
  CHECK(report.missing.size() == 1 + 3);  // 3.bias and the three buffers of the BN
  auto after = values(target);
  CHECK(after.at("0.weight") == source.named_parameters()[0].second.to_vector());
  CHECK(after.at("3.bias") == before.at("3.bias"));
  CHECK(after.at("3.weight") != before.at("3.weight"));
}
