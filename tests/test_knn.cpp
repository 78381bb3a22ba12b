// kNN and linear evaluation on features whose answers are known by hand: the majority vote with its tie rule
// (the smallest label wins) and neighbour order (equal distances: the lower training index first), the
// weighted cosine vote, metric names, the top-k tie rule, a linear classifier that must separate separable
// clusters, and feature extraction (evaluation mode, the evaluation view's resize).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/random.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "models/layers.h"
#include "models/resnet.h"
#include "train/features.h"
#include "train/knn.h"
#include "train/linear_eval.h"
#include "train/supervised.h"

using namespace intl;
using namespace intl::train;

namespace {

Tensor rows(const std::vector<std::vector<double>>& values) {
  std::vector<double> flat;
  for (const auto& r : values) flat.insert(flat.end(), r.begin(), r.end());
  return Tensor::from_vector(flat, {int64_t(values.size()), int64_t(values[0].size())});
}

// n images of 8 x 8 pixels, each its own pattern.
class PatternSource : public ImageSource {
 public:
  explicit PatternSource(int n) : n_(n) {}
  int size() const override { return n_; }
  int num_classes() const override { return 2; }
  int32_t label(int index) const override { return index % 2; }
  Normalization normalization() const override { return kCifar10Normalization; }
  int decode(int index, ImageF& image) const override {
    image.reshape(3, 8, 8);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) image.at(c, y, x) = float((x * (index + 1) + y * (c + 2) + 3 * index) % 11) / 10;
    return index;
  }

 private:
  int n_;
};

int32_t predict_one(const Tensor& train, const std::vector<int32_t>& labels, const std::vector<double>& query,
                    int classes, KnnOptions options) {
  return knn_predict(train, labels, rows({query}), classes, options)[0];
}

}  // namespace

TEST_CASE("5-NN majority vote: Euclidean order, ties to the smallest label") {
  // Squared distances from the origin: 0, 1, 4, 9, 16, 25.
  const Tensor train = rows({{0, 0}, {1, 0}, {0, 2}, {3, 0}, {0, 4}, {5, 0}});
  const std::vector<int32_t> labels{2, 1, 1, 0, 0, 0};
  KnnOptions o;
  o.k = 1;
  CHECK(predict_one(train, labels, {0, 0}, 3, o) == 2);
  o.k = 3;  // votes 2, 1, 1
  CHECK(predict_one(train, labels, {0, 0}, 3, o) == 1);
  o.k = 4;  // 2, 1, 1, 0
  CHECK(predict_one(train, labels, {0, 0}, 3, o) == 1);
  o.k = 5;  // 2, 1, 1, 0, 0: labels 0 and 1 tie with two votes, 0 wins
  CHECK(predict_one(train, labels, {0, 0}, 3, o) == 0);
  o.k = 6;  // 0 has three votes
  CHECK(predict_one(train, labels, {0, 0}, 3, o) == 0);
  // Far along +x: nearest are (5,0), (3,0), (1,0) -> 0, 0, 1.
  o.k = 3;
  CHECK(predict_one(train, labels, {10, 0}, 3, o) == 0);
}

TEST_CASE("kNN: neighbours at equal distance are taken in training order") {
  const Tensor train = rows({{1, 0}, {0, 1}, {-1, 0}});
  KnnOptions o;
  o.k = 1;
  CHECK(predict_one(train, {3, 4, 5}, {0, 0}, 6, o) == 3);
  CHECK(predict_one(train, {4, 3, 5}, {0, 0}, 6, o) == 4);
  o.k = 2;  // indices 0 and 1, one vote each: the smaller label
  CHECK(predict_one(train, {4, 3, 5}, {0, 0}, 6, o) == 3);
}

