// Checkpoints: round trip of model, optimizer and state; refusal of a checkpoint that does not fit; file
// naming, listing and pruning; and the training loop resumed from a mid-epoch checkpoint ending with the
// same weights, bit for bit, as the uninterrupted loop.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/cifar.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/schedule.h"
#include "models/layers.h"
#include "models/safetensors.h"
#include "train/checkpoint.h"
#include "train/ssl_model.h"
#include "train/trainer.h"
#include "tests/temp_dir.h"

using namespace intl;
using namespace intl::train;
namespace fs = std::filesystem;

namespace {

std::vector<NamedTensor> named(const Module& m) {
  std::vector<NamedTensor> out;
  for (auto& [name, t] : m.named_parameters()) out.push_back({name, t});
  return out;
}

// One SGD step on a fixed input, so that momentum buffers and running statistics are not at their defaults.
void one_step(MLP& mlp, Sgd& sgd, uint64_t seed) {
  sgd.zero_grad();
  Tensor x = Tensor::randn({8, 4}, seed, 1);
  Tensor loss = mean(square(mlp.forward(x)));
  loss.backward();
  sgd.step(0.1);
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(),
                     size_t(a.numel()) * dtype_size(a.dtype())) == 0;
}

}  // namespace

TEST_CASE("checkpoint round trip: parameters, buffers, optimizer state, position and history") {
  TempDir dir;
  MLP a({4, 6, 3}, false, 1);
  Sgd sgd_a(named(a), SgdOptions{0.9, 1e-4, false, true});
  one_step(a, sgd_a, 1);
  one_step(a, sgd_a, 2);
  CheckpointState state;
  state.position = {3, 7, 31};
  state.optimizer_steps = sgd_a.steps();
  state.recipe = {{"lr", 0.3}, {"epochs", 10}};
  state.progress = {{"anything", {1, 2, 3}}};
  state.model = {{"arch", "mlp"}};
  const std::string path = dir / checkpoint_file_name(state.position);
  save_checkpoint(path, a, &sgd_a, state);

  MLP b({4, 6, 3}, false, 99);  // other initial weights
  Sgd sgd_b(named(b), SgdOptions{0.9, 1e-4, false, true});
  const CheckpointState got = load_checkpoint(path, b, &sgd_b);
  CHECK(got.position.epoch == 3);
  CHECK(got.position.step_in_epoch == 7);
  CHECK(got.position.global_step == 31);
  CHECK(got.recipe == state.recipe);
  CHECK(got.progress == state.progress);
  CHECK(got.model == state.model);
  CHECK(sgd_b.steps() == 2);
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK_MESSAGE(same_bytes(pa[i].second, pb[i].second), pa[i].first);
  const auto ba = a.named_buffers(), bb = b.named_buffers();
  for (size_t i = 0; i < ba.size(); ++i) CHECK_MESSAGE(same_bytes(ba[i].second, bb[i].second), ba[i].first);
  const auto sa = sgd_a.state(), sb = sgd_b.state();
  for (size_t i = 0; i < sa.size(); ++i) CHECK_MESSAGE(same_bytes(sa[i].tensor, sb[i].tensor), sa[i].name);
  // The same next step from both.
  one_step(a, sgd_a, 3);
  one_step(b, sgd_b, 3);
  for (size_t i = 0; i < pa.size(); ++i) CHECK(same_bytes(pa[i].second, pb[i].second));
}

TEST_CASE("a checkpoint of another network is refused, naming the tensor, and changes nothing") {
  TempDir dir;
  MLP a({4, 6, 3}, false, 1);
  save_checkpoint(dir / "ckpt-e0001.safetensors", a, nullptr, CheckpointState{});
  MLP wider({4, 8, 3}, false, 2);
  const std::vector<float> before = wider.named_parameters()[0].second.to_floats();
  try {
    load_checkpoint(dir / "ckpt-e0001.safetensors", wider, nullptr);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("model.0.weight") != std::string::npos);
    CHECK(std::string(e.what()).find("ckpt-e0001.safetensors") != std::string::npos);
  }
  CHECK(wider.named_parameters()[0].second.to_floats() == before);
  // Plain weights (no training state) are not a checkpoint.
  save_safetensors(a, dir / "plain.safetensors");
  CHECK_THROWS_WITH_AS(read_checkpoint_state(dir / "plain.safetensors"), doctest::Contains("not a training checkpoint"),
                       Error);
}

