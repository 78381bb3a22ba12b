// ResNet golden tests: parity with PyTorch/torchvision on a narrow ResNet-18 (tests/fixtures, written by
// make_resnet_fixture.py), output shapes, parameter counts and names of the full-size networks, seeding and
// initialisation, a loss that falls in a few SGD steps, the projector, and a fixed-seed value.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "tests/layout.h"
#include "engine/optim/optimizer.h"
#include "models/projector.h"
#include "models/resnet.h"
#include "models/safetensors.h"

using namespace intl;

namespace {

std::string fixture(const std::string& name) { return std::string(INTL_SOURCE_DIR) + "/tests/fixtures/" + name; }

// max |a - b| / max(1, max |b|): float32 error relative to the reference's scale.
double scaled_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double diff = 0, scale = 1;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return diff / scale;
}


std::map<std::string, Tensor> by_name(const NamedTensorList& list) {
  std::map<std::string, Tensor> m;
  for (const auto& [name, t] : list) m[name] = t;
  return m;
}

// A network of `dtype` holding the fixture's state (loaded strictly into float32, then converted).
std::unique_ptr<ResNet> load_fixture_network(const std::string& file, ResNetConfig config, DType dtype) {
  config.dtype = DType::f32;
  auto net = std::make_unique<ResNet>(config);
  load_safetensors(*net, file);  // strict: every torchvision name, nothing else
  if (dtype == DType::f32) return net;
  config.dtype = dtype;
  auto converted = std::make_unique<ResNet>(config);
  auto src = by_name(net->named_parameters()), src_buffers = by_name(net->named_buffers());
  for (auto& [name, t] : converted->named_parameters()) t.copy_(src.at(name));
  for (auto& [name, t] : converted->named_buffers()) t.copy_(src_buffers.at(name));
  return converted;
}

}  // namespace

// The references are PyTorch's float64 results rounded to float32. Our float64 run differs from them by that
// rounding only (bound 1e-6 of the scale). In float32, the ImageNet stem on a 32x32 input leaves 1x1 maps at
// layer4, so its training-mode BN normalises 4 values per channel and amplifies rounding: PyTorch's own float32
// run differs from its float64 one by up to 1e-4 of the scale there, hence the float32 bound 1e-3.
TEST_CASE("narrow ResNet-18 matches torchvision in train and eval mode") {
  for (const char* stem : {"imagenet", "cifar"})
    for (const DType dtype : {DType::f64, DType::f32}) {
      const double tolerance = dtype == DType::f64 ? 1e-6 : 1e-3;
      const std::string what = std::string(stem) + " " + dtype_name(dtype);
      CAPTURE(what);
      ResNetConfig config;
      config.stem = resnet_stem(stem);
      config.base_width = 4;
      const std::string base = fixture(std::string("resnet18_w4_") + stem);
      auto net = load_fixture_network(base + ".safetensors", config, dtype);
      auto io = by_name(read_safetensors(base + "_io.safetensors").tensors);
      auto params = by_name(net->named_parameters());
      auto buffers = by_name(net->named_buffers());
      const Tensor w = io.at("out_weights").to(dtype);
      double worst = 0;
      auto compare = [&](const Tensor& ours, const Tensor& ref) {
        const double e = scaled_error(ours, ref);
        worst = std::max(worst, e);
        CHECK(e < tolerance);
      };
      for (const bool training : {true, false}) {
        const std::string mode = training ? "train" : "eval";
        CAPTURE(mode);
        net->train(training);
        net->zero_grad();
        Tensor x = test::nchw_to_nhwc(io.at("input").to(dtype)).detach();  // a fresh leaf: its gradient starts empty
        x.requires_grad_(true);
        Tensor y = net->forward(x);
        CHECK(y.shape() == Shape{4, 32});
        sum(mul(y, w)).backward();
        compare(y, io.at(mode + ".output"));
        compare(x.grad(), test::nchw_to_nhwc(io.at(mode + ".input_grad")));
        if (!training) continue;
        int grads = 0, states = 0;
        for (const auto& [key, ref] : io) {
          if (key.rfind("train.grad.", 0) == 0) {
            const std::string name = key.substr(11);
            CAPTURE(name);
            compare(params.at(name).grad(), ref);
            ++grads;
          } else if (key.rfind("train.state.", 0) == 0) {
            const std::string name = key.substr(12);
            CAPTURE(name);
            compare(buffers.at(name), ref);
            ++states;
          }
        }
        CHECK(grads == 8);
        CHECK(states == 2 * 20);  // 20 batch norms: stem, 16 in blocks, 3 projections
      }
      MESSAGE(what << ": worst scaled error " << worst);
    }
}