TEST_CASE("weighted cosine kNN: votes exp(cos / T) can overrule the majority") {
  // Unit directions: (1, 0) label 0; (0, 1) and (1, 1)/sqrt2 label 1. Query (1, 0.2):
  // cos = 0.98058, 0.19612, 0.83205; weights e^9.8058 = 18138 for 0, e^1.9612 + e^8.3205 = 4116 for 1.
  const Tensor train = rows({{2, 0}, {0, 3}, {1, 1}});
  const std::vector<int32_t> labels{0, 1, 1};
  KnnOptions o;
  o.k = 3;
  o.distance = KnnDistance::cosine;
  CHECK(predict_one(train, labels, {1, 0.2}, 2, o) == 1);  // majority
  o.weighted = true;
  o.temperature = 0.1;
  CHECK(predict_one(train, labels, {1, 0.2}, 2, o) == 0);
  o.temperature = 10.0;  // nearly equal weights: the majority again
  CHECK(predict_one(train, labels, {1, 0.2}, 2, o) == 1);
  // Cosine ignores length, Euclidean does not: (3, 3) is nearest to (2, 0) but points along (1, 1).
  o = KnnOptions{};
  o.k = 1;
  CHECK(predict_one(rows({{2, 0}, {0.1, 0.1}}), {0, 1}, {3, 3}, 2, o) == 0);
  o.distance = KnnDistance::cosine;
  CHECK(predict_one(rows({{2, 0}, {0.1, 0.1}}), {0, 1}, {3, 3}, 2, o) == 1);
}

TEST_CASE("weighted cosine kNN: the query's length does not change the vote") {
  // The training rows and (1, 0.2) of the test above: weights e^(cos / T). At T = 10 label 1 wins, 1.0198 + 1.0868
  // against e^0.0981 = 1.1031; at T = 0.1 label 0 wins. The query scaled by 100 or 0.01 must vote the same (scaled
  // dot products would give e^9.806 = 18138 to label 0 at T = 10, and nearly equal weights at T = 0.1).
  const Tensor train = rows({{2, 0}, {0, 3}, {1, 1}});
  const std::vector<int32_t> labels{0, 1, 1};
  KnnOptions o;
  o.k = 3;
  o.distance = KnnDistance::cosine;
  o.weighted = true;
  for (const double scale : {1.0, 100.0, 0.01}) {
    CAPTURE(scale);
    o.temperature = 10.0;
    CHECK(predict_one(train, labels, {scale, 0.2 * scale}, 2, o) == 1);
    o.temperature = 0.1;
    CHECK(predict_one(train, labels, {scale, 0.2 * scale}, 2, o) == 0);
  }
}

TEST_CASE("weighted kNN: distances far beyond the temperature still vote (no weight underflows or overflows)") {
  // Squared Euclidean distances from (1000, 0): 100 to label 2's point, 1e6 and 1005^2 to label 1's. exp(-d / T)
  // is 0 for every neighbour at T = 0.05 (e^-2000), which would hand every query to label 0.
  const Tensor train = rows({{0, 0}, {990, 0}, {-5, 0}});
  const std::vector<int32_t> labels{1, 2, 1};
  KnnOptions o;
  o.k = 3;
  o.weighted = true;
  o.temperature = 0.05;
  CHECK(predict_one(train, labels, {1000, 0}, 3, o) == 2);  // d = 100 against 1e6: the nearest decides
  o.temperature = 1e9;                                       // nearly equal weights: the majority
  CHECK(predict_one(train, labels, {1000, 0}, 3, o) == 1);
  // Cosine at T = 1e-4: exp(cos / T) would be inf for both labels' nearest (cos 0.9998 and 0.9968), a tie that
  // goes to label 0; the nearer, label 1's (1, 0), wins.
  o.distance = KnnDistance::cosine;
  o.temperature = 1e-4;
  CHECK(predict_one(rows({{1, 0.1}, {1, 0}, {0, 1}}), {0, 1, 0}, {1, 0.02}, 2, o) == 1);
}