TEST_CASE("checkpoint names sort by position; pruning keeps the newest and removes leftovers") {
  CHECK(checkpoint_file_name({5, 0, 50}) == "ckpt-e0005.safetensors");
  CHECK(checkpoint_file_name({5, 12, 62}) == "ckpt-e0005-s000012.safetensors");
  TempDir dir;
  for (const char* name : {"ckpt-e0002.safetensors", "ckpt-e0001-s000003.safetensors", "ckpt-e0010.safetensors",
                           "ckpt-e0001.safetensors", "ckpt-e0002-s000001.safetensors", "ckpt-e0003.safetensors.tmp",
                           "notes.txt"})
    std::ofstream(dir / name) << "x";
  const auto all = list_checkpoints(dir.path.string());
  REQUIRE(all.size() == 5);
  CHECK(fs::path(all[0]).filename() == "ckpt-e0001.safetensors");
  CHECK(fs::path(all[1]).filename() == "ckpt-e0001-s000003.safetensors");
  CHECK(fs::path(all[4]).filename() == "ckpt-e0010.safetensors");
  CHECK(fs::path(latest_checkpoint(dir.path.string())).filename() == "ckpt-e0010.safetensors");
  prune_checkpoints(dir.path.string(), 2);
  const auto kept = list_checkpoints(dir.path.string());
  REQUIRE(kept.size() == 2);
  CHECK(fs::path(kept[0]).filename() == "ckpt-e0002-s000001.safetensors");
  CHECK(!fs::exists(dir / "ckpt-e0003.safetensors.tmp"));
  CHECK(fs::exists(dir / "notes.txt"));
  CHECK(latest_checkpoint((dir.path / "missing").string()).empty());
}

TEST_CASE("recipe differences name the keys") {
  const nlohmann::json a = {{"lr", 0.3}, {"epochs", 10}}, b = {{"lr", 0.5}, {"epochs", 10}, {"T", 4}};
  const std::string diff = recipe_differences(a, b);
  CHECK(diff.find("lr: checkpoint 0.3, now 0.5") != std::string::npos);
  CHECK(diff.find("T: checkpoint (not set), now 4") != std::string::npos);
  CHECK(diff.find("epochs") == std::string::npos);
  CHECK(recipe_differences(a, a).empty());
}

namespace {

// A tiny INTL pre-training (width-4 ResNet-18 on 8 x 8 crops of 48 random images, batch 12: 4 steps an
// epoch) run through train_loop; returns the final model tensors. With `poisoned`, step `poison_at` adds
// 0 x sum(sqrt(0 x w)) for the first parameter w: the loss stays finite, its gradient is NaN (0 x inf); the
// outcome goes to *poisoned.
NamedTensorList tiny_training(const std::string& out, int64_t max_steps, bool resume, std::vector<double>* losses,
                              TrainOutcome* poisoned = nullptr, int poison_at = 4) {
  static const CifarDataset data = [] {
    CifarDataset d;
    RandomStream rng{3, kStreamData, 0};
    d.labels.resize(48);
    d.pixels.resize(48 * size_t(CifarDataset::kImageBytes));
    for (uint8_t& p : d.pixels) p = uint8_t(rng.next_below(256));
    for (int i = 0; i < 48; ++i) d.labels[i] = i % 10;
    return d;
  }();
  SslModelConfig mc;
  mc.base_width = 4;
  mc.projector = {16, 16, 16};
  mc.seed = 7;
  SslModel model(mc);
  Sgd sgd(named(model), SgdOptions{0.9, 1e-4, false, true});
  LoaderConfig lc = cifar_train_loader_config(12, 7, 1);
  lc.views.view1.out_size = lc.views.view2.out_size = 8;
  Loader loader(data, lc);
  const WarmupCosine schedule{0.05, 4, 12, 0.001};
  TrainerParts parts;
  parts.model = &model;
  parts.optimizer = &sgd;
  parts.loader = &loader;
  parts.learning_rate = [&](int64_t s) { return schedule.at(s); };
  int steps = 0;
  parts.loss = [&](const Batch& b) {
    const Shape shape{b.n, b.height, b.width, 3};  // NHWC
    Tensor loss = intl_two_view_loss(model, Tensor::from_floats(b.view1, shape), Tensor::from_floats(b.view2, shape),
                                     4, 0.05);
    if (!poisoned || ++steps != poison_at) return loss;
    const Tensor w = model.named_parameters().front().second;
    return add(loss, mul(sum(sqrt(mul(w, 0.0))), 0.0));
  };
  TrainerConfig tc;
  tc.epochs = 3;
  tc.max_steps = max_steps;
  tc.checkpoint_dir = out;
  tc.keep = 3;
  tc.resume_from = resume ? latest_checkpoint(out) : "";
  tc.recipe = {{"what", "tiny"}};
  tc.log_every_s = 1e9;
  tc.handle_signals = false;
  results::Run run;
  const TrainOutcome outcome = train_loop(parts, tc, run, [] {});
  if (poisoned) {
    *poisoned = outcome;
    REQUIRE(!run.events.empty());
    CHECK(run.events.back().kind == "divergence");
    return {};
  }
  CHECK(outcome.status == TrainStatus::finished);
  if (losses) *losses = run.curves["loss"].y;
  NamedTensorList all = model.named_parameters();
  for (auto& nt : model.named_buffers()) all.push_back(nt);
  for (auto& nt : sgd.state()) all.emplace_back(nt.name, nt.tensor);
  return all;
}

}  // namespace

