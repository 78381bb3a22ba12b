// CIFAR binary readers and writers, and the synthetic dataset generator (see data/cifar.h).
#include "data/cifar.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "engine/random.h"

namespace intl {
namespace {

namespace fs = std::filesystem;

int record_bytes(CifarKind kind) { return (kind == CifarKind::cifar10 ? 1 : 2) + CifarDataset::kImageBytes; }

std::string download_hint(CifarKind kind) {
  const bool ten = kind == CifarKind::cifar10;
  return std::string("download the ") + (ten ? "CIFAR-10" : "CIFAR-100") + " binary version (" +
         (ten ? "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
              : "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz") +
         "), extract it and pass the folder holding " + (ten ? "data_batch_1.bin" : "train.bin") +
         " with --data-dir";
}

// `dir` itself, or the folder the archive extracts to when `dir` is its parent.
std::string resolve_dir(const std::string& dir, CifarKind kind) {
  const std::string first = cifar_file_names(kind, Split::train)[0];
  if (fs::exists(fs::path(dir) / first)) return dir;
  const fs::path nested = fs::path(dir) / (kind == CifarKind::cifar10 ? "cifar-10-batches-bin" : "cifar-100-binary");
  if (fs::exists(nested / first)) return nested.string();
  return dir;
}

// Images per file in the release: CIFAR-10 10,000 in each; CIFAR-100 50,000 (train.bin) and 10,000 (test.bin).
int release_images(CifarKind kind, Split split) {
  return kind == CifarKind::cifar100 && split == Split::train ? 50000 : 10000;
}

// Written beside the files by make_synthetic_cifar: files smaller than the release's are meant there.
constexpr const char* kSyntheticMarker = "intl-synthetic.txt";

// Reads one file into ds; returns its number of images.
int read_cifar_file(const std::string& path, CifarKind kind, CifarDataset& ds) {
  if (fs::is_directory(path))
    throw Error("cifar: " + path + " is a folder, not a " + cifar_name(kind) + " file: " + download_hint(kind));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cifar: cannot open " + path + " (" + std::strerror(errno) + "): " + download_hint(kind));
  in.seekg(0, std::ios::end);
  const long long bytes = in.tellg();
  in.seekg(0, std::ios::beg);
  const int record = record_bytes(kind);
  if (bytes <= 0) throw Error("cifar: " + path + " is empty: " + download_hint(kind));
  if (bytes % record != 0)
    throw Error("cifar: " + path + " has " + std::to_string(bytes) + " bytes, not a whole number of " +
                std::to_string(record) + "-byte " + cifar_name(kind) + " records (truncated or not a " +
                cifar_name(kind) + " file): " + download_hint(kind));
  std::vector<uint8_t> buffer(static_cast<size_t>(bytes));
  if (!in.read(reinterpret_cast<char*>(buffer.data()), bytes))
    throw Error("cifar: reading " + path + " failed after " + std::to_string(in.gcount()) + " of " +
                std::to_string(bytes) + " bytes");
  const int count = int(bytes / record), classes = cifar_num_classes(kind);
  const size_t start = ds.labels.size();
  ds.labels.resize(start + count);
  ds.pixels.resize((start + count) * size_t(CifarDataset::kImageBytes));
  for (int i = 0; i < count; ++i) {
    const uint8_t* rec = buffer.data() + size_t(i) * record;
    const int label = kind == CifarKind::cifar10 ? rec[0] : rec[1];
    if (kind == CifarKind::cifar100 && rec[0] >= 20)
      throw Error("cifar: " + path + " record " + std::to_string(i) + " has coarse label " + std::to_string(rec[0]) +
                  ", expected 0..19 (not a CIFAR-100 file?): " + download_hint(kind));
    if (label >= classes)
      throw Error("cifar: " + path + " record " + std::to_string(i) + " has label " + std::to_string(label) +
                  ", expected 0.." + std::to_string(classes - 1) + " (not a " + cifar_name(kind) +
                  " file?): " + download_hint(kind));
    ds.labels[start + i] = label;
    std::memcpy(ds.pixels.data() + (start + i) * size_t(CifarDataset::kImageBytes), rec + (record - CifarDataset::kImageBytes),
                CifarDataset::kImageBytes);
  }
  return count;
}

// ---- synthetic images ----

// Whether pixel (x, y) belongs to the shape of class `shape`, centred at (cx, cy) with radius r; (ox, oy)
// shifts the periodic patterns.
bool inside_shape(int shape, int x, int y, float cx, float cy, float r, int ox, int oy) {
  const float dx = x - cx, dy = y - cy, ax = std::fabs(dx), ay = std::fabs(dy);
  const float dist = std::sqrt(dx * dx + dy * dy);
  switch (shape) {
    case 0: return dist <= r;                                                       // disc
    case 1: return ax <= 0.8f * r && ay <= 0.8f * r;                                // square
    case 2: return ((y + oy) / 3) % 2 == 0;                                         // horizontal stripes
    case 3: return dist >= 0.55f * r && dist <= r;                                  // ring
    case 4: return (ax <= r / 3 && ay <= r) || (ay <= r / 3 && ax <= r);            // cross
    case 5: return dy >= -r && dy <= r && ax <= 0.5f * (dy + r);                    // triangle
    case 6: return ((x + ox) / 4 + (y + oy) / 4) % 2 == 0;                          // checkerboard
    case 7: return ((x + y + ox) / 4) % 2 == 0;                                     // diagonal stripes
    case 8: return std::max(ax, ay) >= 0.65f * r && std::max(ax, ay) <= r;          // frame
    default: return (x + ox) % 6 < 2 && (y + oy) % 6 < 2;                           // dots
  }
}

// Draws one synthetic image of class `label` into 3072 planar bytes. Parameters come from sequential draws
// of `rng`; pixel noise from the blocks after `noise_base`, one per pixel.
void draw_synthetic(int label, RandomStream& rng, uint64_t noise_base, uint8_t* out) {
  const int shape = label % 10, colour = (label / 10 + label) % 10;
  float fg[3], bg[3];
  hsv_to_rgb(colour / 10.0f, 0.85f, 0.95f, fg[0], fg[1], fg[2]);
  float bh = colour / 10.0f + 0.5f;
  bh -= std::floor(bh);
  hsv_to_rgb(bh, 0.35f, 0.35f, bg[0], bg[1], bg[2]);
  const float cx = 15.5f + float(rng.next_uniform() * 8.0 - 4.0), cy = 15.5f + float(rng.next_uniform() * 8.0 - 4.0);
  const float r = 7.0f + float(rng.next_uniform() * 5.0);
  const int ox = int(rng.next_below(6)), oy = int(rng.next_below(6));
  const float shade = 0.85f + 0.3f * float(rng.next_uniform());
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const bool in = inside_shape(shape, x, y, cx, cy, r, ox, oy);
      const Philox4 noise = rng.block(noise_base + uint64_t(y) * 32 + x);
      for (int c = 0; c < 3; ++c) {
        const float base = 255.0f * shade * (in ? fg[c] : bg[c]);
        const float jitter = float(noise.v[c] >> 24) / 255.0f * 40.0f - 20.0f;  // uniform in [-20, 20]
        out[c * 1024 + y * 32 + x] = uint8_t(std::clamp(base + jitter, 0.0f, 255.0f) + 0.5f);
      }
    }
}

void make_synthetic_split(const std::string& dir, CifarKind kind, Split split, int n, uint64_t seed) {
  const int classes = cifar_num_classes(kind);
  const uint64_t split_base = uint64_t(split == Split::train ? 0 : 1) << 40;
  std::vector<int32_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = i % classes;
  RandomStream order{seed, kStreamData, split_base | (uint64_t(1) << 39)};
  for (int i = n - 1; i > 0; --i) std::swap(labels[i], labels[order.next_below(uint64_t(i) + 1)]);
  std::vector<uint8_t> pixels(size_t(n) * CifarDataset::kImageBytes);
  for (int i = 0; i < n; ++i) {
    const uint64_t base = split_base | (uint64_t(i) << 12);  // 4096 blocks per image: 16 draws, 1024 noise
    RandomStream rng{seed, kStreamData, base};
    draw_synthetic(labels[i], rng, base + 16, pixels.data() + size_t(i) * CifarDataset::kImageBytes);
  }
  const std::vector<std::string> names = cifar_file_names(kind, split);
  const int files = int(names.size());
  for (int f = 0; f < files; ++f) {
    const int lo = int(int64_t(n) * f / files), hi = int(int64_t(n) * (f + 1) / files);
    write_cifar_file((fs::path(dir) / names[f]).string(), kind, pixels.data() + size_t(lo) * CifarDataset::kImageBytes,
                     labels.data() + lo, hi - lo);
  }
}

}  // namespace