TEST_CASE("kNN accuracy, metric names and errors") {
  const Tensor train = rows({{0, 0}, {10, 10}});
  const Tensor test = rows({{1, 1}, {9, 9}, {1, 0}, {10, 9}});
  KnnOptions o;
  o.k = 1;
  CHECK(knn_accuracy(train, {0, 1}, test, {0, 1, 1, 1}, 2, o) == doctest::Approx(75.0));
  CHECK(knn_metric_name(KnnOptions{}) == "knn5_top1");
  KnnOptions w;
  w.k = 200;
  w.distance = KnnDistance::cosine;
  w.weighted = true;
  CHECK(knn_metric_name(w) == "wknn200_top1");
  o.k = 3;  // more neighbours than training features
  CHECK_THROWS_AS(knn_predict(train, {0, 1}, test, 2, o), Error);
  CHECK_THROWS_AS(parse_knn_distance("manhattan"), UsageError);
  // Features holding NaN or inf (a diverged backbone) are an error naming the image, not an arbitrary vote.
  o.k = 1;
  CHECK_THROWS_WITH(knn_predict(train, {0, 1}, rows({{1, 1}, {std::nan(""), 0}}), 2, o),
                    doctest::Contains("knn: the features of test image 1 hold NaN or inf"));
  CHECK_THROWS_WITH(knn_predict(rows({{HUGE_VAL, 0}, {1, 1}}), {0, 1}, test, 2, o),
                    doctest::Contains("knn: the features of training image 0 hold NaN or inf"));
}

TEST_CASE("top-k accuracy: a row holding NaN or inf is never right") {
  const double nan = std::nan("");
  // Three classes, labels 0, 1, 2. NaN compares false with everything, so a NaN row used to rank the true class
  // first; an inf row has no meaningful order either.
  const std::vector<float> logits{3, 1, 2,
                                  float(nan), float(nan), float(nan),
                                  0, float(HUGE_VAL), 1,
                                  1, float(nan), 5};
  const std::vector<int32_t> labels{0, 0, 1, 2};
  CHECK(top_k_accuracy(logits, labels, 3, 1) == doctest::Approx(25.0));
  CHECK(top_k_accuracy(logits, labels, 3, 3) == doctest::Approx(25.0));
  CHECK(top_k_accuracy(std::vector<float>(6, float(nan)), {0, 1}, 3, 1) == 0.0);
}

TEST_CASE("top-k accuracy: a tied logit ranks the lower class first") {
  // Row 0: classes 0 and 1 tie at the top, label 0 is first. Row 1: classes 1 and 2 tie, label 2 is second.
  const std::vector<float> logits{2, 2, 1,
                                  1, 2, 2};
  CHECK(top_k_accuracy(logits, {0, 2}, 3, 1) == doctest::Approx(50.0));
  CHECK(top_k_accuracy(logits, {1, 1}, 3, 1) == doctest::Approx(50.0));
  CHECK(top_k_accuracy(logits, {1, 2}, 3, 2) == doctest::Approx(100.0));
  CHECK(top_k_accuracy({3, 3, 3}, {2}, 3, 2) == 0.0);
}

TEST_CASE("linear evaluation stops with an error when the classifier diverges or the features are not finite") {
  FeatureSet train, test;
  train.num_classes = test.num_classes = 2;
  train.features = rows({{1, 0}, {0, 1}, {2, 0}, {0, 2}});
  train.labels = {0, 1, 0, 1};
  test.features = rows({{1, 0}, {0, 1}});
  test.labels = {0, 1};
  LinearEvalOptions o;
  o.epochs = 4;
  o.batch_size = 2;
  o.lr_start = 1e38;  // one Adam step moves every weight by about the rate
  CHECK_THROWS_WITH(linear_eval(train, test, o), doctest::Contains("linear classifier diverged at epoch 1 of 4 ("));
  o.lr_option = "--lr";
  CHECK_THROWS_WITH(linear_eval(train, test, o), doctest::Contains("learning rate 1e+38); lower --lr"));
  o.lr_start = o.lr_end = 0.1;  // a usable rate on the same data
  CHECK(linear_eval(train, test, o).top1 == doctest::Approx(100.0));
  test.features = rows({{1, 0}, {std::nan(""), 1}});
  CHECK_THROWS_WITH(linear_eval(train, test, o),
                    doctest::Contains("linear eval: the features of test image 1 hold NaN or inf"));
}

