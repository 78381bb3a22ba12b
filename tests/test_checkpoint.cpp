// Checkpoints: round trip of model, optimizer and state; refusal of a checkpoint that does not fit; file
// naming, listing and pruning; and the training loop resumed from a mid-epoch checkpoint ending with the
// same weights, bit for bit, as the uninterrupted loop.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

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

TEST_CASE("a checkpoint's \"intl\" record: a newer format, text that is not JSON, a missing field are refused by name") {
  TempDir dir;
  const MLP mlp({2, 3}, false, 1);
  NamedTensorList tensors;
  for (auto& [name, t] : mlp.named_parameters()) tensors.emplace_back("model." + name, t);
  const auto refusal = [&](const std::string& record) {
    const std::string path = dir / "ckpt-e0001.safetensors";
    write_safetensors(path, tensors, {{"intl", record}});
    try {
      read_checkpoint_state(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(read)");
  };
  nlohmann::json record = {{"format", checkpoint_format_name}, {"format_version", checkpoint_format_version},
                           {"epoch", 1}, {"step_in_epoch", 0}, {"global_step", 4}, {"optimizer_steps", 4}};
  CHECK(refusal(record.dump()) == "(read)");
  nlohmann::json newer = record;
  newer["format_version"] = checkpoint_format_version + 1;
  CHECK(refusal(newer.dump()).find("format_version " + std::to_string(checkpoint_format_version + 1) +
                                   " is not one this program reads") != std::string::npos);
  nlohmann::json other = record;
  other["format"] = "another-program";
  CHECK(refusal(other.dump()).find("not an intl-checkpoint record") != std::string::npos);
  CHECK(refusal("{\"format\": ").find("is not valid JSON") != std::string::npos);
  nlohmann::json partial = record;
  partial.erase("global_step");
  CHECK(refusal(partial.dump()).find("lacks a field or has a wrong type") != std::string::npos);

  // Tensors of the right shapes in float64 where the network holds float32: refused, not converted.
  NamedTensorList doubles;
  for (auto& [name, t] : tensors) doubles.emplace_back(name, t.to(DType::f64));
  write_safetensors(dir / "ckpt-e0002.safetensors", doubles, {{"intl", record.dump()}});
  MLP target({2, 3}, false, 2);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir / "ckpt-e0002.safetensors", target, nullptr),
                       doctest::Contains("'model.0.weight': dtype float64, expected float32"), Error);
}

TEST_CASE("checkpoint names sort by position; pruning keeps the newest and removes leftovers") {
  CHECK(checkpoint_file_name({5, 0, 50}) == "ckpt-e0005.safetensors");
  CHECK(checkpoint_file_name({5, 12, 62}) == "ckpt-e0005-s000012.safetensors");
  TempDir dir;
  for (const char* name : {"ckpt-e0002.safetensors", "ckpt-e0001-s000003.safetensors", "ckpt-e0010.safetensors",
                           "ckpt-e0001.safetensors", "ckpt-e0002-s000001.safetensors", "ckpt-e0003.safetensors.tmp",
                           "ckpt-e0003-s000002.safetensors.tmp", "notes.txt"})
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
  CHECK(!fs::exists(dir / "ckpt-e0003-s000002.safetensors.tmp"));
  CHECK(fs::exists(dir / "notes.txt"));
  CHECK(latest_checkpoint((dir.path / "missing").string()).empty());
  // A folder that happens to carry a checkpoint's name is not one; keeping none is refused.
  fs::create_directory(dir / "ckpt-e0099.safetensors");
  CHECK(fs::path(latest_checkpoint(dir.path.string())).filename() == "ckpt-e0010.safetensors");
  CHECK(list_checkpoints(dir.path.string()).size() == 2);
  CHECK_THROWS_WITH(prune_checkpoints(dir.path.string(), 0),
                    "--keep must be at least 1 (the newest checkpoint is always kept), found 0");
  CHECK(list_checkpoints(dir.path.string()).size() == 2);
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

// How tiny_training runs.
struct Tiny {
  int64_t max_steps = -1;
  bool resume = false;
  // The loss of the poison_at-th step (0: none) adds 0 x sum(sqrt(0 x w)) for the first parameter w: the loss
  // stays finite, its gradient is NaN (0 x inf).
  int poison_at = 0;
  // SIGINT, raised once global step sigint_after_step is done (0: never), or during the evaluation after
  // epoch sigint_in_evaluation (0: never; the run then evaluates after every epoch).
  int64_t sigint_after_step = 0;
  int sigint_in_evaluation = 0;
  // The throw_at-th step's loss throws an intl::Error (0: never).
  int throw_at = 0;
  int batch = 12;
};

struct TinyResult {
  TrainOutcome outcome;
  NamedTensorList tensors;      // the final model and optimizer tensors
  std::vector<double> losses;   // the per-epoch curve
  std::vector<results::Event> events;
};

// A tiny INTL pre-training (width-4 ResNet-18 on 8 x 8 crops of 48 random images, batch 12: 4 steps an
// epoch, 3 epochs, checkpoints in `out`) run through train_loop. Its recipe does not name the batch size.
TinyResult tiny_training(const std::string& out, const Tiny& how = {}) {
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
  LoaderConfig lc = cifar_train_loader_config(how.batch, 7, 1);
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
    ++steps;
    if (steps == how.throw_at) throw Error("a failure inside step " + std::to_string(steps));
    if (steps != how.poison_at) return loss;
    const Tensor w = model.named_parameters().front().second;
    return add(loss, mul(sum(sqrt(mul(w, 0.0))), 0.0));
  };
  parts.on_step = [&](int64_t global_step, double, double) {
    if (global_step == how.sigint_after_step) std::raise(SIGINT);
  };
  if (how.sigint_in_evaluation > 0)
    parts.evaluate = [&](int epoch) {
      if (epoch + 1 == how.sigint_in_evaluation) std::raise(SIGINT);
      return std::map<std::string, double>{};
    };
  TrainerConfig tc;
  tc.epochs = 3;
  tc.max_steps = how.max_steps;
  tc.eval_every = how.sigint_in_evaluation > 0 ? 1 : 0;
  tc.checkpoint_dir = out;
  tc.keep = 3;
  tc.resume_from = how.resume ? latest_checkpoint(out) : "";
  tc.recipe = {{"what", "tiny"}};
  tc.log_every_s = 1e9;
  tc.handle_signals = how.sigint_after_step > 0 || how.sigint_in_evaluation > 0;
  results::Run run;
  TinyResult r;
  r.outcome = train_loop(parts, tc, run, [] {});
  r.losses = run.curves["loss"].y;
  r.events = run.events;
  r.tensors = model.named_parameters();
  for (auto& nt : model.named_buffers()) r.tensors.push_back(nt);
  for (auto& nt : sgd.state()) r.tensors.emplace_back(nt.name, nt.tensor);
  return r;
}