const char* cifar_name(CifarKind kind) { return kind == CifarKind::cifar10 ? "cifar10" : "cifar100"; }

CifarKind parse_cifar_kind(const std::string& name) {
  if (name == "cifar10") return CifarKind::cifar10;
  if (name == "cifar100") return CifarKind::cifar100;
  throw UsageError("unknown CIFAR dataset '" + name + "': expected cifar10 or cifar100");
}

int cifar_num_classes(CifarKind kind) { return kind == CifarKind::cifar10 ? 10 : 100; }

const Normalization& cifar_normalization(CifarKind kind) {
  return kind == CifarKind::cifar10 ? kCifar10Normalization : kCifar100Normalization;
}

std::vector<std::string> cifar_file_names(CifarKind kind, Split split) {
  if (kind == CifarKind::cifar100) return {split == Split::train ? "train.bin" : "test.bin"};
  if (split == Split::test) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
}

CifarDataset load_cifar(const std::string& dir, CifarKind kind, Split split) {
  CifarDataset ds;
  ds.kind = kind;
  ds.split = split;
  const std::string root = resolve_dir(dir, kind);
  const int expected = release_images(kind, split);
  for (const std::string& name : cifar_file_names(kind, split)) {
    const int count = read_cifar_file((fs::path(root) / name).string(), kind, ds);
    if (count != expected && ds.size_note.empty() && !fs::exists(fs::path(root) / kSyntheticMarker))
      ds.size_note = "cifar: " + (fs::path(root) / name).string() + " holds " + std::to_string(count) +
                     " images where the release's holds " + std::to_string(expected) +
                     ": a copy cut short between two images reads as a smaller dataset (download it again if so)";
  }
  if (!ds.size_note.empty()) std::fprintf(stderr, "warning: %s\n", ds.size_note.c_str());
  return ds;
}

