// Image folders written here (PNG and JPEG, a few classes, a corrupt file, an empty class, a missing
// folder): torchvision's class and file order, decoding, the classes file, both bad-image policies, and
// the loader drawing from a folder.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "data/image_file.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "engine/error.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace intl;

// A w x h RGB image whose pixel (y, x, c) is (seed * 37 + y * 11 + x * 5 + c * 80) mod 256.
ImageU8 pattern_image(int width, int height, int seed) {
  ImageU8 img{height, width, 3, std::vector<uint8_t>(size_t(width) * height * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) img.pixels[(size_t(y) * width + x) * 3 + c] = uint8_t(seed * 37 + y * 11 + x * 5 + c * 80);
  return img;
}

ImageU8 solid_image(int width, int height, uint8_t r, uint8_t g, uint8_t b) {
  ImageU8 img{height, width, 3, {}};
  for (int i = 0; i < width * height; ++i) img.pixels.insert(img.pixels.end(), {r, g, b});
  return img;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

bool message_contains(const std::function<void()>& fn, const std::string& part) {
  try {
    fn();
  } catch (const Error& e) {
    if (std::string(e.what()).find(part) != std::string::npos) return true;
    MESSAGE("error message: " << e.what());
    return false;
  }
  MESSAGE("no error thrown");
  return false;
}

// Three classes out of order on disk, mixed extensions, a sub-folder, a text file and a hidden folder.
void write_mixed_folder(const TempDir& t) {
  write_png(t.file("b_cat/2.png"), pattern_image(6, 4, 1));
  write_jpeg(t.file("b_cat/1.JPG"), solid_image(16, 16, 200, 40, 90), 95);
  write_png(t.file("b_cat/sub/0.PNG"), pattern_image(5, 3, 2));
  write_text(t.file("b_cat/notes.txt"), "not an image");
  write_jpeg(t.file("a_dog/x.Jpeg"), solid_image(24, 8, 10, 250, 128), 95);
  write_png(t.file("a_dog/y.png"), pattern_image(7, 9, 3));
  write_png(t.file("c_fish/z.png"), pattern_image(3, 3, 4));
  write_png(t.file(".hidden/h.png"), pattern_image(3, 3, 5));
}

}  // namespace

TEST_CASE("image folder: classes sorted, files in torchvision's order, other files ignored") {
  TempDir t("order");
  write_mixed_folder(t);
  const ImageFolder folder(t.str());
  CHECK(folder.classes() == std::vector<std::string>{"a_dog", "b_cat", "c_fish"});
  REQUIRE(folder.size() == 6);
  const std::vector<std::string> expected = {"a_dog/x.Jpeg", "a_dog/y.png", "b_cat/1.JPG",
                                             "b_cat/2.png",  "b_cat/sub/0.PNG", "c_fish/z.png"};
  const std::vector<int> labels = {0, 0, 1, 1, 1, 2};
  for (int i = 0; i < folder.size(); ++i) {
    CHECK(folder.path(i) == t.str() + "/" + expected[i]);
    CHECK(folder.label(i) == labels[i]);
  }
  CHECK(folder.num_classes() == 3);
  CHECK(folder.ignored_files() == 1);
  CHECK(folder.skipped_images() == 0);
  CHECK(folder.normalization().mean[0] == kImageNetNormalization.mean[0]);
}

TEST_CASE("image folder: PNG decodes exactly, JPEG closely, grey becomes RGB") {
  TempDir t("decode");
  write_mixed_folder(t);
  ImageU8 grey{4, 5, 1, {}};
  for (int i = 0; i < 20; ++i) grey.pixels.push_back(uint8_t(i * 12));
  write_png(t.file("d_grey/g.png"), grey);
  const ImageFolder folder(t.str());
  ImageF image;
  REQUIRE(folder.decode(3, image) == 3);  // b_cat/2.png
  const ImageU8 png = pattern_image(6, 4, 1);
  CHECK(image.channels == 3);
  CHECK(image.height == 4);
  CHECK(image.width == 6);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 6; ++x) CHECK(image.at(c, y, x) == png.at(y, x, c) * (1.0f / 255.0f));  // as ToTensor
  REQUIRE(folder.decode(0, image) == 0);  // a_dog/x.Jpeg: solid (10, 250, 128)
  CHECK(image.height == 8);
  CHECK(image.width == 24);
  const float solid[3] = {10, 250, 128};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 24; ++x) CHECK(std::abs(image.at(c, y, x) * 255.0f - solid[c]) <= 4.0f);
  REQUIRE(folder.decode(6, image) == 6);  // d_grey/g.png
  for (int c = 0; c < 3; ++c) CHECK(image.at(c, 1, 2) == float(7 * 12) * (1.0f / 255.0f));
}

