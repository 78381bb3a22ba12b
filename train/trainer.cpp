// The training loop of train/trainer.h.
#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "train/progress.h"

namespace intl::train {
namespace {

using json = nlohmann::json;

// ---- SIGINT / SIGTERM: the first one asks the loop to stop after its step; a second one kills as usual ----

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

class StopSignals {
 public:
  explicit StopSignals(bool enable) : enabled_(enable) {
    g_stop_signal = 0;
    if (!enabled_) return;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;  // the second signal gets the default action
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    if (!enabled_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  int received() const { return g_stop_signal; }

 private:
  bool enabled_;
  struct sigaction old_int_ {}, old_term_ {};
};

// Sums of the epoch in progress; checkpointed so that a resumed epoch's record equals the uninterrupted one.
struct EpochSums {
  double loss_sum = 0;
  int64_t count = 0;
  double seconds = 0;  // wall time of the epoch's steps so far (not reproducible, only reported)
  double last_lr = 0;
};

void append_point(results::Run& run, const std::string& name, double x, double y) {
  results::Curve& c = run.curves[name];
  c.x_label = "epoch";
  c.x.push_back(x);
  c.y.push_back(y);
}

json progress_to_json(const results::Run& run, const EpochSums& sums, const TrainerParts& parts) {
  json curves = json::object();
  for (const auto& [name, curve] : run.curves) curves[name] = curve;
  json arrays = json::object();
  for (const auto& [name, array] : run.arrays) arrays[name] = array;
  json events = json::array();
  for (const auto& e : run.events) events.push_back(e);
  json j = {{"curves", curves},
            {"arrays", arrays},
            {"events", events},
            {"epoch_loss_sum", results::number_to_json(sums.loss_sum)},
            {"epoch_steps", sums.count},
            {"epoch_seconds", sums.seconds},
            {"last_lr", sums.last_lr}};
  if (parts.save_epoch_state) j["caller_epoch_state"] = parts.save_epoch_state();
  return j;
}

void progress_from_json(const json& j, const std::string& where, results::Run& run, EpochSums& sums,
                        const TrainerParts& parts) {
  try {
    run.curves.clear();
    for (const auto& [name, curve] : j.at("curves").items()) run.curves[name] = curve.get<results::Curve>();
    run.arrays.clear();
    if (j.contains("arrays"))  // absent in checkpoints written before arrays were kept
      for (const auto& [name, array] : j.at("arrays").items()) run.arrays[name] = array.get<results::Array>();
    run.events.clear();
    for (const auto& e : j.at("events")) run.events.push_back(e.get<results::Event>());
    sums.loss_sum = results::number_from_json(j.at("epoch_loss_sum"), "epoch_loss_sum");
    sums.count = j.at("epoch_steps").get<int64_t>();
    sums.seconds = j.at("epoch_seconds").get<double>();
    sums.last_lr = j.at("last_lr").get<double>();
    if (parts.restore_epoch_state && j.contains("caller_epoch_state"))
      parts.restore_epoch_state(j.at("caller_epoch_state"));
  } catch (const std::exception& e) {
    throw Error(where + ": the saved training history is malformed (" + e.what() + ")");
  }
}

std::string dump_value(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The name of the first parameter whose gradient (or, with `values`, whose value) holds a NaN or an infinity
// ("" when all are finite). x * 0 is 0 for every finite x and NaN otherwise, so a sum decides, on any device:
// one sum over every tensor, read back once, and only when it is not finite one read-back per tensor to name it.
std::string first_nonfinite(const Module& model, bool values = false) {
  NoGradGuard no_grad;
  std::vector<std::pair<std::string, Tensor>> sums;
  Tensor total;
  for (const auto& [name, p] : model.named_parameters()) {
    const Tensor t = values ? p : p.grad();
    if (!t.defined()) continue;
    sums.emplace_back(name, sum(mul(t, 0.0)));
    total = total.defined() ? add(total, sums.back().second) : sums.back().second;
  }
  if (!total.defined() || std::isfinite(total.item())) return "";
  for (const auto& [name, s] : sums)
    if (!std::isfinite(s.item())) return name;
  return "";
}

// Where this process computes: the device, and on the CPU its thread count, which oneDNN's backward-weights
// convolution splits its sums by (docs/pretrain.md).
std::string computed_on(const Module& model) {
  const std::vector<Tensor> params = model.parameters();
  if (!params.empty() && params.front().device() == Device::cuda) return "cuda";
  const int threads = omp_get_max_threads();
  return "cpu, " + std::to_string(threads) + (threads == 1 ? " thread" : " threads");
}

}  // namespace

std::string recipe_differences(const json& saved, const json& now) {
  std::string out;
  auto describe = [](const json& obj, const std::string& key) {
    return obj.contains(key) ? dump_value(obj.at(key)) : std::string("(not set)");
  };
  json keys = json::object();
  for (const auto& [k, v] : saved.items()) keys[k] = true;
  for (const auto& [k, v] : now.items()) keys[k] = true;
  for (const auto& [k, unused] : keys.items()) {
    const bool same = saved.contains(k) && now.contains(k) && saved.at(k) == now.at(k);
    if (!same) out += "  " + k + ": checkpoint " + describe(saved, k) + ", now " + describe(now, k) + "\n";
  }
  return out;
}

TrainOutcome train_loop(const TrainerParts& parts, const TrainerConfig& config, results::Run& run,
                        const std::function<void()>& publish) {
  check(parts.model && parts.optimizer && parts.loader && parts.learning_rate && parts.loss,
        "train_loop: model, optimizer, loader, learning_rate and loss are required");
  check(config.epochs >= 1, "--epochs must be at least 1, found " + std::to_string(config.epochs));
  Loader& loader = *parts.loader;
  const int steps_per_epoch = loader.steps_per_epoch();
  int64_t total_steps = int64_t(config.epochs) * steps_per_epoch;
  if (config.max_steps >= 0) total_steps = std::min(total_steps, config.max_steps);
  const bool checkpoints = !config.checkpoint_dir.empty();

  TrainPosition pos;
  EpochSums sums;
  if (!config.resume_from.empty()) {
    // What to do with a checkpoint that cannot be resumed: the one --resume takes once it is moved away.
    auto older = [&] {
      const std::vector<std::string> all =
          checkpoints ? list_checkpoints(config.checkpoint_dir) : std::vector<std::string>{};
      const auto at = std::find(all.begin(), all.end(), config.resume_from);
      if (at == all.end()) return std::string("; move it away, or give another checkpoint with --resume-from");
      return at == all.begin() ? std::string("; move it away and run without --resume to start again (no older "
                                             "checkpoint)")
                               : "; move it away and --resume takes '" + *(at - 1) + "'";
    };
    // Other options (the training's, or the network's), a difference for the user to settle, not a damaged file.
    auto refuse_other_options = [&](const CheckpointState& saved) {
      std::string diff = recipe_differences(saved.recipe, config.recipe);
      if (diff.empty() && !saved.model.empty() && !config.model_description.empty())  // the recipe names most
        diff += recipe_differences(saved.model, config.model_description);
      if (!diff.empty())
        throw UsageError("cannot resume from '" + config.resume_from + "': it was trained with other options:\n" +
                         diff + "resume with the same options (or --config), or start a new run in another --out");
    };
    CheckpointState state;
    try {
      state = load_checkpoint(config.resume_from, *parts.model, parts.optimizer);
    } catch (const Error& e) {
      // Tensors that do not fit may be another network's: its options say so when the file reads.
      std::optional<CheckpointState> readable;
      try {
        readable = read_checkpoint_state(config.resume_from);
      } catch (const Error&) {
      }
      if (readable) refuse_other_options(*readable);
      // Checkpoints are written atomically, so a damaged one was damaged later.
      throw Error(std::string(e.what()) + older());
    }
    refuse_other_options(state);
    const std::string bad = first_nonfinite(*parts.model, true);
    if (!bad.empty())
      throw Error("checkpoint '" + config.resume_from + "': parameter '" + bad +
                  "' holds NaN or inf (the run that wrote it had diverged)" + older());
    pos = state.position;
    progress_from_json(state.progress, "checkpoint '" + config.resume_from + "'", run, sums, parts);
    run.events.push_back({"note", pos.global_step, "resumed from " + config.resume_from, json::object()});
    const std::string here = computed_on(*parts.model);
    if (!state.computed_on.empty() && state.computed_on != here) {
      const std::string note = "resumed on " + here + " from a checkpoint computed on " + state.computed_on +
                               ": the run goes on, but not bit for bit as it would have uninterrupted";
      std::fprintf(stderr, "%s: %s\n", config.label.c_str(), note.c_str());
      run.events.push_back({"note", pos.global_step, note, json::object()});
    }
  } else if (checkpoints && !latest_checkpoint(config.checkpoint_dir).empty()) {
    throw UsageError("'" + config.checkpoint_dir + "' already holds checkpoints of a run: pass --resume to continue "
                     "it, or choose another --out");
  }
  check(pos.step_in_epoch <= steps_per_epoch,
        "the checkpoint is at step " + std::to_string(pos.step_in_epoch) + " of an epoch of only " +
            std::to_string(steps_per_epoch) + " steps: was it made with another batch size or dataset?");

  TrainOutcome outcome;
  StopSignals signals(config.handle_signals);
  Progress progress(config.label, config.epochs, steps_per_epoch, total_steps, config.images_per_step,
                    config.log_every_s);
  // A checkpoint of the weights where the run stands; false when nothing was written. Never one of non-finite
  // weights, which would replace a good one: every caller has checked them (nonfinite_weights below).
  auto save = [&](const TrainPosition& at) {
    if (!checkpoints) return false;
    CheckpointState state;
    state.position = at;
    state.optimizer_steps = parts.optimizer->steps();
    state.recipe = config.recipe;
    state.progress = progress_to_json(run, sums, parts);
    state.model = config.model_description;
    state.computed_on = computed_on(*parts.model);
    const std::string path = (std::filesystem::path(config.checkpoint_dir) / checkpoint_file_name(at)).string();
    save_checkpoint(path, *parts.model, parts.optimizer, state);
    prune_checkpoints(config.checkpoint_dir, config.keep);
    outcome.last_checkpoint = path;
    return true;
  };
  // What a divergence leaves to go back to (checkpoints hold only finite weights).
  auto last_good = [&] {
    const std::string last = checkpoints ? latest_checkpoint(config.checkpoint_dir) : "";
    return last.empty() ? std::string("no checkpoint had been written yet") : "the last good checkpoint is " + last;
  };
  auto finish = [&](TrainStatus status, std::string message) {
    outcome.status = status;
    outcome.position = pos;
    outcome.message = std::move(message);
    outcome.step_seconds = progress.step_seconds();
    outcome.images_per_s = progress.step_seconds() > 0 ? double(progress.images()) / progress.step_seconds() : 0;
    if (outcome.last_checkpoint.empty() && checkpoints)
      outcome.last_checkpoint = latest_checkpoint(config.checkpoint_dir);
    publish();
    return outcome;
  };

  // Weights made non-finite by a step whose loss was finite (a NaN in a gradient): a divergence, found where a
  // checkpoint would otherwise keep them or an evaluation refuse their features (the end of an epoch, of a
  // --max-steps run, or a stop by signal). "" while the weights are finite.
  auto nonfinite_weights = [&]() -> std::string {
    const std::string bad = first_nonfinite(*parts.model, true);
    return bad.empty() ? "" : "the weights became non-finite (first " + bad + ") in epoch " +
                                  std::to_string(pos.epoch + 1);
  };
  auto diverged_weights = [&](const std::string& failure) {
    run.events.push_back({config.crash_is_result ? "crash" : "divergence", pos.global_step, failure,
                          json::object()});
    progress.line(config.label + ": " + failure);
    return finish(TrainStatus::diverged, "training diverged: " + failure + "; " + last_good() +
                                             ". Lower --lr (or raise --warmup-epochs) and start again");
  };

  // After SIGINT / SIGTERM: a checkpoint where the run stands (its history noting the stop), then stop.
  auto stop_for_signal = [&] {
    if (const std::string failure = nonfinite_weights(); !failure.empty()) return diverged_weights(failure);
    const std::string name = signals.received() == SIGINT ? "SIGINT" : "SIGTERM";
    run.events.push_back({"note", pos.global_step, name + ": stopped with a checkpoint", json::object()});
    const bool saved = save(pos);
    progress.line(config.label + ": " + name + " received" +
                  (saved ? ", checkpoint written to " + outcome.last_checkpoint : ""));
    return finish(TrainStatus::interrupted,
                  "stopped by " + name + " at global step " + std::to_string(pos.global_step) +
                      (checkpoints ? "; continue with the same command and --resume" : ""));
  };

  parts.model->train();
  while (pos.global_step < total_steps) {
    loader.start_epoch(pos.epoch, pos.step_in_epoch);
    progress.restart_clock();
    const auto epoch_start = std::chrono::steady_clock::now();
    const double seconds_before = sums.seconds;
    while (pos.global_step < total_steps) {
      const Batch* batch = loader.next();
      if (!batch) break;
      const double lr = parts.learning_rate(pos.global_step);
      // A non-finite loss, or a numerical failure inside the step (a whitening of non-finite values, an
      // eigensolver that does not converge) after the network has been updated at least once, is a divergence.
      // At global step 0 nothing has been trained yet, so a failure there is a setup error and propagates.
      // With crash_is_result the failure is a crash instead, also at step 0 when the solver failed (NumericalError),
      // and a non-finite gradient is one as well.
      std::string failure;
      double value = 0;
      parts.optimizer->zero_grad();
      try {
        Tensor loss = parts.loss(*batch);
        // Backward is queued before the loss is read, so that on a GPU the host issues it while the forward
        // runs and the step waits for the device once; the gradients of a non-finite loss are never applied.
        loss.backward();
        value = loss.item();
        if (!std::isfinite(value)) failure = "the loss became " + std::to_string(value);
        if (config.crash_is_result && failure.empty()) {
          const std::string bad = first_nonfinite(*parts.model);
          if (!bad.empty()) failure = "a gradient became non-finite (first in " + bad + ")";
        }
      } catch (const Error& e) {
        const bool crash = config.crash_is_result && dynamic_cast<const NumericalError*>(&e) != nullptr;
        if (pos.global_step == 0 && !crash) throw;
        failure = std::string("the step failed (") + e.what() + ")";
      }
      if (!failure.empty() && config.crash_is_result) {  // a result: the step and what failed, then stop
        const std::string where = "step " + std::to_string(pos.global_step + 1);
        run.events.push_back({"crash", pos.global_step + 1, failure, json::object()});
        progress.line(config.label + ": crashed at " + where + ": " + failure);
        return finish(TrainStatus::diverged, "crashed at " + where + ": " + failure);
      }
      if (!failure.empty()) {
        const std::string where = "epoch " + std::to_string(pos.epoch + 1) + " step " +
                                  std::to_string(pos.step_in_epoch + 1) + " (global step " +
                                  std::to_string(pos.global_step + 1) + ", lr " + std::to_string(lr) + ")";
        run.events.push_back({"divergence", pos.global_step + 1, failure + " at " + where, json::object()});
        progress.line(config.label + ": diverged at " + where);
        return finish(TrainStatus::diverged, "training diverged: " + failure + " at " + where + "; " + last_good() +
                                                 ". Lower --lr (or raise --warmup-epochs) and start again");
      }
      parts.optimizer->step(lr);
      ++pos.step_in_epoch;
      ++pos.global_step;
      sums.loss_sum += value;
      ++sums.count;
      sums.last_lr = lr;
      sums.seconds = seconds_before +
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
      if (parts.on_step) parts.on_step(pos.global_step, value, lr);
      progress.step(pos.epoch, pos.step_in_epoch, pos.global_step, value, lr);
      if (signals.received()) return stop_for_signal();
    }
    if (pos.step_in_epoch < steps_per_epoch) {
      // max_steps reached inside an epoch: stop there as an interruption would, the partial epoch unrecorded
      // (its sums are in the checkpoint, so a resumed run records the whole epoch).
      if (const std::string failure = nonfinite_weights(); !failure.empty()) return diverged_weights(failure);
      save(pos);
      return finish(TrainStatus::finished, "");
    }
    // The epoch is done: record, evaluate, checkpoint, publish.
    const double x = pos.epoch + 1;
    append_point(run, "loss", x, sums.loss_sum / double(sums.count));
    append_point(run, "lr", x, sums.last_lr);
    append_point(run, "epoch_time_s", x, sums.seconds);
    std::string summary = config.label + " epoch " + std::to_string(pos.epoch + 1) + "/" +
                          std::to_string(config.epochs) + " loss " + std::to_string(sums.loss_sum / sums.count) +
                          " time " + format_duration(sums.seconds);
    if (const std::string failure = nonfinite_weights(); !failure.empty()) return diverged_weights(failure);
    if (parts.evaluate && config.eval_every > 0 && (pos.epoch + 1) % config.eval_every == 0) {
      for (const auto& [name, value] : parts.evaluate(pos.epoch)) {
        append_point(run, name, x, value);
        summary += " " + name + " " + std::to_string(value);
      }
      parts.model->train();
    }
    progress.line(summary);
    sums = EpochSums{};
    ++pos.epoch;
    pos.step_in_epoch = 0;
    save(pos);
    publish();
    if (signals.received()) return stop_for_signal();  // it came during the evaluation or the checkpoint
  }
  return finish(TrainStatus::finished, "");
}

}  // namespace intl::train
