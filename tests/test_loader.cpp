// The batch loader: bytewise the same batches for any number of workers, a new order every epoch, the
// last partial batch dropped or kept, resuming at (epoch, step), and the evaluation mode.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "data/loader.h"
#include "engine/error.h"

namespace {

using namespace intl;

CifarDataset random_dataset(int n, uint64_t seed) {
  CifarDataset ds;
  ds.labels.resize(n);
  ds.pixels.resize(size_t(n) * CifarDataset::kImageBytes);
  RandomStream rng{seed, kStreamData, 0};
  for (uint8_t& p : ds.pixels) p = uint8_t(rng.next_below(256));
  for (int i = 0; i < n; ++i) ds.labels[i] = (i * 3) % 10;
  return ds;
}

// A copy of everything a batch holds.
struct BatchCopy {
  int n, epoch, step;
  std::vector<float> view1, view2;
  std::vector<int32_t> labels, indices;
  bool operator==(const BatchCopy& o) const {
    return n == o.n && epoch == o.epoch && step == o.step && view1 == o.view1 && view2 == o.view2 &&
           labels == o.labels && indices == o.indices;
  }
};

std::vector<BatchCopy> run_epoch(Loader& loader, int epoch, int first_step = 0) {
  loader.start_epoch(epoch, first_step);
  std::vector<BatchCopy> out;
  while (const Batch* b = loader.next()) {
    const size_t floats = size_t(b->n) * b->channels * b->height * b->width;
    BatchCopy c{b->n, b->epoch, b->step, std::vector<float>(b->view1, b->view1 + floats), {},
                std::vector<int32_t>(b->labels, b->labels + b->n), std::vector<int32_t>(b->indices, b->indices + b->n)};
    if (b->view2) c.view2.assign(b->view2, b->view2 + floats);
    out.push_back(std::move(c));
  }
  return out;
}

LoaderConfig train_config(int workers, int batch = 8) {
  LoaderConfig c = cifar_train_loader_config(batch, 42, workers);
  c.chunk = 3;
  return c;
}

}  // namespace

TEST_CASE("loader: batches are bytewise equal for 0, 1 and 3 workers") {
  const CifarDataset ds = random_dataset(50, 1);
  Loader serial(ds, train_config(0)), one(ds, train_config(1));
  LoaderConfig three_config = train_config(3);
  three_config.prefetch = 3;
  three_config.chunk = 2;
  Loader three(ds, three_config);
  for (int epoch = 0; epoch < 2; ++epoch) {
    const auto a = run_epoch(serial, epoch), b = run_epoch(one, epoch), c = run_epoch(three, epoch);
    REQUIRE(a.size() == 6);
    CHECK(a == b);
    CHECK(a == c);
  }
}

TEST_CASE("loader: a new order every epoch, labels follow the indices, two distinct views") {
  const CifarDataset ds = random_dataset(50, 2);
  LoaderConfig config = train_config(2);
  config.drop_last = false;
  Loader loader(ds, config);
  std::vector<int32_t> orders[2];
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (const BatchCopy& b : run_epoch(loader, epoch)) {
      for (int k = 0; k < b.n; ++k) CHECK(b.labels[k] == ds.labels[b.indices[k]]);
      CHECK(b.view1 != b.view2);
      CHECK(b.view1.size() == size_t(b.n) * 3 * 32 * 32);
      orders[epoch].insert(orders[epoch].end(), b.indices.begin(), b.indices.end());
    }
    std::vector<int32_t> sorted = orders[epoch];
    std::sort(sorted.begin(), sorted.end());
    std::vector<int32_t> all(50);
    std::iota(all.begin(), all.end(), 0);
    CHECK(sorted == all);  // each image exactly once
  }
  CHECK(orders[0] != orders[1]);
  CHECK(run_epoch(loader, 1) == run_epoch(loader, 1));  // an epoch is a function of (seed, epoch)
  LoaderConfig other_seed = config;
  other_seed.seed = 43;
  Loader reseeded(ds, other_seed);
  CHECK(!(run_epoch(reseeded, 0) == run_epoch(loader, 0)));
}

TEST_CASE("loader: without shuffling, images come in dataset order and draw new views every epoch") {
  const CifarDataset ds = random_dataset(16, 7);
  LoaderConfig config = train_config(1);
  config.shuffle = false;
  Loader loader(ds, config);
  const auto first = run_epoch(loader, 0), second = run_epoch(loader, 1);
  REQUIRE(first.size() == 2);
  REQUIRE(second.size() == 2);
  for (size_t s = 0; s < first.size(); ++s) {
    for (int k = 0; k < first[s].n; ++k) {
      CHECK(first[s].indices[size_t(k)] == int32_t(s) * 8 + k);
      CHECK(second[s].indices[size_t(k)] == first[s].indices[size_t(k)]);
    }
    // The same images at the same positions, other crops, flips and colours: the augmentation's random
    // stream depends on the epoch as well as the position.
    CHECK(first[s].view1 != second[s].view1);
    CHECK(first[s].view2 != second[s].view2);
  }
}