TEST_CASE("image folder: missing, empty and class-less folders are clear errors") {
  TempDir t("errors");
  CHECK(message_contains([&] { ImageFolder(t.str() + "/nowhere"); }, t.str() + "/nowhere: no such folder"));
  CHECK(message_contains([&] { ImageFolder(t.str()); }, "no class folders"));
  write_text(t.file("plain_file"), "x");
  CHECK(message_contains([&] { ImageFolder(t.str() + "/plain_file"); }, "not a folder"));
  write_png(t.file("full/a.png"), pattern_image(3, 3, 0));
  fs::create_directories(t.path / "empty_class");
  write_text(t.file("empty_class/readme.txt"), "no images here");
  CHECK(message_contains([&] { ImageFolder(t.str()); }, t.str() + "/empty_class: the class folder holds no image"));
  fs::remove_all(t.path / "empty_class");
  fs::create_symlink(t.path / "missing_target.png", t.path / "full/dangling.png");
  CHECK(message_contains([&] { ImageFolder(t.str()); }, t.str() + "/full/dangling.png: the image file cannot be opened"));
  fs::remove(t.path / "full/dangling.png");
  CHECK(ImageFolder(t.str()).size() == 1);
  fs::create_directories(t.path / "train");
  CHECK(image_folder_split_dir(t.str(), Split::train) == (t.path / "train").string());
  CHECK(message_contains([&] { image_folder_split_dir(t.str(), Split::test); }, "has no val/ folder"));
  CHECK(parse_bad_image_policy("skip") == BadImagePolicy::skip);
  CHECK(parse_bad_image_policy("fail") == BadImagePolicy::fail);
  CHECK_THROWS_AS(parse_bad_image_policy("ignore"), UsageError);
}

TEST_CASE("image folder: a classes file selects classes, labelled in sorted order") {
  TempDir t("classes");
  write_mixed_folder(t);
  const std::string list = t.file("lists/two.txt");
  write_text(list, "# a subset\n  c_fish \n\nb_cat\r\n");
  ImageFolderOptions options;
  options.classes_file = list;
  const ImageFolder folder(t.str(), options);
  CHECK(folder.classes() == std::vector<std::string>{"b_cat", "c_fish"});
  REQUIRE(folder.size() == 4);
  CHECK(folder.label(0) == 0);
  CHECK(folder.label(3) == 1);
  CHECK(folder.path(3) == t.str() + "/c_fish/z.png");

  write_text(list, "b_cat\n\nzebra\n");
  CHECK(message_contains([&] { ImageFolder(t.str(), options); }, list + ":3: class zebra has no folder in " + t.str()));
  write_text(list, "b_cat\nc_fish\nb_cat\n");
  CHECK(message_contains([&] { read_classes_file(list); }, list + ":3: class b_cat is already listed on line 1"));
  write_text(list, "b_cat c_fish\n");
  CHECK(message_contains([&] { read_classes_file(list); }, list + ":1: expected one class folder name per line"));
  write_text(list, "# nothing\n");
  CHECK(message_contains([&] { read_classes_file(list); }, "names no class"));
  CHECK(message_contains([&] { read_classes_file(t.str() + "/none.txt"); }, t.str() + "/none.txt: cannot read"));
}

TEST_CASE("image folder: a subset file keeps the images it names by file name; names found nowhere are errors") {
  TempDir t("subset"), lists("subset-lists");
  write_mixed_folder(t);
  const std::string list = lists.file("subset.txt");
  // SimCLR's lists hold bare file names; a line with folders is matched by its file name too.
  write_text(list, "# kept images\n 1.JPG \nsub/0.PNG\n\nelsewhere/a_dog/y.png\r\nz.png\n");
  ImageFolderOptions options;
  options.subset_file = list;
  const ImageFolder folder(t.str(), options);
  const std::vector<std::string> expected = {"a_dog/y.png", "b_cat/1.JPG", "b_cat/sub/0.PNG", "c_fish/z.png"};
  REQUIRE(folder.size() == int(expected.size()));
  for (int i = 0; i < folder.size(); ++i) CHECK(folder.path(i) == t.str() + "/" + expected[size_t(i)]);
  CHECK(folder.label(0) == 0);
  CHECK(folder.label(3) == 2);

  write_text(list, "1.JPG\ny.png\nz.png\nmissing.png\n");
  CHECK(message_contains([&] { ImageFolder(t.str(), options); },
                         list + ": image missing.png is in no class folder of " + t.str()));
  write_text(list, "1.JPG\ny.png\n");
  CHECK(message_contains([&] { ImageFolder(t.str(), options); }, list + ": names no image of class c_fish"));
  write_text(list, "# none\n\n");
  CHECK(message_contains([&] { ImageFolder(t.str(), options); }, list + ": the subset file names no image"));
}

TEST_CASE("image folder: the shipped ImageNet-100 list names 100 distinct synsets") {
  const auto classes = read_classes_file(std::string(INTL_SOURCE_DIR) + "/experiments/imagenet100_classes.txt");
  REQUIRE(classes.size() == 100);
  std::set<std::string> names;
  for (const ClassLine& c : classes) {
    names.insert(c.name);
    CHECK(c.name.size() == 9);
    CHECK(c.name[0] == 'n');
    CHECK(std::all_of(c.name.begin() + 1, c.name.end(), [](char ch) { return ch >= '0' && ch <= '9'; }));
  }
  CHECK(names.size() == 100);
  CHECK(classes.front().name == "n02869837");  // CMC's order
  CHECK(classes.back().name == "n02090622");
}

