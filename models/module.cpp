// Module bookkeeping: registration, named traversal, mode and device moves.
#include "models/module.h"

namespace intl {

// A parameter carries a version from the start, and a fresh one after each device move (the moved tensor is a
// new one), rather than 0 ("never updated"): kernels key their copies of a weight (oneDNN's reorder, cuDNN's
// KRSC layout) on (address, version) and cache nothing for version 0. So the first training step already lays
// out the copies every later step reuses, and on a GPU no step after the first calls cudaMalloc.
Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  t.requires_grad_(true);
  t.bump_version();
  params_.emplace_back(name, std::make_shared<Tensor>(std::move(t)));
  return *params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, std::make_shared<Tensor>(std::move(t)));
  return *buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, *t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  for (auto& [name, t] : params_) {
    Tensor moved = t->to(device).detach();
    moved.bump_version();
    *t = moved.requires_grad_(true);
  }
  for (auto& [name, t] : buffers_) *t = t->to(device);
  for (auto& [name, child] : children_) child->to(device);
}

void Module::zero_grad() {
  for (auto& [name, t] : params_) t->zero_grad();
  for (auto& [name, child] : children_) child->zero_grad();
}

}  // namespace intl