std::vector<std::string> checkpoint_names(const TempDir& dir) {
  std::vector<std::string> names;
  for (const std::string& path : list_checkpoints(dir.path.string())) names.push_back(fs::path(path).filename().string());
  return names;
}

}  // namespace

TEST_CASE("train_loop: weights made NaN by a step whose loss is finite end the run as a divergence at the epoch's end") {
  TempDir dir;
  Tiny how;
  how.poison_at = 4;  // the last step of epoch 1
  const TinyResult r = tiny_training(dir.path.string(), how);
  CHECK(r.outcome.status == TrainStatus::diverged);
  INFO(r.outcome.message);
  CHECK(r.outcome.message.find("the weights became non-finite (first ") != std::string::npos);
  CHECK(r.outcome.message.find(") in epoch 1; no checkpoint had been written yet") != std::string::npos);
  REQUIRE(!r.events.empty());
  CHECK(r.events.back().kind == "divergence");
  CHECK(list_checkpoints(dir.path.string()).empty());  // never a checkpoint of non-finite weights
}

TEST_CASE("train_loop: weights made NaN by the last step of a --max-steps run or before a Ctrl-C are a divergence, "
          "not a checkpoint") {
  for (const bool by_signal : {false, true}) {
    INFO((by_signal ? "SIGINT after step 6" : "--max-steps 6"));
    TempDir dir;
    Tiny how;
    how.poison_at = 6;  // the middle of epoch 2
    if (by_signal)
      how.sigint_after_step = 6;
    else
      how.max_steps = 6;
    const TinyResult r = tiny_training(dir.path.string(), how);
    CHECK(r.outcome.status == TrainStatus::diverged);
    INFO(r.outcome.message);
    CHECK(r.outcome.message.find("the weights became non-finite (first ") != std::string::npos);
    CHECK(r.outcome.message.find(") in epoch 2; the last good checkpoint is " +
                                 (dir.path / "ckpt-e0001.safetensors").string()) != std::string::npos);
    REQUIRE(!r.events.empty());
    CHECK(r.events.back().kind == "divergence");
    CHECK(checkpoint_names(dir) == std::vector<std::string>{"ckpt-e0001.safetensors"});
  }
}