TEST_CASE("loader: two views of different sizes are refused") {
  const CifarDataset ds = random_dataset(16, 8);
  LoaderConfig config = train_config(0);
  config.views.view2.out_size = 24;
  CHECK_THROWS_WITH_AS(Loader(ds, config), doctest::Contains("both views must have the same out_size"), Error);
}

TEST_CASE("loader: the epoch orders of three images are all six permutations, fixed points included") {
  // A shuffle that draws below i instead of i + 1 (Sattolo's) makes only the two cyclic orders, never leaving
  // an image in place; a uniform one makes each of the 6 orders in about 1/6 of 120 epochs.
  const CifarDataset ds = random_dataset(3, 6);
  Loader loader(ds, train_config(0, 3));
  std::map<std::vector<int32_t>, int> seen;
  for (int epoch = 0; epoch < 120; ++epoch) {
    const auto batches = run_epoch(loader, epoch);
    REQUIRE(batches.size() == 1);
    ++seen[batches[0].indices];
  }
  REQUIRE(seen.size() == 6);
  for (const auto& [order, count] : seen) CHECK(count >= 8);  // binomial(120, 1/6): mean 20, sd 4.1
}

TEST_CASE("loader: the last partial batch is dropped or kept") {
  const CifarDataset ds = random_dataset(50, 3);
  Loader dropping(ds, train_config(1));
  CHECK(dropping.steps_per_epoch() == 6);
  for (const BatchCopy& b : run_epoch(dropping, 0)) CHECK(b.n == 8);
  LoaderConfig keep = train_config(1);
  keep.drop_last = false;
  Loader keeping(ds, keep);
  CHECK(keeping.steps_per_epoch() == 7);
  const auto batches = run_epoch(keeping, 0);
  REQUIRE(batches.size() == 7);
  CHECK(batches.back().n == 2);
  CHECK_THROWS_AS(Loader(ds, train_config(1, 64)), Error);  // 50 images, no full batch of 64
}

TEST_CASE("loader: resuming at (epoch, step) repeats the uninterrupted batches") {
  const CifarDataset ds = random_dataset(50, 4);
  Loader reference(ds, train_config(2));
  const auto full = run_epoch(reference, 1);
  Loader resumed(ds, train_config(3));
  const auto tail = run_epoch(resumed, 1, 3);
  REQUIRE(tail.size() == full.size() - 3);
  for (size_t i = 0; i < tail.size(); ++i) CHECK(tail[i] == full[i + 3]);
  // Abandoning an epoch half way (work in flight) and restarting elsewhere gives the same batches too.
  resumed.start_epoch(0);
  resumed.next();
  resumed.next();
  const auto again = run_epoch(resumed, 1, 3);
  CHECK(again == tail);
  CHECK(run_epoch(resumed, 1, resumed.steps_per_epoch()).empty());
  CHECK_THROWS_AS(resumed.start_epoch(1, 7), Error);
}

TEST_CASE("loader: batch buffers are a fixed ring") {
  const CifarDataset ds = random_dataset(80, 5);
  LoaderConfig config = train_config(2);
  config.prefetch = 2;
  Loader loader(ds, config);
  std::set<const float*> buffers;
  for (int epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    while (const Batch* b = loader.next()) buffers.insert(b->view1);
  }
  CHECK(buffers.size() == 3);  // prefetch + 1
}

TEST_CASE("loader: evaluation mode normalises images in dataset order") {
  CifarDataset ds = random_dataset(21, 6);
  ds.kind = CifarKind::cifar100;
  Loader loader(ds, cifar_eval_loader_config(8, 2));
  const auto batches = run_epoch(loader, 0);
  REQUIRE(batches.size() == 3);
  CHECK(batches[2].n == 5);
  int index = 0;
  for (const BatchCopy& b : batches) {
    CHECK(b.view2.empty());
    for (int k = 0; k < b.n; ++k, ++index) {
      REQUIRE(b.indices[k] == index);
      for (int c = 0; c < 3; ++c) {
        const int pixel = 100;  // the dataset stores planes (CHW); batches are NHWC
        const float expected = (ds.image(index)[pixel + c * 1024] / 255.0f - kCifar100Normalization.mean[c]) /
                               kCifar100Normalization.std[c];
        CHECK(b.view1[size_t(k) * 3072 + pixel * 3 + c] == doctest::Approx(expected).epsilon(1e-6));
      }
    }
  }
}