TEST_CASE("ResNet parameter counts without fc match torchvision") {
  ResNetConfig c;
  c.depth = 18;
  CHECK(ResNet(c).parameter_count() == 11176512);
  c.stem = ResNetStem::cifar;
  CHECK(ResNet(c).parameter_count() == 11168832);
  c.depth = 50;
  c.stem = ResNetStem::imagenet;
  ResNet r50(c);
  CHECK(r50.parameter_count() == 23508032);
  CHECK(r50.feature_dim() == 2048);
}

// torchvision's blocks per stage, read off the parameter names of narrow networks (at full width torchvision's
// counts without fc are 21284672, 42500160 and 58143808; building those takes seconds).
TEST_CASE("ResNet-34, -101 and -152 have torchvision's blocks per stage") {
  const std::map<int, std::vector<int>> blocks = {{34, {3, 4, 6, 3}}, {101, {3, 4, 23, 3}}, {152, {3, 8, 36, 3}}};
  for (const auto& [depth, per_stage] : blocks) {
    CAPTURE(depth);
    ResNetConfig c;
    c.depth = depth;
    c.base_width = 2;
    const auto p = by_name(ResNet(c).named_parameters());
    const std::string last_conv = depth == 34 ? ".conv2.weight" : ".conv3.weight";
    for (int stage = 0; stage < 4; ++stage) {
      const std::string layer = "layer" + std::to_string(stage + 1) + ".";
      CHECK(p.count(layer + std::to_string(per_stage[size_t(stage)] - 1) + last_conv) == 1);
      CHECK(p.count(layer + std::to_string(per_stage[size_t(stage)]) + ".conv1.weight") == 0);
    }
  }
}

TEST_CASE("ResNet names follow torchvision") {
  ResNetConfig c;
  c.depth = 50;
  c.base_width = 8;
  ResNet net(c);
  const auto params = net.named_parameters();
  const auto buffers = net.named_buffers();
  CHECK(params.front().first == "conv1.weight");
  CHECK(params[1].first == "bn1.weight");
  CHECK(buffers.front().first == "bn1.running_mean");
  CHECK(buffers[2].first == "bn1.num_batches_tracked");
  CHECK(buffers[2].second.dtype() == DType::i64);
  auto p = by_name(params);
  CHECK(p.at("layer1.0.conv3.weight").shape() == Shape{32, 8, 1, 1});
  CHECK(p.at("layer2.0.conv2.weight").shape() == Shape{16, 16, 3, 3});
  CHECK(p.at("layer2.0.downsample.0.weight").shape() == Shape{64, 32, 1, 1});
  CHECK(p.count("layer2.0.downsample.1.bias") == 1);
  CHECK(p.count("layer4.2.bn3.weight") == 1);
  CHECK(p.count("layer2.1.downsample.0.weight") == 0);
  CHECK(p.count("fc.weight") == 0);
}