TEST_CASE("train_loop: weights made NaN by a step whose loss is finite end the run as a divergence at the epoch's end") {
  TempDir dir;
  TrainOutcome outcome;
  tiny_training(dir.path.string(), -1, false, nullptr, &outcome);  // the last step of epoch 1
  CHECK(outcome.status == TrainStatus::diverged);
  INFO(outcome.message);
  CHECK(outcome.message.find("the weights became non-finite (first ") != std::string::npos);
  CHECK(outcome.message.find(") in epoch 1; no checkpoint had been written yet") != std::string::npos);
  CHECK(list_checkpoints(dir.path.string()).empty());  // never a checkpoint of non-finite weights
}

TEST_CASE("train_loop: NaN weights make the next step's loss NaN (ReLU passes NaN), naming the last good "
          "checkpoint") {
  TempDir dir;
  TrainOutcome outcome;
  tiny_training(dir.path.string(), -1, false, nullptr, &outcome, 6);  // the middle of epoch 2
  CHECK(outcome.status == TrainStatus::diverged);
  INFO(outcome.message);
  CHECK(outcome.message.find(" at epoch 2 step 3 (global step 7") != std::string::npos);  // the next step
  CHECK(outcome.message.find("the last good checkpoint is " + (dir.path / "ckpt-e0001.safetensors").string()) !=
        std::string::npos);
  const Tensor x = Tensor::from_vector({-1.0, std::nan(""), 2.0}, {3}, DType::f64);
  const std::vector<double> y = relu(x).to_vector();
  CHECK(y[0] == 0.0);
  CHECK(std::isnan(y[1]));  // as PyTorch's: a NaN is not hidden as a 0
  CHECK(y[2] == 2.0);
  CHECK(std::isnan(relu(cast(x, DType::f32)).to_vector()[1]));
}

TEST_CASE("train_loop: --resume refuses a checkpoint holding NaN, naming the parameter and the older checkpoint") {
  TempDir dir;
  tiny_training(dir.path.string(), 8, false, nullptr);  // checkpoints e0001 and e0002
  const std::vector<std::string> all = list_checkpoints(dir.path.string());
  REQUIRE(all.size() == 2);
  {
    SslModelConfig mc;
    mc.base_width = 4;
    mc.projector = {16, 16, 16};
    SslModel model(mc);
    Sgd sgd(named(model), SgdOptions{0.9, 1e-4, false, true});
    CheckpointState state = load_checkpoint(all.back(), model, &sgd);
    Tensor w = model.named_parameters().front().second;
    w.copy_(mul(w, std::nan("")));
    save_checkpoint(all.back(), model, &sgd, state);
  }
  const std::string expected =
      "holds NaN or inf (the run that wrote it had diverged); move it away and --resume takes '" + all.front() + "'";
  CHECK_THROWS_WITH(tiny_training(dir.path.string(), -1, true, nullptr), doctest::Contains(expected.c_str()));
}

TEST_CASE("train_loop: stopped mid-epoch and resumed, it ends bit for bit where the uninterrupted loop does") {
  TempDir straight, stopped;
  std::vector<double> straight_losses, resumed_losses;
  const NamedTensorList a = tiny_training(straight.path.string(), -1, false, &straight_losses);
  tiny_training(stopped.path.string(), 6, false, nullptr);  // 6 of 12 steps: the middle of epoch 2
  CHECK(fs::path(latest_checkpoint(stopped.path.string())).filename() == "ckpt-e0001-s000002.safetensors");
  const NamedTensorList b = tiny_training(stopped.path.string(), -1, true, &resumed_losses);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK_MESSAGE(same_bytes(a[i].second, b[i].second), a[i].first);
  // The per-epoch record too: epoch 2's mean loss sums steps of both processes.
  CHECK(straight_losses.size() == 3);
  CHECK(resumed_losses == straight_losses);
  // A fresh run into a folder holding checkpoints is refused.
  CHECK_THROWS_AS(tiny_training(stopped.path.string(), -1, false, nullptr), UsageError);
}