TEST_CASE("linear evaluation separates separable clusters (top-1 and top-5)") {
  // Four classes, centred at +-3 on two of 6 axes, unit noise: a linear classifier gets them all.
  const int classes = 4, d = 6, per_class_train = 60, per_class_test = 20;
  auto make = [&](int per_class, uint64_t stream) {
    FeatureSet set;
    set.num_classes = classes;
    std::vector<double> values;
    RandomStream rng{5, stream, 0};
    for (int i = 0; i < per_class * classes; ++i) {
      const int y = i % classes;
      for (int j = 0; j < d; ++j) values.push_back(rng.next_normal() * 0.5 + (j == y % 2 ? (y < 2 ? 3 : -3) : 0));
      set.labels.push_back(y);
    }
    set.features = Tensor::from_vector(values, {int64_t(set.labels.size()), d});
    return set;
  };
  const FeatureSet train = make(per_class_train, 1), test = make(per_class_test, 2);
  LinearEvalOptions o;
  o.epochs = 100;
  o.batch_size = 24;
  const LinearEvalResult r = linear_eval(train, test, o);
  CHECK(r.top1 == doctest::Approx(100.0));
  CHECK(r.top5 == doctest::Approx(100.0));
  CHECK(r.final_loss < 0.2);
}

// Every option of the linear evaluation reaches it: three epochs replayed by hand (the classifier of `seed` on
// its own Philox stream, 7; Adam with `weight_decay`; the rate lr_start (lr_end / lr_start)^(epoch / epochs); a
// new batch order every epoch from the seed's data stream; a last batch of what is left) give its final loss
// and accuracy, bit for bit.
TEST_CASE("linear evaluation: three epochs replayed by hand from the options give its loss and accuracy") {
  const int classes = 3, d = 4;
  auto make = [&](int n, uint64_t stream) {
    FeatureSet set;
    set.num_classes = classes;
    std::vector<double> values;
    RandomStream rng{11, stream, 0};
    for (int i = 0; i < n; ++i) {
      set.labels.push_back(i % classes);
      for (int j = 0; j < d; ++j) values.push_back(rng.next_normal() + (j == i % classes ? 1.5 : 0.0));
    }
    set.features = Tensor::from_vector(values, {n, d});
    return set;
  };
  const FeatureSet train = make(10, 1), test = make(9, 2);
  LinearEvalOptions o;
  o.epochs = 3;
  o.batch_size = 4;  // batches of 4, 4 and 2
  o.lr_start = 0.2;
  o.lr_end = 0.02;
  o.weight_decay = 0.05;
  o.seed = 9;
  const LinearEvalResult r = linear_eval(train, test, o);

  Linear classifier(d, classes, true, o.seed, 7);
  Adam adam({{"weight", classifier.weight()}, {"bias", classifier.bias()}}, AdamOptions{0.9, 0.999, 1e-8, 0.05});
  const std::vector<float> features = train.features.to_floats();
  double last_epoch_loss = 0;
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> order(10);
    std::iota(order.begin(), order.end(), 0);
    RandomStream rng{9, kStreamData, (uint64_t(3) << 62) | (uint64_t(epoch) << 32)};
    for (int64_t i = 9; i > 0; --i) std::swap(order[size_t(i)], order[rng.next_below(uint64_t(i) + 1)]);
    const double lr = 0.2 * std::pow(0.02 / 0.2, double(epoch) / 3.0);
    double sum = 0;
    int batches = 0;
    for (int64_t lo = 0; lo < 10; lo += 4) {
      const int64_t b = std::min<int64_t>(4, 10 - lo);
      std::vector<float> x;
      Tensor y = Tensor::empty({b}, DType::i64);
      for (int64_t i = 0; i < b; ++i) {
        const int64_t row = order[size_t(lo + i)];
        x.insert(x.end(), features.begin() + row * d, features.begin() + (row + 1) * d);
        y.data<int64_t>()[i] = train.labels[size_t(row)];
      }
      adam.zero_grad();
      Tensor loss = softmax_cross_entropy(classifier.forward(Tensor::from_floats(x.data(), {b, d})), y);
      loss.backward();
      sum += loss.item();
      ++batches;
      adam.step(lr);
    }
    last_epoch_loss = sum / batches;
  }
  CHECK(r.final_loss == last_epoch_loss);
  NoGradGuard no_grad;
  const std::vector<float> logits = classifier.forward(test.features).to_floats();
  CHECK(r.top1 == top_k_accuracy(logits, test.labels, classes, 1));
  CHECK(r.top5 == top_k_accuracy(logits, test.labels, classes, 3));  // top-5 of 3 classes: every class
  CHECK(r.top5 == 100.0);
}

