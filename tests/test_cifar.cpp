// CIFAR readers on small files written here in the real formats: round trips, the errors for missing,
// truncated and mislabelled files (each must name the file), and the synthetic generator.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "data/cifar.h"
#include "engine/error.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace intl;

// n images whose bytes encode (image, position) so a round trip can check every byte.
std::vector<uint8_t> pattern_pixels(int n, int salt) {
  std::vector<uint8_t> pixels(size_t(n) * CifarDataset::kImageBytes);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t((i * 7 + salt * 31) % 251);
  return pixels;
}

std::string error_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write_cifar10(const TempDir& dir, int per_file) {
  const auto names = cifar_file_names(CifarKind::cifar10, Split::train);
  for (size_t f = 0; f < names.size(); ++f) {
    const auto pixels = pattern_pixels(per_file, int(f));
    std::vector<int32_t> labels(per_file);
    for (int i = 0; i < per_file; ++i) labels[i] = (i + int(f)) % 10;
    write_cifar_file(dir.file(names[f]), CifarKind::cifar10, pixels.data(), labels.data(), per_file);
  }
}

}  // namespace

TEST_CASE("cifar10: five training files are read in order, test file separately") {
  TempDir dir("c10");
  write_cifar10(dir, 3);
  const auto test_pixels = pattern_pixels(2, 9);
  const int32_t test_labels[2] = {9, 0};
  write_cifar_file(dir.file("test_batch.bin"), CifarKind::cifar10, test_pixels.data(), test_labels, 2);
  CHECK(fs::file_size(dir.file("data_batch_1.bin")) == 3u * 3073u);

  const CifarDataset train = load_cifar(dir.path.string(), CifarKind::cifar10, Split::train);
  REQUIRE(train.size() == 15);
  CHECK(train.num_classes() == 10);
  for (int f = 0; f < 5; ++f) {
    const auto expected = pattern_pixels(3, f);
    for (int i = 0; i < 3; ++i) {
      CHECK(train.labels[f * 3 + i] == (i + f) % 10);
      CHECK(std::equal(expected.begin() + i * 3072, expected.begin() + (i + 1) * 3072, train.image(f * 3 + i)));
    }
  }
  const CifarDataset test = load_cifar(dir.path.string(), CifarKind::cifar10, Split::test);
  REQUIRE(test.size() == 2);
  CHECK(test.labels[0] == 9);
  CHECK(std::equal(test_pixels.begin(), test_pixels.end(), test.pixels.begin()));
}

TEST_CASE("cifar100: the fine label is used and the coarse byte skipped") {
  TempDir dir("c100");
  const auto pixels = pattern_pixels(4, 3);
  const int32_t labels[4] = {0, 42, 99, 7};
  write_cifar_file(dir.file("train.bin"), CifarKind::cifar100, pixels.data(), labels, 4);
  CHECK(fs::file_size(dir.file("train.bin")) == 4u * 3074u);
  std::ifstream raw(dir.file("train.bin"), std::ios::binary);
  char head[3];
  raw.seekg(3074);
  raw.read(head, 3);
  CHECK(int(uint8_t(head[0])) == 42 / 5);  // coarse
  CHECK(int(uint8_t(head[1])) == 42);      // fine
  CHECK(uint8_t(head[2]) == pixels[3072]);
  const CifarDataset ds = load_cifar(dir.path.string(), CifarKind::cifar100, Split::train);
  REQUIRE(ds.size() == 4);
  CHECK(ds.labels[1] == 42);
  CHECK(ds.labels[2] == 99);
  CHECK(std::equal(pixels.begin(), pixels.end(), ds.pixels.begin()));
}