void write_cifar_file(const std::string& path, CifarKind kind, const uint8_t* pixels, const int32_t* labels,
                      int count) {
  const int record = record_bytes(kind), classes = cifar_num_classes(kind);
  std::vector<uint8_t> buffer(size_t(count) * record);
  for (int i = 0; i < count; ++i) {
    check(labels[i] >= 0 && labels[i] < classes, "write_cifar_file: " + path + ": label " +
                                                     std::to_string(labels[i]) + " of image " + std::to_string(i) +
                                                     " outside 0.." + std::to_string(classes - 1));
    uint8_t* rec = buffer.data() + size_t(i) * record;
    if (kind == CifarKind::cifar100) rec[0] = uint8_t(labels[i] / 5);
    rec[record - CifarDataset::kImageBytes - 1] = uint8_t(labels[i]);
    std::memcpy(rec + (record - CifarDataset::kImageBytes), pixels + size_t(i) * CifarDataset::kImageBytes,
                CifarDataset::kImageBytes);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cifar: cannot create " + path + " (" + std::strerror(errno) + ")");
  out.write(reinterpret_cast<const char*>(buffer.data()), std::streamsize(buffer.size()));
  if (!out) throw Error("cifar: writing " + path + " failed (disk full?)");
}

void make_synthetic_cifar(const std::string& dir, CifarKind kind, int n_train, int n_test, uint64_t seed) {
  const int files = int(cifar_file_names(kind, Split::train).size());
  check(n_train >= files && n_test >= 1, std::string("make_synthetic_cifar: ") + cifar_name(kind) + " needs at least " +
                                             std::to_string(files) + " training and 1 test image (asked for " +
                                             std::to_string(n_train) + " and " + std::to_string(n_test) + ")");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("make_synthetic_cifar: cannot create " + dir + " (" + ec.message() + ")");
  make_synthetic_split(dir, kind, Split::train, n_train, seed);
  make_synthetic_split(dir, kind, Split::test, n_test, seed);
  std::ofstream marker(fs::path(dir) / kSyntheticMarker, std::ios::trunc);
  marker << "Synthetic " << cifar_name(kind) << " images in the binary release format, written by intl: " << n_train
         << " training and " << n_test << " test images, seed " << seed << ". Smaller than the release on purpose.\n";
  if (!marker) throw Error("make_synthetic_cifar: cannot write " + (fs::path(dir) / kSyntheticMarker).string());
}

}  // namespace intl