TEST_CASE("evaluation view: Resize(round(side * 256 / 224)) + CenterCrop(side)") {
  CHECK(center_crop_for(224).resize == 256);
  CHECK(center_crop_for(224).crop == 224);
  CHECK(center_crop_for(32).resize == 37);  // 36.57
  CHECK(center_crop_for(32).crop == 32);
  CHECK(center_crop_for(64).resize == 73);  // 73.14
  CHECK(center_crop_for(96).resize == 110);  // 109.71
}

TEST_CASE("feature extraction runs the backbone in evaluation mode and leaves it as it was") {
  ResNetConfig config;
  config.stem = ResNetStem::cifar;
  config.base_width = 2;
  ResNet net(config);
  const PatternSource data(6);
  auto buffers = [&] {
    std::vector<std::vector<double>> out;
    for (const auto& [name, t] : net.named_buffers()) out.push_back(t.to_vector());
    return out;
  };
  const auto before = buffers();
  FeatureOptions o;
  o.workers = 0;
  o.image_size = 8;
  net.train();
  o.batch_size = 6;
  const FeatureSet all = extract_features(net, data, o);
  CHECK(net.training());
  CHECK(buffers() == before);
  o.batch_size = 2;  // each image's features do not depend on the other images of its batch
  const std::vector<double> pairs = extract_features(net, data, o).features.to_vector();
  net.eval();
  const std::vector<double> eval = extract_features(net, data, o).features.to_vector();
  CHECK(!net.training());
  CHECK(buffers() == before);
  const std::vector<double> whole = all.features.to_vector();
  REQUIRE(whole.size() == size_t(6 * net.feature_dim()));
  CHECK(all.labels == std::vector<int32_t>{0, 1, 0, 1, 0, 1});
  double pairs_off = 0, eval_off = 0, largest = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    pairs_off = std::max(pairs_off, std::abs(pairs[i] - whole[i]));
    eval_off = std::max(eval_off, std::abs(eval[i] - whole[i]));
    largest = std::max(largest, std::abs(whole[i]));
  }
  CHECK(largest > 0.1);
  CHECK(pairs_off < 1e-5 * largest);
  CHECK(eval_off < 1e-5 * largest);
}