TEST_CASE("ResNet output shapes for both stems and depths") {
  NoGradGuard no_grad;
  Tensor x = Tensor::randn({2, 64, 64, 3}, 1, 1);
  ResNetConfig c;
  c.base_width = 16;
  for (int depth : {18, 50})
    for (ResNetStem stem : {ResNetStem::imagenet, ResNetStem::cifar}) {
      c.depth = depth;
      c.stem = stem;
      ResNet net(c);
      const int64_t features = depth == 18 ? 8 * 16 : 32 * 16;
      CHECK(net.feature_dim() == features);
      CHECK(net.forward(x).shape() == Shape{2, features});
    }
  ResNetConfig full;
  ResNet r18(full);
  r18.eval();
  CHECK(r18.forward(Tensor::randn({1, 32, 32, 3}, 1, 2)).shape() == Shape{1, 512});
}

TEST_CASE("ResNet initialisation: Kaiming normal fan_out, seeded, zero-init residual") {
  ResNetConfig c;
  c.seed = 5;
  c.base_width = 16;
  ResNet a(c), b(c);
  c.seed = 6;
  ResNet other(c);
  auto pa = by_name(a.named_parameters()), pb = by_name(b.named_parameters()), po = by_name(other.named_parameters());
  CHECK(pa.at("layer3.1.conv1.weight").to_vector() == pb.at("layer3.1.conv1.weight").to_vector());
  CHECK(pa.at("layer3.1.conv1.weight").to_vector() != po.at("layer3.1.conv1.weight").to_vector());
  CHECK(pa.at("layer3.1.conv1.weight").to_vector() != pa.at("layer3.1.conv2.weight").to_vector());
  const std::vector<double> v = pa.at("layer4.0.conv2.weight").to_vector();  // (128, 128, 3, 3)
  double s = 0, s2 = 0;
  for (double e : v) s += e, s2 += e * e;
  const double m = s / double(v.size()), sd = std::sqrt(s2 / double(v.size()) - m * m);
  CHECK(std::abs(m) < 1e-3);
  CHECK(sd == doctest::Approx(std::sqrt(2.0 / (128 * 9))).epsilon(0.01));
  CHECK(pa.at("layer1.0.bn2.weight").to_vector() == std::vector<double>(16, 1.0));
  CHECK(pa.at("layer1.0.bn2.bias").to_vector() == std::vector<double>(16, 0.0));

  ResNetConfig z;
  z.zero_init_residual = true;
  z.base_width = 8;
  auto p18 = by_name(ResNet(z).named_parameters());
  CHECK(p18.at("layer2.1.bn2.weight").to_vector() == std::vector<double>(16, 0.0));
  CHECK(p18.at("layer2.1.bn1.weight").to_vector() == std::vector<double>(16, 1.0));
  CHECK(p18.at("layer2.0.downsample.1.weight").to_vector() == std::vector<double>(16, 1.0));
  z.depth = 50;
  auto p50 = by_name(ResNet(z).named_parameters());
  CHECK(p50.at("layer1.0.bn3.weight").to_vector() == std::vector<double>(32, 0.0));
  CHECK(p50.at("layer1.0.bn2.weight").to_vector() == std::vector<double>(8, 1.0));
}

TEST_CASE("ResNet configuration errors name the accepted values") {
  CHECK(resnet_depth("resnet50") == 50);
  CHECK_THROWS_WITH_AS(resnet_depth("resnet19"), doctest::Contains("resnet18, resnet34, resnet50"), UsageError);
  CHECK_THROWS_WITH_AS(resnet_stem("tiny"), doctest::Contains("imagenet, cifar"), UsageError);
  ResNetConfig c;
  c.depth = 20;
  CHECK_THROWS_AS(ResNet{c}, UsageError);
  c.depth = 18;
  c.base_width = 0;
  CHECK_THROWS_WITH_AS(ResNet{c}, doctest::Contains("base_width must be >= 1"), Error);
}