TEST_CASE("cifar: the archive's own folder name is found under --data-dir") {
  TempDir dir("nested");
  fs::create_directories(dir.path / "cifar-100-binary");
  const auto pixels = pattern_pixels(1, 0);
  const int32_t label = 5;
  write_cifar_file(dir.file("cifar-100-binary/test.bin"), CifarKind::cifar100, pixels.data(), &label, 1);
  write_cifar_file(dir.file("cifar-100-binary/train.bin"), CifarKind::cifar100, pixels.data(), &label, 1);
  CHECK(load_cifar(dir.path.string(), CifarKind::cifar100, Split::test).labels[0] == 5);

  // CIFAR-10's archive extracts to cifar-10-batches-bin.
  fs::create_directories(dir.path / "cifar-10-batches-bin");
  const int32_t ten_label = 7;
  write_cifar_file(dir.file("cifar-10-batches-bin/data_batch_1.bin"), CifarKind::cifar10, pixels.data(), &ten_label, 1);
  write_cifar_file(dir.file("cifar-10-batches-bin/test_batch.bin"), CifarKind::cifar10, pixels.data(), &ten_label, 1);
  CHECK(load_cifar(dir.path.string(), CifarKind::cifar10, Split::test).labels[0] == 7);
}

TEST_CASE("cifar: missing, empty, truncated and mislabelled files are errors naming the file") {
  TempDir dir("bad");
  std::string msg = error_message([&] { load_cifar(dir.path.string(), CifarKind::cifar10, Split::train); });
  CHECK(msg.find(dir.file("data_batch_1.bin")) != std::string::npos);
  CHECK(msg.find("cifar-10-binary.tar.gz") != std::string::npos);
  CHECK(msg.find("--data-dir") != std::string::npos);

  write_cifar10(dir, 2);
  fs::resize_file(dir.file("data_batch_3.bin"), 2 * 3073 - 1);
  msg = error_message([&] { load_cifar(dir.path.string(), CifarKind::cifar10, Split::train); });
  CHECK(msg.find(dir.file("data_batch_3.bin")) != std::string::npos);
  CHECK(msg.find("not a whole number of 3073-byte") != std::string::npos);

  fs::resize_file(dir.file("data_batch_3.bin"), 0);
  msg = error_message([&] { load_cifar(dir.path.string(), CifarKind::cifar10, Split::train); });
  CHECK(msg.find(dir.file("data_batch_3.bin") + " is empty") != std::string::npos);

  // CIFAR-100 records read as CIFAR-10: the second record's label byte is pixel data (162), out of range.
  write_cifar10(dir, 2);
  const auto pixels = pattern_pixels(2, 0);
  const int32_t labels[2] = {3, 99};
  write_cifar_file(dir.file("wrong.bin"), CifarKind::cifar100, pixels.data(), labels, 2);
  std::vector<char> bytes(2 * 3073);
  std::ifstream(dir.file("wrong.bin"), std::ios::binary).read(bytes.data(), std::streamsize(bytes.size()));
  std::ofstream(dir.file("data_batch_5.bin"), std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  msg = error_message([&] { load_cifar(dir.path.string(), CifarKind::cifar10, Split::train); });
  CHECK(msg.find(dir.file("data_batch_5.bin")) != std::string::npos);
  CHECK(msg.find("has label") != std::string::npos);
  CHECK(msg.find("expected 0..9") != std::string::npos);

  write_cifar_file(dir.file("test.bin"), CifarKind::cifar100, pixels.data(), labels, 2);
  bytes.assign(3074, 0);
  bytes[1] = char(100);  // fine label 100
  std::ofstream(dir.file("train.bin"), std::ios::binary).write(bytes.data(), 3074);
  msg = error_message([&] { load_cifar(dir.path.string(), CifarKind::cifar100, Split::train); });
  CHECK(msg.find(dir.file("train.bin")) != std::string::npos);
  CHECK(msg.find("expected 0..99") != std::string::npos);
  // A fine label in range behind a coarse byte past CIFAR-100's 20 superclasses: not a CIFAR-100 record.
  bytes.assign(3074, 0);
  bytes[0] = char(50);
  bytes[1] = char(60);
  std::ofstream(dir.file("train.bin"), std::ios::binary).write(bytes.data(), 3074);
  msg = error_message([&] { load_cifar(dir.path.string(), CifarKind::cifar100, Split::train); });
  CHECK(msg.find(dir.file("train.bin")) != std::string::npos);
  CHECK(msg.find("coarse label 50, expected 0..19") != std::string::npos);
  CHECK_THROWS_AS(parse_cifar_kind("cifar1000"), UsageError);

  fs::remove(dir.file("test.bin"));
  fs::create_directory(dir.file("test.bin"));
  msg = error_message([&] { load_cifar(dir.path.string(), CifarKind::cifar100, Split::test); });
  CHECK(msg.find(dir.file("test.bin") + " is a folder, not a cifar100 file") != std::string::npos);
}

TEST_CASE("cifar: files smaller than the release's are read with a note naming the first; synthetic ones are not") {
  TempDir dir("short");
  write_cifar10(dir, 3);
  const CifarDataset short_files = load_cifar(dir.path.string(), CifarKind::cifar10, Split::train);
  CHECK(short_files.size() == 15);
  CHECK(short_files.size_note.find(dir.file("data_batch_1.bin") + " holds 3 images where the release's holds 10000") !=
        std::string::npos);

  TempDir synthetic("short-syn");
  make_synthetic_cifar(synthetic.path.string(), CifarKind::cifar100, 20, 4, 1);
  CHECK(fs::exists(synthetic.file("intl-synthetic.txt")));
  CHECK(load_cifar(synthetic.path.string(), CifarKind::cifar100, Split::train).size_note.empty());
  CHECK(load_cifar(synthetic.path.string(), CifarKind::cifar100, Split::test).size_note.empty());
}

TEST_CASE("synthetic cifar: real layout, balanced labels, deterministic, classes differ in colour") {
  TempDir a("syn-a"), b("syn-b");
  make_synthetic_cifar(a.path.string(), CifarKind::cifar10, 200, 20, 7);
  make_synthetic_cifar(b.path.string(), CifarKind::cifar10, 200, 20, 7);
  const CifarDataset da = load_cifar(a.path.string(), CifarKind::cifar10, Split::train);
  const CifarDataset db = load_cifar(b.path.string(), CifarKind::cifar10, Split::train);
  REQUIRE(da.size() == 200);
  CHECK(load_cifar(a.path.string(), CifarKind::cifar10, Split::test).size() == 20);
  CHECK(da.pixels == db.pixels);
  CHECK(da.labels == db.labels);

  std::vector<int> count(10, 0);
  std::vector<std::array<double, 3>> mean(10, {0, 0, 0});
  for (int i = 0; i < da.size(); ++i) {
    ++count[da.labels[i]];
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) mean[da.labels[i]][c] += da.image(i)[c * 1024 + p];
  }
  for (int k = 0; k < 10; ++k) {
    CHECK(count[k] == 20);
    for (int c = 0; c < 3; ++c) mean[k][c] /= 20.0 * 1024.0;
  }
  // Mean colours of two classes are far apart (several 8-bit levels), for every pair.
  for (int k = 0; k < 10; ++k)
    for (int j = k + 1; j < 10; ++j) {
      double d = 0;
      for (int c = 0; c < 3; ++c) d += std::abs(mean[k][c] - mean[j][c]);
      CHECK(d > 10.0);
    }
  make_synthetic_cifar(b.path.string(), CifarKind::cifar100, 300, 10, 8);
  const CifarDataset d100 = load_cifar(b.path.string(), CifarKind::cifar100, Split::train);
  CHECK(d100.size() == 300);
  CHECK(*std::max_element(d100.labels.begin(), d100.labels.end()) == 99);
  CHECK_THROWS_AS(make_synthetic_cifar(b.path.string(), CifarKind::cifar10, 4, 1, 0), Error);
}