// Every option of the supervised protocols reaches them: two epochs of train_classifier replayed by hand, linear
// (frozen backbone in evaluation mode, running statistics untouched) and fine-tuning (backbone trained at its
// own rate): the classifier N(0, 0.01) on stream 11 with a zero bias, SGD with momentum and weight decay on both,
// rates x batch / 256 and x gamma from the milestone epoch, RandomResizedCrop + flip with bilinear resampling and
// the last partial batch kept; then the centre-crop validation.
TEST_CASE("supervised training, linear and fine-tuning: two epochs replayed by hand give its loss and accuracy") {
  const PatternSource data(12);
  for (const bool fine_tune : {false, true}) {
    INFO((fine_tune ? "fine-tuning" : "linear"));
    ResNetConfig config;
    config.stem = ResNetStem::cifar;
    config.base_width = 2;
    config.seed = 3;
    ResNet run_net(config), hand_net(config);
    SupervisedOptions o;
    o.fine_tune = fine_tune;
    o.epochs = 2;
    o.batch_size = 5;  // batches of 5, 5 and 2
    o.lr = 0.4;
    o.backbone_lr = 0.2;
    o.momentum = 0.8;
    o.weight_decay = 0.01;
    o.milestones = {1};
    o.gamma = 0.5;
    o.image_size = 8;
    o.workers = 0;
    o.seed = 5;
    auto buffers = [](const ResNet& net) {
      std::vector<std::vector<double>> out;
      for (const auto& [name, t] : net.named_buffers()) out.push_back(t.to_vector());
      return out;
    };
    const auto buffers_before = buffers(run_net);
    const SupervisedResult r = train_classifier(run_net, data, data, o);
    CHECK(r.steps == 6);
    if (!fine_tune) CHECK(buffers(run_net) == buffers_before);

    const int64_t d = hand_net.feature_dim();
    Linear fc(d, 2, true, 5, 11);
    {
      NoGradGuard no_grad;
      fc.weight().copy_(mul(Tensor::randn({2, d}, 5, 11), 0.01));
      fc.bias().copy_(Tensor::zeros({2}));
    }
    Sgd head({{"fc.weight", fc.weight()}, {"fc.bias", fc.bias()}}, SgdOptions{0.8, 0.01});
    std::vector<NamedTensor> body_params;
    if (fine_tune)
      for (auto& [name, t] : hand_net.named_parameters()) body_params.push_back({name, t});
    Sgd body(body_params, SgdOptions{0.8, 0.01});
    AugmentConfig crop;
    crop.out_size = 8;
    crop.resample = Resample::bilinear_antialias;
    crop.jitter_p = crop.grayscale_p = crop.blur_p = crop.solarize_p = 0;
    LoaderConfig lc = imagenet_train_loader_config(5, 5, 0);
    lc.crops = {crop};
    lc.drop_last = false;
    Loader loader(data, lc);
    const double scale = 5 / 256.0;
    double last_epoch_loss = 0;
    for (int epoch = 0; epoch < 2; ++epoch) {
      if (fine_tune)
        hand_net.train();
      else
        hand_net.eval();
      loader.start_epoch(epoch);
      const double f = epoch >= 1 ? 0.5 : 1.0;
      double sum = 0;
      int batches = 0;
      while (const Batch* b = loader.next()) {
        const Tensor x = Tensor::from_floats(b->view1, {b->n, b->height, b->width, b->channels});
        Tensor y = Tensor::empty({b->n}, DType::i64);
        for (int i = 0; i < b->n; ++i) y.data<int64_t>()[i] = b->labels[i];
        head.zero_grad();
        body.zero_grad();
        Tensor features;
        if (fine_tune) {
          features = hand_net.forward(x);
        } else {
          NoGradGuard no_grad;
          features = hand_net.forward(x);
        }
        Tensor loss = softmax_cross_entropy(fc.forward(features), y);
        sum += loss.item();
        ++batches;
        loss.backward();
        head.step(0.4 * scale * f);
        if (fine_tune) body.step(0.2 * scale * f);
      }
      last_epoch_loss = sum / batches;
    }
    CHECK(r.final_loss == last_epoch_loss);

    hand_net.eval();
    NoGradGuard no_grad;
    LoaderConfig vc = imagenet_eval_loader_config(5, 0);
    vc.center_crop = center_crop_for(8);
    vc.views.view1.out_size = 8;
    Loader val(data, vc);
    val.start_epoch(0);
    std::vector<float> logits;
    std::vector<int32_t> labels;
    while (const Batch* b = val.next()) {
      const std::vector<float> l =
          fc.forward(hand_net.forward(Tensor::from_floats(b->view1, {b->n, b->height, b->width, b->channels})))
              .to_floats();
      logits.insert(logits.end(), l.begin(), l.end());
      labels.insert(labels.end(), b->labels, b->labels + b->n);
    }
    CHECK(r.top1 == top_k_accuracy(logits, labels, 2, 1));
  }
}
