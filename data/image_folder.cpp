// The image folder of data/image_folder.h: the start-up listing (classes, recursive file walk in
// torchvision's order, readability), the classes file, and decoding with the skip / fail policy.
#include "data/image_folder.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <utility>

#include "data/image_file.h"
#include "engine/error.h"

namespace intl {
namespace {

namespace fs = std::filesystem;

bool has_image_extension(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  auto ends_with = [&](const char* ext) {
    const size_t n = std::strlen(ext);
    return lower.size() > n && lower.compare(lower.size() - n, n, ext) == 0;
  };
  return ends_with(".jpg") || ends_with(".jpeg") || ends_with(".png");
}

std::string trim(const std::string& s) {
  const char* space = " \t\r\n\f\v";
  const size_t first = s.find_first_not_of(space);
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

// The class folders of root (directories, links to directories included), hidden ones left out, sorted.
std::vector<std::string> list_class_folders(const fs::path& root) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code dir_ec;
    if (!name.empty() && name[0] != '.' && it->is_directory(dir_ec)) names.push_back(name);
  }
  if (ec) throw Error(root.string() + ": cannot list the folder (" + ec.message() + ")");
  std::sort(names.begin(), names.end());
  return names;
}

// Image files under one class folder in torchvision's order: folders by path (sorted(os.walk(...))), files
// by name within each. Appends relative paths "CLASS/sub/file" to `out`; counts other files in `ignored`.
void list_class_images(const fs::path& root, const std::string& cls, std::vector<std::string>& out,
                       int& ignored) {
  std::map<std::string, std::vector<std::string>> files_by_folder;  // relative folder -> file names
  files_by_folder[""];
  const fs::path top = root / cls;
  std::error_code ec;
  fs::recursive_directory_iterator it(top, fs::directory_options::follow_directory_symlink, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec)) continue;
    const std::string name = it->path().filename().string();
    if (!has_image_extension(name)) {
      ++ignored;
      continue;
    }
    const std::string folder = it->path().parent_path().lexically_relative(top).generic_string();
    files_by_folder[folder == "." ? "" : folder].push_back(name);
  }
  if (ec) throw Error((top).string() + ": cannot list the class folder (" + ec.message() + ")");
  for (auto& [folder, names] : files_by_folder) {
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const std::string relative = cls + "/" + (folder.empty() ? "" : folder + "/") + name;
      const std::string full = (root / relative).string();
      if (::access(full.c_str(), R_OK) != 0)
        throw Error(full + ": the image file cannot be opened (" + std::strerror(errno) +
                    "); fix its permissions or remove it");
      out.push_back(relative);
    }
  }
}

}  // namespace

const char* bad_image_policy_name(BadImagePolicy policy) {
  return policy == BadImagePolicy::skip ? "skip" : "fail";
}

BadImagePolicy parse_bad_image_policy(const std::string& name) {
  if (name == "skip") return BadImagePolicy::skip;
  if (name == "fail") return BadImagePolicy::fail;
  throw UsageError("on_bad_image: expected skip or fail, found '" + name + "'");
}

std::vector<ClassLine> read_classes_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the classes file (" + std::strerror(errno) + ")");
  std::vector<ClassLine> classes;
  std::map<std::string, int> seen;  // name -> line
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    const std::string name = trim(text);
    if (name.empty() || name[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(line) + ": ";
    if (name.find_first_of(" \t") != std::string::npos)
      throw Error(where + "expected one class folder name per line, found '" + name + "'");
    const auto [it, inserted] = seen.emplace(name, line);
    if (!inserted) throw Error(where + "class " + name + " is already listed on line " + std::to_string(it->second));
    classes.push_back({line, name});
  }
  if (in.bad()) throw Error(path + ": read error");
  if (classes.empty()) throw Error(path + ": the classes file names no class (one folder name per line)");
  return classes;
}

std::string image_folder_split_dir(const std::string& data_dir, Split split) {
  const char* name = split == Split::train ? "train" : "val";
  const fs::path dir = fs::path(data_dir) / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(data_dir + " has no " + name + "/ folder: the data folder must hold train/CLASS/*.JPEG and "
                "val/CLASS/*.JPEG");
  return dir.string();
}

struct ImageFolder::SkipLog {
  std::mutex mutex;
  std::set<int> indices;
  std::vector<std::string> paths;
};

ImageFolder::~ImageFolder() = default;
ImageFolder::ImageFolder(ImageFolder&&) noexcept = default;
ImageFolder& ImageFolder::operator=(ImageFolder&&) noexcept = default;

