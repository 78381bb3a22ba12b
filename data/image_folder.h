// ImageNet-style image folders (SPEC 4): DIR/CLASS/**/IMAGE, listed once at start-up and decoded with
// stb_image on the loader's worker threads. ImageNet-100 is the same folder restricted by a classes file
// (experiments/imagenet100_classes.txt).
//
// What is an image and which label it gets, as torchvision's ImageFolder: the classes are the sub-folders
// of DIR sorted by name (byte order; hidden ones, starting with '.', are left out, where torchvision would
// make them classes), label k is the k-th; a class's images are the files under its folder, searched
// recursively, whose names end in .jpg, .jpeg or .png in any case, in the order of
// sorted(os.walk(class_folder)) then sorted(file names). Other files are ignored and counted.
//
// Bad files. At start-up a folder that is missing, holds no class, or a class without images, and an image
// file that cannot be opened (permissions, a dangling link) are errors naming the path: each means the
// folder is not what it should be. A file that opens but does not decode is met later, on a worker:
// `on_bad_image` fail stops with an error naming it; skip (the default) warns once on stderr, counts it,
// and uses the next image of its class instead (index + 1, wrapping within the class), so a run stays
// deterministic and every class keeps its share; a class none of whose images decode is an error naming its
// folder. skipped_images() is the count a result file should carry.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/cifar.h"
#include "data/image_source.h"

namespace intl {

enum class BadImagePolicy { skip, fail };
const char* bad_image_policy_name(BadImagePolicy policy);  // "skip" | "fail"
BadImagePolicy parse_bad_image_policy(const std::string& name);  // UsageError for anything else

struct ImageFolderOptions {
  BadImagePolicy on_bad_image = BadImagePolicy::skip;
  // Empty: every class folder. Otherwise a file naming the classes to keep (see read_classes_file); they are
  // labelled in sorted order, as a folder holding only them would be.
  std::string classes_file;
  bool warn_on_skip = true;  // one line on stderr per skipped image
  // Empty: every image. Otherwise a file of image file names, one per line (SimCLR's 1percent.txt /
  // 10percent.txt: "n01440764_10026.JPEG"); an image is kept when its file name (without folders) is listed.
  // Listed names found nowhere are an error naming the first; a class left without images too.
  std::string subset_file;
  // 0: every image. N > 0: N images taken round-robin over the classes (the first images of each class in
  // folder order, class k getting N / classes images, plus one for the first N % classes classes), for
  // scaled-down runs. A class with fewer images gives what it has.
  int max_images = 0;
};

class ImageFolder : public ImageSource {
 public:
  // Lists the images of `dir` (one split, e.g. DATA/train). Throws intl::Error naming the path at fault.
  explicit ImageFolder(const std::string& dir, ImageFolderOptions options = {});
  ~ImageFolder() override;
  ImageFolder(ImageFolder&&) noexcept;
  ImageFolder& operator=(ImageFolder&&) noexcept;

  int size() const override { return int(labels_.size()); }
  int num_classes() const override { return int(classes_.size()); }
  int32_t label(int index) const override { return labels_[index]; }
  Normalization normalization() const override { return kImageNetNormalization; }
  // Decodes image `index`; a bad image is handled by the policy (see the header note). Thread-safe.
  int decode(int index, ImageF& image) const override;

  const std::string& root() const { return root_; }
  const std::vector<std::string>& classes() const { return classes_; }  // label k is classes()[k]
  std::string path(int index) const;           // root/CLASS/.../FILE
  int ignored_files() const { return ignored_files_; }  // files without an image extension
  const ImageFolderOptions& options() const { return options_; }

  // Images that failed to decode and were replaced so far (skip policy), each counted once.
  int skipped_images() const;
  std::vector<std::string> skipped_paths() const;  // sorted

 private:
  struct SkipLog;
  void record_skip(int index, const std::string& reason) const;

  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::string names_;              // relative paths of all images, concatenated
  std::vector<uint64_t> offsets_;  // (size + 1) image i's relative path is names_[offsets_[i], offsets_[i + 1])
  std::vector<int32_t> labels_;    // (size)
  std::vector<int> class_begin_;   // (classes + 1) class k's images are [class_begin_[k], class_begin_[k + 1])
  int ignored_files_ = 0;
  std::unique_ptr<SkipLog> skipped_;
};

// One class folder name per line, in any order; surrounding white space, empty lines and lines starting
// with '#' are ignored. Returns the names in file order with their line numbers (from 1); throws
// intl::Error naming FILE:LINE for a line with more than one word or a repeated name, and for a file that
// cannot be read or names no class. ImageFolder adds the error for a name with no folder.
struct ClassLine {
  int line = 0;
  std::string name;
};
std::vector<ClassLine> read_classes_file(const std::string& path);

// The folder of a split under an ImageNet-style data folder: DIR/train, or DIR/val for Split::test. Throws
// intl::Error, saying what layout is expected, when it is not a folder.
std::string image_folder_split_dir(const std::string& data_dir, Split split);

}  // namespace intl