TEST_CASE("train_loop: NaN weights make the next step's loss NaN (ReLU passes NaN), naming the last good "
          "checkpoint") {
  TempDir dir;
  Tiny how;
  how.poison_at = 6;  // the middle of epoch 2
  const TinyResult r = tiny_training(dir.path.string(), how);
  CHECK(r.outcome.status == TrainStatus::diverged);
  INFO(r.outcome.message);
  CHECK(r.outcome.message.find(" at epoch 2 step 3 (global step 7") != std::string::npos);  // the next step
  CHECK(r.outcome.message.find("the last good checkpoint is " + (dir.path / "ckpt-e0001.safetensors").string()) !=
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
  Tiny first;
  first.max_steps = 8;
  tiny_training(dir.path.string(), first);  // checkpoints e0001 and e0002
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
  Tiny resume;
  resume.resume = true;
  CHECK_THROWS_WITH(tiny_training(dir.path.string(), resume), doctest::Contains(expected.c_str()));
}

TEST_CASE("train_loop: stopped mid-epoch and resumed, it ends bit for bit where the uninterrupted loop does") {
  TempDir straight, stopped;
  const TinyResult a = tiny_training(straight.path.string());
  CHECK(a.outcome.status == TrainStatus::finished);
  Tiny stop;
  stop.max_steps = 6;  // 6 of 12 steps: the middle of epoch 2
  CHECK(tiny_training(stopped.path.string(), stop).outcome.status == TrainStatus::finished);
  CHECK(fs::path(latest_checkpoint(stopped.path.string())).filename() == "ckpt-e0001-s000002.safetensors");
  Tiny resume;
  resume.resume = true;
  const TinyResult b = tiny_training(stopped.path.string(), resume);
  CHECK(b.outcome.status == TrainStatus::finished);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i)
    CHECK_MESSAGE(same_bytes(a.tensors[i].second, b.tensors[i].second), a.tensors[i].first);
  // The per-epoch record too: epoch 2's mean loss sums steps of both processes.
  CHECK(a.losses.size() == 3);
  CHECK(b.losses == a.losses);
  // A fresh run into a folder holding checkpoints is refused.
  CHECK_THROWS_AS(tiny_training(stopped.path.string()), UsageError);
}

TEST_CASE("train_loop: SIGINT stops after the step in progress, mid-epoch, or after the epoch's checkpoint when it "
          "comes during the evaluation") {
  {
    TempDir dir;
    Tiny how;
    how.sigint_after_step = 6;  // the middle of epoch 2
    const TinyResult r = tiny_training(dir.path.string(), how);
    CHECK(r.outcome.status == TrainStatus::interrupted);
    CHECK(r.outcome.position.global_step == 6);
    CHECK(r.outcome.message.find("stopped by SIGINT at global step 6; continue with the same command and --resume") !=
          std::string::npos);
    CHECK(checkpoint_names(dir) == std::vector<std::string>{"ckpt-e0001.safetensors", "ckpt-e0001-s000002.safetensors"});
    REQUIRE(!r.events.empty());
    CHECK(r.events.back().message == "SIGINT: stopped with a checkpoint");
  }
  {
    TempDir dir;
    Tiny how;
    how.sigint_in_evaluation = 2;  // after epoch 2's last step
    const TinyResult r = tiny_training(dir.path.string(), how);
    CHECK(r.outcome.status == TrainStatus::interrupted);
    CHECK(r.outcome.position.global_step == 8);
    CHECK(r.outcome.position.epoch == 2);
    CHECK(r.outcome.position.step_in_epoch == 0);
    CHECK(r.losses.size() == 2);  // epoch 2 recorded
    // The epoch's own checkpoint, then the stop's at the same position (the same name, written again).
    CHECK(checkpoint_names(dir) == std::vector<std::string>{"ckpt-e0001.safetensors", "ckpt-e0002.safetensors"});
  }
}

TEST_CASE("train_loop: a failure inside the first step is a setup error, inside a later one a divergence") {
  {
    TempDir dir;
    Tiny how;
    how.throw_at = 1;
    CHECK_THROWS_WITH_AS(tiny_training(dir.path.string(), how), "a failure inside step 1", Error);
  }
  TempDir dir;
  Tiny how;
  how.throw_at = 3;
  const TinyResult r = tiny_training(dir.path.string(), how);
  CHECK(r.outcome.status == TrainStatus::diverged);
  CHECK(r.outcome.message.find("training diverged: the step failed (a failure inside step 3) at epoch 1 step 3") !=
        std::string::npos);
  REQUIRE(!r.events.empty());
  CHECK(r.events.back().kind == "divergence");
}

TEST_CASE("train_loop: a checkpoint further into its epoch than the epoch now has steps is refused by name") {
  TempDir dir;
  Tiny first;
  first.max_steps = 3;  // ckpt-e0000-s000003
  tiny_training(dir.path.string(), first);
  Tiny resume;
  resume.resume = true;
  resume.batch = 24;  // 2 steps an epoch
  CHECK_THROWS_WITH_AS(tiny_training(dir.path.string(), resume),
                       doctest::Contains("the checkpoint is at step 3 of an epoch of only 2 steps"), Error);
}