ImageFolder::ImageFolder(const std::string& dir, ImageFolderOptions options)
    : root_(dir), options_(std::move(options)), skipped_(std::make_unique<SkipLog>()) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  const fs::path root(root_);
  std::error_code ec;
  if (!fs::exists(root, ec))
    throw Error(dir + ": no such folder (expected an image folder: " + dir + "/CLASS/IMAGE.JPEG)");
  if (!fs::is_directory(root, ec)) throw Error(dir + ": not a folder (expected " + dir + "/CLASS/IMAGE.JPEG)");
  const std::vector<std::string> folders = list_class_folders(root);
  if (options_.classes_file.empty()) {
    classes_ = folders;
  } else {
    for (const ClassLine& c : read_classes_file(options_.classes_file)) {
      if (!std::binary_search(folders.begin(), folders.end(), c.name))
        throw Error(options_.classes_file + ":" + std::to_string(c.line) + ": class " + c.name +
                    " has no folder in " + dir);
      classes_.push_back(c.name);
    }
    std::sort(classes_.begin(), classes_.end());
  }
  if (classes_.empty())
    throw Error(dir + ": no class folders (expected " + dir + "/CLASS/IMAGE.JPEG, one folder per class)");

  std::map<std::string, bool> subset;  // file name -> found
  if (!options_.subset_file.empty()) {
    std::ifstream in(options_.subset_file);
    if (!in) throw Error(options_.subset_file + ": cannot read the subset file (" + std::strerror(errno) + ")");
    std::string text;
    while (std::getline(in, text)) {
      const std::string name = trim(text);
      if (!name.empty() && name[0] != '#') subset[fs::path(name).filename().string()] = false;
    }
    if (subset.empty()) throw Error(options_.subset_file + ": the subset file names no image");
  }
  check(options_.max_images >= 0, "image folder: max_images must be >= 0");
  const int nclasses = int(classes_.size());

  offsets_.push_back(0);
  std::vector<std::string> relative;
  for (size_t k = 0; k < classes_.size(); ++k) {
    relative.clear();
    list_class_images(root, classes_[k], relative, ignored_files_);
    if (relative.empty())
      throw Error((root / classes_[k]).string() + ": the class folder holds no image (.jpg, .jpeg or .png); "
                  "add its images or remove the folder");
    if (!subset.empty()) {
      std::vector<std::string> kept;
      for (const std::string& r : relative) {
        auto it = subset.find(fs::path(r).filename().string());
        if (it == subset.end()) continue;
        it->second = true;
        kept.push_back(r);
      }
      if (kept.empty())
        throw Error(options_.subset_file + ": names no image of class " + classes_[k] + " (in " + dir +
                    "); is it the subset of this folder?");
      relative.swap(kept);
    }
    if (options_.max_images > 0) {
      const size_t quota = size_t(options_.max_images / nclasses + (int(k) < options_.max_images % nclasses));
      if (relative.size() > quota) relative.resize(quota);
    }
    for (const std::string& r : relative) {
      names_ += r;
      offsets_.push_back(names_.size());
      labels_.push_back(int32_t(k));
    }
  }
  check(labels_.size() < size_t(INT32_MAX), dir + ": more than 2^31 images");
  class_begin_.assign(size_t(nclasses) + 1, 0);
  check(std::is_sorted(labels_.begin(), labels_.end()), dir + ": images listed out of class order");
  for (const int32_t label : labels_) ++class_begin_[size_t(label) + 1];
  for (int k = 0; k < nclasses; ++k) class_begin_[size_t(k) + 1] += class_begin_[size_t(k)];
  check(!labels_.empty(), dir + ": max_images " + std::to_string(options_.max_images) + " keeps no image");
  for (const auto& [name, found] : subset)
    if (!found)
      throw Error(options_.subset_file + ": image " + name + " is in no class folder of " + dir +
                  (options_.classes_file.empty() ? "" : " (restricted to " + options_.classes_file + ")"));
}

std::string ImageFolder::path(int index) const {
  check(index >= 0 && index < size(), root_ + ": image index " + std::to_string(index) + " outside 0.." +
                                          std::to_string(size() - 1));
  return root_ + "/" + names_.substr(offsets_[index], offsets_[index + 1] - offsets_[index]);
}

int ImageFolder::decode(int index, ImageF& image) const {
  check(index >= 0 && index < size(), root_ + ": image index " + std::to_string(index) + " outside 0.." +
                                          std::to_string(size() - 1));
  const int32_t k = labels_[size_t(index)];
  const int begin = class_begin_[size_t(k)], count = class_begin_[size_t(k) + 1] - begin;
  std::string error;
  for (int attempt = 0; attempt < count; ++attempt) {
    const int i = begin + (index - begin + attempt) % count;
    const std::string file = path(i);
    if (decode_image_file(file, image, error)) return i;
    if (options_.on_bad_image == BadImagePolicy::fail)
      throw Error(file + ": cannot decode the image (" + error +
                  "); replace or remove the file, or pass --on-bad-image skip");
    record_skip(i, error);
  }
  throw Error(root_ + "/" + classes_[size_t(k)] + ": none of the class's " + std::to_string(count) +
              " images can be decoded (last error: " + error + "); fix them, or remove the class folder");
}

void ImageFolder::record_skip(int index, const std::string& reason) const {
  std::lock_guard<std::mutex> lock(skipped_->mutex);
  if (!skipped_->indices.insert(index).second) return;
  skipped_->paths.push_back(path(index));
  if (options_.warn_on_skip)
    std::fprintf(stderr, "warning: skipping %s (cannot decode: %s); the next image of its class replaces it\n",
                 skipped_->paths.back().c_str(), reason.c_str());
}

int ImageFolder::skipped_images() const {
  std::lock_guard<std::mutex> lock(skipped_->mutex);
  return int(skipped_->indices.size());
}

std::vector<std::string> ImageFolder::skipped_paths() const {
  std::lock_guard<std::mutex> lock(skipped_->mutex);
  std::vector<std::string> paths = skipped_->paths;
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace intl