TEST_CASE("a narrow ResNet-18 fits a fixed tiny batch in a few SGD steps") {
  ResNetConfig c;
  c.stem = ResNetStem::cifar;
  c.base_width = 4;
  c.seed = 3;
  ResNet net(c);
  Linear head(net.feature_dim(), 4, true, 3, 7);
  const Tensor x = Tensor::randn({8, 16, 16, 3}, 11, 1);
  const Tensor labels = Tensor::from_vector({0, 1, 2, 3, 0, 1, 2, 3}, {8}, DType::i64);
  std::vector<NamedTensor> params;
  for (auto& [name, t] : net.named_parameters()) params.push_back({name, t});
  for (auto& [name, t] : head.named_parameters()) params.push_back({"fc." + name, t});
  Sgd sgd(params, SgdOptions{0.9, 0.0, false, true});
  std::vector<double> losses;
  for (int step = 0; step < 12; ++step) {
    sgd.zero_grad();
    Tensor loss = softmax_cross_entropy(head.forward(net.forward(x)), labels);
    losses.push_back(loss.item());
    loss.backward();
    sgd.step(0.05);
  }
  INFO("first loss " << losses.front() << ", last " << losses.back());
  CHECK(losses.back() < 0.5 * losses.front());
}

TEST_CASE("projector: (Linear without bias, BN, ReLU) x 2, then Linear with bias") {
  auto proj = make_projector(512, {2048, 2048, 2048}, 1);
  auto p = by_name(proj->named_parameters());
  CHECK(p.at("0.weight").shape() == Shape{2048, 512});
  CHECK(p.count("0.bias") == 0);
  CHECK(p.at("1.weight").shape() == Shape{2048});
  CHECK(p.at("3.weight").shape() == Shape{2048, 2048});
  CHECK(p.count("3.bias") == 0);
  CHECK(p.at("6.weight").shape() == Shape{2048, 2048});
  CHECK(p.at("6.bias").shape() == Shape{2048});
  CHECK(proj->parameter_count() == 512 * 2048 + 2 * 2048 + 2048 * 2048 + 2 * 2048 + 2048 * 2048 + 2048);
  CHECK(by_name(proj->named_buffers()).count("4.running_var") == 1);
  // torch.nn.BatchNorm1d's initial statistics: mean 0, variance 1, so a fresh projector in eval mode divides by
  // sqrt(1 + eps) only.
  for (const auto& [name, t] : proj->named_buffers()) {
    INFO(name);
    const std::vector<double> v = t.to_vector();
    const double want = name.find("running_var") != std::string::npos ? 1.0 : 0.0;
    for (double x : v) CHECK(x == want);
  }
  auto small = make_projector(6, {5, 3}, 2);
  CHECK(small->forward(Tensor::randn({4, 6}, 1, 1)).shape() == Shape{4, 3});
  CHECK_THROWS_AS(make_projector(6, {}, 2), Error);
  CHECK_THROWS_WITH_AS(make_projector(6, {5, 0}, 2), doctest::Contains("widths must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(make_projector(0, {5}, 2), doctest::Contains("input width must be >= 1"), Error);
}

// Seeding is part of the contract (runs must be reproducible across versions): a fixed seed and input give
// this output. If an intended change of the initialisation moves it, update the value in the same commit.
TEST_CASE("a fixed seed gives a fixed network") {
  ResNetConfig c;
  c.stem = ResNetStem::cifar;
  c.base_width = 4;
  c.seed = 42;
  c.dtype = DType::f64;
  ResNet net(c);
  net.eval();
  NoGradGuard no_grad;
  // The input drawn in NCHW order and transposed, so the value does not depend on the activation layout.
  const Tensor y = net.forward(test::nchw_to_nhwc(Tensor::randn({2, 3, 16, 16}, 42, 1, DType::f64)));
  const Tensor w = Tensor::randn(y.shape(), 42, 2, DType::f64);
  const double value = sum(mul(y, w)).item();
  INFO("fixed-seed value " << std::setprecision(17) << value);
  CHECK(value == doctest::Approx(3.5603922458229138).epsilon(1e-9));
}
