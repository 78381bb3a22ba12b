// `intl eval` on tiny synthetic CIFAR data and a width-4 ResNet-18 written by the test: out-of-range options are
// refused when parsed; a checkpoint holding NaN or inf, a diverging linear classifier, a folder given as the
// checkpoint and --arch / --stem / --base-width that contradict a self-describing file are errors that write no
// result; --out is checked before the evaluation, and a RESULT.json already there is kept unless --overwrite.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/cifar.h"
#include "models/resnet.h"
#include "models/safetensors.h"
#include "results/result.h"
#include "train/evaluation.h"
#include "train/ssl_model.h"
#include "tests/intl_process.h"
#include "tests/temp_dir.h"

using namespace intl;
namespace fs = std::filesystem;

namespace {

// 40 training and 20 test images, and backbone.safetensors of a width-4 ResNet-18 as `intl pretrain` writes it
// (its network described under "intl_model"); `poison` names a tensor to fill with NaN.
struct Fixture {
  TempDir dir{"eval-cli"};
  std::string data = dir / "data";
  std::string backbone = dir / "backbone.safetensors";
  explicit Fixture(const std::string& poison = "") {
    make_synthetic_cifar(data, CifarKind::cifar10, 40, 20, 1);
    train::SslModelConfig config;
    config.base_width = 4;
    auto net = make_resnet(train::backbone_config(config));
    NamedTensorList tensors = net->named_parameters();
    for (auto& nt : net->named_buffers()) tensors.push_back(nt);
    for (auto& [name, t] : tensors)
      if (name == poison) t = Tensor::full(t.shape(), std::nan(""));
    write_safetensors(backbone, tensors,
                      {{train::backbone_metadata_key, train::ssl_model_config_to_json(config).dump()}});
  }
  // `intl eval MODE` on this data, on the CPU, with 8 x 8 images and 3 classifier epochs.
  std::vector<std::string> args(const std::string& mode, const std::string& out,
                                const std::vector<std::string>& more = {}) const {
    std::vector<std::string> a{"eval", mode, "--checkpoint", backbone, "--data-dir", data, "--dataset", "cifar10",
                               "--image-size", "8", "--device", "cpu", "--out", out};
    if (mode == "linear") a.insert(a.end(), {"--epochs", "3"});
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  // Runs intl: its exit code; its output in `log`.
  int run(const std::vector<std::string>& a, std::string& log) const {
    const std::string path = dir / "log";
    const int code = run_intl(a, path);
    log = read_text(path);
    return code;
  }
};

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("eval: out-of-range options are refused when parsed, naming the option and the value") {
  Fixture f;
  const std::string out = f.dir / "out";
  struct Case {
    std::string mode, option, value, message;
  };
  const std::vector<Case> cases{
      {"linear", "--lr", "0", "--lr: must be a finite number > 0, found '0'"},
      {"linear", "--lr", "-0.1", "--lr: must be a finite number > 0, found '-0.1'"},
      {"linear", "--lr", "inf", "--lr: must be a finite number > 0, found 'inf'"},
      {"linear", "--lr", "0.1x", "--lr: must be a finite number > 0, found '0.1x'"},
      {"linear", "--final-lr", "0", "--final-lr: must be a finite number > 0, found '0'"},
      {"linear", "--final-lr", "nan", "--final-lr: must be a finite number > 0, found 'nan'"},
      {"linear", "--weight-decay", "-1", "--weight-decay: must be a finite number >= 0, found '-1'"},
      {"linear", "--test-images", "-3", "--test-images: must be a finite number >= 0, found '-3'"},
      {"knn", "--train-images", "-1", "--train-images: must be a finite number >= 0, found '-1'"},
      {"knn", "--image-size", "0", "--image-size: must be a finite number > 0, found '0'"},
      {"knn", "--k", "0", "--k: must be a finite number > 0, found '0'"},
  };
  for (const Case& c : cases) {
    std::string log;
    CHECK_MESSAGE(f.run(f.args(c.mode, out, {c.option, c.value}), log) == 2, log);
    CHECK_MESSAGE(has(log, c.message), log);
  }
  {  // the same check on a value from --config
    const std::string config = f.dir / "config.json";
    std::ofstream(config) << R"({"lr": 0})";
    std::string log;
    CHECK(f.run(f.args("linear", out, {"--config", config}), log) == 2);
    CHECK_MESSAGE(has(log, "'lr': must be a finite number > 0, found '0'"), log);
  }
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("eval: a checkpoint holding NaN is refused, naming the file and the tensor") {
  Fixture f("layer1.0.conv1.weight");
  for (const std::string mode : {"knn", "linear"}) {
    const std::string out = f.dir / mode;
    std::string log;
    CHECK_MESSAGE(f.run(f.args(mode, out), log) == 1, log);
    CHECK_MESSAGE(has(log, "'" + f.backbone + "': backbone tensor 'layer1.0.conv1.weight' holds non-finite values "
                           "(NaN or inf); the run that wrote it diverged"),
                  log);
    CHECK_FALSE(fs::exists(out));
  }
}

TEST_CASE("eval linear: a diverging classifier is an error, not a result") {
  Fixture f;
  const std::string out = f.dir / "out";
  std::string log;
  CHECK_MESSAGE(f.run(f.args("linear", out, {"--lr", "1e38"}), log) == 1, log);
  CHECK_MESSAGE(has(log, "linear classifier diverged at epoch 1 of 3 ("), log);
  CHECK_MESSAGE(has(log, "learning rate 1e+38); lower --lr"), log);
  CHECK_FALSE(fs::exists(fs::path(out) / "RESULT.json"));
  // The same data and backbone at the default rate give a result.
  CHECK_MESSAGE(f.run(f.args("linear", out), log) == 0, log);
  const results::Result r = results::load_result(out + "/RESULT.json");
  CHECK(std::isfinite(r.runs.at(0).metrics.at("linear_top1")));
}

TEST_CASE("eval --out: a RESULT.json there is kept unless --overwrite; a file is refused before any work") {
  Fixture f;
  const std::string out = f.dir / "run";
  results::Result other;
  other.header = results::make_header("pretrain cifar10", "pretrain");
  other.runs.emplace_back();
  other.runs.back().name = "intl";
  results::save_result(other, out + "/RESULT.json");
  const std::string before = read_text(out + "/RESULT.json");
  std::string log;
  CHECK(f.run(f.args("knn", out), log) == 2);
  CHECK_MESSAGE(has(log, "--out: '" + out + "' already holds a RESULT.json (from 'pretrain cifar10'); pass "
                         "--overwrite to replace it, or choose another --out"),
                log);
  CHECK(read_text(out + "/RESULT.json") == before);
  CHECK_MESSAGE(f.run(f.args("knn", out, {"--overwrite"}), log) == 0, log);
  CHECK(results::load_result(out + "/RESULT.json").header.command == "eval knn");

  // A file as --out (or on its path) is named before the checkpoint is read: this one is a folder.
  const std::string file = f.dir / "afile";
  std::ofstream(file) << "notes";
  for (const std::string& bad : {file, file + "/sub"}) {
    std::vector<std::string> a = f.args("knn", bad);
    a[3] = f.dir.str();  // --checkpoint
    CHECK(f.run(a, log) == 2);
    CHECK_MESSAGE(has(log, "--out: '" + file + "' is a file, not a folder; give a folder for --out"), log);
  }
  CHECK(read_text(file) == "notes");
}

TEST_CASE("eval --checkpoint FOLDER says it is a folder") {
  Fixture f;
  const std::string out = f.dir / "out";
  std::string log;
  std::vector<std::string> a = f.args("knn", out);
  a[3] = f.dir.str();
  CHECK(f.run(a, log) == 1);
  CHECK_MESSAGE(has(log, "'" + f.dir.str() + "' is a folder, not a checkpoint file; give the .safetensors file (e.g. "
                         "RUN/backbone.safetensors)"),
                log);
  CHECK_FALSE(has(log, "truncated"));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("eval: --arch, --stem, --base-width that contradict a self-describing checkpoint are refused") {
  Fixture f;
  const std::string out = f.dir / "out";
  std::string log;
  CHECK(f.run(f.args("knn", out, {"--arch", "resnet50", "--base-width", "64", "--stem", "cifar"}), log) == 2);
  CHECK_MESSAGE(has(log, "'" + f.backbone + "' describes its own network, and the command line contradicts it: "
                         "--arch resnet50 (the file: resnet18), --base-width 64 (the file: 4); --arch, --stem and "
                         "--base-width are for plain weight files: drop them"),
                log);
  CHECK_FALSE(fs::exists(out));
  // Values that agree with the file are accepted.
  CHECK_MESSAGE(f.run(f.args("knn", out, {"--arch", "resnet18", "--base-width", "4"}), log) == 0, log);
  CHECK(fs::exists(out + "/RESULT.json"));
}

// Every option reaches the evaluation: `intl eval linear` and `eval knn` give what evaluate_backbone gives with
// the same options, the linear classifier's final training loss to the bit.
TEST_CASE("eval (CIFAR protocols): the command's options are the evaluation's, checked against evaluate_backbone") {
  Fixture f;
  std::string log;
  REQUIRE_MESSAGE(f.run(f.args("linear", f.dir / "lin", {"--batch-size", "10", "--lr", "0.05",
                                                           "--final-lr", "0.001", "--weight-decay", "0.01", "--seed",
                                                           "3"}),
                        log) == 0,
                  log);
  REQUIRE_MESSAGE(
      f.run(f.args("knn", f.dir / "knn", {"--k", "10", "--weighted", "--distance", "cosine", "--temperature", "0.01"}),
            log) == 0,
      log);
  const auto linear = results::load_result(f.dir / "lin/RESULT.json").runs.at(0).metrics;
  const auto knn = results::load_result(f.dir / "knn/RESULT.json").runs.at(0).metrics;

  train::LoadedBackbone loaded = train::load_backbone(f.backbone, train::SslModelConfig{});
  const CifarDataset train_set = load_cifar(f.data, CifarKind::cifar10, Split::train);
  const CifarDataset test_set = load_cifar(f.data, CifarKind::cifar10, Split::test);
  train::EvalOptions e;
  e.knn = false;
  e.linear_options.epochs = 3;  // the fixture's
  e.linear_options.batch_size = 10;
  e.linear_options.lr_start = 0.05;
  e.linear_options.lr_end = 0.001;
  e.linear_options.weight_decay = 0.01;
  e.linear_options.seed = 3;
  e.features = train::FeatureOptions{256, 0, 8, Device::cpu, std::nullopt};
  const auto by_hand = train::evaluate_backbone(*loaded.backbone, train_set, test_set, e);
  for (const std::string name : {"linear_final_loss", "linear_top1", "linear_top5"}) {
    INFO(name);
    REQUIRE(linear.count(name) == 1);
    CHECK(linear.at(name) == by_hand.at(name));
  }
  // Another classifier setting trains to another loss: the figure tells the options apart.
  e.linear_options.seed = 4;
  CHECK(train::evaluate_backbone(*loaded.backbone, train_set, test_set, e).at("linear_final_loss") !=
        linear.at("linear_final_loss"));

  e.knn = true;
  e.linear = false;
  e.knn_options.k = 10;
  e.knn_options.weighted = true;
  e.knn_options.distance = train::KnnDistance::cosine;
  e.knn_options.temperature = 0.01;
  const auto knn_by_hand = train::evaluate_backbone(*loaded.backbone, train_set, test_set, e);
  REQUIRE(knn.count("wknn10_top1") == 1);
  CHECK(knn.at("wknn10_top1") == knn_by_hand.at("wknn10_top1"));
  // On this fixture the default temperature, 0.1, gives another accuracy (45 against 65): --temperature counted.
  e.knn_options.temperature = 0.1;
  CHECK(train::evaluate_backbone(*loaded.backbone, train_set, test_set, e).at("wknn10_top1") != knn.at("wknn10_top1"));
}