TEST_CASE("image folder: a corrupt image fails, or is skipped, counted once and replaced by the next of its class") {
  TempDir t("corrupt");
  write_png(t.file("a/0.png"), pattern_image(4, 4, 0));
  write_text(t.file("a/1.jpg"), "this is not a JPEG");
  write_png(t.file("b/2.png"), pattern_image(4, 4, 2));
  write_jpeg(t.file("b/3.jpg"), pattern_image(40, 40, 3), 90);
  std::filesystem::resize_file(t.file("b/3.jpg"), 100);  // cut inside its tables
  ImageFolderOptions fail;
  fail.on_bad_image = BadImagePolicy::fail;
  const ImageFolder strict(t.str(), fail);  // the scan does not decode
  REQUIRE(strict.size() == 4);
  ImageF image;
  CHECK(message_contains([&] { strict.decode(1, image); },
                         t.str() + "/a/1.jpg: cannot decode the image (not an image format stb_image reads"));
  CHECK(message_contains([&] { strict.decode(3, image); },
                         t.str() + "/b/3.jpg: cannot decode the image (a corrupt or truncated JPEG (stb_image: "));
  CHECK(message_contains([&] { strict.decode(3, image); }, "or pass --on-bad-image skip"));

  ImageFolderOptions skip;
  skip.warn_on_skip = false;
  const ImageFolder lenient(t.str(), skip);
  CHECK(lenient.decode(0, image) == 0);
  CHECK(lenient.skipped_images() == 0);
  CHECK(lenient.decode(1, image) == 0);  // the next image of class a, wrapping: never another class's
  CHECK(lenient.decode(1, image) == 0);
  CHECK(lenient.decode(3, image) == 2);
  CHECK(lenient.skipped_images() == 2);  // each counted once
  CHECK(lenient.skipped_paths() == std::vector<std::string>{t.str() + "/a/1.jpg", t.str() + "/b/3.jpg"});

  // Through the loader: labels follow the replacement; any number of workers gives the same batches.
  LoaderConfig config = imagenet_eval_loader_config(3, 0);
  config.center_crop = CenterCropConfig{8, 4, Resample::bilinear_antialias};
  Loader serial(lenient, config);
  serial.start_epoch(0);
  const Batch* b = serial.next();
  REQUIRE(b != nullptr);
  CHECK(b->n == 3);
  CHECK(std::vector<int32_t>(b->indices, b->indices + 3) == std::vector<int32_t>{0, 0, 2});
  CHECK(std::vector<int32_t>(b->labels, b->labels + 3) == std::vector<int32_t>{0, 0, 1});
  const std::vector<float> serial_view(b->view1, b->view1 + 3 * 3 * 4 * 4);
  config.workers = 2;
  config.chunk = 1;
  Loader threaded(lenient, config);
  threaded.start_epoch(0);
  b = threaded.next();
  CHECK(std::vector<float>(b->view1, b->view1 + 3 * 3 * 4 * 4) == serial_view);

  config.workers = 0;  // in order: a worker prefetching the next batch would meet b/3.jpg first
  Loader failing(strict, config);
  failing.start_epoch(0);
  CHECK(message_contains([&] { failing.next(); }, t.str() + "/a/1.jpg"));

  // A class none of whose images decode is an error naming its folder, not a class silently gone.
  write_text(t.file("a/0.png"), "broken");
  const ImageFolder hopeless(t.str(), skip);
  CHECK(hopeless.decode(2, image) == 2);
  CHECK(message_contains([&] { hopeless.decode(0, image); },
                         t.str() + "/a: none of the class's 2 images can be decoded"));
}

TEST_CASE("image folder: two training views of a folder are seeded and in range") {
  TempDir t("views");
  for (int i = 0; i < 4; ++i) write_jpeg(t.file("k" + std::to_string(i % 2) + "/" + std::to_string(i) + ".jpg"),
                                         pattern_image(60, 45, i), 90);
  const ImageFolder folder(t.str());
  LoaderConfig config = imagenet_train_loader_config(2, 7, 0);
  for (AugmentConfig* v : {&config.views.view1, &config.views.view2}) v->out_size = 32;  // small and fast
  Loader loader(folder, config);
  CHECK(loader.steps_per_epoch() == 2);
  loader.start_epoch(0);
  const Batch* b = loader.next();
  REQUIRE(b != nullptr);
  CHECK(b->views.size() == 2);
  CHECK(b->height == 32);
  const std::vector<float> first(b->view1, b->view1 + 2 * 3 * 32 * 32);
  for (int k = 0; k < 2; ++k) CHECK(b->labels[k] == folder.label(b->indices[k]));
  CHECK(std::vector<float>(b->view2, b->view2 + 2 * 3 * 32 * 32) != first);
  loader.start_epoch(0);  // an epoch is a function of (seed, epoch)
  b = loader.next();
  CHECK(std::vector<float>(b->view1, b->view1 + 2 * 3 * 32 * 32) == first);
}
