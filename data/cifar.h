// CIFAR-10 and CIFAR-100 in their binary release formats (SPEC 4): readers that refuse a missing, truncated
// or mislabelled file with a message naming it, a writer of the same format, and a synthetic generator
// whose classes differ visibly, for tests and benchmarks that must not depend on the real data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_source.h"
#include "data/transforms.h"

namespace intl {

enum class CifarKind { cifar10, cifar100 };
enum class Split { train, test };

const char* cifar_name(CifarKind kind);                 // "cifar10" | "cifar100"
CifarKind parse_cifar_kind(const std::string& name);    // UsageError for anything else
int cifar_num_classes(CifarKind kind);                  // 10 | 100
const Normalization& cifar_normalization(CifarKind kind);  // SPEC 3.4 mean / std

// File names of a split, in reading order: data_batch_1..5.bin / test_batch.bin (CIFAR-10),
// train.bin / test.bin (CIFAR-100).
std::vector<std::string> cifar_file_names(CifarKind kind, Split split);

// A whole split in memory, images kept in the files' planar layout.
struct CifarDataset : ImageSource {
  static constexpr int kChannels = 3, kHeight = 32, kWidth = 32;
  static constexpr int kImageBytes = kChannels * kHeight * kWidth;  // 3072

  CifarKind kind = CifarKind::cifar10;
  Split split = Split::train;
  std::vector<uint8_t> pixels;  // (size, 3, 32, 32): R, G, B planes, row-major, as stored in the files
  std::vector<int32_t> labels;  // (size) class in [0, num_classes); the fine label for CIFAR-100
  // Set by load_cifar when a file holds another number of images than the release's (and the folder is not
  // make_synthetic_cifar's): the first such file, its count and the release's.
  std::string size_note;

  int size() const override { return int(labels.size()); }
  int num_classes() const override { return cifar_num_classes(kind); }
  int32_t label(int index) const override { return labels[index]; }
  Normalization normalization() const override { return cifar_normalization(kind); }
  int decode(int index, ImageF& image) const override {
    planar_u8_to_float(this->image(index), kChannels, kHeight, kWidth, image);
    return index;
  }
  const uint8_t* image(int i) const { return pixels.data() + size_t(i) * kImageBytes; }
};

// Reads a split from `dir`, the folder holding the .bin files (the folder the archive extracts to,
// cifar-10-batches-bin / cifar-100-binary, is also accepted as `dir`'s child). Throws intl::Error naming the
// file for a missing or unreadable file, a size that is not a positive whole number of records, or a
// label out of range. A file with a whole number of records other than the release's is read, with a warning
// on stderr and size_note set (a copy cut between two records cannot be told from a smaller dataset).
CifarDataset load_cifar(const std::string& dir, CifarKind kind, Split split);

// Writes `count` images (planar, 3072 bytes each) and labels as one file of the binary format. CIFAR-100
// records get coarse label fine / 5 (the reader ignores it).
void write_cifar_file(const std::string& path, CifarKind kind, const uint8_t* pixels, const int32_t* labels,
                      int count);

// Writes a complete synthetic dataset in the real file layout to `dir` (created if needed): n_train training
// images (CIFAR-10: spread over the five batch files, so n_train >= 5) and n_test test images, classes
// balanced and in shuffled order. Class k is shape k % 10 (disc, square, stripes, ring, cross, triangle,
// checkerboard, diagonal stripes, frame, dots) in colour (k / 10 + k) % 10 of ten hues on a dim
// complementary background, with random position, size, shade and pixel noise (+-20 of 255).
// Deterministic in `seed`. An intl-synthetic.txt beside the files says what they are (and that load_cifar
// need not warn about their size).
void make_synthetic_cifar(const std::string& dir, CifarKind kind, int n_train, int n_test, uint64_t seed);

}  // namespace intl
