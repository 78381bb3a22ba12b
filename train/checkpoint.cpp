// Checkpoint files (see train/checkpoint.h): tensors under "model." and "optimizer." prefixes, the state as
// one JSON string under the metadata key "intl".
#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "engine/error.h"
#include "models/safetensors.h"

namespace intl::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kMetadataKey = "intl";
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimizerPrefix = "optimizer.";

json state_to_json(const CheckpointState& s) {
  return {{"format", checkpoint_format_name},
          {"format_version", checkpoint_format_version},
          {"epoch", s.position.epoch},
          {"step_in_epoch", s.position.step_in_epoch},
          {"global_step", s.position.global_step},
          {"optimizer_steps", s.optimizer_steps},
          {"recipe", s.recipe},
          {"progress", s.progress},
          {"model", s.model},
          {"computed_on", s.computed_on}};
}

CheckpointState state_from_metadata(const std::map<std::string, std::string>& metadata, const std::string& path) {
  const std::string where = "checkpoint '" + path + "'";
  auto it = metadata.find(kMetadataKey);
  if (it == metadata.end())
    throw Error(where + " has no \"intl\" metadata: it is not a training checkpoint of this program (a plain "
                        "weights file can be evaluated with `intl eval`, not resumed)");
  json j;
  try {
    j = json::parse(it->second);
  } catch (const json::exception& e) {
    throw Error(where + ": the \"intl\" metadata is not valid JSON (" + e.what() + ")");
  }
  check(j.is_object() && j.value("format", "") == checkpoint_format_name,
        where + ": the \"intl\" metadata is not an intl-checkpoint record");
  const int version = j.value("format_version", 0);
  check(version >= 1 && version <= checkpoint_format_version,
        where + ": format_version " + std::to_string(version) + " is not one this program reads (1.." +
            std::to_string(checkpoint_format_version) + ")");
  CheckpointState s;
  try {
    s.position.epoch = j.at("epoch").get<int>();
    s.position.step_in_epoch = j.at("step_in_epoch").get<int>();
    s.position.global_step = j.at("global_step").get<int64_t>();
    s.optimizer_steps = j.at("optimizer_steps").get<int64_t>();
    s.recipe = j.value("recipe", json::object());
    s.progress = j.value("progress", json::object());
    s.model = j.value("model", json::object());
    s.computed_on = j.value("computed_on", "");
  } catch (const json::exception& e) {
    throw Error(where + ": the \"intl\" metadata lacks a field or has a wrong type (" + e.what() + ")");
  }
  return s;
}

// (epoch, step_in_epoch) from "ckpt-eEEEE[-sSSSSSS].safetensors"; false for any other name.
bool parse_file_name(const std::string& name, int& epoch, int& step) {
  int consumed = 0;
  epoch = step = 0;
  if (std::sscanf(name.c_str(), "ckpt-e%d-s%d.safetensors%n", &epoch, &step, &consumed) == 2 &&
      size_t(consumed) == name.size())
    return true;
  step = 0;
  consumed = 0;
  return std::sscanf(name.c_str(), "ckpt-e%d.safetensors%n", &epoch, &consumed) == 1 && size_t(consumed) == name.size();
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const CheckpointState& state) {
  NamedTensorList tensors;
  for (auto& [name, t] : model.named_parameters()) tensors.emplace_back(kModelPrefix + name, t);
  for (auto& [name, t] : model.named_buffers()) tensors.emplace_back(kModelPrefix + name, t);
  if (optimizer)
    for (const NamedTensor& nt : optimizer->state()) tensors.emplace_back(kOptimizerPrefix + nt.name, nt.tensor);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) throw Error("cannot create the checkpoint folder of '" + path + "': " + ec.message());
  write_safetensors(path, tensors, {{kMetadataKey, state_to_json(state).dump()}});
}

CheckpointState read_checkpoint_state(const std::string& path) {
  return state_from_metadata(read_safetensors(path).metadata, path);
}

CheckpointState load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer) {
  const SafetensorsContents file = read_safetensors(path);
  CheckpointState state = state_from_metadata(file.metadata, path);
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : file.tensors) by_name[name] = &t;

  std::vector<std::pair<std::string, Tensor>> targets;
  for (auto& [name, t] : model.named_parameters()) targets.emplace_back(kModelPrefix + name, t);
  for (auto& [name, t] : model.named_buffers()) targets.emplace_back(kModelPrefix + name, t);
  if (optimizer)
    for (const NamedTensor& nt : optimizer->state()) targets.emplace_back(kOptimizerPrefix + nt.name, nt.tensor);
  for (const auto& [name, dst] : targets) {
    const std::string what = "checkpoint '" + path + "', tensor '" + name + "'";
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error(what + " is missing: the checkpoint was written by a different network or optimizer (resume "
                         "with the options it was trained with)");
    const Tensor& src = *it->second;
    check(src.dtype() == dst.dtype(), what + ": dtype " + dtype_name(src.dtype()) + ", expected " +
                                          dtype_name(dst.dtype()));
    check(src.shape() == dst.shape(), what + ": shape " + shape_str(src.shape()) + ", the network expects " +
                                          shape_str(dst.shape()) + " (resume with the options it was trained with)");
  }
  for (auto& [name, dst] : targets) {
    Tensor d = dst;
    d.copy_(*by_name.at(name));
  }
  if (optimizer) optimizer->set_steps(state.optimizer_steps);
  return state;
}

std::string checkpoint_file_name(const TrainPosition& position) {
  char name[64];
  if (position.step_in_epoch == 0)
    std::snprintf(name, sizeof name, "ckpt-e%04d.safetensors", position.epoch);
  else
    std::snprintf(name, sizeof name, "ckpt-e%04d-s%06d.safetensors", position.epoch, position.step_in_epoch);
  return name;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<std::pair<int, int>, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    int epoch = 0, step = 0;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && parse_file_name(name, epoch, step))
      found.push_back({{epoch, step}, entry.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (auto& [key, path] : found) paths.push_back(path);
  return paths;
}

std::string latest_checkpoint(const std::string& dir) {
  const std::vector<std::string> all = list_checkpoints(dir);
  return all.empty() ? "" : all.back();
}

void prune_checkpoints(const std::string& dir, int keep) {
  check(keep >= 1, "--keep must be at least 1 (the newest checkpoint is always kept), found " + std::to_string(keep));
  const std::vector<std::string> all = list_checkpoints(dir);
  std::error_code ec;
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) fs::remove(all[i], ec);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".tmp")
      fs::remove(entry.path(), ec);
  }
}

}  // namespace intl::train
